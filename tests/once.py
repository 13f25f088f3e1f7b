"""Run an expensive set-up once per test run, even when pytest-xdist spreads the tests over several workers.

Each xdist worker is its own pytest session, so a session-scoped fixture would run once per worker. The first
worker to ask runs the set-up under a file lock in the run's shared temporary directory and leaves its JSON
result (or its error) there; the others wait on the lock and read it. See pytest-xdist's "Making session-scoped
fixtures execute only once" (docs/how-to.rst).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary directory every worker of this run shares (a worker's own is one level below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once_per_run(
    tmp_path_factory: pytest.TempPathFactory, key: str, make: Callable[[Path], dict[str, Any]]
) -> dict[str, Any]:
    """`make(scratch)` the first time any worker asks for `key` in this run; its result for every later ask."""
    root = shared_dir(tmp_path_factory)
    result_path = root / f"once-{key}.json"
    with (root / f"once-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result_path.is_file():
            scratch = tmp_path_factory.mktemp(key)
            try:
                record: dict[str, Any] = {"result": make(scratch)}
            except Exception as err:  # every test that needs it fails with the first failure, not a re-run
                record = {"error": f"{type(err).__name__}: {err}"}
            partial = result_path.with_suffix(".partial")
            partial.write_text(json.dumps(record), encoding="utf-8")
            partial.replace(result_path)
        record = json.loads(result_path.read_text(encoding="utf-8"))
    if "error" in record:
        raise RuntimeError(f"the shared set-up {key!r} failed: {record['error']}")
    result: dict[str, Any] = record["result"]
    return result
