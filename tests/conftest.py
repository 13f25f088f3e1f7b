"""Fixtures shared by every test directory."""

from tests.flows.conftest import world  # noqa: F401  (the sandbox-backed `world` fixture)
