"""A burst of events on one incident under GitHub's rules (the sandbox's Actions scheduler, act, the real workflow
files): runs GitHub cancels lose nothing, and the report site follows the bot's changes."""

from __future__ import annotations

from typing import Any

import pytest

from incidentops.core import incidentfile

from .scheduler_scenario import NOTES, STATUS

pytestmark = pytest.mark.act


def runs(report: dict[str, Any], workflow: str) -> list[dict[str, Any]]:
    return [r for r in report["runs"] if r["workflow"] == workflow]


def explain(result: dict[str, Any]) -> str:
    lines = [f"error: {result.get('error')}"]
    for r in (result.get("final") or result.get("declared") or {}).get("runs", []):
        lines.append(f"run {r['id']} {r['workflow']} {r['event']}/{r['action']} {r['conclusion']} {r['reason']}")
        if r["conclusion"] == "failure":
            lines.append(r["output_tail"][-1500:])
    return "\n".join(lines)


def test_the_declaration_runs_incident_yml_then_the_report_through_workflow_run(scheduled: Any) -> None:
    result = scheduled()
    assert result["error"] is None, explain(result)
    report = result["declared"]
    (incident,) = runs(report, "incident.yml")
    assert (incident["event"], incident["action"], incident["conclusion"]) == ("issues", "labeled", "success")
    # The bot's commit to main is a push made with GITHUB_TOKEN: it starts nothing, not even report.yml...
    pushes = [d for d in report["decisions"] if d["event"] == "push"]
    assert pushes and all(d["reason"].startswith("made with GITHUB_TOKEN") for d in pushes), report["decisions"]
    # ...but the completed incident run does, through workflow_run, and the site shows the new incident.
    (site,) = runs(report, "report.yml")
    assert (site["event"], site["conclusion"]) == ("workflow_run", "success"), explain(result)
    inc = f"INC-{result['issue_number']:04d}"
    assert any(inc in page for page in result["declared_site"].values()), list(result["declared_site"])
    assert report["problems"] == []


def test_a_burst_loses_no_event_to_the_pending_slot(scheduled: Any) -> None:
    result = scheduled()
    assert result["error"] is None, explain(result)
    final = result["final"]
    burst_runs = [r for r in runs(final, "incident.yml")][1:]  # after the declaration
    cancelled = [r for r in burst_runs if r["conclusion"] == "cancelled"]
    assert cancelled, "the burst was too slow to fill the pending slot: nothing was tested"
    assert all("replaced as the pending run" in r["reason"] for r in cancelled)
    assert [r["conclusion"] for r in burst_runs if r["conclusion"] not in ("cancelled", "skipped")] == [
        "success"
    ] * len([r for r in burst_runs if r["conclusion"] not in ("cancelled", "skipped")]), explain(result)

    text = result["final_text"]
    fields = incidentfile.read_fields(text)
    rows = [row[2] for row in incidentfile.timeline_rows(text)]
    for note in NOTES:  # each note once, in the order they were written
        assert sum(note in row for row in rows) == 1, rows
    positions = [next(i for i, row in enumerate(rows) if note in row) for note in NOTES]
    assert positions == sorted(positions), rows
    assert sum(STATUS in row for row in rows) == 1, rows
    # The close was judged once, after every command written before it.
    judged = [i for i, row in enumerate(rows) if row.startswith("Exit criteria not met")]
    assert len(judged) == 1 and judged[0] > max(positions), rows
    # Both relabels, in order, although the run of the second one was cancelled.
    assert fields["severity"] == "SEV-2" and result["issue"]["labels"] == ["incident", "sev-2"]
    assert [(e["from"], e["to"]) for e in fields["escalations"]] == [("SEV-2", "SEV-1"), ("SEV-1", "SEV-2")]
    # The close came last; the exit criteria are not met, so the issue is open again with what is missing.
    assert result["issue"]["state"] == "open"
    assert any("reopened" in c["body"].lower() or "missing" in c["body"].lower() for c in result["issue"]["comments"])
    assert final["problems"] == [], final["problems"]
    assert result["violations"] == []
