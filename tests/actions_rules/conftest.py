"""The act-backed scheduler scenario, run at most once per test run (across xdist workers) in a loopback-only
network namespace."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incidentops.sandbox.act import clean_env, run_bounded
from tests.e2e import act_harness
from tests.once import once_per_run

SCENARIO = Path(__file__).with_name("scheduler_scenario.py")


@pytest.fixture(scope="session")
def scheduled(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], dict[str, Any]]:
    """`scheduled()` runs scheduler_scenario.py the first time it is asked for and returns what it wrote."""
    problem = act_harness.namespace_problem()
    if problem:
        pytest.skip(problem)
    results: list[dict[str, Any]] = []

    def run(scratch: Path) -> dict[str, Any]:
        tools = act_harness.find_tools()
        act_harness._prewarm_once(tools)
        out = scratch / "result.json"
        inner = [sys.executable, str(SCENARIO), "--out", str(out), "--act", str(tools.act), "--uv", str(tools.uv)]
        inner += ["--python", str(tools.python), "--uv-cache-dir", str(tools.uv_cache_dir)]
        script = "ip link set lo up && exec " + shlex.join(inner)
        code, output = run_bounded(
            ["unshare", "-n", "sh", "-c", script], cwd=act_harness.REPO_ROOT, env=clean_env(), timeout=2700
        )
        if not out.is_file():
            raise RuntimeError(f"the scheduler scenario wrote no result (exit {code}):\n{output[-5000:]}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        result["scenario_output"] = output[-5000:]
        return result

    def get() -> dict[str, Any]:
        if not results:
            results.append(once_per_run(tmp_path_factory, "act-scheduler", run))
        return results[0]

    return get
