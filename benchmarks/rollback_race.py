"""Whole-process rollback, ours against the real wrangler, on the same emulated Cloudflare: helper of rollback.py.

Runs inside a loopback-only network namespace (rollback.py starts it with `unshare -n`, as tests/e2e_wrangler does),
so wrangler and anything it loads can reach nothing but the sandbox, which is started here, in the same namespace.
For each round, each side gets a fresh sandbox at the same latency, where all five services serve their bad build:
- ours: `incidentops rollback apply` as a workflow step runs it (a process of its own, from an environment installed
  like the workflows'), after the ledger on main was set to the good versions: five services, then the smoke run;
- wrangler: `wrangler rollback <good version> --name <worker>` for the three Workers, one after another (wrangler
  has no Pages rollback command, and no way to roll several back at once).
Prints one JSON line: the wall seconds of each side per round, and whether each side left its services good.

Usage: python rollback_race.py <runtime python> <node> <wrangler.js> <latency ms> <rounds>
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from served import sandbox  # noqa: E402

from incidentops.core.ledger import dump_ledger, load_ledger  # noqa: E402
from incidentops.sandbox import world  # noqa: E402

LEDGER = "deployments/production.yaml"


def live(info: dict[str, Any]) -> dict[str, Any]:
    with urlopen(info["control_url"] + "/cloudflare/live", timeout=60) as answer:
        return dict(json.loads(answer.read()))


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def pin_good_versions(info: dict[str, Any], scratch: Path) -> None:
    """What merging a rollback PR leaves on main: every service pinned to its last good version."""
    seeded = world.seed()
    clone = scratch / "ledger-edit"
    git("clone", "-q", info["bare_repo"], str(clone), cwd=scratch)
    doc = load_ledger((clone / LEDGER).read_text())
    for name in world.SERVICES:
        entry = doc["services"][name]
        entry["version"] = seeded.good_target(name)
        entry["set_by"] = "oncall-admin"
        entry["verified"] = False
        if name == "queue-consumer":
            entry["force"] = True  # its secrets changed since the good version: the operator's decision
    (clone / LEDGER).write_text(dump_ledger(doc))
    git("-c", "user.name=oncall-admin", "-c", "user.email=admin@example.com", "commit", "-qam", "roll back", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)


def ours(python: str, latency_ms: int, scratch: Path) -> tuple[float, bool, str]:
    with sandbox(scratch / "sb", latency_ms) as info:
        pin_good_versions(info, scratch)
        workspace = scratch / "workspace"
        git("clone", "-q", info["bare_repo"], str(workspace), cwd=scratch)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(scratch),
            "PYTHONPATH": str(ROOT / "scripts"),
            "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", ""),
            "GITHUB_ACTIONS": "true",
            "GITHUB_ACTOR": "oncall-admin",
            "GITHUB_RUN_ID": "7",
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
        began = time.perf_counter()
        done = subprocess.run(
            [python, "-P", "-m", "incidentops", "rollback", "apply"],
            env=env,
            cwd=workspace,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - began
        state = live(info)
        good = all(state[name]["good"] for name in world.SERVICES)
        return elapsed, good, (done.stdout + done.stderr)[-1500:]


def wrangler(node: str, wrangler_js: str, latency_ms: int, scratch: Path) -> tuple[float, bool, str]:
    with sandbox(scratch / "sb", latency_ms) as info:
        return run_wrangler(node, wrangler_js, info, scratch)


def run_wrangler(node: str, wrangler_js: str, info: dict[str, Any], scratch: Path) -> tuple[float, bool, str]:
    seeded = world.seed()
    home = scratch / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "CLOUDFLARE_API_BASE_URL": info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": info["cloudflare_api_token"],
        "CLOUDFLARE_ACCOUNT_ID": info["cloudflare_account_id"],
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_SEND_ERROR_REPORTS": "false",
        "WRANGLER_HIDE_BANNER": "true",
        "NO_COLOR": "1",
    }
    output = ""
    began = time.perf_counter()
    for name in world.WORKERS:
        done = subprocess.run(
            [node, wrangler_js, "rollback", seeded.good_target(name), "--name", name, "--message", "INC-7"],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output += done.stdout[-300:] + done.stderr[-300:]
    elapsed = time.perf_counter() - began
    state = live(info)
    return elapsed, all(state[name]["good"] for name in world.WORKERS), output[-1500:]


def main() -> int:
    python, node, wrangler_js, latency_ms, rounds = sys.argv[1:6]
    out: dict[str, list[Any]] = {"ours": [], "wrangler": []}
    # One untimed round each first: bytecode and node's compile cache, as on any machine that ran them before.
    for n in range(int(rounds) + 1):
        for side in ("ours", "wrangler"):
            scratch = Path(tempfile.mkdtemp(prefix=f"bench-race-{side}-"))
            try:
                if side == "ours":
                    result = ours(python, int(latency_ms), scratch)
                else:
                    result = wrangler(node, wrangler_js, int(latency_ms), scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            if n:
                out[side].append(result)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
