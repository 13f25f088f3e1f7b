"""Repair, in any run on an incident issue, what cancelled runs would have done.

GitHub keeps one running and one pending run per concurrency group, and a newly queued run cancels the
pending one ("Control the concurrency of workflows and jobs"). In a burst of events on one incident only the
first and the last run; the payload of the last one says nothing about the events in between. So each run
reads the live issue and applies, through the same checks and idempotency keys as their own runs would:

- every /command comment that left no trace (flows.commands.catch_up_commands);
- the issue's current severity label, when the incident file says otherwise (a cancelled `labeled` run);
- the issue's closed state, when the incident is still open in the file (a cancelled `closed` run).

A reconciled change is authorised by the role of the person whose event started this run: a repair never
does more than that person could have done.
"""

from __future__ import annotations

from dataclasses import replace

from incidentops.adapters.git import BOT_NAME as BOT_LOGIN
from incidentops.adapters.git import SYNC_FRESH_FOR
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_path
from incidentops.core.events import Event, Issue
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.commands import catch_up_commands
from incidentops.flows.declare import declare


def reconcile(event: Event, ports: Ports, *, include_close: bool = True) -> list[str]:
    """What this run repaired (empty when nothing was missed); never raises for a repair that failed."""
    if event.issue is None or event.issue.is_pull_request or event.sender_is_bot:
        return []
    number = event.issue.number
    path = incident_path(ports.config, number)
    steps: list[str] = []
    try:
        # The run synced a moment ago (its flow read the incident; a commit leaves the work tree at the tip it
        # pushed): that is current enough, as for the flows, and a repair's commit re-applies on the tip anyway.
        ports.git.sync(reuse_within=SYNC_FRESH_FOR)
        if ports.git.read(path) is None:
            return []
        if event.name != "issue_comment":  # a comment run catches up with earlier comments itself
            steps += catch_up_commands(event, ports)
        # A comment's run read the issue while its command ran (flows/commands.py). As good as a read now: a label
        # or close after it is an event of its own, whose run follows this one in the group and reconciles again.
        live = ports.github.live_issue(number, ahead=True)
        steps += _severity(event, ports, live.labels, live.updated_at)
        if include_close and live.state == "closed" and event.action != "closed":
            # Commands posted before the close but after the first pass come first, as they did on the issue.
            steps += catch_up_commands(event, ports)
            steps += _closed(event, ports, path, live.closed_by, live.closed_at)
    except IncidentOpsError as err:
        steps.append(f"could not reconcile with the live issue: {err}")
    return steps


def _severity(event: Event, ports: Ports, labels: tuple[str, ...], updated_at: str) -> list[str]:
    """Apply the issue's current severity label if the incident file does not show it (even when the issue
    was closed since: the label was set while it was open, and the close is judged after it)."""
    assert event.issue is not None
    current = [label for label in labels if label in ports.config.severities]
    if not current:
        return []
    # Several severity labels at once: the most severe one counts, as a person reading the issue would take it.
    label = min(current, key=lambda name: ports.config.severity_rank(ports.config.severities[name]))
    text = ports.git.read(incident_path(ports.config, event.issue.number)) or ""
    if str(f.read_fields(text).get("severity")) == ports.config.severities[label]:
        return []
    if not ports.config.allows("escalate", ports.github.role_of(event.sender)):
        # Not this person's to change, and they did not ask: no refusal comment, the next allowed run repairs it.
        return [f"the live severity label {label!r} differs from the file; left for someone with the escalate role"]
    issue = replace(event.issue, labels=labels, state="open", updated_at=f"{updated_at}-reconciled")
    synthetic = Event("issues", "labeled", event.sender, False, label=label, issue=issue, raw=event.raw)
    outcome = declare(synthetic, ports)
    return [f"reconciled the severity label {label!r} from the live issue: {outcome.status}: {outcome.message}"]


def _closed(event: Event, ports: Ports, path: str, closed_by: str | None, closed_at: str) -> list[str]:
    """Evaluate the close a cancelled run never saw, as the person who closed the issue.

    The `closed` event's key is built from the issue's `updated_at` in its payload, which is the moment of
    closing: keyed on `closed_at`, this repair and a later run of that same event are one evaluation."""
    assert event.issue is not None
    status = str(f.read_fields(ports.git.read(path) or "").get("status") or "")
    if status in ("closed", "resolved") or not closed_by or closed_by.endswith("[bot]") or not closed_at:
        return []
    issue = replace(event.issue, state="closed", updated_at=closed_at)
    synthetic = Event("issues", "closed", closed_by, False, issue=issue, raw=event.raw)
    from incidentops.flows.verify import on_issue_closed  # verification (Cloudflare, smoke) only when a close is due

    outcome = on_issue_closed(synthetic, ports)
    return [f"reconciled the issue's closed state: {outcome.status}: {outcome.message}"]


def sweep(ports: Ports) -> Outcome:
    """The scheduled repair (remind.yml): for every incident still open in its file, apply the commands that left no
    trace and judge a close that no run judged. A repair GitHub's cancelled runs left for a later event that never
    came is made here. Each command is checked against its own author's role, a close against the closer's."""
    ports.git.sync()
    folder = ports.workspace / ports.config.incidents_dir
    steps: list[str] = []
    for path in sorted(folder.glob("INC-*.md")):
        try:
            fields = f.read_fields(path.read_text(encoding="utf-8"))
        except (OSError, f.IncidentFileError):
            continue
        number = fields.get("issue")
        if fields.get("status") in ("closed", "resolved") or not isinstance(number, int):
            continue
        try:
            live = ports.github.live_issue(number)
        except IncidentOpsError as err:
            steps.append(f"#{number}: could not read the issue: {err}")
            continue
        issue = Issue(number, "", "", live.state, "", live.labels, (), "", live.updated_at, False)
        event = Event("schedule", "sweep", BOT_LOGIN, True, issue=issue)
        repaired = catch_up_commands(event, ports, record=True)
        if live.state == "closed":
            repaired += _closed(event, ports, incident_path(ports.config, number), live.closed_by, live.closed_at)
        steps += [f"#{number}: {step}" for step in repaired]
    # Notes on the per-run bound and a moved comment checkpoint are bookkeeping, not repairs.
    repairs = [s for s in steps if "caught up with comment" in s or "reconciled" in s]
    if not repairs:
        return Outcome("unchanged", "nothing was missed", steps=steps)
    return Outcome("repaired", f"repaired {len(repairs)} missed event(s)", steps=steps)
