"""The real incident workflow under act, offline, against the sandbox: declare, skip, re-delivery.

Each scenario is one `act_scenario.py` run in its own loopback-only network namespace (see
act_harness.run_scenario); the assertions read what it recorded: act's exit code and output, the
commits that reached the sandbox's bare repository, and the comments on the issue. The `declare`
scenario goes on with a comment and a close on the same incident (test_act_note_and_close.py); each
act run recorded the issue and the incident file right after it, so these tests read the first two runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .act_results import (
    BOT,
    INCIDENT_FILE,
    actions_token_requests,
    added_incident_files,
    assert_installed_only_locked_dependencies,
    assert_job_succeeded,
    bot_comments,
    cli_lines,
    explain,
)

pytestmark = pytest.mark.act


def test_sev1_label_declares_the_incident(scenarios: Any) -> None:
    result = scenarios("declare")
    assert result["error"] is None, explain(result)
    run = result["act_runs"][0]
    assert (run["workflow"], run["event"], run["action"]) == ("incident.yml", "issues", "labeled")
    assert_job_succeeded(result, run)

    added = added_incident_files(result)
    assert len(added) == 1, result["incident_commits"]
    match = INCIDENT_FILE.match(added[0])
    assert match
    incident_id = match.group(1)
    commit = next(c for c in result["incident_commits"] if any(f["path"] == added[0] for f in c["files"]))
    assert commit["author"] == BOT
    assert run["main_after"] != run["main_before"]
    assert run["incident_text"], f"{added[0]} is not on main after the declaring run"
    # The job really ran our CLI, from the checkout, on the locked dependencies only.
    assert cli_lines(run, "declared", incident_id), explain(result)
    assert_installed_only_locked_dependencies(result, run)

    comments = bot_comments(run)
    assert len(comments) == 1, run["comments"]
    assert incident_id in comments[0]
    assert len(run["comments"]) == 1, "nobody else commented"
    assert run["issue_state"] == "open"

    assert actions_token_requests(result), "the CLI never called the API with the job token"
    assert result["violations"] == [], result["violations"]


def test_a_non_severity_label_skips_the_job(scenarios: Any) -> None:
    result = scenarios("skip")
    assert result["error"] is None, explain(result)
    run = result["act_runs"][0]
    assert run["returncode"] == 0, explain(result)
    assert not run["job_ran"], explain(result)
    assert run["skipped_by_if"], explain(result)  # skipped by the job's `if:`, not for another reason
    assert result["main_after"] == result["main_before"]
    assert result["incident_commits"] == []
    assert result["comments"] == []
    assert actions_token_requests(result) == []
    assert result["violations"] == [], result["violations"]


def test_a_redelivered_event_changes_nothing_the_second_time(scenarios: Any) -> None:
    result = scenarios("declare")
    assert result["error"] is None, explain(result)
    first, again = result["act_runs"][:2]
    assert again["delivery"] == first["delivery"]  # the very same delivery, handed to act once more
    assert_job_succeeded(result, again)
    assert cli_lines(again, "already applied"), explain(result)  # the CLI ran, and saw it had done this
    assert again["main_after"] == again["main_before"] == first["main_after"], "the re-delivery committed"
    assert again["incident_text"] == first["incident_text"]
    assert again["comments"] == first["comments"]
    assert len(added_incident_files(result)) == 1, result["incident_commits"]
    assert len(result["incident_files"]) == 1, result["incident_files"]
    assert result["violations"] == [], result["violations"]


def test_the_harness_cleans_up(scenarios: Any) -> None:
    result = scenarios("declare")
    assert result["sandbox_exit"] == 0, result.get("sandbox_stderr")
    assert not Path(result["scratch"]).exists()
