"""Declare flow: a severity label on an issue becomes (or re-classifies) an incident file in git.

parse the event → decide → check the actor's role → commit the file (keyed on the event, so a replay
changes nothing) → label the issue → post one comment (found by its hidden marker before posting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from incidentops.core import declare as core
from incidentops.core import incidentfile as f
from incidentops.core.events import Event
from incidentops.core.form import Intake, read_intake
from incidentops.core.timefmt import format_ts
from incidentops.flows.base import Outcome, Ports, file_url, refuse
from incidentops.render import render


def new_incident_text(
    event: Event,
    intake: Intake,
    severity: str,
    now: datetime,
    workspace: Path | None = None,
) -> str:
    """Render the whole file for a new incident (the workspace's template), with its first timeline rows."""
    assert event.issue is not None
    fields = core.new_incident_fields(event, intake, severity, now)
    text = render(
        "incident.md.j2",
        workspace,
        front_matter=f.render_front_matter(fields),
        incident=fields,
        intake=intake,
        issue_url=event.issue.html_url,
        timeline=[f.format_row(r) for r in core.first_rows(event, intake, severity, fields)],
    )
    return f.refresh_diagram(text)  # also proves the template produced a readable file


def _row_for(text: str, key: str) -> str:
    marker = f.event_marker(key)
    return next((line for line in text.split("\n") if marker in line), "")


def declare(event: Event, ports: Ports) -> Outcome:
    """Handle an `issues` `labeled` event."""
    decision = core.classify(event, ports.config)
    if isinstance(decision, core.NotForUs):
        return Outcome("skipped", f"not for us: {decision.reason}")
    assert event.issue is not None
    path = core.incident_path(ports.config, event.issue.number)
    # The GitHub calls and the git work overlap where neither needs the other: the sender's role (read live, as
    # GitHub reports it) while git fetches; the label and the look-up of earlier comments while the commit is
    # pushed. Nothing is written before the role allows it.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="declare") as pool:
        asked = pool.submit(ports.github.role_of, event.sender)
        ports.git.sync()
        exists = ports.git.read(path) is not None
        action = "escalate" if exists else "declare"
        role = asked.result()
        if not ports.config.allows(action, role):
            return refuse(event, ports, action, role)
        return _declare(event, ports, decision, exists, pool)


def _declare(
    event: Event, ports: Ports, decision: core.SeverityChange, exists: bool, pool: ThreadPoolExecutor
) -> Outcome:
    assert event.issue is not None
    number = event.issue.number
    inc_id = core.incident_id(number)
    path = core.incident_path(ports.config, number)

    now = ports.clock()
    intake = read_intake(
        event.issue.body,
        tuple(s.name for s in ports.config.services),
        tuple(e.name for e in ports.config.environments),
        now=now,
    )
    produced: dict[str, str] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            produced["kind"] = "declared"
            return {path: ports.redact(new_incident_text(event, intake, decision.severity, now, ports.workspace))}
        if f.has_event(text, event.key):
            produced["kind"] = "replay"
            return {}
        change = core.severity_change_text(text, event, decision.severity, now)
        if change is None:
            produced["kind"] = "same"
            return {}
        produced["kind"], produced["previous"] = "severity", change[1]
        return {path: ports.redact(change[0])}

    verb = "declare" if not exists else "re-classify"
    # A new incident's comment is looked up by its marker before it is posted: the comments are read while the
    # commit is pushed (a read; nothing is written before the commit has landed).
    looked_up = None if exists else pool.submit(ports.github.comments, number)
    result = ports.git.commit(edit, f"{inc_id}: {verb} {decision.severity} (@{event.sender}, #{number})")
    steps = []
    if result.sha:
        steps.append(f"committed {path} ({result.sha[:12]}, push attempt {result.attempts})")
    text = ports.git.read(path) or ""
    fields = f.read_fields(text)
    url = file_url(ports, path)
    # The payload lists the issue's labels as the event fired: the incident label there needs no call. For a new
    # incident, adding it changes nothing if it is there meanwhile (issues/add-labels), so no look-up goes first and
    # it is added while the comment is posted. A replay looks it up and writes nothing.
    label = None
    if not exists and ports.config.incident_label not in event.issue.labels:
        label = pool.submit(ports.github.add_labels, number, ports.config.incident_label)
    elif exists and not ports.github.issue_has_label(number, ports.config.incident_label):
        ports.github.add_labels(number, ports.config.incident_label)
        steps.append(f"labelled #{number} {ports.config.incident_label!r}")
    if looked_up is not None:
        looked_up.result()

    kind = produced.get("kind")
    row = _row_for(text, event.key)
    if kind == "declared" or (kind == "replay" and "Declared" in row):
        marker = f"<!-- incidentops:declared:{inc_id} -->"
        body = render(
            "comment-declared.md.j2",
            ports.workspace,
            marker=marker,
            incident=fields,
            file_url=url,
            checklist=core.checklist_dicts(fields),
            missing=fields.get("unknown_fields") or [],
            problems=intake.problems,
        )
        posted = ports.github.post_comment_once(number, marker, ports.redact(body))
        if posted.created:
            steps.append(f"posted the declaration comment ({posted.url})")
        status = "declared" if kind == "declared" else "unchanged"
        message = (
            f"declared {inc_id} ({fields.get('severity')}) from #{number}"
            if kind == "declared"
            else f"{inc_id}: this event was already applied; nothing to do"
        )
    elif kind == "severity" or (kind == "replay" and row):
        marker = f"<!-- incidentops:severity:{f.escape_cell(event.key)} -->"
        previous = produced.get("previous") or _previous_from(fields, str(fields.get("severity")))
        escalated = ports.config.severity_rank(str(fields.get("severity"))) < ports.config.severity_rank(previous)
        body = render(
            "comment-escalated.md.j2",
            ports.workspace,
            marker=marker,
            incident=fields,
            previous=previous,
            escalated=escalated,
            actor=event.sender,
            at=format_ts(now),
            file_url=url,
        )
        posted = ports.github.post_comment_once(number, marker, ports.redact(body))
        if posted.created:
            steps.append(f"posted the severity comment ({posted.url})")
        status = ("escalated" if escalated else "de-escalated") if kind == "severity" else "unchanged"
        message = (
            f"{inc_id}: {previous} → {fields.get('severity')}"
            if kind == "severity"
            else f"{inc_id}: this event was already applied; nothing to do"
        )
    else:
        status, message = "unchanged", f"{inc_id} is already {decision.severity}; nothing to do"
    if label is not None:
        label.result()
        steps.append(f"labelled #{number} {ports.config.incident_label!r}")
    return Outcome(status, message, incident_id=inc_id, path=path, steps=steps)


def _previous_from(fields: Mapping[str, object], current: str) -> str:
    escalations = fields.get("escalations") or []
    if isinstance(escalations, list) and escalations and isinstance(escalations[-1], dict):
        return str(escalations[-1].get("from", current))
    return current
