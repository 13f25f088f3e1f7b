"""Slash commands in issue comments: parse, check the commenter's role, apply once per comment id.

Each command is a function `(event, ports, args) -> Outcome` registered in COMMANDS with the action name
its permission is configured under (`permissions` in incidentops.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from incidentops.core.declare import incident_path
from incidentops.core.events import Event
from incidentops.flows.declare import Outcome, Ports, refuse
from incidentops.flows.rollback import open_rollback_pr

COMMAND = re.compile(r"^\s*/([a-z][a-z-]*)\b[ \t]*(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Command:
    action: str  # key in `permissions`
    run: Callable[[Event, Ports, str], Outcome]
    usage: str


def _rollback(event: Event, ports: Ports, args: str) -> Outcome:
    assert event.issue is not None
    services = [s for s in re.split(r"[\s,]+", args.strip()) if s]
    return open_rollback_pr(event, ports, event.issue.number, services, event.sender)


COMMANDS: dict[str, Command] = {
    "rollback": Command("rollback_plan", _rollback, "/rollback [service …]"),
}


def on_comment(event: Event, ports: Ports) -> Outcome:
    """Handle an `issue_comment` event on an incident issue."""
    if event.issue is None or event.comment_body is None:
        return Outcome("skipped", "not for us: the comment payload has no issue or body")
    if event.action != "created":
        return Outcome("skipped", f"not for us: comment {event.action} (only new comments are commands)")
    if event.sender_is_bot:
        return Outcome("skipped", "not for us: comment by a bot")
    if event.issue.is_pull_request:
        return Outcome("skipped", "not for us: a comment on a pull request")
    match = COMMAND.search(event.comment_body)
    if not match:
        return Outcome("skipped", "not for us: the comment has no /command")
    name, args = match.group(1), match.group(2)
    command = COMMANDS.get(name)
    if command is None:
        return Outcome("skipped", f"not for us: /{name} is not a command of this version")
    ports.git.sync()
    if ports.git.read(incident_path(ports.config, event.issue.number)) is None:
        return Outcome("skipped", f"not for us: #{event.issue.number} is not a declared incident")
    role = ports.github.role_of(event.sender)
    if not ports.config.allows(command.action, role):
        return refuse(event, ports, command.action, role)
    return command.run(event, ports, args)
