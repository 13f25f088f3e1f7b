"""Benchmark the time to containment: from the event that contains a route to the deny verified at the edge.

A SEV-1 from the incident form (tenant isolation at risk on /v1/reports) is labelled; its `handle-event` run
declares it and proposes the containment (nothing is denied on the form's word, flows/contain.py). A person with the
`contain` role confirms with `/contain confirm <digest>`, and that comment's run checks their role, writes the WAF
rule, polls the route until the edge answers the deny, and commits the record. Both runs are whole processes, as a
workflow step runs them (`python -P -m incidentops handle-event`, environment installed like the workflows').

The sandbox answers every request after 100 ms; the strict emulator applies a rule at the edge after a propagation
delay, fixed here at PROPAGATION seconds and shown separately. The figure is the confirm run's wall time, process
start included, over its critical path: the role check, the rule write and one deny probe (3 x 100 ms), plus git
(a fetch, commit and push of the same repository, timed in the same run), plus the propagation delay. Target: <= 1.5.
The declare run and the total from the label (the person's reading time left out) are printed for context.

Run: .venv/bin/python benchmarks/containment.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
from served import sandbox
from startup import runtime_python
from verdict import report

ROOT = Path(__file__).resolve().parents[1]
FORM = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text()
LATENCY_MS = 100
PROPAGATION = 2.0  # seconds until a written rule is enforced at the edge (the emulator draws 2-5 s by default)
CRITICAL_CALLS = 3  # the role check, the rule write, one deny probe
TARGET = 1.5


def git_round_trip(bare: str, scratch: Path) -> float:
    """Seconds for what a run's git work costs at least: fetch, commit one change, push."""
    clone = scratch / "git-probe"
    subprocess.run(["git", "clone", "-q", bare, str(clone)], check=True)
    began = time.perf_counter()
    subprocess.run(["git", "fetch", "-q", "origin", "main"], cwd=clone, check=True)
    (clone / "probe.txt").write_text("probe\n")
    subprocess.run(["git", "add", "probe.txt"], cwd=clone, check=True)
    subprocess.run(
        ["git", "-c", "user.name=probe", "-c", "user.email=probe@example.com", "commit", "-qm", "probe"],
        cwd=clone,
        check=True,
    )
    subprocess.run(["git", "push", "-q", "origin", "HEAD:refs/heads/probe"], cwd=clone, check=True)
    return time.perf_counter() - began


def one_round(python: Path, scratch: Path) -> dict[str, Any]:
    with sandbox(scratch / "sb", LATENCY_MS) as info:
        control = info["control_url"]
        span = {"min_seconds": PROPAGATION, "max_seconds": PROPAGATION}
        httpx.put(control + "/cloudflare/propagation", json=span, timeout=60).raise_for_status()
        workspace = scratch / "workspace"
        subprocess.run(["git", "clone", "-q", info["bare_repo"], str(workspace)], check=True)
        cache = ROOT / ".bench" / "pycache"
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(scratch),
            "PYTHONPATH": str(ROOT / "scripts"),
            "PYTHONPYCACHEPREFIX": str(cache),
            "GITHUB_ACTIONS": "true",
            "GITHUB_RUN_ID": "9",
            "GITHUB_REPOSITORY": info["repository"],
            "GITHUB_API_URL": info["github_api_url"],
            "GITHUB_SERVER_URL": info["github_server_url"],
            "GITHUB_TOKEN": info["actions_token"],
            "GITHUB_WORKSPACE": str(workspace),
            "CLOUDFLARE_API_BASE_URL": info["cloudflare_api_base_url"],
            "CLOUDFLARE_API_TOKEN": info["cloudflare_api_token"],
            "INCIDENTOPS_BASE_URLS": json.dumps(info["base_urls"]),
            **info["smoke_env"],
        }

        def latest(name: str, action: str) -> dict[str, Any]:
            events = httpx.get(control + "/events", timeout=60).json()
            return next(e for e in reversed(events) if e["event"] == name and e["action"] == action)

        def run(delivery: dict[str, Any]) -> tuple[float, str]:
            event_file = scratch / "event.json"
            event_file.write_text(json.dumps(delivery["payload"]), encoding="utf-8")
            step = dict(env, GITHUB_EVENT_NAME=delivery["event"], GITHUB_EVENT_PATH=str(event_file))
            step["GITHUB_ACTOR"] = delivery["payload"]["sender"]["login"]
            began = time.perf_counter()
            done = subprocess.run(
                [str(python), "-P", "-m", "incidentops", "handle-event"],
                env=step,
                cwd=workspace,
                capture_output=True,
                text=True,
            )
            return time.perf_counter() - began, done.stdout + done.stderr

        person = Github(auth=Auth.Token("oncall-write"), base_url=info["github_api_url"], retry=None)
        issue = person.get_repo(info["repository"]).create_issue(title="[Incident] Containment benchmark", body=FORM)
        issue.add_to_labels("sev-1")
        declared, said = run(latest("issues", "labeled"))
        digest = re.search(r"/contain confirm ([0-9a-f]+)", said)
        if digest is None:
            raise SystemExit(f"the declare run proposed no containment:\n{said[-2000:]}")
        issue.create_comment(f"/contain confirm {digest.group(1)}")
        contained, said = run(latest("issue_comment", "created"))
        if "deny verified" not in said:
            raise SystemExit(f"the confirm run did not verify the deny:\n{said[-2000:]}")
        return {"declare": declared, "contain": contained, "git": git_round_trip(info["bare_repo"], scratch)}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = runtime_python(Path(tempfile.gettempdir()))
    rounds = []
    for n in range(args.runs + 1):  # the first round warms bytecode caches and is not counted
        scratch = Path(tempfile.mkdtemp(prefix="bench-containment-"))
        try:
            result = one_round(python, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if n:
            rounds.append(result)
            print(
                f"  round {n}: declare run {result['declare']:.2f} s; confirm run (to the deny verified) "
                f"{result['contain']:.2f} s; git round trip {result['git']:.2f} s"
            )
    contain = statistics.median(r["contain"] for r in rounds)
    git = statistics.median(r["git"] for r in rounds)
    declare = statistics.median(r["declare"] for r in rounds)
    critical = CRITICAL_CALLS * LATENCY_MS / 1000 + git
    ratio = contain / (critical + PROPAGATION)
    print(
        f"time to containment at {LATENCY_MS} ms (medians of {args.runs}): {contain:.2f} s from the confirming comment "
        f"to the deny verified, process start included; critical path {critical:.2f} s "
        f"({CRITICAL_CALLS} calls x {LATENCY_MS} ms + git {git:.2f} s) + propagation {PROPAGATION:.1f} s "
        f"(the emulator's, shown separately) = {critical + PROPAGATION:.2f} s; ratio {ratio:.2f} (target <= {TARGET})"
    )
    print(
        f"  from the label: declare run {declare:.2f} s + confirm run {contain:.2f} s (the person's reading time aside)"
    )
    met = report(
        "containment",
        f"confirm run / (critical path + {PROPAGATION:g} s propagation) at {LATENCY_MS} ms",
        f"{ratio:.2f}",
        f"<= {TARGET}",
        ratio <= TARGET,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
