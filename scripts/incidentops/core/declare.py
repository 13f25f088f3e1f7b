"""Pure decisions and file edits for declaring and re-classifying an incident (no I/O; the clock is passed in)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from incidentops.config import Config
from incidentops.core import incidentfile as f
from incidentops.core.events import Event
from incidentops.core.form import Intake
from incidentops.core.timefmt import format_ts

UNKNOWN = "unknown"
# The keys of a newly declared incident, in file order (`risks` arrives with the first /risk command).
FIELD_ORDER_NEW = tuple(key for key in f.FIELD_ORDER if key != "risks")


def incident_id(issue_number: int) -> str:
    """The incident ID is derived from the issue number, so it is unique without any lock."""
    return f"INC-{issue_number:04d}"


def incident_path(config: Config, issue_number: int) -> str:
    return f"{config.incidents_dir}/{incident_id(issue_number)}.md"


@dataclass(frozen=True)
class NotForUs:
    reason: str


@dataclass(frozen=True)
class SeverityChange:
    severity: str  # e.g. "SEV-1"


def classify(event: Event, config: Config) -> NotForUs | SeverityChange:
    """Decide whether an `issues` event is a severity label we act on."""
    if event.name != "issues":
        return NotForUs(f"event {event.name!r} is not an issues event")
    if event.action != "labeled":
        return NotForUs(f"issues action {event.action!r} does not declare or re-classify an incident")
    if event.issue is None:
        return NotForUs("the payload has no issue")
    if event.issue.is_pull_request:
        return NotForUs(f"#{event.issue.number} is a pull request, not an incident issue")
    if event.sender_is_bot:
        return NotForUs(f"the label was added by a bot ({event.sender}); only people declare incidents")
    if event.label not in config.severities:
        return NotForUs(f"label {event.label!r} is not a severity label ({', '.join(config.severities)})")
    if event.issue.state != "open":
        return NotForUs(f"issue #{event.issue.number} is closed; reopen it to declare an incident")
    return SeverityChange(config.severities[event.label])


def clean_title(title: str) -> str:
    title = re.sub(r"^\s*\[incident\]\s*", "", title, flags=re.IGNORECASE)
    return f.clean_line(title, limit=200) or "Untitled incident"


def commander_for(event: Event) -> str:
    """The issue's assignee if it has one, else the person who applied the severity label."""
    assert event.issue is not None
    return event.issue.assignees[0] if event.issue.assignees else event.sender


def new_incident_fields(event: Event, intake: Intake, severity: str, now: datetime) -> dict[str, Any]:
    """Front matter of a newly declared incident; fields the form did not answer are `unknown`."""
    assert event.issue is not None
    unknown_fields = list(intake.missing)
    return {
        "id": incident_id(event.issue.number),
        "title": clean_title(event.issue.title),
        "severity": severity,
        "status": "declared",
        "environment": intake.environment or UNKNOWN,
        "started_at": intake.started_at or UNKNOWN,
        "declared_at": format_ts(now),
        "issue": event.issue.number,
        "commander": commander_for(event),
        "comms_owner": None,
        "services": list(intake.services),
        "impact": {
            "routes": intake.routes or UNKNOWN,
            "tenants": intake.tenants or UNKNOWN,
            "request_ids": intake.request_ids or UNKNOWN,
            "request_volume": intake.request_volume or UNKNOWN,
        },
        "tenant_isolation_risk": intake.tenant_isolation_risk,
        "deploy_regression_suspected": intake.deploy_regression_suspected,
        "security_impacting": None,
        "containment": [],
        "rollback": None,
        "verification": None,
        "escalations": [],
        "unknown_fields": unknown_fields,
        "resolved_at": None,
        "closed_at": None,
    }


def link(text: str, url: str) -> str:
    """A markdown link from trusted parts (our own URLs and IDs)."""
    return f"[{text}]({url})" if url else text


def first_rows(event: Event, intake: Intake, severity: str, fields: Mapping[str, Any]) -> list[f.TimelineRow]:
    """The timeline a new incident starts with: impact start (when known), declaration, commander."""
    assert event.issue is not None
    at = fields["declared_at"]
    issue_link = link(f"issue #{event.issue.number}", event.issue.html_url)
    rows = [
        f.TimelineRow(at, event.sender, f"Declared {severity} (label {event.label})", issue_link, key=event.key),
        f.TimelineRow(at, "incidentops", f"Incident commander: @{fields['commander']}", "", ""),
    ]
    if intake.started_at:
        rows.insert(0, f.TimelineRow(intake.started_at, event.issue.author or event.sender, "Impact started", ""))
    return rows


def severity_change_text(text: str, event: Event, severity: str, now: datetime) -> tuple[str, str] | None:
    """Apply an escalation or de-escalation; None when the severity is already `severity`."""
    fields = f.read_fields(text)
    previous = str(fields.get("severity", UNKNOWN))
    if previous == severity:
        return None
    at = format_ts(now)
    escalations = list(fields.get("escalations") or [])
    escalations.append({"from": previous, "to": severity, "at": at, "by": event.sender})
    text = f.set_fields(text, {"severity": severity, "escalations": escalations})
    assert event.issue is not None
    rank_old = int(re.sub(r"\D", "", previous) or 99)
    rank_new = int(re.sub(r"\D", "", severity) or 99)
    verb = "Escalated" if rank_new < rank_old else "De-escalated"
    row = f.TimelineRow(
        at,
        event.sender,
        f"{verb} {previous} → {severity} (label {event.label})",
        link(f"issue #{event.issue.number}", event.issue.html_url),
        key=event.key,
    )
    return f.append_timeline(text, row), previous


@dataclass(frozen=True)
class ChecklistItem:
    text: str
    done: bool
    note: str = ""


def first_15_minutes(fields: dict[str, Any]) -> list[ChecklistItem]:
    """The playbook's Initial Triage checklist, ticked where the incident already has the answer."""
    impact = fields.get("impact") or {}

    def known(value: Any) -> bool:
        return value not in (None, UNKNOWN, "", [])

    missing_1 = [
        name
        for name, value in (
            ("start time", fields.get("started_at")),
            ("routes", impact.get("routes")),
            ("environment", fields.get("environment")),
        )
        if not known(value)
    ]
    missing_2 = [
        name
        for name, value in (
            ("tenants", impact.get("tenants")),
            ("request volume", impact.get("request_volume")),
        )
        if not known(value)
    ]
    roles_done = known(fields.get("commander")) and known(fields.get("comms_owner"))
    return [
        ChecklistItem(
            "Capture incident start time, impacted routes, and environment.",
            not missing_1,
            f"missing: {', '.join(missing_1)}" if missing_1 else "",
        ),
        ChecklistItem(
            "Identify blast radius by tenant scope and request volume.",
            not missing_2,
            f"missing: {', '.join(missing_2)}" if missing_2 else "",
        ),
        ChecklistItem(
            "Assign incident commander and communications owner.",
            roles_done,
            "" if roles_done else "communications owner unassigned",
        ),
        ChecklistItem("Declare severity and start a timeline log.", True),
    ]


def checklist_dicts(fields: dict[str, Any]) -> list[dict[str, Any]]:
    return [asdict(item) for item in first_15_minutes(fields)]
