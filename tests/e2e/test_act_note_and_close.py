"""Comments and closing under act, offline, against the sandbox (issue #5): on the incident the `declare`
scenario declared, oncall-write comments `/note …` (incident.yml writes the note into the incident file on
main), then closes the issue while nothing has been rolled back, decided or cleared (incident.yml checks the
exit criteria, keeps the incident open, reopens the issue and lists what is missing in one comment).

Closing with every criterion met is not played under act: it needs the rollback, the evidence, the decision,
the security-impact statement and then a quarter hour of recovered metrics, which real time cannot give in a
test; tests/verify/test_flow_verify.py covers it with a controlled clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from incidentops.core import incidentfile

from .act_results import (
    assert_installed_only_locked_dependencies,
    assert_job_succeeded,
    assert_smoke_used_the_secrets_and_base_urls,
    cli_lines,
    explain,
    new_bot_comments,
)

pytestmark = pytest.mark.act
HUMAN = "oncall-write"


def runs(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the run before the comment, the /note run, the close run) of the declare scenario."""
    assert result["error"] is None, explain(result)
    assert [(r["event"], r["action"]) for r in result["act_runs"]] == [
        ("issues", "labeled"),
        ("issues", "labeled"),
        ("issue_comment", "created"),
        ("issues", "closed"),
    ], explain(result)
    _, before, note, close = result["act_runs"]
    return before, note, close


def test_a_note_comment_adds_its_row_to_the_incident_file_on_main(scenarios: Any) -> None:
    result = scenarios("declare")
    before, run, _ = runs(result)
    inc = f"INC-{result['issue_number']:04d}"
    assert run["workflow"] == "incident.yml"
    assert_job_succeeded(result, run)
    assert f"checked out main at {run['main_before']}" in run["output"], explain(result)
    assert_installed_only_locked_dependencies(result, run)
    assert cli_lines(run, inc, f"/note by @{HUMAN} recorded"), explain(result)
    assert run["main_after"] != run["main_before"], "the /note run committed nothing"

    comment = next(c for c in run["comments"] if c["user"] == HUMAN and "/note " in c["body"])
    text = comment["body"].split("/note ", 1)[1].strip()
    # The file on main gained exactly one timeline row: the note, by the commenter, linked to the comment,
    # keyed on the comment; the front matter did not change.
    old, new = before["incident_text"], run["incident_text"]
    assert incidentfile.read_fields(new) == incidentfile.read_fields(old)
    old_rows, new_rows = incidentfile.timeline_rows(old), incidentfile.timeline_rows(new)
    assert new_rows[: len(old_rows)] == old_rows and len(new_rows) == len(old_rows) + 1, new_rows
    row = new_rows[-1]
    assert row[1:3] == [f"@{HUMAN}", f"Note: {text}"], row
    assert f"#issuecomment-{comment['id']}" in row[3] and f"ev:comment-{comment['id']}" in row[3], row

    acks = new_bot_comments(before, run)
    assert len(acks) == 1 and "`/note` recorded" in acks[0], acks
    assert run["issue_state"] == "open"
    assert result["violations"] == [], result["violations"]


def test_closing_with_criteria_unmet_reopens_the_issue_and_lists_what_is_missing_once(scenarios: Any) -> None:
    result = scenarios("declare")
    _, note, run = runs(result)
    inc = f"INC-{result['issue_number']:04d}"
    assert run["workflow"] == "incident.yml"
    assert_job_succeeded(result, run)
    assert f"checked out main at {run['main_before']}" in run["output"], explain(result)
    assert cli_lines(run, inc, "exit criteria unmet; the incident stays open"), explain(result)

    # The incident stays open, in the file and on GitHub: the CLI reopened the issue the person closed.
    fields = incidentfile.read_fields(run["incident_text"])
    assert fields["status"] != "closed" and fields["closed_at"] is None, fields
    assert run["issue_state"] == "open"
    assert result["issue_state"] == "open"
    recorded = fields["verification"]["exit_criteria"]
    assert recorded["met"] is False and recorded["by"] == HUMAN
    unmet = recorded["unmet"]
    # Nothing was rolled back, decided or stated yet: those are among what is missing.
    assert any(u.startswith("Smoke checks:") for u in unmet), unmet
    assert any("Decision log is empty" in u for u in unmet), unmet
    assert any("security-impact" in u for u in unmet), unmet
    rows = incidentfile.timeline_rows(run["incident_text"])
    assert [r[1:3] for r in rows if r[2].startswith("Exit criteria")] == [
        [f"@{HUMAN}", f"Exit criteria not met ({len(unmet)} missing); incident stays open"]
    ], rows

    # Exactly one comment lists what is missing, every item of it; the other new one is the smoke report.
    new = new_bot_comments(note, run)
    missing = [c for c in new if "stays open" in c]
    assert len(missing) == 1, new
    for item in unmet:
        assert f"- [ ] {item}" in missing[0], (item, missing[0])
    assert "the issue was reopened" in missing[0]
    assert len(new) == 2 and any("smoke tests on production failed" in c for c in new), new

    # Closing re-ran the smoke checks with the credentials and base URLs the workflow passes in: every
    # check ran (none "not run" for a missing token) against the sandbox, and failed on the bad build.
    smoke = fields["verification"]["smoke"]
    assert smoke["counts"]["not_run"] == 0 and smoke["passed"] is False, smoke
    assert_smoke_used_the_secrets_and_base_urls(result)
    assert result["violations"] == [], result["violations"]
