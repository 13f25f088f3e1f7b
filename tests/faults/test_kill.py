"""`incidentops handle-event` killed (SIGKILL) in the middle of a rollback apply, then the same event run again.

The first deployment POST has been answered; the others are in flight (held by the sandbox): two of them will still
land after the process is gone, two never will. The re-run, like a workflow re-run, replays the same payload.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from incidentops.adapters.git import GitRepo
from incidentops.core.events import parse_event
from incidentops.errors import GitError
from incidentops.flows.dispatch import handle
from tests.faults.common import (
    ROLLBACK_SERVICES,
    deployment_post,
    merged_rollback,
    path_of,
    pins,
    ports_with_cloudflare,
)
from tests.faults.conftest import Faults, Tally, effective_deployments
from tests.faults.test_cloudflare_faults import POLICY, rollback_rows, rollback_status
from tests.faults.test_git_faults import DECLINING_HOOK, Hook
from tests.flows.conftest import World

# What each service's deployment POST meets in the first run. The kill comes once all four have reached the
# sandbox; the holds leave room for a loaded machine between that moment and the kill. The dropped ones are held
# for less than the CLI's 15 s per-attempt timeout (RetryPolicy), so the drop, not a timeout, is what they meet.
IN_FLIGHT: dict[str, dict[str, Any]] = {
    "ingest-worker": {"delay_ms": 12000, "drop": True},  # still in flight at the kill; never takes effect
    "admin-pages": {"delay_ms": 12000, "drop": True},
    "queue-consumer": {"delay_ms": 3000},  # still in flight at the kill; lands after the process is gone
    "user-portal": {"delay_ms": 3000},
}


def cli(world: World, delivery: dict[str, Any], attempt: int) -> subprocess.Popen[str]:
    run_dir = world.tmp / f"attempt-{attempt}"
    run_dir.mkdir()
    (run_dir / "event.json").write_text(json.dumps(delivery["payload"]))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(run_dir),
        "GITHUB_EVENT_NAME": delivery["event"],
        "GITHUB_EVENT_PATH": str(run_dir / "event.json"),
        "GITHUB_REPOSITORY": world.info["repository"],
        "GITHUB_API_URL": world.info["github_api_url"],
        "GITHUB_SERVER_URL": world.info["github_server_url"],
        "GITHUB_TOKEN": world.info["actions_token"],
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "5151",
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_WORKSPACE": str(world.workspace),
        "GITHUB_STEP_SUMMARY": str(run_dir / "summary.md"),
        "GITHUB_OUTPUT": str(run_dir / "output.txt"),
        "CLOUDFLARE_API_BASE_URL": world.info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": world.info["cloudflare_api_token"],
        "INCIDENTOPS_BASE_URLS": json.dumps(world.info["base_urls"]),
        **world.info["smoke_env"],
    }
    return subprocess.Popen(
        [sys.executable, "-m", "incidentops", "handle-event"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_the_kill_point(faults: Faults, held: list[int], process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """api-worker's deployment POST answered and every held POST arrived: returns the answered request, or []
    if the process ended or 240 s passed first. Waits on the run's progress, not a short clock: on a loaded
    machine the CLI alone can take tens of seconds to start."""
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        answered = faults.hits("POST", deployment_post("api-worker"))
        hits = faults.hit_counts()
        if answered and all(hits.get(fault_id, 0) >= 1 for fault_id in held):
            return answered
        time.sleep(0.02)
    return []


def counts(world: World) -> dict[str, int]:
    return {service: effective_deployments(world, service) for service in ROLLBACK_SERVICES}


def test_killed_mid_rollback_then_rerun_converges_without_deploying_twice(
    world: World, faults: Faults, tally: Tally
) -> None:
    number, delivery = merged_rollback(world)
    pinned = pins(world)
    before = counts(world)
    incident_before = world.bare_file(path_of(number))
    held = [faults.add(method="POST", path=deployment_post(s), count=1, **fault) for s, fault in IN_FLIGHT.items()]

    first = cli(world, delivery, attempt=1)
    answered = wait_for_the_kill_point(faults, held, first)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert answered and answered[0]["status"] == 200, "the first deployment POST was not answered, or not all sent"
    # At the kill: one deployment made, nothing recorded yet (the incident file is committed after the deployments).
    assert world.live("api-worker") == pinned["api-worker"]
    assert world.bare_file(path_of(number)) == incident_before
    assert set(rollback_status(world, number).values()) == {"planned"}

    # The two requests that were still in flight and not dropped land after the process is gone.
    for service in ("queue-consumer", "user-portal"):
        assert faults.wait_for("POST", deployment_post(service), 1, timeout=60), service
    at_pin = {s for s in ROLLBACK_SERVICES if world.live(s) == pinned[s]}
    assert at_pin == {"api-worker", "queue-consumer", "user-portal"}

    second = cli(world, delivery, attempt=2)
    output = second.communicate(timeout=300)[0]
    assert second.returncode == 0, output
    assert "rolled back ingest-worker, admin-pages" in output, output

    assert {s: world.live(s) for s in ROLLBACK_SERVICES} == {s: pinned[s] for s in ROLLBACK_SERVICES}
    made = {s: n - before[s] for s, n in counts(world).items()}
    assert made == dict.fromkeys(ROLLBACK_SERVICES, 1), f"deployments that took effect per service: {made}"
    assert rollback_status(world, number) == dict.fromkeys(ROLLBACK_SERVICES, "done")
    # Rows are written for what this run deployed; the next test checks those the killed run made.
    recorded = sorted({row.split(" | ")[0].removeprefix("| ") for row in rollback_rows(world, number)})
    assert {"ingest-worker", "admin-pages"} <= set(recorded)
    assert world.violations() == []
    in_flight = faults.fired()  # every deployment POST but api-worker's was held by the sandbox when the kill came
    tally(
        "process SIGKILLed mid rollback apply, same event run again",
        injected=1,  # the kill, seen above as the process's exit by SIGKILL
        outcome="every service at its pin, one deployment each, statuses done",
        in_flight_at_kill=in_flight,
        landed_after_kill=2,
        rollback_rows_for=recorded,
    )


def test_deployments_made_by_an_interrupted_attempt_get_their_rows_in_the_incident_file(
    world: World, tally: Tally
) -> None:
    """The same gap as after a kill, reached in-process: the deployments land, then every push of the record fails."""
    number, delivery = merged_rollback(world)
    hook = Hook(Path(world.info["bare_repo"]))
    hook.install(DECLINING_HOOK)
    event = parse_event(delivery["event"], json.loads(json.dumps(delivery["payload"])))
    stopped = replace(
        ports_with_cloudflare(world, POLICY), git=GitRepo(world.workspace, max_attempts=3, sleep=lambda s: None)
    )
    try:
        with pytest.raises(GitError, match="rejected 3 times in a row"):
            handle(event, stopped)
        declined = hook.pushes()
    finally:
        hook.remove()
    assert declined == 3
    assert all(world.live(s) == pins(world)[s] for s in ROLLBACK_SERVICES)
    outcome = handle(event, ports_with_cloudflare(world, POLICY))
    assert outcome.status in ("unchanged", "rolled-back"), outcome.message
    assert rollback_status(world, number) == dict.fromkeys(ROLLBACK_SERVICES, "done")
    recorded = sorted({row.split(" | ")[0].removeprefix("| ") for row in rollback_rows(world, number)})
    tally("git push declined after the deployments, then re-run", declined, f"rows recorded for {recorded}")
    assert recorded == sorted(ROLLBACK_SERVICES)
