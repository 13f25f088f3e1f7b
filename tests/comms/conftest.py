"""Re-use the sandbox world of the flow tests."""

from tests.flows.conftest import world  # noqa: F401
