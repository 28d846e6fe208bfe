"""Fixtures and the collection hook of the hardening tests.

They live in hardening_kit.py, which the tests import by that name: with a
conftest.py in tests/integration too, `from conftest import ...` would find
whichever conftest was imported first.
"""

from hardening_kit import *  # noqa: F401,F403 - fixtures are found by name
from hardening_kit import host  # noqa: F401
