"""The exporter tests' in-process CLI runner, for the command-line tests here too."""

from tests.exporter.conftest import run_cli  # noqa: F401  (a fixture, used by name)
