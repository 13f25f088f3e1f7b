"""Scheduled reminders (`incidentops remind`): each due condition is posted once on its incident issue.

read every incident file → decide (core.reminders) → drop what the issue already carries (hidden marker per
condition) → post. Writes nothing to git, so the scheduled job needs only `contents: read`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from incidentops.core import incidentfile as f
from incidentops.core import reminders as core
from incidentops.core.events import is_own_login
from incidentops.errors import ApiError
from incidentops.flows.base import Outcome, Ports, bound_comments, checkpoint_of, file_url
from incidentops.render import render


def _posted_markers(ports: Ports, number: int, text: str) -> str:
    """The bot's markers on the issue in one string: one bounded read per incident, however many reminders
    (those before the file's comment checkpoint come from the file; see flows/commands.py catch_up_commands)."""
    bound_comments(ports, number, text)
    _, known = checkpoint_of(text)
    # Only our own comments: a marker typed by anyone else must not silence a reminder.
    own = [c.body or "" for c in ports.github.comments(number) if is_own_login(c.user.login)]
    return "\n".join([*own, *(f"<!-- {m} -->" for m in known)])


# A deleted issue answers 410; a transferred one 301 to a repository the job's token cannot read (404).
GONE = {301: "moved to another repository", 404: "moved or no longer visible", 410: "deleted"}


def _closed(ports: Ports, numbers: set[int], steps: list[str]) -> set[int]:
    """Follow-up issues that need no reminder: closed, or deleted/moved (each reported in `steps`)."""
    closed = set()
    for n in sorted(numbers):
        try:
            if ports.github.issue_state(n) == "closed":
                closed.add(n)
        except ApiError as err:
            if err.status in GONE:
                steps.append(f"skipped follow-up issue #{n}: it was {GONE[err.status]} (HTTP {err.status})")
                closed.add(n)
            # any other error: the follow-up is reminded rather than silently dropped
    return closed


def _people(fields: dict[str, Any], reminder: core.Reminder) -> list[str]:
    if reminder.kind in ("public", "breach"):  # the comms owner's job; the commander when nobody holds it
        for key in ("comms_owner", "commander"):
            if fields.get(key) not in (None, "", "unknown", "unassigned"):
                return [str(fields.get(key))]
        return []
    if reminder.kind == "followup":
        owner = str(reminder.facts.get("owner") or "")
        return [owner] if owner and owner != "unassigned" else []
    found = [str(fields.get(k)) for k in ("commander", "comms_owner") if fields.get(k) not in (None, "", "unknown")]
    return list(dict.fromkeys(found))


def run_reminders(ports: Ports) -> Outcome:
    """Post every due reminder of every incident once; return what was posted."""
    ports.git.sync()
    now = ports.clock()
    folder = ports.workspace / ports.config.incidents_dir
    steps: list[str] = []
    posted: list[str] = []
    comms = core.Comms(
        timedelta(minutes=ports.config.comms_minutes("first_update_minutes", 30)),
        timedelta(minutes=ports.config.comms_minutes("update_every_minutes", 60)),
    )
    for path in sorted(folder.glob("INC-*.md")):
        rel = f"{ports.config.incidents_dir}/{path.name}"
        try:
            text = path.read_text(encoding="utf-8")
            fields = f.read_fields(text)
            _, body = f.split(text)
        except (OSError, f.IncidentFileError) as err:
            steps.append(f"skipped {rel}: {err}")
            continue
        number = fields.get("issue")
        if not isinstance(number, int):
            match = re.search(r"(\d+)", path.stem)
            number = int(match.group(1)) if match else None
        if number is None:
            continue
        due = core.due_reminders(fields, body, now, comms=comms)
        linked = {int(r.facts["issue"]) for r in due if r.kind == "followup" and r.facts.get("issue")}
        if linked:
            due = core.due_reminders(fields, body, now, _closed(ports, linked, steps), comms=comms)
        if not due:
            continue
        already = _posted_markers(ports, number, text)
        for reminder in due:
            if reminder.marker in already:
                continue
            if ports.github.comments_cut(number):
                # A flood beyond this run's bounded read may hide it: the next run, after the sweep moved on, posts it.
                steps.append(f"#{number}: {reminder.key} not checked: more comments than one run reads; next run")
                continue
            text_body = render(
                f"comment-remind-{reminder.kind}.md.j2",
                ports.workspace,
                marker=reminder.marker,
                incident=fields,
                facts=reminder.facts,
                people=_people(fields, reminder),
                file_url=file_url(ports, rel),
            )
            result = ports.github.post_comment_once(number, reminder.marker, ports.redact(text_body))
            if result.created:
                posted.append(reminder.key)
                steps.append(f"reminded #{number}: {reminder.key} ({result.url})")
    if not posted:
        return Outcome("unchanged", "no reminder is due", steps=steps)
    return Outcome("reminded", f"posted {len(posted)} reminder(s)", steps=steps, details={"posted": posted})


# While a SEV-1 is open, one scheduled run keeps checking instead of exiting: remind.yml runs every 30 minutes
# (billed jobs with nothing open: 48 a day, about 1,440 a month) and a run watches up to just under that, so the
# next scheduled run, pending in the group, takes over. docs/reliability.md has the arithmetic.
WATCH_SEVERITIES = ("SEV-1",)


def open_watched_incidents(ports: Ports) -> list[str]:
    """IDs of open incidents (not closed in the file) whose severity needs reminders within minutes."""
    folder = ports.workspace / ports.config.incidents_dir
    found = []
    for path in sorted(folder.glob("INC-*.md")):
        try:
            fields = f.read_fields(path.read_text(encoding="utf-8"))
        except (OSError, f.IncidentFileError):
            continue
        if fields.get("severity") in WATCH_SEVERITIES and fields.get("status") not in ("closed", "resolved"):
            found.append(str(fields.get("id") or path.stem))
    return found


def watch_reminders(
    ports: Ports,
    *,
    minutes: float,
    interval: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Post due reminders; while a SEV-1 is open, check again every `interval` seconds for up to `minutes`.

    A run that finds nothing watched returns after one pass (under a minute of billed time). Each pass re-reads
    the live tip, so a reminder due while watching is posted within `interval` of its due time.
    """
    deadline = monotonic() + minutes * 60
    passes = 0
    steps: list[str] = []
    posted: list[str] = []
    while True:
        outcome = run_reminders(ports)
        passes += 1
        steps += outcome.steps
        posted += list(outcome.details.get("posted", []))
        watched = open_watched_incidents(ports)
        if not watched or monotonic() + interval >= deadline:
            break
        sleep(interval)
    if passes > 1 or watched:
        steps.append(f"checked {passes} time(s); watching {', '.join(watched) or 'nothing'}")
    if not posted:
        return Outcome("unchanged", "no reminder is due", steps=steps, details={"passes": passes})
    return Outcome(
        "reminded",
        f"posted {len(posted)} reminder(s)",
        steps=steps,
        details={"posted": posted, "passes": passes},
    )
