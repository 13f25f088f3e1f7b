"""The act scenarios, each run at most once per test session and shared by the tests that read them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

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
            out = tmp_path_factory.mktemp(f"act-{name}") / "result.json"
            results[name] = act_harness.run_scenario(name, out)
        return results[name]

    return get
