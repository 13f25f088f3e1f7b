"""Shared helpers for the fault tests: inject faults into the sandbox, read its request log, tally what happened.

Every test records what it tried (which fault, how often it was hit) and what came of it into one JSON file under
pytest's temporary directory; the terminal summary prints the totals, which docs/reliability.md quotes.
"""

from __future__ import annotations

import fcntl
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
from tests.once import shared_dir

TALLY_NAME = "faults-tally.json"


@dataclass
class Faults:
    """The sandbox's fault injection and request log, for one world; remembers how often each fault fired."""

    control_url: str
    added: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> spec
    cleared: dict[int, int] = field(default_factory=dict)  # id -> hits, read back before DELETE

    def add(self, **spec: Any) -> int:
        """Inject a fault; returns its id."""
        answer = httpx.post(self.control_url + "/faults", json=spec)
        answer.raise_for_status()
        fault_id = int(answer.json()["id"])
        self.added[fault_id] = spec
        return fault_id

    def clear(self) -> None:
        self.cleared.update(self._live_hits())
        httpx.delete(self.control_url + "/faults").raise_for_status()

    def hit_counts(self) -> dict[int, int]:
        """How often each live fault has fired so far (a hold counts when the request arrives, before the wait)."""
        return self._live_hits()

    def _live_hits(self) -> dict[int, int]:
        listed = httpx.get(self.control_url + "/faults")
        listed.raise_for_status()
        return {int(f["id"]): int(f["hits"]) for f in listed.json()}

    def fired(self, *ids: int) -> int:
        """Assert that each fault (by default every one this test added) fired: exactly `count` times, or at least
        once when it had no count. Returns how often they fired in all, read back from the sandbox."""
        hits = {**self.cleared, **self._live_hits()}
        chosen = ids or tuple(self.added)
        assert chosen, "no fault was injected"
        unfired = {}
        for fault_id in chosen:
            count = self.added[fault_id].get("count", 1)
            got = hits.get(fault_id, 0)
            if (count is None and got < 1) or (count is not None and got != count):
                unfired[fault_id] = {"spec": self.added[fault_id], "fired": got}
        assert not unfired, f"injected faults that did not fire as set up: {unfired}"
        return sum(hits[fault_id] for fault_id in chosen)

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
    if helper.added:
        helper.fired()  # a fault test whose fault never fired proves nothing


@dataclass
class Tally:
    """Append-only record of fault trials: one JSON object per trial."""

    path: Path
    test: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, fault: str, injected: int, outcome: str, **extra: Any) -> None:
        """`injected`: how often the faults fired, as read back (`Faults.fired`, a hook's counter), never assumed."""
        assert injected > 0, f"{fault}: no fault fired, so there is nothing to tally"
        row = {"test": self.test, "fault": fault, "injected": injected, "outcome": outcome, **extra}
        self.rows.append(row)
        with self.path.open("a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # several xdist workers append to the one file
            out.write(json.dumps(row, sort_keys=True) + "\n")


def _tally_path(config: pytest.Config) -> Path:
    # The directory every xdist worker of the run shares; the controller prints the summary from it.
    return shared_dir(config._tmp_path_factory) / TALLY_NAME  # type: ignore[attr-defined]


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """Record a trial: `tally("github 5xx on GET", injected=3, outcome="converged", retries=3)`."""
    return Tally(_tally_path(request.config), request.node.nodeid.split("::", 1)[-1])


def print_tally(terminalreporter: Any, config: pytest.Config) -> None:
    """The fault tally section of the terminal summary (called from tests/conftest.py, which xdist's controller
    loads; this conftest is loaded only where tests are collected)."""
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
