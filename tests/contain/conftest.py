"""The flows' sandbox fixture and the smoke helpers, for the containment tests."""

from tests.flows import conftest as flows

world = flows.world  # the sandbox fixture, shared with the flow tests
