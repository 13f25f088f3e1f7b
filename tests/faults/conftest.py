"""Shared helpers for the fault tests: inject faults into the sandbox, read its request log, tally what happened.

Every test records what it tried (which fault, how often it was hit) and what came of it into one JSON file under
pytest's temporary directory; the terminal summary prints the totals, which docs/reliability.md quotes.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.flows.conftest import World

TALLY_NAME = "faults-tally.json"


@dataclass
class Faults:
    """The sandbox's fault injection and request log, for one world."""

    control_url: str

    def add(self, **spec: Any) -> None:
        httpx.post(self.control_url + "/faults", json=spec).raise_for_status()

    def clear(self) -> None:
        httpx.delete(self.control_url + "/faults").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.control_url + "/requests").json())

    def hits(self, method: str, pattern: str, since: int = 0) -> list[dict[str, Any]]:
        """Logged requests (method, path regex search) from position `since` on."""
        regex = re.compile(pattern)
        return [r for r in self.requests()[since:] if r["method"] == method and regex.search(r["path"])]

    def wait_for(self, method: str, pattern: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll the request log until `count` matching requests were handled (the log is written after handling)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.hits(method, pattern)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@pytest.fixture
def faults(world: World) -> Iterator[Faults]:
    helper = Faults(world.info["control_url"])
    yield helper
    helper.clear()


@dataclass
class Tally:
    """Append-only record of fault trials: one JSON object per trial."""

    path: Path
    test: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, fault: str, injected: int, outcome: str, **extra: Any) -> None:
        row = {"test": self.test, "fault": fault, "injected": injected, "outcome": outcome, **extra}
        self.rows.append(row)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, sort_keys=True) + "\n")


def _tally_path(config: pytest.Config) -> Path:
    factory = config._tmp_path_factory  # type: ignore[attr-defined]
    return Path(factory.getbasetemp()) / TALLY_NAME


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """Record a trial: `tally("github 5xx on GET", injected=3, outcome="converged", retries=3)`."""
    return Tally(_tally_path(request.config), request.node.nodeid.split("::", 1)[-1])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    try:
        path = _tally_path(config)
    except Exception:
        return
    if not path.is_file():
        return
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return
    totals: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        key = (row["fault"], row["outcome"])
        entry = totals.setdefault(key, [0, 0])
        entry[0] += 1
        entry[1] += int(row["injected"])
    terminalreporter.write_sep("-", f"fault tally ({path.name}: {len(rows)} trials)")
    for (fault, outcome), (trials, injected) in sorted(totals.items()):
        terminalreporter.write_line(f"{fault}: {trials} trial(s), {injected} fault(s) injected -> {outcome}")
    injected = sum(int(r["injected"]) for r in rows)
    terminalreporter.write_line(f"faults summary: {len(rows)} trials, {injected} faults injected")
    target = os.environ.get("INCIDENTOPS_FAULTS_TALLY")
    if target:
        Path(target).write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def effective_deployments(world: World, service: str) -> int:
    """How many deployments took effect for a service, counted inside the emulated Cloudflare.

    A Worker keeps every deployment (oldest first); a Pages project keeps the history of its canonical
    deployment, one entry per rollback that took effect.
    """
    cf = world.sandbox.cloudflare
    with cf.lock:
        if service in cf.workers:
            return len(cf.workers[service].deployments)
        return len(cf.pages[service].history)
