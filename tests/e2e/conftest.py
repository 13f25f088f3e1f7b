"""The act scenarios, each run at most once per test run (across xdist workers) and shared by its tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.once import once_per_run

from . import act_harness


@pytest.fixture(scope="session")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """`scenarios(name)` runs act_scenario.py's scenario `name` (one sandbox) the first time it is asked for."""
    problem = act_harness.namespace_problem()
    if problem:
        pytest.skip(problem)
    results: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        if name not in results:
            results[name] = once_per_run(
                tmp_path_factory, f"act-{name}", lambda scratch: act_harness.run_scenario(name, scratch / "result.json")
            )
        return results[name]

    return get
