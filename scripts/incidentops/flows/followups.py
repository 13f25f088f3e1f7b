"""Follow-ups: each becomes a GitHub issue labelled `incident-followup`, linked in the incident's Follow-ups table.

The due date goes in the issue title (`[INC-0042] task (due 2026-12-15)`), not a milestone: it is visible in
every issue list and notification without creating one milestone per date, and the Follow-ups table in
the incident file keeps it as the source of truth. Each issue carries a hidden marker naming the incident
and the event (or the standing item), looked up before creating, so a re-run opens no duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from incidentops.adapters.github import CreatedIssue
from incidentops.core import commands as core
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_id, incident_path, link
from incidentops.core.events import Event
from incidentops.core.timefmt import format_ts
from incidentops.flows.base import BadCommand, Outcome, Ports, commit_and_ack, context, file_url
from incidentops.render import render

LABEL = "incident-followup"
STANDING_DUE_DAYS = 14


@dataclass(frozen=True)
class Standing:
    ident: str
    task: str


# The playbook's Post-Incident Follow-Up steps 2 and 3, added to every closed incident when absent.
STANDING = (
    Standing("standing-tests", "Add the missing tests for the failure mode"),
    Standing("standing-runbook", "Fix the runbook steps that were wrong"),
)


def _marker(inc: str, ident: str) -> str:
    return f"<!-- incidentops:followup:{inc}:{f.escape_cell(ident)} -->"


def open_followup_issue(
    ports: Ports,
    number: int,
    *,
    ident: str,
    task: str,
    owner: str | None,
    due: date,
    actor: str,
    source: str = "",
    standing: bool = False,
) -> CreatedIssue:
    """Find or open the follow-up issue for (incident, ident), assigned to `owner` when given."""
    inc = incident_id(number)
    marker = _marker(inc, ident)
    title = render("followup-title.txt.j2", ports.workspace, incident_id=inc, task=task, due=due.isoformat()).strip()
    body = render(
        "followup-issue.md.j2",
        ports.workspace,
        marker=marker,
        incident_id=inc,
        incident_url=file_url(ports, incident_path(ports.config, number)),
        incident_issue=number,
        task=task,
        owner=owner or "",
        due=due.isoformat(),
        actor=actor,
        source=source,
        standing=standing,
    )
    return ports.github.create_issue_once(
        marker, ports.redact(title), ports.redact(body), [LABEL], [owner] if owner else []
    )


def _issue_link(created: CreatedIssue) -> str:
    return link(f"#{created.number}", created.url)


def followup_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/followup "<task>" @owner YYYY-MM-DD: open (or find) the issue, then add the Follow-ups row."""
    assert event.issue is not None
    parsed = core.parse_command("followup", args, ports.clock().date())
    if isinstance(parsed, core.CommandError):
        raise BadCommand("followup", parsed.message, parsed.usage)
    assert isinstance(parsed, core.FollowUp)
    if ports.github.role_of(parsed.owner) == "none":
        # GitHub refuses to assign someone without access; say so instead of failing the job.
        problem = f"@{parsed.owner} has no access to this repository, so the follow-up cannot be assigned to them"
        raise BadCommand("followup", problem, core.USAGE["followup"])
    number = event.issue.number
    created = open_followup_issue(
        ports,
        number,
        ident=event.key,
        task=parsed.task,
        owner=parsed.owner,
        due=parsed.due,
        actor=event.sender,
        source=event.comment_url or "",
    )
    path = incident_path(ports.config, number)
    ctx = context(event, ports)
    seen: dict[str, bool] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        new = core.apply_followup(text, parsed, _issue_link(created), ctx)
        seen["replay"] = new is None
        return {} if new is None else {path: ports.redact(new)}

    outcome = commit_and_ack(event, ports, "followup", edit, f"the Follow-ups table (issue #{created.number})", seen)
    verb = "opened" if created.created else "found"
    outcome.steps.insert(0, f"{verb} follow-up issue #{created.number} ({created.url})")
    outcome.details["issue"] = created.number
    return outcome


def add_standing_followups(ports: Ports, number: int, actor: str, key: str) -> Outcome:
    """Add the playbook's two standing follow-ups (tests, runbook) to an incident when they are absent."""
    inc, path = incident_id(number), incident_path(ports.config, number)
    ports.git.sync()
    text = ports.git.read(path)
    if text is None:
        return Outcome("skipped", f"{inc} has no incident file", inc, path)
    missing = [s for s in STANDING if not f.has_event(text, f"{inc}:{s.ident}")]
    if not missing:
        return Outcome("unchanged", f"{inc}: the standing follow-ups are already listed", inc, path)
    now = ports.clock()
    due = now.date() + timedelta(days=STANDING_DUE_DAYS)
    commander = f.read_fields(text).get("commander")
    # The commander owns them; else whoever closed the incident; else nobody (a bot cannot be assigned).
    candidates = [str(c) for c in (commander, actor) if c and not str(c).endswith("[bot]")]
    assignee = next((c for c in candidates if ports.github.role_of(c) != "none"), None)
    created = {
        s.ident: open_followup_issue(
            ports, number, ident=s.ident, task=s.task, owner=assignee, due=due, actor=actor, standing=True
        )
        for s in missing
    }
    at = format_ts(now)

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        current = read(path)
        if current is None:
            return {}
        for s in missing:
            row_key = f"{inc}:{s.ident}"
            if f.has_event(current, row_key):
                continue
            ctx = core.Context(actor, at, f"standing follow-up ({f.escape_cell(key)})", row_key)
            command = core.FollowUp(s.task, assignee or "unassigned", due)
            current = core.apply_followup(current, command, _issue_link(created[s.ident]), ctx) or current
        return {path: ports.redact(current)}

    result = ports.git.commit(edit, f"{inc}: standing follow-ups (@{actor}, {key})")
    steps = [
        f"{'opened' if c.created else 'found'} follow-up issue #{c.number} ({ident})" for ident, c in created.items()
    ]
    if result.sha:
        steps.append(f"committed {path} ({result.sha[:12]})")
    return Outcome(
        "recorded" if result.sha else "unchanged",
        f"{inc}: standing follow-ups " + ", ".join(f"#{c.number}" for c in created.values()),
        inc,
        path,
        steps,
        details={"issues": [c.number for c in created.values()]},
    )
