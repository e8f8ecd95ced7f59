"""Fakes and builders shared by several test modules (tests/README.md says which).

Kept out of test modules so that importing a helper never collects, or couples
to, another module's tests.
"""
