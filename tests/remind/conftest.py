"""The reminder tests use the closing tests' sandbox world, on a clock the test moves."""

from tests.verify.conftest import (  # noqa: F401  (fixtures, found by pytest through this import)
    Clock,
    _flows_world,
    clock,
    smoke_environment,
    world,
)

__all__ = ["Clock"]
