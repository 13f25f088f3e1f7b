"""`/public <state> <text>` and `/publish [n]`: customer-facing updates, drafted then approved.

Both are one commit plus one reply per comment (keyed on the comment id, like every command). The text is checked
for private data (core.public.leaks) and for secrets (the redactor must leave it unchanged) when drafted and again
when approved: only an approved update that passes both reaches the status page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from incidentops.core import incidentfile as f
from incidentops.core import public as core
from incidentops.core.commands import USAGE, Context
from incidentops.core.declare import incident_id, incident_path
from incidentops.core.events import Event
from incidentops.flows.base import BadCommand, Outcome, Ports, context, file_url, reply_once


def private_facts(ports: Ports, fields: Mapping[str, Any]) -> core.Private:
    """The incident's evidence plus what incidentops.yaml knows is internal: every host of a non-production
    environment's base URLs, and the Cloudflare account and zone ids."""
    hosts: list[str] = []
    ids: list[str] = []
    for env in ports.config.environments:
        ids += [env.account_id, env.zone_id]
        if env.name != "production":
            hosts += [h for h in (urlsplit(u).hostname for u in env.base_urls.values()) if h]
    return core.private_facts(fields, hosts, ids)


def check(ports: Ports, command: str, text: str, fields: Mapping[str, Any]) -> None:
    """Raise BadCommand (answered with what was wrong) when `text` must not go public."""
    reasons = core.leaks(text, private_facts(ports, fields))
    if ports.redact(text) != text:
        reasons.append("it contains a secret")
    if reasons:
        raise BadCommand(
            command,
            "this text cannot go public: " + "; ".join(reasons) + ". Describe the impact as customers see it",
            USAGE[command],
        )


def _commit(
    event: Event, ports: Ports, name: str, edit: Callable[[str], str | None], template: str, key: str
) -> Outcome:
    assert event.issue is not None
    number = event.issue.number
    inc, path = incident_id(number), incident_path(ports.config, number)
    seen: dict[str, bool] = {}

    def change(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        new = edit(text)
        seen["replay"] = new is None
        return {} if new is None else {path: new}

    result = ports.git.commit(change, f"{inc}: /{name} (@{event.sender}, {event.key})")
    steps = [f"committed {path} ({result.sha[:12]}, push attempt {result.attempts})"] if result.sha else []
    text = ports.git.read(path) or ""
    fields = f.read_fields(text) if text else {}
    update = core.by_event(fields, key) or {}
    posted = reply_once(
        event,
        ports,
        "ack",
        template,
        incident_id=inc,
        file_url=file_url(ports, path),
        comms_owner=fields.get("comms_owner") or "",
        publish_role=ports.config.permissions.get("publish", "admin"),
        update=update,
    )
    steps.append(f"acknowledged /{name} ({posted.url})" if posted.created else f"/{name} already acknowledged")
    details = {"update": update}
    if result.sha:
        return Outcome("recorded", f"{inc}: /{name} by @{event.sender} recorded", inc, path, steps, details=details)
    reason = "this comment was already applied" if seen.get("replay") else "nothing to change"
    return Outcome("unchanged", f"{inc}: /{name}: {reason}", inc, path, steps, details=details)


def _fields(ports: Ports, number: int) -> dict[str, Any]:
    text = ports.git.read(incident_path(ports.config, number)) or ""
    return f.read_fields(text) if text else {}


def _read(
    event: Event, ports: Ports, name: str, args: str
) -> tuple[core.Draft | core.Publish, Context, dict[str, Any]]:
    """The parsed command (a usage error if it cannot run), its context and the incident's fields."""
    assert event.issue is not None
    parsed = core.parse(name, args)
    if isinstance(parsed, core.Problem):
        raise BadCommand(name, parsed.message, parsed.usage)
    return parsed, context(event, ports), _fields(ports, event.issue.number)


def public_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/public <state> <text>: record a draft; it is not public until approved."""
    parsed, ctx, fields = _read(event, ports, "public", args)
    assert isinstance(parsed, core.Draft)
    if core.by_event(fields, ctx.key) is None:  # a re-delivered /public is answered as the first run did
        check(ports, "public", parsed.text, fields)

    def edit(text: str) -> str | None:
        done = core.apply_draft(text, parsed, ctx)
        return None if done is None else done[0]

    return _commit(event, ports, "public", edit, "comment-public-draft.md.j2", key=ctx.key)


def publish_command(event: Event, ports: Ports, args: str) -> Outcome:
    """/publish [n]: approve draft n (default: the newest waiting) for the status page."""
    parsed, ctx, fields = _read(event, ports, "publish", args)
    assert isinstance(parsed, core.Publish)
    if core.by_event(fields, ctx.key) is not None:  # a re-delivered /publish: answer as the first run did
        return _commit(event, ports, "publish", lambda text: None, "comment-public-published.md.j2", key=ctx.key)
    draft = core.pending(fields, parsed.number)
    if isinstance(draft, str):
        raise BadCommand("publish", draft, USAGE["publish"])
    check(ports, "publish", str(draft.get("text") or ""), fields)
    number = int(draft["n"])
    edit = lambda text: core.apply_publish(text, number, ctx)  # noqa: E731
    return _commit(event, ports, "publish", edit, "comment-public-published.md.j2", key=ctx.key)
