"""What every flow shares: the outcome it returns, and the few ways it answers on GitHub.

Every flow is `(event, ports) -> Outcome`: it reads, decides through core, writes through the ports. The helpers
here are the only ways a flow answers: one reply per event (found again by a hidden marker), a refusal that
changes nothing, and one commit plus one acknowledgement for a command. Flows import this module, the wiring,
core and the adapters; nothing here imports a flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_id, incident_path, link
from incidentops.core.events import Event
from incidentops.core.timefmt import format_ts, parse_ts
from incidentops.errors import IncidentOpsError
from incidentops.render import render
from incidentops.wiring import Ports, acting_person

if TYPE_CHECKING:
    from incidentops.adapters.github import PostedComment
    from incidentops.core.commands import Context

__all__ = [
    "BadCommand",
    "Outcome",
    "Ports",
    "acknowledge",
    "authorize",
    "commit_and_ack",
    "context",
    "file_url",
    "refuse",
    "reply_once",
]


@dataclass
class Outcome:
    status: str  # declared | escalated | de-escalated | recorded | unchanged | skipped | refused | rejected | …
    message: str
    incident_id: str | None = None
    path: str | None = None
    steps: list[str] = field(default_factory=list)
    exit_code: int = 0
    level: str = "notice"  # annotation level for the message
    details: dict[str, Any] = field(default_factory=dict)  # flow-specific data for summaries and tests


class BadCommand(Exception):
    """A command that could not be read; the command table answers it with the help text."""

    def __init__(self, command: str, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.command, self.problem, self.usage = command, problem, usage


def file_url(ports: Ports, path: str) -> str:
    return f"{ports.server_url.rstrip('/')}/{ports.repository}/blob/{ports.config.default_branch}/{path}"


def reply_once(
    event: Event,
    ports: Ports,
    kind: str,
    template: str,
    once_per: str | None = None,
    new: bool = False,
    **context: Any,
) -> PostedComment:
    """Answer an event with a comment from `template`, once: a hidden `incidentops:<kind>:<event key>` marker
    is looked up before posting, so a replayed event does not answer twice (`once_per` replaces the event key)."""
    assert event.issue is not None
    marker = f"<!-- incidentops:{kind}:{f.escape_cell(once_per or event.key)} -->"
    body = render(template, ports.workspace, marker=marker, actor=event.sender, **context)
    # An answer keyed on this comment cannot predate it: its look-up reads only what came after.
    since = None if once_per else event_time(event)
    return ports.github.post_comment_once(event.issue.number, marker, ports.redact(body), since=since, new=new)


def event_time(event: Event) -> datetime | None:
    """When the event's comment was posted, from its payload (None when the payload does not say)."""
    comment = event.raw.get("comment") if isinstance(event.raw, dict) else None
    created = comment.get("created_at") if isinstance(comment, dict) else None
    try:
        return parse_ts(created) if isinstance(created, str) else None
    except ValueError:
        return None


CHECKPOINT_FIELD = "comments_checked"
CAUGHT_UP = "incidentops_caught_up"  # set in the payload of a command a later run applies (catch-up)


def checkpoint_of(text: str) -> tuple[datetime | None, list[str]]:
    """The incident file's comment checkpoint: every /command posted before `at` left its trace, and `markers`
    are the bot's reply markers posted before it (the sweep records both: flows/commands.py catch_up_commands)."""
    try:
        value = f.read_fields(text).get(CHECKPOINT_FIELD)
    except f.IncidentFileError:
        return None, []
    if not isinstance(value, dict):
        return None, []
    try:
        at = parse_ts(str(value.get("at"))) if value.get("at") else None
    except ValueError:
        at = None
    markers = [str(m) for m in value.get("markers") or [] if isinstance(m, str)]
    return at, markers


def bound_comments(ports: Ports, number: int, text: str) -> None:
    """From here on this run reads the issue's comments from the file's checkpoint, at most a bounded number."""
    at, markers = checkpoint_of(text)
    ports.github.bound_comments(number, at, markers)


def refuse(event: Event, ports: Ports, action: str, role: str) -> Outcome:
    """Tell the actor they lack the role, once per person per issue; change nothing else.

    A flood of commands from someone without the role gets one answer, not one reply each (each reply costs
    requests from the token's hourly budget and buries the incident's real conversation).
    """
    needed = ports.config.permissions[action]
    posted = reply_once(
        event,
        ports,
        "refused",
        "comment-refused.md.j2",
        once_per=f"@{event.sender}",
        action=action,
        needed=needed,
        role=role,
    )
    return Outcome(
        "refused",
        f"@{event.sender} has role {role!r}; {action} needs {needed!r}. Refusal comment "
        + ("posted" if posted.created else "already posted")
        + "; nothing written.",
        steps=[f"refused {action} for @{event.sender} ({role} < {needed})"],
        level="warning",
        details={"posted": posted.created},
    )


def authorize(ports: Ports, env: Mapping[str, str], action: str) -> str:
    """The acting person (see `acting_person`), if their role allows `action`; else an error and nothing changes."""
    actor = acting_person(ports, env)
    role = ports.github.role_of(actor)
    if not ports.config.allows(action, role):
        raise IncidentOpsError(
            f"@{actor} has role {role!r}; {action} needs {ports.config.permissions[action]!r}. Nothing was changed.",
            hint="Ask someone with that role, or an admin to raise yours.",
        )
    return actor


def context(event: Event, ports: Ports) -> Context:
    """Actor, time, comment link and event key for the rows this comment produces."""
    url = event.comment_url or (event.issue.html_url if event.issue else "")
    from incidentops.core.commands import Context  # the command flows load it anyway; rollback and smoke need not

    return Context(event.sender, format_ts(ports.clock()), link("comment", url), event.key)


def acknowledge(event: Event, ports: Ports, command: str, what: str, new: bool = False) -> str:
    """Reply once to the comment (keyed on its id) saying what was recorded where; return a step line. `new`: this
    run made the commit, so no earlier run can have acknowledged it (the reply always follows the commit)."""
    assert event.issue is not None
    number = event.issue.number
    posted = reply_once(
        event,
        ports,
        "ack",
        "comment-command-ack.md.j2",
        new=new,
        command=command,
        what=what,
        incident_id=incident_id(number),
        file_url=file_url(ports, incident_path(ports.config, number)),
    )
    return f"acknowledged /{command} ({posted.url})" if posted.created else f"/{command} already acknowledged"


def commit_and_ack(
    event: Event,
    ports: Ports,
    name: str,
    edit: Callable[[Callable[[str], str | None]], Mapping[str, str]],
    what: str,
    seen: dict[str, bool],
) -> Outcome:
    """Commit `edit` for this comment, then reply once; a replay commits nothing and re-uses the reply."""
    assert event.issue is not None
    number = event.issue.number
    inc, path = incident_id(number), incident_path(ports.config, number)
    result = ports.git.commit(edit, f"{inc}: /{name} (@{event.sender}, {event.key})")
    steps = [f"committed {path} ({result.sha[:12]}, push attempt {result.attempts})"] if result.sha else []
    if not result.sha and event.raw.get(CAUGHT_UP):
        # Catch-up picks only commands without a row; a row written meanwhile means another run (the comment's
        # own, or the sweep's, each in its own concurrency group) applied it and acknowledges it.
        steps.append(f"/{name} was applied meanwhile by another run, which acknowledges it")
    else:
        steps.append(acknowledge(event, ports, name, what, new=bool(result.sha)))
    if result.sha:
        return Outcome("recorded", f"{inc}: /{name} by @{event.sender} recorded", inc, path, steps)
    reason = "this comment was already applied" if seen.get("replay") else "nothing to change"
    return Outcome("unchanged", f"{inc}: /{name}: {reason}", inc, path, steps)
