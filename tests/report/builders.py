"""Incident files for report tests, written by the real template and the real surgical edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from incidentops.core import incidentfile as f
from incidentops.core.events import Event, Issue
from incidentops.core.form import Intake
from incidentops.core.timefmt import format_ts
from incidentops.flows.declare import new_incident_text

STARTED = datetime(2026, 11, 27, 3, 12, 9, tzinfo=UTC)


def make_incident(
    number: int = 42,
    *,
    severity: str = "SEV-1",
    title: str = "Tenant data visible across tenants on /v1/reports",
    summary: str = "Tenant A can read tenant B's reports.",
    started: datetime | None = STARTED,
    declared_after: timedelta = timedelta(minutes=2, seconds=31),
    services: tuple[str, ...] = ("api-worker",),
    rows: tuple[tuple[timedelta, str, str], ...] = (),
    fields: dict[str, Any] | None = None,
) -> str:
    """A declared incident; `rows` are (offset from declaration, who, what) timeline rows; `fields` are set last."""
    base = started or STARTED
    declared = base + declared_after
    issue = Issue(
        number=number,
        title=title,
        body="",
        state="open",
        html_url=f"https://github.com/example/ops/issues/{number}",
        labels=("sev-1",),
        assignees=(),
        author="reporter",
        updated_at=format_ts(declared),
        is_pull_request=False,
    )
    event = Event(name="issues", action="labeled", sender="alice", sender_is_bot=False, label="sev-1", issue=issue)
    intake = Intake(
        summary=summary,
        environment="production",
        started_at=format_ts(started) if started else None,
        routes=["/v1/reports"],
        services=list(services),
    )
    text = new_incident_text(event, intake, severity, declared)
    for n, (offset, who, what) in enumerate(rows):
        text = f.append_timeline(text, f.TimelineRow(format_ts(declared + offset), who, what, "", key=f"row-{n}"))
    if fields:
        text = f.set_fields(text, fields)
    return text


def resolved(number: int, severity: str, *, tta_minutes: int, ttr_minutes: int, month: int = 11) -> str:
    """An incident declared `tta_minutes` and resolved `ttr_minutes` after its impact started."""
    started = datetime(2026, month, 3, 10, 0, 0, tzinfo=UTC)
    return make_incident(
        number,
        severity=severity,
        started=started,
        declared_after=timedelta(minutes=tta_minutes),
        fields={"status": "resolved", "resolved_at": format_ts(started + timedelta(minutes=ttr_minutes))},
    )
