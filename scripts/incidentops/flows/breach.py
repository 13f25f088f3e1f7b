"""`/notification authority|tenant|waive`: the breach-notification checklist (core.breach), one commit and one
acknowledgement per comment. Waiving needs the `notification_waive` role (admin by default) whoever asks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from incidentops.core import breach as core
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_path
from incidentops.core.events import Event
from incidentops.flows.base import BadCommand, Outcome, Ports, commit_and_ack, context, refuse


def notification_command(event: Event, ports: Ports, args: str) -> Outcome:
    assert event.issue is not None
    parsed = core.parse(args)
    if isinstance(parsed, core.Problem):
        raise BadCommand("notification", parsed.message, core.USAGE)
    if isinstance(parsed, core.Waive):
        role = ports.github.role_of(event.sender)
        if not ports.config.allows("notification_waive", role):
            return refuse(event, ports, "notification_waive", role)
    path = incident_path(ports.config, event.issue.number)
    ctx = context(event, ports)
    text = ports.git.read(path) or ""
    if text and not f.has_event(text, ctx.key):
        problem = core.check(f.read_fields(text), parsed)
        if problem:
            raise BadCommand("notification", problem, core.USAGE)
    seen: dict[str, bool] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        current = read(path)
        if current is None:
            return {}
        new = core.apply(current, parsed, ctx)
        seen["replay"] = new is None
        return {} if new is None else {path: ports.redact(new)}

    return commit_and_ack(event, ports, "notification", edit, "the breach-notification checklist", seen)
