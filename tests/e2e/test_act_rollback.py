"""Rollback end to end under act, offline, against the sandbox: declare with a suspected deploy regression
in all five services (incident.yml opens the rollback PR), a maintainer forces the one target whose
secrets were rotated and merges it (rollback.yml re-deploys on the emulated Cloudflare, runs the runbook's
smoke checks and records both), and `/rollback` in a comment (incident.yml opens the PR and notes it).

Each scenario is one sandbox in one loopback-only network namespace; the tests read what it recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from incidentops.core import incidentfile

from .act_results import (
    BOT,
    actions_token_requests,
    assert_installed_only_locked_dependencies,
    assert_job_succeeded,
    assert_smoke_used_the_secrets_and_base_urls,
    bot_comments,
    cli_lines,
    cloudflare_writes,
    explain,
)

pytestmark = pytest.mark.act
SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")


def incident_id(result: dict[str, Any]) -> str:
    return f"INC-{result['issue_number']:04d}"


def the_rollback_pull(result: dict[str, Any]) -> dict[str, Any]:
    pulls = result["rollback_pulls"]
    assert len(pulls) == 1, pulls
    pull: dict[str, Any] = pulls[0]
    assert pull["head"] == f"rollback/{incident_id(result)}"
    assert pull["base"] == "main"
    assert {"rollback", "incident"} <= set(pull["labels"])
    assert pull["user"] == BOT  # opened by the workflow's CLI, not by the harness
    assert "| api-worker |" in pull["body"]
    return pull


def test_declaring_a_suspected_regression_opens_the_pr_and_merging_it_rolls_back_and_verifies(
    scenarios: Any,
) -> None:
    result = scenarios("rollback")
    assert result["error"] is None, explain(result)
    inc = incident_id(result)
    declare, apply = result["act_runs"]

    # One run of incident.yml on the sev-1 label: declared, and the rollback PR opened in the same run.
    assert (declare["workflow"], declare["event"], declare["action"]) == ("incident.yml", "issues", "labeled")
    assert_job_succeeded(result, declare)
    assert cli_lines(declare, "declared", inc), explain(result)
    assert_installed_only_locked_dependencies(result, declare)
    pull = the_rollback_pull(result)
    assert f"opened PR #{pull['number']}" in declare["output"], explain(result)
    # The checkout held one commit (actions/checkout's default depth), yet the PR pins every service to
    # its last verified ledger pin, never to Cloudflare's previous deployment (for queue-consumer that is
    # the bad code a secret rotation re-deployed).
    assert "(depth 1, shallow: true)" in declare["output"], explain(result)
    assert result["planned_targets"] == result["expected_pins"], pull["body"]
    assert pull["body"].count("last verified ledger pin") == len(SERVICES), pull["body"]
    # Planning touches nothing live. queue-consumer's secrets changed since its good version: the PR asks
    # its reviewer for `force: true`, which the approver (the harness) gave on the PR's branch.
    assert result["live_planned"] == result["live_before"]
    assert list(result["forced"]) == ["queue-consumer"], pull["body"]

    # One run of rollback.yml on the merge (by oncall-admin), from the live tip of main after the merge.
    assert (apply["workflow"], apply["event"], apply["action"]) == ("rollback.yml", "pull_request", "closed")
    assert pull["state"] == "closed" and pull["merged"] is True
    assert_job_succeeded(result, apply)
    assert f"checked out main at {apply['main_before']}" in apply["output"], explain(result)
    assert apply["main_after"] != apply["main_before"], "the rollback run committed nothing"
    assert cli_lines(apply, inc, "rolled back " + ", ".join(SERVICES)), explain(result)
    assert_installed_only_locked_dependencies(result, apply)

    # Cloudflare: every service went from a bad build to a good one (queue-consumer to the forced target),
    # with one write each, in the account incidentops.yaml names (the harness passes no CLOUDFLARE_ACCOUNT_ID).
    before, after = result["live_before"], result["live_after"]
    assert set(before) == set(after) == set(SERVICES)
    for service in SERVICES:
        assert before[service]["good"] is False and after[service]["good"] is True, (service, before, after)
        assert after[service]["version"] != before[service]["version"]
    assert after["queue-consumer"]["version"] == result["forced"]["queue-consumer"]
    writes = cloudflare_writes(result)
    assert len(writes) == len(SERVICES), writes
    account = f"/client/v4/accounts/{result['sandbox_info']['cloudflare_account_id']}/"
    for service in SERVICES:
        (write,) = [w for w in writes if f"/{service}/" in w["path"]]
        assert write["method"] == "POST" and write["path"].startswith(account), write
        assert after[service]["version"] in write["path"] + write["body"], write

    # The incident file on main records it.
    text = result["incident_text"]
    assert text, f"incidents/{inc}.md is not on main"
    fields = incidentfile.read_fields(text)
    rollback = fields["rollback"]
    assert rollback["pr"] == pull["number"]
    assert set(rollback["services"]) == set(SERVICES)
    for service, entry in rollback["services"].items():
        assert entry["status"] == "done", (service, entry)
        assert (entry["from"], entry["to"]) == (before[service]["version"], after[service]["version"])
    timeline = incidentfile.timeline_rows(text)
    for service in SERVICES:
        rows = [row for row in timeline if row[2].startswith(f"Rollback {service}:")]
        assert len(rows) == 1, timeline
        assert rows[0][1] == "@oncall-admin"  # the approver who merged
        assert "POST /accounts/" in rows[0][3], rows[0]

    # Then the runbook's smoke checks ran against the rolled-back services, with the credentials and base
    # URLs the workflow passes in, all passed, and the incident file says so.
    smoke = fields["verification"]["smoke"]
    assert smoke["passed"] is True and smoke["result"] == "passed", smoke
    assert smoke["counts"]["failed"] == smoke["counts"]["not_run"] == 0 and smoke["counts"]["passed"] > 0, smoke
    assert_smoke_used_the_secrets_and_base_urls(result)
    section = text.split("\n## Recovery verification\n", 1)[1].split("\n## ", 1)[0]
    assert "_Not run yet._" not in section
    assert "Smoke tests on **production**" in section and "**passed**" in section, section
    assert section.count("✅ passed") == smoke["counts"]["passed"], section
    assert "❌" not in section
    smoke_rows = [row for row in timeline if row[2].startswith("Smoke tests on production passed")]
    assert len(smoke_rows) == 1 and smoke_rows[0][1] == "@oncall-admin", timeline
    assert cli_lines(apply, "smoke tests on production passed"), explain(result)

    comments = bot_comments(result)
    assert any(f"Rollback PR #{pull['number']} is ready" in c for c in comments), comments
    assert any(f"Rollback for {inc} applied" in c for c in comments), comments
    assert any("smoke tests on production passed" in c for c in comments), comments
    assert actions_token_requests(result)
    assert result["violations"] == [], result["violations"]


def test_a_rollback_comment_opens_the_pr_and_notes_it_in_the_incident_file(scenarios: Any) -> None:
    result = scenarios("comment")
    assert result["error"] is None, explain(result)
    inc = incident_id(result)
    declare, command = result["act_runs"]
    assert (declare["workflow"], declare["event"]) == ("incident.yml", "issues")
    assert_job_succeeded(result, declare)
    assert cli_lines(declare, "declared", inc), explain(result)
    # The form did not suspect a regression: the declaration alone opened no PR.
    assert not incidentfile.read_fields(result["incident_text_declared"]).get("rollback")

    assert (command["workflow"], command["event"], command["action"]) == ("incident.yml", "issue_comment", "created")
    assert_job_succeeded(result, command)
    assert f"checked out main at {command['main_before']}" in command["output"], explain(result)
    assert_installed_only_locked_dependencies(result, command)
    pull = the_rollback_pull(result)
    assert pull["state"] == "open" and pull["merged"] is False
    assert cli_lines(command, inc, f"rollback PR #{pull['number']} opened"), explain(result)

    # comment -> file update: the incident file on main names the PR and the planned target.
    text = result["incident_text"]
    rollback = incidentfile.read_fields(text)["rollback"]
    assert rollback["pr"] == pull["number"]
    assert rollback["services"]["api-worker"]["status"] == "planned"
    assert rollback["services"]["api-worker"]["from"] == result["live_before"]["api-worker"]["version"]
    rows = [row for row in incidentfile.timeline_rows(text) if row[2].startswith(f"Rollback PR #{pull['number']}")]
    assert len(rows) == 1 and rows[0][1] == "@oncall-write", incidentfile.timeline_rows(text)

    # Nothing is deployed before a person merges the PR.
    assert result["live_after"] == result["live_before"]
    assert cloudflare_writes(result) == []
    assert any(f"Rollback PR #{pull['number']} is ready" in c for c in bot_comments(result))
    assert result["violations"] == [], result["violations"]
