"""Benchmark the smoke runner: 50 checks, each answered after 200 ms by the sandbox's demo services.

The checks run concurrently, so the whole run should take about as long as one check. Prints the wall time of the
flow (parse the runbook, plan, send, judge) divided by the injected delay (target: <= 1.5), so any slowness on the
client's side (queueing, connection set-up, judging) shows in the ratio. The slowest check's latency as the runner
measured it is printed beside it for diagnosis. The sandbox runs in its own process (`incidentops sandbox serve`), as
the real services do: its 50 handler threads must not compete with the runner for one interpreter lock.

Run: .venv/bin/python benchmarks/smoke.py [--checks 50] [--delay-ms 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from served import sandbox
from verdict import report

from incidentops.config import load_config
from incidentops.core.redact import Redactor
from incidentops.core.runbook import RUNBOOK_PATH
from incidentops.flows.smoke import check_environment

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1.5


def runbook(checks: int) -> str:
    """A runbook whose production block has `checks` checks of the portal's home page."""
    lines = ["# Benchmark runbook", "", "```smoke", "environment: production", "checks:"]
    for n in range(checks):
        lines += [f"  - name: portal home {n}", "    service: user-portal", f"    url: '{{portal}}/?n={n}'"]
        lines += ["    expect: {status: 200, body_contains: Acme Portal}"]
    return "\n".join([*lines, "```", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="incidentops-bench-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / RUNBOOK_PATH).parent.mkdir(parents=True)
        shutil.copy(ROOT / "incidentops.yaml", workspace / "incidentops.yaml")
        (workspace / RUNBOOK_PATH).write_text(runbook(args.checks))
        with sandbox(root / "sb") as info:
            fault = {"path": "^/$", "delay_ms": args.delay_ms, "count": None}
            httpx.post(info["control_url"] + "/faults", json=fault).raise_for_status()
            env = {"INCIDENTOPS_BASE_URLS": json.dumps(info["base_urls"])}
            config = load_config(workspace)
            ratios = []
            for run in range(1, args.runs + 1):
                began = time.perf_counter()
                outcome = check_environment(config, workspace, Redactor.from_env({}), "production", [], env)
                wall = (time.perf_counter() - began) * 1000
                results = outcome.details["results"]
                slowest = max(r.latency_ms or 0 for r in results)
                passed = sum(1 for r in results if r.result == "passed")
                if passed != args.checks:
                    raise SystemExit(f"run {run}: only {passed} of {args.checks} checks passed")
                ratios.append(wall / args.delay_ms)
                print(
                    f"run {run}: {passed} checks passed; wall {wall:.0f} ms = {wall / args.delay_ms:.2f}x the injected "
                    f"{args.delay_ms} ms (target <= {LIMIT}); slowest check as measured {slowest:.0f} ms "
                    "(diagnostic, no target)"
                )
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= LIMIT else "MISSES"
    print(f"median ratio wall / injected delay: {ratio:.2f} ({verdict} the target <= {LIMIT})")
    met = report(
        "smoke",
        f"{args.checks} checks: wall / injected {args.delay_ms} ms",
        f"{ratio:.2f}",
        f"<= {LIMIT}",
        ratio <= LIMIT,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
