"""The smoke flow against the sandbox: the runbook's checks over real HTTP, recorded in the incident file."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from incidentops.core import incidentfile as f
from incidentops.core.ledger import load_ledger
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome
from incidentops.flows.rollback import open_rollback_pr
from incidentops.flows.smoke import SmokeResult, replace_section, run_smoke, smoke_from_env
from tests.flows.conftest import NOW, World, git
from tests.smoke.conftest import FAST, declared, smoke_env
from tests.smoke.test_services import deploy

ALL = "api-worker, ingest-worker, queue-consumer, admin-pages, user-portal"


def by_name(outcome: Outcome) -> dict[str, SmokeResult]:
    return {r.check: r for r in outcome.details["results"]}


def test_the_bad_world_fails_every_check_and_says_why(world: World, tmp_path: Path) -> None:
    junit = tmp_path / "out" / "smoke.xml"
    outcome = run_smoke(
        world.ports(), "production", [], None, "", env=smoke_env(world), junit_path=junit, settings=FAST
    )
    assert outcome.status == "failed" and outcome.exit_code == 1 and outcome.level == "error"
    results = by_name(outcome)
    leak = results["tenant A cannot read tenant B's report"]
    assert (leak.result, leak.status, leak.attempts) == ("failed", 200, 2)
    assert "status 200, expected 403 or 404" in leak.reason and "body contains 'rep-200-1'" in leak.reason
    assert results["api health"].reason.startswith("status 503")
    assert leak.where.startswith("docs/runbooks/environment-deploy-runbook.md:")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "10" and suite.get("failures") == "10"
    assert "| tenant A cannot read tenant B's report | api-worker | ❌ failed | 200 |" in outcome.details["summary"]
    table = outcome.details["table"].split("\n")
    assert table[0].split() == ["check", "service", "result", "status", "latency", "attempts", "reason"]


def test_a_missing_secret_skips_that_check_while_the_others_run(world: World) -> None:
    deploy(world, "api-worker", 2)
    env = smoke_env(world, SMOKE_TENANT_B_TOKEN=True)
    outcome = run_smoke(world.ports(), "production", ["api-worker"], None, "", env=env, settings=FAST)
    results = by_name(outcome)
    skipped = results["tenant B cannot read tenant A's report"]
    assert (skipped.result, skipped.reason, skipped.attempts) == ("not run", "SMOKE_TENANT_B_TOKEN is not set", 0)
    assert {r.result for name, r in results.items() if name != skipped.check} == {"passed"}
    assert len(results) == 5  # only api-worker's checks
    assert outcome.status == "incomplete" and outcome.exit_code == 1 and "1 not run" in outcome.message


def test_a_service_that_never_answers_is_a_timeout_not_a_hang(world: World) -> None:
    httpx.post(world.info["control_url"] + "/faults", json={"path": "^/healthz$", "delay_ms": 4000, "count": None})
    began = time.perf_counter()
    outcome = run_smoke(
        world.ports(),
        "production",
        ["api-worker"],
        None,
        "",
        env=smoke_env(world),
        settings=FAST.__class__(timeout=0.3, retries=1, retry_delay=0.01, deadline=10),
    )
    assert time.perf_counter() - began < 3
    health = by_name(outcome)["api health"]
    assert health.result == "failed" and "timeout" in health.reason and health.attempts == 2


def test_unknown_names_are_clear_errors(world: World) -> None:
    with pytest.raises(IncidentOpsError, match=r"unknown service.*mainframe.*Known services: api-worker"):
        run_smoke(world.ports(), "production", ["mainframe"], None, "", env=smoke_env(world))
    with pytest.raises(IncidentOpsError, match=r"unknown environment 'moon'.*production, staging"):
        run_smoke(world.ports(), "moon", [], None, "", env=smoke_env(world))


def test_a_rollback_through_the_pr_turns_the_checks_green_and_the_incident_records_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in smoke_env(world).items():
        monkeypatch.setenv(name, value)
    number = declared(world, ALL)
    path = f"incidents/INC-{number:04d}.md"
    before = run_smoke(world.ports(), "production", [], number, "before", actor="oncall-write", settings=FAST)
    assert before.status == "failed"
    text = world.bare_file(path)
    assert f.read_fields(text)["verification"]["smoke"]["passed"] is False

    # queue-consumer's good version predates a secret rotation: a person sets force, as the playbook allows.
    ws = Path(world.workspace)
    git("pull", "-q", "origin", "main", cwd=ws)
    ledger = ws / "deployments/production.yaml"
    ledger.write_text(
        ledger.read_text().replace(
            "  queue-consumer:\n    kind: worker\n", "  queue-consumer:\n    kind: worker\n    force: true\n"
        )
    )
    subprocess.run(
        ["git", "-C", str(ws), "-c", "user.name=p", "-c", "user.email=p@x", "commit", "-qam", "f"], check=True
    )
    git("push", "-q", "origin", "main", cwd=ws)
    assert open_rollback_pr(None, world.ports(), number, [], "oncall-write").status == "planned"
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    delivery = world.next_event("pull_request", "closed")
    later = NOW + timedelta(minutes=20)
    applied = world.run(delivery, now=later)
    # Applying the rollback re-runs the runbook's smoke tests itself (flows.rollback → verify_after_rollback).
    assert applied.status == "rolled-back", applied.message
    assert applied.exit_code == 0, applied.steps
    assert "smoke tests on production passed (10 passed, 0 failed)" in applied.message
    # The smoke run verified the new pins: the ledger says so, for the next incident's planner.
    ledger = load_ledger(world.bare_file("deployments/production.yaml"))
    assert all(entry["verified"] is True for entry in ledger["services"].values())

    text = world.bare_file(path)
    smoke = f.read_fields(text)["verification"]["smoke"]
    assert smoke["passed"] is True and smoke["at"] == "2026-11-27T03:34:40Z" and smoke["failures"] == []
    section = text.split("## Recovery verification\n", 1)[1].split("\n## ", 1)[0]
    assert section.count("| check | service |") == 1 and "❌" not in section and "**passed**" in section
    rows = [r for r in f.timeline_rows(text) if "Smoke tests on production" in r[2]]
    assert [r[2].split(" (")[0] for r in rows] == [
        "Smoke tests on production failed",
        "Smoke tests on production passed",
    ]
    assert any("smoke tests on production passed" in c for c in world.comments(number))

    # A re-run of the same event with the same verdict writes and posts nothing new.
    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = world.run(delivery, now=later + timedelta(minutes=1))
    assert again.exit_code == 0 and again.status == "unchanged", again.message
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_smoke_comment_runs_for_triage_and_is_refused_for_a_reader(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in smoke_env(world).items():
        monkeypatch.setenv(name, value)
    number = declared(world)
    world.repo("reader").get_issue(number).create_comment("/smoke")
    assert world.run(world.next_event("issue_comment", "created")).status == "refused"
    world.repo("triager").get_issue(number).create_comment("/smoke api-worker")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert len(outcome.details["results"]) == 5
    comment = world.comments(number)[-1]
    assert "INC-" in comment and "| api health | api-worker | ❌ failed | 503 |" in comment
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    assert any(r[1] == "@triager" and "Smoke tests" in r[2] for r in f.timeline_rows(text))


def test_replace_section_keeps_what_people_wrote_around_it() -> None:
    text = (
        "---\nid: X\n---\n# X\n\n## Rollback\n\nhuman\n\n"
        "## Recovery verification\n\n_Not run yet._\n\n## Follow-ups\n\nmore\n"
    )
    once = replace_section(text, "Recovery verification", "table 1\n")
    assert once == text.replace("_Not run yet._", "table 1")
    assert replace_section(once, "Recovery verification", "table 2") == text.replace("_Not run yet._", "table 2")
    last = replace_section("---\nid: X\n---\n# X\n\n## Recovery verification\nold\n", "Recovery verification", "new")
    assert last == "---\nid: X\n---\n# X\n\n## Recovery verification\n\nnew\n"
    added = replace_section("---\nid: X\n---\n# X\n", "Recovery verification", "new")
    assert added.endswith("# X\n\n## Recovery verification\n\nnew\n")


def test_the_cli_entry_needs_no_github_token_without_an_incident(world: World, tmp_path: Path) -> None:
    env = {**smoke_env(world), "GITHUB_WORKSPACE": str(world.workspace), "GITHUB_ACTIONS": "true"}
    junit = tmp_path / "junit.xml"
    outcome = smoke_from_env(env, "production", ["user-portal"], None, junit)
    assert outcome.status == "failed" and outcome.incident_id is None
    assert "portal sign-in page loads" in outcome.details["table"] and junit.is_file()


def test_a_broken_summary_template_is_reported_after_the_checks_ran(world: World) -> None:
    # The template loads while the requests are in flight; its failure there is not the report, the render's is.
    templates = world.workspace / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "smoke-summary.md.j2").write_text("{% if %}\n")
    sent_before = len(world.sandbox.hub.log)
    with pytest.raises(IncidentOpsError, match=r"template smoke-summary.md.j2 failed to render"):
        run_smoke(world.ports(), "production", ["user-portal"], None, "", env=smoke_env(world), settings=FAST)
    assert len(world.sandbox.hub.log) > sent_before  # the checks were sent before the render failed
