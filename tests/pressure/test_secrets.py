"""Canary secrets in the environment and in issue text never reach git, comments, API bodies, logs or summaries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.flows.conftest import FORM_BODY, World, git

GH_CANARY = "ghp_" + "C4nary7okenXyZ" * 3  # a GitHub-token-shaped string
SMOKE_CANARY = "smoke-secret-canary-7731"
PASTED = f"""{FORM_BODY}
Debug output someone pasted:
curl -H "Authorization: Bearer {SMOKE_CANARY}" https://api.example.com/v1/reports
token={GH_CANARY}
"""


def run(world: World, delivery: dict, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (world.tmp / "event.json").write_text(json.dumps(delivery["payload"]))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(world.tmp),
        "GITHUB_EVENT_NAME": delivery["event"],
        "GITHUB_EVENT_PATH": str(world.tmp / "event.json"),
        "GITHUB_REPOSITORY": world.info["repository"],
        "GITHUB_API_URL": world.info["github_api_url"],
        "GITHUB_SERVER_URL": world.info["github_server_url"],
        "GITHUB_TOKEN": world.info["actions_token"],
        "GITHUB_WORKSPACE": str(world.workspace),
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(world.tmp / "summary.md"),
        "CLOUDFLARE_API_BASE_URL": world.info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": world.info["cloudflare_api_token"],
        "SMOKE_TENANT_A_TOKEN": SMOKE_CANARY,
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "incidentops", "handle-event"], env=env, capture_output=True, text=True, timeout=120
    )


def test_no_canary_leaks_anywhere(world: World) -> None:
    canaries = [world.info["actions_token"], world.info["cloudflare_api_token"], SMOKE_CANARY, GH_CANARY]
    number = world.open_incident(title=f"Leak {GH_CANARY}", body=PASTED)
    world.label(number, "sev-1")
    outputs = [run(world, world.next_event("issues", "labeled"), {})]
    pr = next(iter(world.repo().get_pulls(state="open")))  # the form suspected a deploy regression
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    outputs.append(run(world, world.next_event("pull_request", "closed"), {}))
    # Only api-worker is rolled back, so the smoke run after it still fails on the other services (exit 1).
    assert [o.returncode for o in outputs] == [0, 1], [o.stdout + o.stderr for o in outputs]
    assert not any("Traceback" in o.stderr for o in outputs)

    bare = Path(world.info["bare_repo"])
    # Everything the product committed (the seeded README itself documents the sandbox's token names).
    history = git("log", "-p", "--all", "--author=github-actions", cwd=bare)
    assert "[redacted]" in history  # the pasted secrets were there to be removed
    logs = "".join(o.stdout + o.stderr for o in outputs) + (world.tmp / "summary.md").read_text()
    sent = [
        r["body"]
        for r in httpx.get(world.info["control_url"] + "/requests").json()
        if r["headers"].get("authorization", "").endswith(world.info["actions_token"])
        or r["path"].startswith("/client/v4")
    ]
    comments = "\n".join(c for n in (number, pr.number) for c in world.comments(n))
    for canary in canaries:
        assert canary not in history, canary
        assert canary not in logs, canary
        assert canary not in comments, canary
        assert not any(canary in body for body in sent), canary
