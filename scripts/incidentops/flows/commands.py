"""Slash commands in issue comments: parse, check the commenter's role, apply once per comment id.

Each command is a function `(event, ports, args) -> Outcome` registered in COMMANDS with the action name
its permission is configured under (`permissions` in incidentops.yaml). Every change is one commit whose
timeline row carries the comment's event key, and one acknowledgement reply found again by its hidden
marker, so a re-delivered comment changes nothing. The sandbox GitHub serves no reactions API, and a
reply also says where the change landed, so acknowledgements are short replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidentops.adapters.github import PAGE_SIZE
from incidentops.core import breach
from incidentops.core import commands as core
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_id, incident_path
from incidentops.core.events import Event, is_own_login
from incidentops.core.timefmt import format_ts
from incidentops.errors import IncidentOpsError
from incidentops.flows.adr import adr_edit
from incidentops.flows.base import (
    CAUGHT_UP,
    CHECKPOINT_FIELD,
    BadCommand,
    Outcome,
    Ports,
    bound_comments,
    checkpoint_of,
    commit_and_ack,
    context,
    refuse,
    reply_once,
)
from incidentops.flows.breach import notification_command
from incidentops.flows.public import public_command, publish_command

Run = Callable[[Event, Ports, str], Outcome]


@dataclass(frozen=True)
class Command:
    action: str  # key in `permissions`
    run: Run
    usage: str
    summary: str = ""
    # A front matter role (e.g. comms_owner) whose holder may run the command whatever their repository role.
    holder: str = ""
    # Loads what the run needs before its first request (its flow, its HTTP client), while the role is read.
    load: Callable[[], None] | None = None


# -- shared by every command ---------------------------------------------------------------------------


def reply_help(event: Event, ports: Ports, command: str = "", problem: str = "", usage: str = "") -> Outcome:
    """Answer an unknown or malformed command (or /help) with the help text, once per comment."""
    assert event.issue is not None
    posted = reply_once(
        event,
        ports,
        "help",
        "comment-help.md.j2",
        command=command,
        problem=problem,
        usage=usage,
        commands=help_rows(ports),
    )
    step = "posted the help text" if posted.created else "help text already posted"
    if problem:
        return Outcome(
            "rejected",
            f"/{command}: {problem}",
            incident_id=incident_id(event.issue.number),
            steps=[step],
            level="warning",
        )
    return Outcome("help", "posted the command help", incident_id=incident_id(event.issue.number), steps=[step])


def help_rows(ports: Ports) -> list[dict[str, str]]:
    """Usage, meaning and required role of each command available in this installation."""
    return [
        {"usage": c.usage, "summary": c.summary, "role": ports.config.permissions.get(c.action, "") if c.action else ""}
        for c in COMMANDS.values()
    ]


def record(event: Event, ports: Ports, name: str, parsed: core.Parsed, what: str) -> Outcome:
    """Commit a parsed command's edit of the incident file (once per comment) and acknowledge it."""
    assert event.issue is not None
    number = event.issue.number
    path = incident_path(ports.config, number)
    ctx = context(event, ports)
    seen: dict[str, bool] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        new = core.apply(text, parsed, ctx)
        seen["replay"] = new is None
        return {} if new is None else {path: ports.redact(new)}

    return commit_and_ack(event, ports, name, edit, what, seen)


def _outside(ports: Ports, login: str) -> bool:
    """Whether `login` lacks even read access (the commander and comms owner must be able to see the incident)."""
    return ports.github.role_of(login) in ("none", "")


def _parsed(name: str, what: str) -> Run:
    def run(event: Event, ports: Ports, args: str) -> Outcome:
        parsed = core.parse_command(name, args, ports.clock().date())
        if isinstance(parsed, core.CommandError):
            return reply_help(event, ports, name, parsed.message, parsed.usage)
        if isinstance(parsed, core.Assign) and _outside(ports, parsed.login):
            problem = f"@{parsed.login} has no access to this repository, so cannot hold an incident role"
            return reply_help(event, ports, name, problem, core.USAGE[name])
        return record(event, ports, name, parsed, what)

    run.__name__ = name.replace("-", "_") + "_command"
    return run


# -- the commands ---------------------------------------------------------------------------------------

ic_command = _parsed("ic", "the incident commander")
comms_command = _parsed("comms", "the communications owner")
status_command = _parsed("status", "a status update (timeline and `last_status_at`)")
note_command = _parsed("note", "a timeline note")
evidence_command = _parsed("evidence", "the evidence (front matter `impact` and the Evidence section)")
security_impact_command = _parsed("security-impact", "the security-impact statement")
risk_command = _parsed("risk", "the risk state (front matter `risks`)")


def decision_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/decision [--adr] <text>: a Decision log row; with --adr also an ADR stub in the same commit."""
    parsed = core.parse_command("decision", args, ports.clock().date())
    if isinstance(parsed, core.CommandError):
        return reply_help(event, ports, "decision", parsed.message, parsed.usage)
    assert isinstance(parsed, core.Decision) and event.issue is not None
    if not parsed.adr:
        return record(event, ports, "decision", parsed, "the decision log")
    ctx = context(event, ports)
    seen: dict[str, bool] = {}
    edit = adr_edit(ports, event.issue.number, decision=parsed.text, ctx=ctx, seen=seen)
    return commit_and_ack(event, ports, "decision", edit, "the decision log and a new ADR stub", seen)


def help_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/help: the list of commands."""
    return reply_help(event, ports)


# The commands that reach Cloudflare, the smoke runner or other flows import them when they run: a /note does not
# pay for the rollback, containment and verification flows (and what they import) at start-up.


def contain_command(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.contain import contain_command as run

    return run(event, ports, args)


def lift_command(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.contain import lift_command as run

    return run(event, ports, args)


def _load_contain() -> None:
    from incidentops.flows.contain import load

    load()


def followup_command(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.followups import followup_command as run

    return run(event, ports, args)


def smoke_command(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.smoke import smoke_command as run

    return run(event, ports, args)


def resolve_command(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.verify import resolve_command as run

    return run(event, ports, args)


def _rollback(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.rollback import open_rollback_pr

    assert event.issue is not None
    services = [s for s in re.split(r"[\s,]+", args.split("\n", 1)[0].strip()) if s]
    return open_rollback_pr(event, ports, event.issue.number, services, event.sender)


def _one_line(run: Run) -> Run:
    """Commands that take a single line of arguments (routes, service names) ignore what follows it."""

    def one_line(event: Event, ports: Ports, args: str) -> Outcome:
        return run(event, ports, args.split("\n", 1)[0].strip())

    return one_line


COMMANDS: dict[str, Command] = {
    "ic": Command("assign", ic_command, core.USAGE["ic"], "set the incident commander"),
    "comms": Command("assign", comms_command, core.USAGE["comms"], "set the communications owner"),
    "status": Command("note", status_command, core.USAGE["status"], "post a status update"),
    "note": Command("note", note_command, core.USAGE["note"], "add a timeline note"),
    "decision": Command("decision", decision_command, core.USAGE["decision"], "log a decision; --adr adds an ADR stub"),
    "evidence": Command("evidence", evidence_command, core.USAGE["evidence"], "add request IDs, tenants or routes"),
    "security-impact": Command(
        "evidence", security_impact_command, core.USAGE["security-impact"], "state whether security behavior changed"
    ),
    "risk": Command("evidence", risk_command, core.USAGE["risk"], "open or clear a risk"),
    "followup": Command("followup", followup_command, core.USAGE["followup"], "open a follow-up issue"),
    "rollback": Command("rollback_plan", _rollback, "/rollback [service …]", "open the rollback pull request"),
    "contain": Command(
        "contain", _one_line(contain_command), "/contain <route>", "deny a route temporarily", load=_load_contain
    ),
    "lift": Command("lift", _one_line(lift_command), "/lift <route>", "lift a containment", load=_load_contain),
    "smoke": Command("smoke", _one_line(smoke_command), "/smoke", "run the runbook's smoke checks"),
    "resolve": Command("resolve", _one_line(resolve_command), "/resolve", "check the exit criteria and resolve"),
    "public": Command("public", public_command, core.USAGE["public"], "draft a customer-facing update", "comms_owner"),
    "publish": Command(
        "publish", publish_command, core.USAGE["publish"], "approve a draft for the status page", "comms_owner"
    ),
    "notification": Command(
        "notification",
        _one_line(notification_command),
        breach.USAGE,
        "record who notified the authority or a tenant of a breach, or (admin) waive it",
        "comms_owner",
    ),
    "help": Command("", help_command, core.USAGE["help"], "show this list"),
}


CATCH_UP_LIMIT = 20  # earlier commands applied per run at most; the next comment's run continues


def on_comment(event: Event, ports: Ports) -> Outcome:
    """Handle an `issue_comment` event, then any earlier command whose run never happened.

    GitHub keeps one pending run per concurrency group: in a burst of comments on one incident the middle run is
    cancelled, and its command would be lost. So every run also applies earlier commands that left no trace
    (no row keyed on their comment id, no reply naming it). Each is applied through the same checks, once.
    """
    outcome = _on_comment(event, ports)
    if outcome.status == "skipped" and outcome.message.startswith("not for us: #"):
        return outcome  # not an incident issue: nothing to catch up with
    if event.issue is None or event.comment_id is None or event.action != "created":
        return outcome
    outcome.steps += catch_up_commands(event, ports, before=event.comment_id)
    return outcome


def catch_up_commands(event: Event, ports: Ports, before: int | None = None, record: bool = False) -> list[str]:
    """Apply every human /command on the event's issue (older than comment `before`, if given) that left no
    trace; returns what was done. Best effort: the event at hand was handled whatever happens here.

    The work is bounded (#15.7): comments are read from the incident file's checkpoint on, at most
    COMMENT_PAGES_PER_RUN pages, and at most CATCH_UP_LIMIT commands are applied. With `record` (the sweep) the
    checkpoint moves to where this pass stopped, so the next pass starts there: nothing is skipped, however many
    comments a flood adds."""
    steps: list[str] = []
    try:
        scan = _untraced_commands(event, ports, before)
        for earlier in scan.found[:CATCH_UP_LIMIT]:
            caught = _on_comment(earlier, ports)
            # A person already refused on this issue is not answered again (one refusal per person).
            quiet = caught.status == "refused" and not caught.details.get("posted", True)
            if caught.status != "skipped" and not quiet:
                steps.append(f"caught up with comment {earlier.comment_id}: {caught.message}")
        if scan.cut:
            steps.append(
                f"read {len(scan.read)} comments since {scan.since or 'the first'} (the per-run bound); the next run "
                f"or the scheduled sweep continues from {scan.checkpoint or 'there'}"
            )
        if len(scan.found) > CATCH_UP_LIMIT:
            steps.append(
                f"applied {CATCH_UP_LIMIT} of {len(scan.found)} earlier commands (the per-run bound); the next run or "
                "the scheduled sweep applies the rest"
            )
        if record:
            steps += _record_checkpoint(event, ports, scan)
    except IncidentOpsError as err:
        steps.append(f"could not check earlier comments: {err}")
    return steps


_MARKER = re.compile(r"<!-- (incidentops:[^<>]{1,300}?) -->")


@dataclass
class _Scan:
    found: list[Event]
    read: list[Any]
    since: str | None
    cut: bool
    checkpoint: str | None  # every /command posted before this left a trace once `found` is applied
    markers: list[str]  # the bot's markers posted before `checkpoint`


def _record_checkpoint(event: Event, ports: Ports, scan: _Scan) -> list[str]:
    """Move the incident file's comment checkpoint to where this pass stopped (one commit; none when unchanged)."""
    assert event.issue is not None
    path = incident_path(ports.config, event.issue.number)
    if scan.checkpoint is None or scan.checkpoint == scan.since or len(scan.read) < PAGE_SIZE:
        return []  # a window of less than a page costs one request anyway: no commit to save it
    value = {"at": scan.checkpoint, "markers": scan.markers}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        current = read(path)
        if current is None:
            return {}
        at, _ = checkpoint_of(current)
        if at is not None and format_ts(at) >= str(scan.checkpoint):
            return {}  # another run already moved it as far
        return {path: f.set_fields(current, {CHECKPOINT_FIELD: value})}

    ports.git.commit(edit, f"{incident_id(event.issue.number)}: comments checked through {scan.checkpoint}")
    return [f"comments checked through {scan.checkpoint}"]


# Commands that reach Cloudflare or hand the tenants' credentials to the smoke checks: only these run in the job
# that holds the production secrets (a GitHub environment); every other command, refusal and help reply runs in a
# job without them (`incidentops gate` decides), which also leaves these out when it catches up.
PRODUCTION_COMMANDS = frozenset({"contain", "lift", "smoke", "rollback", "resolve"})


def _edited(comment: Any) -> bool:
    """Whether a comment changed after it was posted: its current text is not what its author commanded.

    Whoever can edit others' comments (write access) could otherwise turn an admin's "thanks" into a `/decision`
    applied in the admin's name. GitHub's timestamps have one-second resolution; an edit within the same second
    as the post is indistinguishable here, so the live event's own payload (the text at creation) stays the source.
    """
    created, updated = getattr(comment, "created_at", None), getattr(comment, "updated_at", None)
    return bool(created and updated and updated > created)


def _untraced_commands(event: Event, ports: Ports, before: int | None) -> _Scan:
    """Earlier human comments holding a /command that neither the incident file nor a bot reply mentions, read
    from the file's checkpoint on (bounded), and where the next pass may start."""
    assert event.issue is not None
    text = ports.git.read(incident_path(ports.config, event.issue.number)) or ""
    bound_comments(ports, event.issue.number, text)
    since, known = checkpoint_of(text)
    comments = ports.github.comments(event.issue.number)
    cut = ports.github.comments_cut(event.issue.number)
    own = [c for c in comments if is_own_login(c.user.login)]  # only our own markers count
    replies = "\n".join([*(c.body or "" for c in own), *known])
    found: list[Event] = []
    held: datetime | None = None  # the first command this pass leaves for another
    last: datetime | None = None
    for comment in comments:
        is_bot = comment.user.type == "Bot" or comment.user.login.endswith("[bot]")
        if before is not None and comment.id >= before:
            continue
        last = comment.created_at
        if is_bot:
            continue
        # Any trace keyed on this comment id (a row, an acknowledgement, a refusal, a help reply) means it ran.
        trace = re.compile(re.escape(f"comment-{comment.id}") + r"(?!\d)")
        if trace.search(text) or trace.search(replies):
            continue
        command = core.find_command(comment.body or "")
        if command is None or _edited(comment):
            continue
        if ports.cloudflare is None and command[0] in PRODUCTION_COMMANDS:
            held = held or comment.created_at
            continue  # left for the next run of the job that holds the production secrets
        if len(found) == CATCH_UP_LIMIT:
            held = held or comment.created_at
        created = format_ts(comment.created_at) if comment.created_at else None
        payload = dict(
            event.raw,
            comment={"id": comment.id, "body": comment.body, "html_url": comment.html_url, "created_at": created},
        )
        payload["sender"] = {"login": comment.user.login, "type": comment.user.type}
        payload[CAUGHT_UP] = True
        found.append(
            Event(
                "issue_comment",
                "created",
                comment.user.login,
                False,
                issue=event.issue,
                comment_id=comment.id,
                comment_body=comment.body,
                comment_url=comment.html_url,
                raw=payload,
            )
        )
    stop = held or last
    checkpoint = format_ts(stop) if stop is not None else None
    markers = list(known)
    for comment in own:
        if stop is not None and comment.created_at is not None and comment.created_at < stop:
            markers += [m for m in _MARKER.findall(comment.body or "") if m not in markers]
    return _Scan(found, comments, format_ts(since) if since else None, cut, checkpoint, markers)


def _holds(command: Command, login: str, role: str, text: str) -> bool:
    """Whether `login` holds the incident role that may run `command` (and can still see the repository)."""
    if not command.holder or role in ("none", ""):
        return False
    try:
        holder = f.read_fields(text).get(command.holder)
    except f.IncidentFileError:
        return False
    return isinstance(holder, str) and holder.lower() == login.lower()


def _prepare(event: Event, ports: Ports, command: Command | None, text: str) -> None:
    """While the role request is out: start the reads and loads the run will need, decide nothing.

    PyGithub is loaded first (by the role's thread), so the role request goes out before any of this competes with
    it for the interpreter.
    """
    assert event.issue is not None
    ports.github.ready()
    if not event.raw.get(CAUGHT_UP):
        # The run reconciles with the live issue once the command is done (flows/reconcile.py): that read goes out
        # now, beside the command's own requests, not after them.
        ports.github.read_ahead(event.issue.number)
    if command is not None and command.load is not None:
        command.load()
    with suppress(f.IncidentFileError):  # the command says so when it reads them
        f.read_fields(text)  # parsed once (core caches it); every step of the command reads these fields


def _on_comment(event: Event, ports: Ports) -> Outcome:
    """Handle one comment."""
    if event.issue is None or event.comment_body is None:
        return Outcome("skipped", "not for us: the comment payload has no issue or body")
    if event.action != "created":
        # An edited comment is not a new command: applying it would act twice on one comment id.
        return Outcome("skipped", f"not for us: comment {event.action} (only new comments are commands)")
    if event.sender_is_bot:
        return Outcome("skipped", "not for us: comment by a bot")
    if event.issue.is_pull_request:
        return Outcome("skipped", "not for us: a comment on a pull request")
    found = core.find_command(event.comment_body)
    if found is None:
        return Outcome("skipped", "not for us: the comment has no /command")
    name, args = found
    # Every command is judged on the sender's role: it is read (and PyGithub loaded) while git syncs, one a
    # request and the other a process, as declare does. Nothing is decided before both are in.
    command = COMMANDS.get(name)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="role") as pool:
        asked = pool.submit(ports.github.role_of, event.sender)
        ports.git.sync()
        text = ports.git.read(incident_path(ports.config, event.issue.number))
        if text is not None:
            _prepare(event, ports, command, text)
    if text is None:
        return Outcome("skipped", f"not for us: #{event.issue.number} is not a declared incident")
    role = asked.result()
    bound_comments(ports, event.issue.number, text)
    # Help goes only to people who hold some role the configuration names: anyone else gets no reply at all.
    if (command is None or not command.action) and not any(
        ports.config.allows(action, role) for action in ports.config.permissions
    ):
        return Outcome("skipped", f"no reply: @{event.sender} ({role}) holds no role that may run a command")
    if command is None:
        return reply_help(event, ports, name, f"/{name} is not a command")
    if (
        command.action
        and not ports.config.allows(command.action, role)
        and not _holds(command, event.sender, role, text)
    ):
        return refuse(event, ports, command.action, role)
    try:
        return command.run(event, ports, args)
    except BadCommand as bad:
        return reply_help(event, ports, bad.command, bad.problem, bad.usage)
