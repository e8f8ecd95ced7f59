"""Fakes, builders and helpers shared by the test folders (tests/README.md)."""
