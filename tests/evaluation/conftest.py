"""The exported sample model fixture, shared with the engine tests."""

from tests.engines.conftest import exported

__all__ = ["exported"]
