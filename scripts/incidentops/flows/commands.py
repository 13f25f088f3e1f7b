"""Slash commands in issue comments: parse, check the commenter's role, apply once per comment id.

Each command is a function `(event, ports, args) -> Outcome` registered in COMMANDS with the action name
its permission is configured under (`permissions` in incidentops.yaml). Every change is one commit whose
timeline row carries the comment's event key, and one acknowledgement reply found again by its hidden
marker, so a re-delivered comment changes nothing. The sandbox GitHub serves no reactions API, and a
reply also says where the change landed, so acknowledgements are short replies.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from incidentops.core import commands as core
from incidentops.core.declare import incident_id, incident_path, link
from incidentops.core.events import Event
from incidentops.core.timefmt import format_ts
from incidentops.errors import IncidentOpsError
from incidentops.flows.declare import Outcome, Ports, file_url, refuse, reply_once
from incidentops.flows.rollback import open_rollback_pr

Run = Callable[[Event, Ports, str], Outcome]


@dataclass(frozen=True)
class Command:
    action: str  # key in `permissions`
    run: Run
    usage: str
    summary: str = ""
    module: str | None = None  # delivered by another module, imported when first used


# -- shared by every command ---------------------------------------------------------------------------


def context(event: Event, ports: Ports) -> core.Context:
    """Actor, time, comment link and event key for the rows this comment produces."""
    url = event.comment_url or (event.issue.html_url if event.issue else "")
    return core.Context(event.sender, format_ts(ports.clock()), link("comment", url), event.key)


def acknowledge(event: Event, ports: Ports, command: str, what: str) -> str:
    """Reply once to the comment (keyed on its id) saying what was recorded where; return a step line."""
    assert event.issue is not None
    number = event.issue.number
    posted = reply_once(
        event,
        ports,
        "ack",
        "comment-command-ack.md.j2",
        command=command,
        what=what,
        incident_id=incident_id(number),
        file_url=file_url(ports, incident_path(ports.config, number)),
    )
    return f"acknowledged /{command} ({posted.url})" if posted.created else f"/{command} already acknowledged"


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
        if available(c)
    ]


def available(command: Command) -> bool:
    """Whether a command delivered by another module is installed."""
    return command.module is None or importlib.util.find_spec(command.module) is not None


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
    steps.append(acknowledge(event, ports, name, what))
    if result.sha:
        return Outcome("recorded", f"{inc}: /{name} by @{event.sender} recorded", inc, path, steps)
    reason = "this comment was already applied" if seen.get("replay") else "nothing to change"
    return Outcome("unchanged", f"{inc}: /{name}: {reason}", inc, path, steps)


def _parsed(name: str, what: str) -> Run:
    def run(event: Event, ports: Ports, args: str) -> Outcome:
        parsed = core.parse_command(name, args, ports.clock().date())
        if isinstance(parsed, core.CommandError):
            return reply_help(event, ports, name, parsed.message, parsed.usage)
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
    from incidentops.flows.adr import adr_edit

    ctx = context(event, ports)
    seen: dict[str, bool] = {}
    edit = adr_edit(ports, event.issue.number, decision=parsed.text, ctx=ctx, seen=seen)
    return commit_and_ack(event, ports, "decision", edit, "the decision log and a new ADR stub", seen)


def help_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/help: the list of commands."""
    return reply_help(event, ports)


def _rollback(event: Event, ports: Ports, args: str) -> Outcome:
    assert event.issue is not None
    services = [s for s in re.split(r"[\s,]+", args.split("\n", 1)[0].strip()) if s]
    return open_rollback_pr(event, ports, event.issue.number, services, event.sender)


def _followup(event: Event, ports: Ports, args: str) -> Outcome:
    from incidentops.flows.followups import followup_command

    return followup_command(event, ports, args)


def _elsewhere(module: str, function: str) -> Run:
    """A command another module delivers, imported only when used (this module imports without it)."""

    def run(event: Event, ports: Ports, args: str) -> Outcome:
        if importlib.util.find_spec(module) is None:
            return reply_help(event, ports, function.removesuffix("_command"), "not available in this version")
        target: Run = getattr(importlib.import_module(module), function)
        return target(event, ports, args.split("\n", 1)[0].strip())  # those commands take one line

    return run


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
    "followup": Command("followup", _followup, core.USAGE["followup"], "open a follow-up issue"),
    "rollback": Command("rollback_plan", _rollback, "/rollback [service …]", "open the rollback pull request"),
    "contain": Command(
        "contain",
        _elsewhere("incidentops.flows.contain", "contain_command"),
        "/contain <route>",
        "deny a route temporarily",
        module="incidentops.flows.contain",
    ),
    "lift": Command(
        "lift",
        _elsewhere("incidentops.flows.contain", "lift_command"),
        "/lift <route>",
        "lift a containment",
        module="incidentops.flows.contain",
    ),
    "smoke": Command(
        "smoke",
        _elsewhere("incidentops.flows.smoke", "smoke_command"),
        "/smoke",
        "run the runbook's smoke checks",
        module="incidentops.flows.smoke",
    ),
    "resolve": Command(
        "resolve",
        _elsewhere("incidentops.flows.verify", "resolve_command"),
        "/resolve",
        "check the exit criteria and resolve",
        module="incidentops.flows.verify",
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
    try:
        for earlier in _untraced_commands(event, ports):
            caught = _on_comment(earlier, ports)
            if caught.status != "skipped":
                outcome.steps.append(f"caught up with comment {earlier.comment_id}: {caught.message}")
    except IncidentOpsError as err:  # catching up is best effort; the comment at hand was handled
        outcome.steps.append(f"could not check earlier comments: {err}")
    return outcome


def _untraced_commands(event: Event, ports: Ports) -> list[Event]:
    """Earlier human comments holding a /command that neither the incident file nor a bot reply mentions."""
    assert event.issue is not None and event.comment_id is not None
    text = ports.git.read(incident_path(ports.config, event.issue.number)) or ""
    comments = ports.github.comments(event.issue.number)
    replies = "\n".join(c.body or "" for c in comments if c.user.type == "Bot" or c.user.login.endswith("[bot]"))
    found = []
    for comment in comments:
        if comment.id >= event.comment_id or comment.user.type == "Bot" or comment.user.login.endswith("[bot]"):
            continue
        # Any trace keyed on this comment id (a row, an acknowledgement, a refusal, a help reply) means it ran.
        trace = re.compile(re.escape(f"comment-{comment.id}") + r"(?!\d)")
        if trace.search(text) or trace.search(replies):
            continue
        if core.find_command(comment.body or "") is None:
            continue
        payload = dict(event.raw, comment={"id": comment.id, "body": comment.body, "html_url": comment.html_url})
        payload["sender"] = {"login": comment.user.login, "type": comment.user.type}
        found.append(
            Event(
                event.name,
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
    return found[:CATCH_UP_LIMIT]


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
    ports.git.sync()
    if ports.git.read(incident_path(ports.config, event.issue.number)) is None:
        return Outcome("skipped", f"not for us: #{event.issue.number} is not a declared incident")
    command = COMMANDS.get(name)
    if command is None or not available(command):
        return reply_help(event, ports, name, f"/{name} is not a command")
    if command.action:
        role = ports.github.role_of(event.sender)
        if not ports.config.allows(command.action, role):
            return refuse(event, ports, command.action, role)
    return command.run(event, ports, args)
