"""Run the real wrangler CLI against the emulated Cloudflare API and print what happened as JSON.

Meant to run inside a loopback-only network namespace (see test_wrangler.py), so neither wrangler
nor anything it loads can reach the internet: the emulator is started here, in-process, on 127.0.0.1.

Usage: python run_wrangler_scenario.py <path to node> <path to wrangler.js>
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from incidentops.sandbox.cloudflare import serving  # noqa: E402
from incidentops.sandbox.world import seed  # noqa: E402

SERVICE = "api-worker"


def run(node: str, wrangler: str, args: list[str], env: dict[str, str], cwd: str) -> dict[str, Any]:
    """Run one wrangler command with stdin closed; return its exit code and output."""
    done = subprocess.run(
        [node, wrangler, *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {"args": args, "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def main() -> int:
    node, wrangler = str(Path(sys.argv[1]).resolve()), str(Path(sys.argv[2]).resolve())
    world = seed()
    with serving() as served, tempfile.TemporaryDirectory() as home:
        emulator = served.emulator
        before = emulator.live_version(SERVICE)
        emulator.add_pages_deployments("admin-pages", 3)  # preview builds newer than every production one
        env = {
            "PATH": f"{Path(node).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": home,
            "XDG_CONFIG_HOME": str(Path(home) / ".config"),
            "CLOUDFLARE_API_BASE_URL": served.base_url,
            "CLOUDFLARE_API_TOKEN": emulator.token,
            "CLOUDFLARE_ACCOUNT_ID": emulator.account_id,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "WRANGLER_HIDE_BANNER": "true",
            "NO_COLOR": "1",
        }
        commands = [
            ["versions", "list", "--name", SERVICE],
            ["deployments", "list", "--name", SERVICE],
            ["rollback", world.good_target(SERVICE), "--name", SERVICE, "--message", "INC-7 roll back api-worker"],
            # A secret changed since this version: wrangler re-posts with ?force=true when nobody can answer.
            ["rollback", world.good_target("queue-consumer"), "--name", "queue-consumer", "--message", "INC-7"],
            ["pages", "deployment", "list", "--project-name", "admin-pages"],
            ["pages", "deployment", "list", "--project-name", "admin-pages", "--environment", "production"],
        ]
        results = [run(node, wrangler, args, env, home) for args in commands]
        outcome = {
            "before": before,
            "after": emulator.live_version(SERVICE),
            "queue_consumer_after": emulator.live_version("queue-consumer"),
            "results": results,
            "requests": [
                {"method": r.method, "path": r.path, "query": r.query, "status": r.status, "body": r.body}
                for r in served.hub.log
            ],
            "violations": emulator.violations,
        }
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
