"""Benchmark the declare flow against the sandbox, and the CLI's start-up cost.

For a sandbox latency of 100 ms per response, each declare (issue already labelled; the flow reads the event, checks
the actor, commits, pushes, labels, comments) is timed and divided by its own number of GitHub API calls × the
latency — how close the flow is to its sequential critical path (target: <= 1.5); the median of those per-run ratios
is the figure. At 0 ms the wall time is the flow's own cost (diagnostic, no target). Then the start-up time of
`incidentops --help` against `python -c pass` (target: <= 4x).

Run: .venv/bin/python benchmarks/declare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from github import Auth, Github

from incidentops.adapters.git import GitRepo
from incidentops.adapters.github import GitHubClient
from incidentops.config import load_config
from incidentops.core.events import parse_event
from incidentops.core.redact import Redactor
from incidentops.core.timefmt import utc_now
from incidentops.flows.base import Ports
from incidentops.flows.declare import declare
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
CRITICAL_PATH_LATENCY_MS = 100
CRITICAL_PATH_TARGET = 1.5  # wall time over the sequential API calls' latency alone
STARTUP_TARGET = 4.0  # `incidentops --help` over a bare interpreter's start-up
FORM = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text()


def one_declare(sandbox: Sandbox, workspace: Path) -> tuple[float, int]:
    info = sandbox.info
    person = Github(
        auth=Auth.Token("oncall-write"),
        base_url=info["github_api_url"],
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    issue = person.get_repo(info["repository"]).create_issue(title="Benchmark incident", body=FORM)
    issue.add_to_labels("sev-1")
    delivery = [e for e in sandbox.github.events if e["event"] == "issues" and e["action"] == "labeled"][-1]
    event = parse_event("issues", json.loads(json.dumps(delivery["payload"])))
    github = GitHubClient(info["actions_token"], info["repository"], info["github_api_url"])
    ports = Ports(
        config=load_config(workspace),
        workspace=workspace,
        github=github,
        git=GitRepo(workspace),
        repository=info["repository"],
        server_url=info["github_server_url"],
        redact=Redactor.from_env({}),
        clock=utc_now,
    )
    with sandbox.hub.lock:
        before = len(sandbox.hub.log)
    began = time.perf_counter()
    outcome = declare(event, ports)
    elapsed = time.perf_counter() - began
    assert outcome.status == "declared", outcome.message
    with sandbox.hub.lock:
        calls = sum(1 for r in sandbox.hub.log[before:] if r.path.startswith("/api/v3"))
    return elapsed, calls


def bench_latency(latency_ms: int, runs: int) -> list[tuple[float, int]]:
    """(wall seconds, GitHub API calls) of each of `runs` declares at this sandbox latency."""
    root = Path(tempfile.mkdtemp(prefix="bench-declare-"))
    try:
        sandbox = Sandbox(root / "sandbox", seed=ROOT).start()
        workspace = root / "workspace"
        subprocess.run(["git", "clone", "-q", sandbox.info["bare_repo"], str(workspace)], check=True)
        sandbox.hub.latency_ms = latency_ms
        results = [one_declare(sandbox, workspace) for _ in range(runs)]
        sandbox.stop()
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def startup(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"declare flow against the sandbox (median of {args.runs} runs)")
    own = bench_latency(0, args.runs)
    print(
        f"  0 ms latency: wall {statistics.median(w for w, _ in own) * 1000:.0f} ms, "
        f"{statistics.median(c for _, c in own):.0f} API calls (the flow's own cost: diagnostic, no target)"
    )
    latency = CRITICAL_PATH_LATENCY_MS
    runs = bench_latency(latency, args.runs)
    ratios = [wall / (calls * latency / 1000) for wall, calls in runs]
    ratio = statistics.median(ratios)
    path_ok = ratio <= CRITICAL_PATH_TARGET
    for n, ((wall, calls), r) in enumerate(zip(runs, ratios, strict=True), 1):
        print(f"  {latency} ms latency, run {n}: wall {wall * 1000:.0f} ms, {calls} API calls, ratio {r:.2f}")
    print(
        f"wall / (calls x latency) at {latency} ms: {ratio:.2f} "
        f"({'meets' if path_ok else 'MISSES'} the target <= {CRITICAL_PATH_TARGET})"
    )
    exe = Path(sys.executable).parent / "incidentops"
    cli = startup([str(exe), "--help"], args.runs)
    bare = startup([sys.executable, "-c", "pass"], args.runs)
    startup_ok = cli / bare <= STARTUP_TARGET
    print(
        f"incidentops --help {cli * 1000:.0f} ms / python -c pass {bare * 1000:.0f} ms = {cli / bare:.1f}x "
        f"({'meets' if startup_ok else 'MISSES'} the target <= {STARTUP_TARGET}x)"
    )
    return 0 if path_ok and startup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
