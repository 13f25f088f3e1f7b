"""Containment: a temporary deny response on a route, as a Cloudflare WAF custom rule, recorded in the incident.

parse the route → plan the rule (expression, JSON deny body naming the incident, a `ref` that finds it
again) → apply: read the zone's custom-rules entry point; create it with PUT only when it does not exist,
otherwise add our one rule with POST, so the zone's own rules are never replaced. Asking twice finds the
rule by its `ref` and adds nothing. The incident file records rule id, route, start and expiry (front
matter `containment`, the Containment table, the timeline); expiry is reported, never auto-lifted.
`/lift` deletes the rule and records `lifted`. After containing, the deny response is checked over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from incidentops.adapters import smoke as runner
from incidentops.adapters.cloudflare import WAF_PHASE, AmbiguousWriteError, CloudflareClient, Ruleset, block_rule
from incidentops.config import Environment
from incidentops.core import incidentfile as f
from incidentops.core import routes
from incidentops.core.declare import incident_id, incident_path
from incidentops.core.events import Event
from incidentops.core.routes import Route, proposal_digest
from incidentops.core.timefmt import format_ts, parse_ts
from incidentops.errors import ApiError, IncidentOpsError
from incidentops.flows import smoke
from incidentops.flows.base import Outcome, Ports, file_url, reply_once
from incidentops.render import render

DEFAULT_EXPIRY = timedelta(hours=4)  # the playbook's deny is temporary: reported when due, lifted by a person


def _expiry(ports: Ports) -> timedelta:
    """`containment.expiry_hours` from incidentops.yaml, else the default."""
    hours = (ports.config.extra.get("containment") or {}).get("expiry_hours")
    return timedelta(hours=hours) if hours else DEFAULT_EXPIRY


DENY_STATUS = 403
TABLE_HEADER = "| route | rule | since | expires | lifted |"
# Deny checks right after containing: the edge may take a moment to apply a new rule.
VERIFY = runner.Settings(concurrency=8, timeout=5.0, retries=2, retry_delay=0.5, deadline=15.0)


# -- pure: route, rule, record ------------------------------------------------------------------------


def environment_hosts(env: Environment) -> list[str]:
    """Host names of the environment's base URLs, in config order."""
    return routes.hosts_of(env.base_urls)


def parse_route(text: str, env: Environment) -> Route:
    """A route this may deny (core/routes.py says which), or an IncidentOpsError saying what to write instead."""
    try:
        return routes.parse_route(text, env.name, environment_hosts(env))
    except routes.RouteError as err:
        raise IncidentOpsError(err.message, hint=err.hint) from err


def rule_ref(inc: str, route: Route) -> str:
    """The tag our rule carries, so it is found again (and never duplicated) by a later run."""
    return f"incidentops-{inc}-{route.slug}"


def expression(route: Route) -> str:
    """A rules-language expression matching the route's path (and anything below it) on its hosts."""
    host = (
        f'http.host eq "{route.hosts[0]}"'
        if len(route.hosts) == 1
        else "http.host in {" + " ".join(f'"{h}"' for h in route.hosts) + "}"
    )
    assert route.path != "/", "core/routes.py never lets a whole host through"
    path = f'(http.request.uri.path eq "{route.path}" or starts_with(http.request.uri.path, "{route.path}/"))'
    return f"({host} and {path})"


def deny_content(inc: str, route: Route) -> str:
    """The JSON deny body: it names the incident so a caller (and the smoke check) can tell why."""
    return json.dumps(
        {"error": "temporarily disabled", "incident": inc, "route": route.path, "reason": "tenant data protection"},
        separators=(",", ":"),
    )


def rule_for(inc: str, route: Route) -> dict[str, Any]:
    """The WAF custom rule body that denies `route` for incident `inc`."""
    return block_rule(
        expression(route),
        description=f"{inc}: temporary deny on {route.text} (incidentops)",
        ref=rule_ref(inc, route),
        status=DENY_STATUS,
        content=deny_content(inc, route),
        content_type="application/json",
    )


def _active(entries: Sequence[Any], route: Route) -> dict[str, Any] | None:
    for entry in entries:
        if isinstance(entry, dict) and entry.get("route") == route.text and not entry.get("lifted"):
            return entry
    return None


def _table_row(entry: Mapping[str, Any]) -> str:
    lifted = entry.get("lifted") or "—"
    cells = [f"`{f.escape_cell(str(entry['route']))}`", f"`{f.escape_cell(str(entry.get('rule_id')))}`"]
    cells += [f.escape_cell(str(entry.get("since"))), f.escape_cell(str(entry.get("expires"))), f.escape_cell(lifted)]
    return "| " + " | ".join(cells) + " |"


def _show(text: str, shown: str | None, entry: Mapping[str, Any]) -> str:
    """Update the route's row in the Containment table (one row per containment), or add it."""
    row = _table_row(entry)
    if shown is not None:
        updated = f.replace_table_row(text, "Containment", shown, row)
        if updated is not None:
            return updated
    return f.append_table_row(text, "Containment", row, TABLE_HEADER)


def record_contained(
    text: str,
    route: Route,
    rule_id: str,
    ref: str,
    actor: str,
    now: datetime,
    key: str,
    expiry: timedelta = DEFAULT_EXPIRY,
) -> tuple[str, str] | None:
    """The incident text with the containment recorded, and what changed; None when nothing changes."""
    if f.has_event(text, key):
        return None
    fields = f.read_fields(text)
    entries = [dict(e) if isinstance(e, dict) else e for e in fields.get("containment") or []]
    at = format_ts(now)
    until = format_ts(now + expiry)
    entry = _active(entries, route)
    shown = _table_row(entry) if entry is not None else None
    if entry is not None and entry.get("rule_id") == rule_id:
        try:
            due = parse_ts(str(entry.get("expires")))
        except ValueError:
            due = now
        if due > now:
            return None
        entry["expires"] = until
        what, change = f"Containment of {route.text} renewed until {until} (rule {rule_id})", "renewed"
    elif entry is not None:
        entry["rule_id"] = rule_id
        what, change = f"Containment of {route.text}: deny rule was missing, re-added as {rule_id}", "re-added"
    else:
        entry = {
            "route": route.text,
            "hosts": list(route.hosts),
            "rule_id": rule_id,
            "ref": ref,
            "since": at,
            "expires": until,
            "lifted": None,
            "by": actor,
        }
        entries.append(entry)
        what = f"Contained {route.text}: deny response {DENY_STATUS} via WAF rule {rule_id}, expires {until}"
        change = "contained"
    updates: dict[str, Any] = {"containment": entries}
    if fields.get("status") == "declared":
        updates["status"] = "contained"
    text = _show(f.set_fields(text, updates), shown, entry)
    text = f.append_timeline(text, f.TimelineRow(at, actor, what, f"`/contain {route.text}`", key))
    return text, change


def record_lifted(text: str, route: Route, rule_id: str | None, actor: str, now: datetime, key: str) -> str | None:
    """The incident text with the containment marked lifted; None when nothing changes."""
    if f.has_event(text, key):
        return None
    fields = f.read_fields(text)
    entries = [dict(e) if isinstance(e, dict) else e for e in fields.get("containment") or []]
    entry = _active(entries, route)
    if entry is None and rule_id is None:
        return None
    at = format_ts(now)
    if entry is not None:
        shown = _table_row(entry)
        entry["lifted"] = at
        entry["lifted_by"] = actor
        text = _show(f.set_fields(text, {"containment": entries}), shown, entry)
    deleted = f"WAF rule {rule_id} deleted" if rule_id else "no rule was left to delete"
    row = f.TimelineRow(at, actor, f"Lifted containment of {route.text} ({deleted})", f"`/lift {route.text}`", key)
    return f.append_timeline(text, row)


# -- Cloudflare ---------------------------------------------------------------------------------------


async def _ensure_rule(cf: CloudflareClient, zone: str, rule: Mapping[str, Any]) -> tuple[str, str]:
    """Make sure our rule exists and is on; return (rule id, what was done)."""
    ref = str(rule["ref"])
    async with cf:
        ruleset = await cf.get_entrypoint_ruleset(zone, WAF_PHASE)
        if ruleset is None:
            # The zone has no custom rules at all: creating the entry point replaces nothing.
            created = await cf.put_entrypoint_ruleset(zone, [rule], WAF_PHASE)
            return _found(created, ref), "created the zone's custom-rules entry point with the deny rule"
        existing = ruleset.find(ref)
        if existing is not None:
            if not existing.enabled:
                await cf.set_rule_enabled(zone, ruleset.id, existing, True)
                return existing.id, "re-enabled the existing deny rule"
            return existing.id, "the deny rule was already in place"
        try:
            added = await cf.add_rule(zone, ruleset.id, rule)
        except AmbiguousWriteError:
            # The answer was lost: look for our ref before doing anything else.
            again = await cf.get_entrypoint_ruleset(zone, WAF_PHASE)
            if again is not None and again.find(ref) is not None:
                return _found(again, ref), "added the deny rule (confirmed by re-reading)"
            raise
        return _found(added, ref), f"added the deny rule to ruleset {ruleset.id} (other rules untouched)"


def _found(ruleset: Ruleset, ref: str) -> str:
    rule = ruleset.find(ref)
    if rule is None:
        raise ApiError("Cloudflare", f"the ruleset has no rule with ref {ref} after adding it")
    return rule.id


async def _remove_rule(cf: CloudflareClient, zone: str, ref: str) -> str | None:
    async with cf:
        ruleset = await cf.get_entrypoint_ruleset(zone, WAF_PHASE)
        rule = ruleset.find(ref) if ruleset else None
        if ruleset is None or rule is None:
            return None
        try:
            await cf.delete_rule(zone, ruleset.id, rule.id)
        except ApiError as err:
            if err.status != 404:  # already gone is what we wanted
                raise
        return rule.id


# -- flows --------------------------------------------------------------------------------------------


def _incident(ports: Ports, number: int) -> tuple[str, dict[str, Any], Environment]:
    path = incident_path(ports.config, number)
    ports.git.sync()
    text = ports.git.read(path)
    if text is None:
        raise IncidentOpsError(f"no incident file {path}", hint="Declare the incident first (label the issue sev-1).")
    fields = f.read_fields(text)
    env = ports.config.environment(str(fields.get("environment") or "")) or ports.config.environment("production")
    if env is None:
        raise IncidentOpsError("the incident's environment is not configured and there is no 'production'")
    return path, fields, env


def _cloudflare(ports: Ports, env: Environment) -> CloudflareClient:
    if ports.cloudflare is None:
        raise IncidentOpsError("no Cloudflare client configured", hint="Set CLOUDFLARE_API_TOKEN.")
    return ports.cloudflare(env.account_id)


def _verify_deny(ports: Ports, env: Environment, route: Route, inc: str) -> tuple[bool, list[str]]:
    entry = {"route": route.path, "hosts": list(route.hosts)}
    checks = smoke.deny_checks(ports.config, env.name, [entry], inc, "containment")
    try:
        urls = smoke.base_urls_for(ports.config, env.name, os.environ)
    except IncidentOpsError as err:
        return False, [f"deny response not checked: {err}"]
    planned = smoke.plan(checks, urls, os.environ, smoke.host_keys(ports.config, env.name))
    results = smoke.execute(planned, VERIFY)
    notes = []
    for r in results:
        if r.result == "passed":
            notes.append(f"deny verified: {r.check} ({r.status}, {r.latency_ms or 0:.0f} ms)")
        else:
            notes.append(f"deny NOT verified: {r.check}: {r.reason}")
    return bool(results) and all(r.result == "passed" for r in results), notes


def contain_route(ports: Ports, number: int, route: str, actor: str, key: str) -> Outcome:
    """Deny `route` at the edge for incident #number (once), record it, and check the deny response."""
    inc = incident_id(number)
    path, _, env = _incident(ports, number)
    parsed = parse_route(route, env)
    ref = rule_ref(inc, parsed)
    rule_id, done = asyncio.run(_ensure_rule(_cloudflare(ports, env), env.zone_id, rule_for(inc, parsed)))
    steps = [f"{done} (rule {rule_id}, ref {ref})"]
    now = ports.clock()
    row_key = f"{key}:contain:{parsed.slug}"
    changed: dict[str, str] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        result = record_contained(text, parsed, rule_id, ref, actor, now, row_key, _expiry(ports))
        if result is None:
            return {}
        changed["kind"] = result[1]
        return {path: ports.redact(result[0])}

    commit = ports.git.commit(edit, f"{inc}: contain {parsed.text} (@{actor})")
    if commit.sha:
        steps.append(f"recorded the containment in {path} ({commit.sha[:12]})")
    verified, notes = _verify_deny(ports, env, parsed, inc)
    steps += notes
    text = ports.git.read(path) or ""
    entry = _active(f.read_fields(text).get("containment") or [], parsed) if text else None
    kind = changed.get("kind", "unchanged")
    marker = (
        f"<!-- incidentops:contain:{inc}:{f.escape_cell(ref)}:{rule_id}:{entry.get('expires') if entry else ''} -->"
    )
    if kind != "unchanged" or not verified:
        body = render(
            "contain-comment.md.j2",
            ports.workspace,
            marker=marker,
            kind=kind,
            incident=inc,
            route=parsed.text,
            hosts=list(parsed.hosts),
            rule_id=rule_id,
            entry=entry or {},
            status=DENY_STATUS,
            content=deny_content(inc, parsed),
            expression=expression(parsed),
            verified=verified,
            notes=notes,
            file_url=file_url(ports, path),
        )
        posted = ports.github.post_comment_once(number, marker, ports.redact(body))
        if posted.created:
            steps.append(f"posted the containment comment ({posted.url})")
    steps += smoke.expiry_notes(f.read_fields(text), now) if text else []
    message = (
        f"{inc}: {parsed.text} is already contained (rule {rule_id}, expires {entry.get('expires') if entry else '?'})"
        if kind == "unchanged"
        else f"{inc}: {kind} {parsed.text} — requests get {DENY_STATUS} (rule {rule_id})"
    )
    return Outcome(
        "contained" if kind != "unchanged" else "unchanged",
        message + ("" if verified else "; the deny response could not be verified"),
        incident_id=inc,
        path=path,
        steps=steps,
        level="notice" if verified else "warning",
        details={"rule_id": rule_id, "ref": ref, "verified": verified},
    )


def lift_route(ports: Ports, number: int, route: str, actor: str, key: str) -> Outcome:
    """Delete the deny rule of `route` for incident #number and record `lifted`."""
    inc = incident_id(number)
    path, _, env = _incident(ports, number)
    parsed = parse_route(route, env)
    ref = rule_ref(inc, parsed)
    rule_id = asyncio.run(_remove_rule(_cloudflare(ports, env), env.zone_id, ref))
    steps = [f"deleted WAF rule {rule_id} (ref {ref})" if rule_id else f"no WAF rule with ref {ref} was in place"]
    now = ports.clock()
    row_key = f"{key}:lift:{parsed.slug}"
    changed: dict[str, bool] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        new = record_lifted(text, parsed, rule_id, actor, now, row_key)
        if new is None:
            return {}
        changed["yes"] = True
        return {path: ports.redact(new)}

    commit = ports.git.commit(edit, f"{inc}: lift containment of {parsed.text} (@{actor})")
    if commit.sha:
        steps.append(f"recorded the lift in {path} ({commit.sha[:12]})")
    if not changed and rule_id is None:
        text = ports.git.read(path) or ""
        if not f.has_event(text, row_key):
            return Outcome("unchanged", f"{inc}: {parsed.text} is not contained; nothing to lift", inc, path, steps)
    marker = f"<!-- incidentops:lift:{inc}:{f.escape_cell(row_key)} -->"
    body = render(
        "contain-comment.md.j2",
        ports.workspace,
        marker=marker,
        kind="lifted",
        incident=inc,
        route=parsed.text,
        hosts=list(parsed.hosts),
        rule_id=rule_id or "",
        entry={},
        status=DENY_STATUS,
        content="",
        expression="",
        verified=True,
        notes=[],
        file_url=file_url(ports, path),
    )
    posted = ports.github.post_comment_once(number, marker, ports.redact(body))
    if posted.created:
        steps.append(f"posted the lift comment ({posted.url})")
    return Outcome("lifted", f"{inc}: lifted containment of {parsed.text}", inc, path, steps)


def _routes(args: str) -> list[str]:
    return [r for r in re.split(r"[\s,]+", args.strip()) if r]


def _each(
    event: Event, ports: Ports, args: str, verb: str, run: Callable[[Ports, int, str, str, str], Outcome]
) -> Outcome:
    assert event.issue is not None
    routes = _routes(args)
    number = event.issue.number
    if not routes:
        return _rejected(event, ports, f"/{verb} needs a route, e.g. `/{verb} /v1/reports`")
    outcomes = []
    for route in routes[:10]:
        try:
            outcomes.append(run(ports, number, route, event.sender, event.key))
        except IncidentOpsError as err:
            if isinstance(err, ApiError):
                raise
            return _rejected(event, ports, str(err))
    return _combine(outcomes)


def _combine(outcomes: Sequence[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    first = outcomes[0]
    return Outcome(
        next((o.status for o in outcomes if o.status not in ("unchanged", "skipped")), first.status),
        "; ".join(o.message for o in outcomes),
        incident_id=first.incident_id,
        path=first.path,
        steps=[s for o in outcomes for s in o.steps],
        exit_code=max(o.exit_code for o in outcomes),
        level="warning" if any(o.level != "notice" for o in outcomes) else "notice",
    )


def _rejected(event: Event, ports: Ports, problem: str) -> Outcome:
    reply_once(event, ports, "rejected", "contain-rejected.md.j2", problem=problem)
    return Outcome("rejected", problem, exit_code=1, level="error", steps=["explained the problem in a comment"])


def contain_command(event: Event, ports: Ports, args: str) -> Outcome:
    """`/contain <route> [route …]` or `/contain confirm <digest>` on an incident issue."""
    first, _, rest = args.strip().partition(" ")
    if first == "confirm":
        return confirm_command(event, ports, rest)
    return _each(event, ports, args, "contain", contain_route)


def lift_command(event: Event, ports: Ports, args: str) -> Outcome:
    """`/lift <route> [route …]` on an incident issue."""
    return _each(event, ports, args, "lift", lift_route)


def proposal(fields: Mapping[str, Any], env: Environment) -> tuple[list[Route], list[str]]:
    """The incident's recorded routes that may be contained, and why each other one may not."""
    raw = (fields.get("impact") or {}).get("routes")
    accepted: dict[str, Route] = {}
    problems = []
    for text in (raw if isinstance(raw, list) else [])[:10]:
        try:
            route = parse_route(str(text), env)
        except IncidentOpsError as err:
            problems.append(f"{f.clean_line(str(text), 80)}: {err}")
            continue
        accepted.setdefault(route.text, route)
    return list(accepted.values()), problems


def _propose(ports: Ports, number: int, inc: str, routes: list[Route], problems: list[str]) -> str:
    """Post (once per distinct proposal) the routes, hosts and exact rule expressions a person may confirm."""
    digest = proposal_digest(routes)
    marker = f"<!-- incidentops:contain-proposal:{inc}:{digest if routes else 'none'} -->"
    body = render(
        "contain-proposal.md.j2",
        ports.workspace,
        marker=marker,
        incident=inc,
        rows=[{"route": r.text, "hosts": list(r.hosts), "expression": expression(r)} for r in routes],
        problems=problems,
        digest=digest,
        role=ports.config.permissions["contain"],
        status=DENY_STATUS,
    )
    ports.github.post_comment_once(number, marker, ports.redact(body))
    return digest


def contain_on_declare(event: Event, ports: Ports, number: int) -> Outcome:
    """After a declaration that says tenant isolation is at risk, PROPOSE containing its routes (never raising).

    Nothing is denied on the form's word: the issue's author may have written (or edited in) any route, and the
    labeller may not have read it. A person with the `contain` role applies exactly the routes shown, with their rule
    expressions, by commenting `/contain confirm <digest>`.
    """
    inc = incident_id(number)
    text = ports.git.read(incident_path(ports.config, number))
    fields = f.read_fields(text) if text else {}
    if fields.get("tenant_isolation_risk") is not True:
        return Outcome("skipped", f"{inc}: tenant isolation is not at risk; no automatic containment")
    recorded = (fields.get("impact") or {}).get("routes")
    if not isinstance(recorded, list) or not recorded:
        return Outcome(
            "skipped",
            f"{inc}: tenant isolation is at risk but no impacted route is known; comment /contain <route>",
            level="warning",
        )
    env = ports.config.environment(str(fields.get("environment") or "")) or ports.config.environment("production")
    if env is None:
        return Outcome("skipped", f"{inc}: no environment to contain in; comment /contain <route>", level="warning")
    try:
        accepted, problems = proposal(fields, env)
        digest = _propose(ports, number, inc, accepted, problems)
    except IncidentOpsError as err:
        return Outcome("failed", f"{inc}: containment not proposed: {err} (comment /contain <route>)", level="warning")
    steps = [f"refused route {p}" for p in problems]
    if not accepted:
        return Outcome("proposed", f"{inc}: no form route may be contained as written", steps=steps, level="warning")
    names = ", ".join(r.text for r in accepted)
    return Outcome(
        "proposed",
        f"{inc}: containment of {names} proposed; a person with the contain role confirms: /contain confirm {digest}",
        incident_id=inc,
        steps=steps,
        details={"digest": digest, "routes": [r.text for r in accepted]},
    )


def confirm_command(event: Event, ports: Ports, args: str) -> Outcome:
    """`/contain confirm <digest>`: contain exactly the proposed routes, if they are still the ones proposed.

    The commands flow has already checked the commenter holds the `contain` role. The routes come from the incident
    file (the issue body as it was when declared, plus /evidence routes); the digest proves they are the ones the
    person read in the proposal, so a later edit or addition cannot ride on the confirmation.
    """
    assert event.issue is not None
    number = event.issue.number
    inc = incident_id(number)
    _, fields, env = _incident(ports, number)
    accepted, problems = proposal(fields, env)
    digest = proposal_digest(accepted)
    given = args.split()[0] if args.split() else ""
    if not accepted:
        return _rejected(event, ports, f"{inc} has no route that may be contained; use /contain <host/path>")
    if given != digest:
        _propose(ports, number, inc, accepted, problems)
        return _rejected(
            event,
            ports,
            f"`/contain confirm` needs the digest of the proposal you read; the current proposal "
            f"({', '.join(r.text for r in accepted)}) is `{digest}`"
            + (f", not `{f.clean_line(given, 20)}`" if given else "")
            + ". Read it above, then comment `/contain confirm "
            + digest
            + "`",
        )
    return _combine([contain_route(ports, number, r.text, event.sender, event.key) for r in accepted])
