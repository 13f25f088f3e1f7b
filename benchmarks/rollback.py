"""Benchmark rolling back all five services against the sandbox, concurrently and one after another.

For each sandbox latency (every response delayed by that much), the concurrent rollback's wall time is divided by
the critical path: the longest chain of sequential API calls for one service (read what is live, then the one
deployment or rollback POST: 2 calls) × the latency. Target: ≤ 1.3. The same five rollbacks done one service after
another are timed for comparison.

Run: .venv/bin/python benchmarks/rollback.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from incidentops.adapters.cloudflare import CloudflareClient
from incidentops.adapters.git import GitRepo
from incidentops.adapters.github import GitHubClient
from incidentops.config import load_config
from incidentops.core.redact import Redactor
from incidentops.core.rollback import Pin
from incidentops.core.timefmt import utc_now
from incidentops.flows.base import Ports
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
    # The sandbox runs in its own process, as `incidentops sandbox serve`, so its work does not share our GIL.
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "incidentops",
            "sandbox",
            "serve",
            "--seed",
            str(ROOT),
            "--workdir",
            str(root / "sb"),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        workspace = root / "workspace"
        subprocess.run(["git", "clone", "-q", info["bare_repo"], str(workspace)], check=True)
        ports = Ports(
            config=load_config(workspace),
            workspace=workspace,
            github=GitHubClient(info["actions_token"], info["repository"], info["github_api_url"]),
            git=GitRepo(workspace),
            repository=info["repository"],
            server_url=info["github_server_url"],
            redact=Redactor.from_env({}),
            clock=utc_now,
        )

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
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


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
    return 0 if worst <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
