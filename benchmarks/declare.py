"""Benchmark the declare flow against the sandbox: its GitHub calls and how close it runs to its critical path.

A SEV-1 label on an issue from the incident form is declared by the flow (read the event, check the labeller's role,
commit and push the incident file, label the issue, post one comment, looked up first). At a sandbox latency of 100
ms per response each declare is timed and divided by its critical path: its own GitHub calls, in sequence, times the
latency (the git work may hide behind them). The median of those per-run ratios is the figure (target: <= 1.3), and
the calls per declare are counted in the sandbox's request log (target: <= 4). At 0 ms the wall time is the flow's
own cost (diagnostic, no target). The sandbox runs in its own process, as GitHub does.

Run: .venv/bin/python benchmarks/declare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from github import Auth, Github
from served import ports_for, sandbox
from verdict import report

from incidentops.core.events import parse_event
from incidentops.flows.declare import declare

ROOT = Path(__file__).resolve().parents[1]
LATENCY_MS = 100
RATIO_TARGET = 1.3  # wall time over the sequential GitHub calls' latency alone
CALLS_TARGET = 4
FORM = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text()


def github_calls(info: dict[str, Any]) -> int:
    log = httpx.get(info["control_url"] + "/requests", timeout=60).json()
    return sum(1 for r in log if r["path"].startswith("/api/v3"))


def one_declare(info: dict[str, Any], workspace: Path) -> tuple[float, int]:
    person = Github(auth=Auth.Token("oncall-write"), base_url=info["github_api_url"], retry=None)
    issue = person.get_repo(info["repository"]).create_issue(title="Benchmark incident", body=FORM)
    issue.add_to_labels("sev-1")
    events = httpx.get(info["control_url"] + "/events", timeout=60).json()
    delivery = [e for e in events if e["event"] == "issues" and e["action"] == "labeled"][-1]
    event = parse_event("issues", delivery["payload"])
    ports = ports_for(info, workspace)
    before = github_calls(info)
    began = time.perf_counter()
    outcome = declare(event, ports)
    elapsed = time.perf_counter() - began
    assert outcome.status == "declared", outcome.message
    return elapsed, github_calls(info) - before


def bench_latency(latency_ms: int, runs: int) -> list[tuple[float, int]]:
    """(wall seconds, GitHub API calls) of each of `runs` declares at this sandbox latency."""
    root = Path(tempfile.mkdtemp(prefix="bench-declare-"))
    try:
        with sandbox(root / "sb", latency_ms) as info:
            workspace = root / "workspace"
            subprocess.run(["git", "clone", "-q", info["bare_repo"], str(workspace)], check=True)
            one_declare(info, workspace)  # warm-up: the emulator compiles its validators on first use
            return [one_declare(info, workspace) for _ in range(runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"declare flow against the sandbox (median of {args.runs} runs)")
    own = bench_latency(0, args.runs)
    print(
        f"  0 ms latency: wall {statistics.median(w for w, _ in own) * 1000:.0f} ms, "
        f"{statistics.median(c for _, c in own):.0f} GitHub calls (the flow's own cost: diagnostic, no target)"
    )
    runs = bench_latency(LATENCY_MS, args.runs)
    ratios = [wall / (calls * LATENCY_MS / 1000) for wall, calls in runs]
    for n, ((wall, calls), r) in enumerate(zip(runs, ratios, strict=True), 1):
        print(f"  {LATENCY_MS} ms latency, run {n}: wall {wall * 1000:.0f} ms, {calls} GitHub calls, ratio {r:.2f}")
    ratio, calls = statistics.median(ratios), max(c for _, c in own + runs)
    print(f"wall / (calls x latency) at {LATENCY_MS} ms: {ratio:.2f} (target <= {RATIO_TARGET}); calls {calls}")
    met = report(
        "declare", "GitHub calls per declare (most of any run)", str(calls), f"<= {CALLS_TARGET}", calls <= CALLS_TARGET
    )
    met &= report(
        "declare",
        f"wall / critical path at {LATENCY_MS} ms (median)",
        f"{ratio:.2f}",
        f"<= {RATIO_TARGET}",
        ratio <= RATIO_TARGET,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
