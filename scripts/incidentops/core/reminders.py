"""Which reminders are due for an incident (pure: the file, the clock and what was already said go in).

Each reminder is keyed on its condition, e.g. `remind:INC-0007:comms-unassigned`; the key rides in the
comment as a hidden marker, so a condition is reminded once however often the schedule runs. A condition
that can recur after being fixed (a stale status, a new expiry) carries its reference time in the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from incidentops.core import breach
from incidentops.core.exit_criteria import table_rows
from incidentops.core.timefmt import parse_ts

ASSIGN_AFTER = timedelta(minutes=15)  # playbook: roles assigned in the first 15 minutes
STATUS_EVERY = timedelta(minutes=30)  # a SEV-1 gets a status update at least every 30 minutes
OPEN_STATUSES = ("declared", "contained", "mitigated")


@dataclass(frozen=True)
class Reminder:
    key: str  # the condition, e.g. remind:INC-0007:commander-unassigned
    kind: str  # unassigned | status | public | breach | containment | followup (names the template)
    facts: dict[str, Any]  # what the template says

    @property
    def marker(self) -> str:
        """Return the hidden comment marker that records this reminder was posted."""
        return f"<!-- incidentops:{self.key} -->"


@dataclass(frozen=True)
class Comms:
    """When the communications owner is reminded (`comms` in incidentops.yaml): no public update this long after a
    SEV-1 was declared, or none for this long while a public incident is active (its last update not `resolved`)."""

    first_update: timedelta = timedelta(minutes=30)
    update_every: timedelta = timedelta(minutes=60)


@dataclass(frozen=True)
class FollowUp:
    task: str
    owner: str
    due: date
    issue: int | None


def _ts(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return parse_ts(value)
        except ValueError:
            return None
    return None


def _nobody(value: Any) -> bool:
    return value in (None, "", "unknown", "unassigned")


def followups(body: str) -> list[FollowUp]:
    """Read the Follow-ups table (task | owner | due | issue); rows without a valid due date are skipped."""
    found = []
    for cells in table_rows(body, "Follow-ups"):
        if len(cells) < 3:
            continue
        try:
            due = date.fromisoformat(cells[2])
        except ValueError:
            continue
        issue = re.search(r"#(\d+)", cells[3]) if len(cells) > 3 else None
        found.append(FollowUp(cells[0], cells[1].lstrip("@"), due, int(issue.group(1)) if issue else None))
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "task"


def due_reminders(
    fields: Mapping[str, Any],
    body: str,
    now: datetime,
    closed_issues: Iterable[int] = (),
    comms: Comms | None = None,
) -> list[Reminder]:
    """Return every reminder whose condition holds now (the caller drops those already posted); the comms owner's
    public-update reminders only when `comms` says when."""
    inc = str(fields.get("id") or "INC-?")
    status = str(fields.get("status") or "")
    declared = _ts(fields.get("declared_at"))
    due: list[Reminder] = []
    if status in OPEN_STATUSES and declared is not None:
        if now - declared >= ASSIGN_AFTER:
            for role, label in (("commander", "incident commander"), ("comms_owner", "communications owner")):
                if _nobody(fields.get(role)):
                    name = "commander" if role == "commander" else "comms"
                    facts: dict[str, Any] = {"role": label, "command": "/ic" if role == "commander" else "/comms"}
                    facts["declared_at"] = fields.get("declared_at")
                    due.append(Reminder(f"remind:{inc}:{name}-unassigned", "unassigned", facts))
        last = _ts(fields.get("last_status_at")) or declared
        if fields.get("severity") == "SEV-1" and now - last >= STATUS_EVERY:
            stamp = fields.get("last_status_at") or fields.get("declared_at")
            minutes = int((now - last).total_seconds() // 60)
            due.append(Reminder(f"remind:{inc}:status-stale:{stamp}", "status", {"since": stamp, "minutes": minutes}))
        if comms is not None:
            due += _public_reminders(inc, fields, declared, now, comms)
        for entry in fields.get("containment") or []:
            if not isinstance(entry, Mapping) or entry.get("lifted"):
                continue
            expires = _ts(entry.get("expires"))
            if expires is not None and now >= expires:
                route = str(entry.get("route") or "?")
                key = f"remind:{inc}:containment-expired:{entry.get('rule_id') or _slug(route)}:{entry.get('expires')}"
                due.append(Reminder(key, "containment", {"route": route, "expires": entry.get("expires")}))
    clock = breach.due(fields, now)
    if clock is not None:  # whatever the status: a resolved incident may still owe notifications
        condition, facts = clock
        due.append(Reminder(f"remind:{inc}:{condition}", "breach", facts))
    closed = set(closed_issues)
    for item in followups(body):
        if item.due < now.date() and (item.issue is None or item.issue not in closed):
            ident = f"#{item.issue}" if item.issue else _slug(item.task)
            late = {"task": item.task, "owner": item.owner, "due": item.due.isoformat(), "issue": item.issue}
            due.append(Reminder(f"remind:{inc}:followup-overdue:{ident}:{item.due.isoformat()}", "followup", late))
    return due


def _public_reminders(
    inc: str, fields: Mapping[str, Any], declared: datetime, now: datetime, comms: Comms
) -> list[Reminder]:
    """No public update yet on a SEV-1 after `first_update`; none for `update_every` while a public one is active."""
    published = sorted(
        (u for u in fields.get("public_updates") or [] if isinstance(u, Mapping) and _ts(u.get("published_at"))),
        key=lambda u: str(u.get("published_at")),
    )
    if not published:
        if fields.get("severity") == "SEV-1" and now - declared >= comms.first_update:
            minutes = int((now - declared).total_seconds() // 60)
            facts = {"first": True, "minutes": minutes, "since": fields.get("declared_at")}
            return [Reminder(f"remind:{inc}:public-first", "public", facts)]
        return []
    last = published[-1]
    last_at = _ts(last.get("published_at"))
    if last.get("state") == "resolved" or last_at is None or now - last_at < comms.update_every:
        return []
    minutes = int((now - last_at).total_seconds() // 60)
    facts = {"first": False, "minutes": minutes, "since": last.get("published_at"), "state": last.get("state")}
    return [Reminder(f"remind:{inc}:public-stale:{last.get('published_at')}", "public", facts)]
