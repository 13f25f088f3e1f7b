"""`incidentops handle-event` as a workflow step runs it: a subprocess with the Actions environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from incidentops.sandbox.github import personal_token
from tests.flows.conftest import World


def run_cli(world: World, delivery: dict | None, **overrides: str) -> subprocess.CompletedProcess[str]:
    event_path = world.tmp / "event.json"
    if delivery is not None:
        event_path.write_text(json.dumps(delivery["payload"]))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(world.tmp),
        "GITHUB_EVENT_NAME": delivery["event"] if delivery else "issues",
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": world.info["repository"],
        "GITHUB_API_URL": world.info["github_api_url"],
        "GITHUB_SERVER_URL": world.info["github_server_url"],
        "GITHUB_TOKEN": world.info["actions_token"],
        "GITHUB_ACTIONS": "true",  # a workflow step: the runner's checkout is the work tree
        "GITHUB_RUN_ID": "4242",
        "GITHUB_WORKSPACE": str(world.workspace),
        "GITHUB_STEP_SUMMARY": str(world.tmp / "summary.md"),
        "GITHUB_OUTPUT": str(world.tmp / "output.txt"),
        "CLOUDFLARE_API_BASE_URL": world.info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": world.info["cloudflare_api_token"],
        "INCIDENTOPS_BASE_URLS": json.dumps(world.info["base_urls"]),
        **world.info["smoke_env"],
    }
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-m", "incidentops", "handle-event"], env=env, capture_output=True, text=True, timeout=60
    )


def labelled(world: World) -> dict:
    number = world.open_incident()
    world.label(number, "sev-1")
    return world.next_event("issues", "labeled")


def test_handle_event_declares_and_reports_to_the_job(world: World) -> None:
    result = run_cli(world, labelled(world))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "incidentops: declared INC-0001 (SEV-1) from #1" in result.stdout
    assert "::notice::declared INC-0001" in result.stdout
    assert "declared INC-0001" in (world.tmp / "summary.md").read_text()
    outputs = (world.tmp / "output.txt").read_text().split("\n")
    assert "status=declared" in outputs and "incident_id=INC-0001" in outputs
    assert world.info["actions_token"] not in result.stdout + (world.tmp / "summary.md").read_text()
    # The form suspected a deploy regression: the same run opened the rollback PR.
    assert "INC-0001: rollback PR #2 opened for api-worker" in result.stdout


def test_a_declare_without_a_cloudflare_token_is_recorded_but_not_green(world: World) -> None:
    result = run_cli(world, labelled(world), CLOUDFLARE_API_TOKEN="")
    # The incident is declared (the record never waits on Cloudflare), but a SEV-1 job whose rollback PR or
    # containment failed must not look done.
    assert result.returncode == 1
    assert "rollback PR not opened: CLOUDFLARE_API_TOKEN is not set" in result.stdout
    assert "::error::declared INC-0001" in result.stdout and "but the rollback PR could not be opened" in result.stdout
    assert "INC-0001: declare SEV-1 (@oncall-write, #1)" in world.bare_log()
    assert not any("rollback PR" in subject for subject in world.bare_log())


def test_not_for_us_exits_zero_with_one_line(world: World) -> None:
    number = world.open_incident()
    world.label(number, "bug")
    result = run_cli(world, world.next_event("issues", "labeled"))
    assert result.returncode == 0
    assert result.stdout.strip() == "incidentops: not for us: label 'bug' is not a severity label (sev-1, sev-2, sev-3)"


def test_missing_token_is_an_actionable_error_without_traceback(world: World) -> None:
    result = run_cli(world, labelled(world), GITHUB_TOKEN="")
    assert result.returncode == 1
    assert "::error::GITHUB_TOKEN is not set" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_configuration_names_file_and_key(world: World) -> None:
    config = Path(world.workspace) / "incidentops.yaml"
    config.write_text(config.read_text().replace("kind: pages", "kind: lambda", 1))
    result = run_cli(world, labelled(world))
    assert result.returncode == 1
    assert "::error::invalid configuration:" in result.stdout
    assert "incidentops.yaml: services[3].kind: found 'lambda', expected one of worker, pages" in result.stdout
    assert "Traceback" not in result.stderr
    assert world.bare_log() == []


def test_github_api_failure_is_reported_and_nothing_is_half_written(world: World) -> None:
    delivery = labelled(world)
    httpx.post(
        world.info["control_url"] + "/faults",
        json={"method": "GET", "path": "/collaborators/.*/permission", "status": 500, "count": None},
    )
    result = run_cli(world, delivery)
    assert result.returncode == 1
    assert "::error::GitHub: checking oncall-write's permission failed: gave up after retries" in result.stdout
    assert "too many 500 error responses" in result.stdout
    assert "Traceback" not in result.stderr
    assert world.bare_log() == [] and world.comments(1) == []


def test_missing_or_broken_event_file(world: World) -> None:
    result = run_cli(world, None, GITHUB_EVENT_PATH=str(world.tmp / "nope.json"))
    assert result.returncode == 1 and "::error::event file" in result.stdout and "does not exist" in result.stdout
    (world.tmp / "bad.json").write_text("{not json")
    result = run_cli(world, None, GITHUB_EVENT_PATH=str(world.tmp / "bad.json"))
    assert result.returncode == 1 and "is not valid JSON" in result.stdout


def cli(world: World, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(world.tmp),
        "GITHUB_REPOSITORY": world.info["repository"],
        "GITHUB_API_URL": world.info["github_api_url"],
        "GITHUB_SERVER_URL": world.info["github_server_url"],
        "GITHUB_TOKEN": world.info["actions_token"],
        "GITHUB_WORKSPACE": str(world.workspace),
        "CLOUDFLARE_API_BASE_URL": world.info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": world.info["cloudflare_api_token"],
        "INCIDENTOPS_BASE_URLS": json.dumps(world.info["base_urls"]),
        **world.info["smoke_env"],
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "incidentops", *args], env=base, capture_output=True, text=True, timeout=60
    )


def test_rollback_plan_prints_the_plan_and_changes_nothing(world: World) -> None:
    number = world.open_incident(body=(Path(__file__).parents[1] / "fixtures/forms/full.md").read_text())
    world.label(number, "sev-1")
    world.run(world.next_event("issues", "labeled"))
    log_before = world.bare_log()
    result = cli(world, "rollback", "plan", "--incident", f"INC-{number:04d}", "--service", "queue-consumer")
    assert result.returncode == 1, result.stdout + result.stderr  # a refused preflight is not a clean plan
    assert "Rollback plan for INC-0001 (production); nothing was changed." in result.stdout
    assert "queue-consumer" in result.stdout and "set `force: true`" in result.stdout
    assert world.bare_log() == log_before
    assert "error: the plan refuses 1 service(s)" in result.stderr
    bad = cli(world, "rollback", "plan", "--incident", "INC-0001", "--service", "mainframe")
    assert bad.returncode == 1 and "error: unknown service(s): mainframe" in bad.stderr
    assert "::error::" not in bad.stdout + bad.stderr  # a terminal gets plain text, not workflow commands
    assert "Traceback" not in bad.stderr


def test_rollback_apply_by_hand_checks_the_operators_role(world: World) -> None:
    # By hand the actor is the token's owner, whatever GITHUB_ACTOR or USER say.
    result = cli(
        world,
        "rollback",
        "apply",
        GITHUB_TOKEN=personal_token("oncall-write"),
        GITHUB_ACTOR="oncall-admin",
        USER="root",
    )
    assert result.returncode == 1 and "@oncall-write has role 'write'; rollback_apply needs 'maintain'" in result.stderr
    # The ledger's pins are what is live (the bad builds): nothing to deploy, and the smoke tests say so.
    applied = cli(world, "rollback", "apply", GITHUB_TOKEN=personal_token("oncall-admin"))
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "every service already at its pin; smoke tests on production failed" in applied.stdout
