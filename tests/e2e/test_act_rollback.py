"""Rollback end to end under act, offline, against the sandbox: declare with a suspected deploy regression
(incident.yml opens the rollback PR), a maintainer merges it (rollback.yml re-deploys on the emulated
Cloudflare and records it), and `/rollback` in a comment (incident.yml opens the PR and notes it in the file).

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
    bot_comments,
    cli_lines,
    cloudflare_writes,
    explain,
)

pytestmark = pytest.mark.act


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


def test_declaring_a_suspected_regression_opens_the_pr_and_merging_it_rolls_back(scenarios: Any) -> None:
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
    # Planning touches nothing live.
    assert result["live_planned"] == result["live_before"]

    # One run of rollback.yml on the merge (by oncall-admin), from the live tip of main after the merge.
    assert (apply["workflow"], apply["event"], apply["action"]) == ("rollback.yml", "pull_request", "closed")
    assert pull["state"] == "closed" and pull["merged"] is True
    assert_job_succeeded(result, apply)
    assert f"checked out main at {apply['main_before']}" in apply["output"], explain(result)
    assert apply["main_after"] != apply["main_before"], "the rollback run committed nothing"
    assert cli_lines(apply, inc, "rolled back api-worker"), explain(result)
    assert_installed_only_locked_dependencies(result, apply)

    # Cloudflare: api-worker went from a bad build to a good one; nothing else was re-deployed.
    before, after = result["live_before"], result["live_after"]
    assert before["api-worker"]["good"] is False
    assert after["api-worker"]["good"] is True
    assert after["api-worker"]["version"] != before["api-worker"]["version"]
    assert {s: v for s, v in after.items() if s != "api-worker"} == {
        s: v for s, v in before.items() if s != "api-worker"
    }
    writes = cloudflare_writes(result)
    assert [(w["method"], w["path"].rsplit("/", 2)[-2:]) for w in writes] == [
        ("POST", ["api-worker", "deployments"])
    ], writes
    # The account came from incidentops.yaml: the harness passes no CLOUDFLARE_ACCOUNT_ID.
    assert f"/accounts/{result['sandbox_info']['cloudflare_account_id']}/" in writes[0]["path"]
    assert after["api-worker"]["version"] in writes[0]["body"]

    # The incident file on main records it.
    text = result["incident_text"]
    assert text, f"incidents/{inc}.md is not on main"
    rollback = incidentfile.read_fields(text)["rollback"]
    assert rollback["pr"] == pull["number"]
    api = rollback["services"]["api-worker"]
    assert api["status"] == "done"
    assert (api["from"], api["to"]) == (before["api-worker"]["version"], after["api-worker"]["version"])
    rows = [row for row in incidentfile.timeline_rows(text) if row[2].startswith("Rollback api-worker")]
    assert len(rows) == 1, incidentfile.timeline_rows(text)
    assert rows[0][1] == "@oncall-admin"  # the approver who merged
    assert "POST /accounts/" in rows[0][3] and "/deployments" in rows[0][3]

    comments = bot_comments(result)
    assert any(f"Rollback PR #{pull['number']} is ready" in c for c in comments), comments
    assert any(f"Rollback for {inc} applied" in c for c in comments), comments
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
