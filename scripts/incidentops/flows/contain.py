"""Containment: a temporary deny response on routes, as one Cloudflare WAF custom rule per incident, recorded.

parse the route → plan the incident's rule (every active route of the incident in one expression, paths compared
lower-cased, a custom JSON deny body on paid plans and Cloudflare's block page on Free, a `ref` that finds it again)
→ apply: read the zone (its plan and rule limit) and its custom-rules entry point; create it with PUT only when it
does not exist, otherwise add the rule with POST at the top of the list (so no `skip` rule above it lets traffic
past), or edit it in place when the incident already has one. The zone's own rules are never replaced; asking
twice adds nothing. Then the deny response is checked over HTTP, polling through Cloudflare's propagation delay
until a deadline, and the incident file records rule id, route, start, expiry and whether the deny was seen
(front matter `containment`, the Containment table, the timeline). `/lift` takes the route out of the rule and
deletes the rule with the incident's last route. Expiry is reported, never auto-lifted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from incidentops.adapters import smoke as runner
from incidentops.adapters.cloudflare import (
    WAF_PHASE,
    AmbiguousWriteError,
    CloudflareClient,
    Rule,
    Ruleset,
    Zone,
    block_rule,
)
from incidentops.adapters.cloudflare import prepare as prepare_cloudflare
from incidentops.adapters.git import SYNC_FRESH_FOR
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
from incidentops.render import environment, render

DEFAULT_EXPIRY = timedelta(hours=4)  # the playbook's deny is temporary: reported when due, lifted by a person


def _expiry(ports: Ports) -> timedelta:
    """`containment.expiry_hours` from incidentops.yaml, else the default."""
    hours = (ports.config.extra.get("containment") or {}).get("expiry_hours")
    return timedelta(hours=hours) if hours else DEFAULT_EXPIRY


DENY_STATUS = 403
TABLE_HEADER = "| route | rule | since | expires | lifted |"
# Rule changes reach Cloudflare's edge in seconds, not at once (real-world-facts Cloudflare 7): the deny check
# polls until it sees the deny or this many seconds have passed (`containment.verify_seconds` overrides it).
VERIFY_DEADLINE = 45.0
# How often the deny is looked at (a look is one request per host of the route), from the start of one look to the
# next: often while a rule usually arrives, since each pause can delay the verdict "contained" by as much once the
# rule has reached the edge (a look never starts before the one before it has its answers); then seldom, for a
# change that is slow to arrive.
VERIFY_FAST_FOR, VERIFY_FAST, VERIFY_SLOW = 10.0, 0.1, 1.0
VERIFY = runner.Settings(concurrency=8, timeout=5.0, retries=0, retry_delay=0.0, deadline=10.0)
NOT_YET_VERIFIED = "not yet verified"
REPLY_TEMPLATE = "contain-comment.md.j2"


def _verify_deadline(ports: Ports) -> float:
    seconds = (ports.config.extra.get("containment") or {}).get("verify_seconds")
    return float(seconds) if seconds is not None else VERIFY_DEADLINE


def load() -> None:
    """Load what a containment run needs before its first Cloudflare request: httpx and the TLS context its client
    is built with (the commands flow calls this while it reads the commenter's role)."""
    prepare_cloudflare()


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


def rule_ref(inc: str, route: Route | None = None) -> str:
    """The tag the incident's one rule carries, so it is found again (and never duplicated) by a later run.

    One rule per incident, whatever its routes: one rule per route would run out of the zone's custom rules fast
    (5 on Free; real-world-facts Cloudflare 4).
    """
    return f"incidentops-{inc}"


_PATH_FIELD = "lower(http.request.uri.path)"


def expression(route: Route) -> str:
    """A rules-language expression matching the route's path (and anything below it) on its hosts, in any case.

    The edge compares paths case-sensitively, so `/V1/Reports` would slip past `eq "/v1/reports"`; comparing
    `lower(http.request.uri.path)` with the lower-cased route closes that (real-world-facts Cloudflare 6).
    """
    host = (
        f'http.host eq "{route.hosts[0]}"'
        if len(route.hosts) == 1
        else "http.host in {" + " ".join(f'"{h}"' for h in route.hosts) + "}"
    )
    assert route.path != "/", "core/routes.py never lets a whole host through"
    path = route.path.lower()
    return f'({host} and ({_PATH_FIELD} eq "{path}" or starts_with({_PATH_FIELD}, "{path}/")))'


def incident_expression(routes: Sequence[Route]) -> str:
    """The incident rule's expression: any of its routes."""
    return " or ".join(expression(r) for r in routes)


def deny_content(inc: str, route: Route | None = None) -> str:
    """The JSON deny body (paid plans): it names the incident so a caller (and the smoke check) can tell why."""
    return json.dumps(
        {"error": "temporarily disabled", "incident": inc, "reason": "tenant data protection"},
        separators=(",", ":"),
    )


def incident_rule(inc: str, routes: Sequence[Route], zone: Zone) -> dict[str, Any]:
    """The WAF custom rule that denies every route of the incident: a custom response on paid plans only.

    A custom block response on a Free zone is refused by Cloudflare; there a plain block answers Cloudflare's
    own 403 block page (cloudflare-docs waf/custom-rules; docs issue #22900).
    """
    return block_rule(
        incident_expression(routes),
        description=f"{inc}: temporary deny on {', '.join(r.text for r in routes)} (incidentops)"[:500],
        ref=rule_ref(inc),
        status=DENY_STATUS,
        content=deny_content(inc),
        content_type="application/json",
        custom_response=zone.paid,
    )


def route_of(entry: Mapping[str, Any], env: Environment) -> Route | None:
    """The route a recorded containment entry denies (as it was recorded, even if stricter rules came since)."""
    text = str(entry.get("route") or "")
    try:
        return parse_route(text, env)
    except IncidentOpsError:
        hosts = tuple(str(h) for h in entry.get("hosts") or [])
        if "/" not in text or not hosts:
            return None
        return Route(text[text.index("/") :], hosts, scoped=not text.startswith("/"))


def active_routes(fields: Mapping[str, Any], env: Environment) -> list[Route]:
    """The routes the incident's rule must cover now: its containments not lifted, in the order recorded."""
    found: dict[str, Route] = {}
    for entry in fields.get("containment") or []:
        if isinstance(entry, Mapping) and not entry.get("lifted"):
            route = route_of(entry, env)
            if route is not None:
                found.setdefault(route.text, route)
    return list(found.values())


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
    response: str = "custom",
    verified: str | None = None,
) -> tuple[str, str] | None:
    """The incident text with the containment recorded, and what changed; None when nothing changes.

    `response` is what the deny answers ("custom": our JSON body; "block-page": Cloudflare's block page on a Free
    zone); `verified` when the deny was seen over HTTP, or NOT_YET_VERIFIED.
    """
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
            if not verified or verified == NOT_YET_VERIFIED or entry.get("verified") != NOT_YET_VERIFIED:
                return None
            entry["verified"] = verified
            what, change = f"Deny response on {route.text} seen at {verified} (rule {rule_id})", "verified"
        else:
            entry["expires"] = until
            entry["verified"] = verified or NOT_YET_VERIFIED
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
            "response": response,
            "verified": verified or NOT_YET_VERIFIED,
        }
        entries.append(entry)
        page = "Cloudflare's block page" if response == "block-page" else "deny response"
        seen = f"seen at {verified}" if verified and verified != NOT_YET_VERIFIED else NOT_YET_VERIFIED
        what = f"Contained {route.text}: {page} {DENY_STATUS} via WAF rule {rule_id} ({seen}), expires {until}"
        change = "contained"
    updates: dict[str, Any] = {"containment": entries}
    if fields.get("status") == "declared":
        updates["status"] = "contained"
    text = _show(f.set_fields(text, updates), shown, entry)
    text = f.append_timeline(text, f.TimelineRow(at, actor, what, f"`/contain {route.text}`", key))
    return text, change


def record_lifted(
    text: str, route: Route, rule_id: str | None, actor: str, now: datetime, key: str, what: str | None = None
) -> str | None:
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
    deleted = what or (f"WAF rule {rule_id} deleted" if rule_id else "no rule was left to delete")
    row = f.TimelineRow(at, actor, f"Lifted containment of {route.text} ({deleted})", f"`/lift {route.text}`", key)
    return f.append_timeline(text, row)


# -- Cloudflare ---------------------------------------------------------------------------------------


def _limit_error(zone: Zone, count: int, inc: str) -> IncidentOpsError:
    return IncidentOpsError(
        f"zone {zone.name or zone.id} already has {count} custom rules, the most its {zone.plan or 'current'} "
        f"plan allows ({zone.rule_limit}); {inc}'s deny rule was not added",
        hint="Delete or merge a custom rule in the zone (Security → WAF → Custom rules), or move the zone to a "
        "plan with more rules, then ask again.",
    )


async def _apply_rule(
    cf: CloudflareClient, zone_id: str, inc: str, routes: Sequence[Route]
) -> tuple[str | None, str, Zone]:
    """Make the incident's one rule deny exactly `routes`, first in the list; return (rule id, what was done, zone).

    With no routes left the rule is deleted. A new rule is added only when the zone's plan has room for it.
    """
    ref = rule_ref(inc)
    async with cf:
        # Two reads, side by side: the zone (its plan and rule limit) and the custom rules as they are now.
        zone, ruleset = await asyncio.gather(cf.get_zone(zone_id), cf.get_entrypoint_ruleset(zone_id, WAF_PHASE))
        existing = ruleset.find(ref) if ruleset else None
        if not routes:
            if ruleset is None or existing is None:
                return None, "no deny rule was in place", zone
            try:
                await cf.delete_rule(zone_id, ruleset.id, existing.id)
            except ApiError as err:
                if err.status != 404:  # already gone is what we wanted
                    raise
            return existing.id, f"deleted the deny rule {existing.id} (no route of {inc} left to deny)", zone
        rule = incident_rule(inc, routes, zone)
        if ruleset is None:
            # The zone has no custom rules at all: creating the entry point replaces nothing.
            created = await cf.put_entrypoint_ruleset(zone_id, [rule], WAF_PHASE)
            return _found(created, ref), "created the zone's custom-rules entry point with the deny rule", zone
        if existing is not None:
            return await _update_rule(cf, zone, ruleset, existing, rule)
        if zone.rule_limit is not None and len(ruleset.rules) >= zone.rule_limit:
            raise _limit_error(zone, len(ruleset.rules), inc)
        try:
            # First in the list: a `skip` rule above the deny would let its traffic past (Rulesets API, "Add rule
            # to ruleset": without `position` a rule goes last; `{"before": ""}` puts it first).
            added = await cf.add_rule(zone_id, ruleset.id, rule, position={"before": ""})
        except AmbiguousWriteError:
            # The answer was lost: look for our ref before doing anything else.
            again = await cf.get_entrypoint_ruleset(zone_id, WAF_PHASE)
            if again is not None and again.find(ref) is not None:
                return _found(again, ref), "added the deny rule first in the list (confirmed by re-reading)", zone
            raise
        return _found(added, ref), f"added the deny rule first in ruleset {ruleset.id} (other rules untouched)", zone


async def _update_rule(
    cf: CloudflareClient, zone: Zone, ruleset: Ruleset, existing: Rule, rule: Mapping[str, Any]
) -> tuple[str, str, Zone]:
    """Edit the incident's rule in place when its routes, response or place in the list are not what they should be."""
    first = ruleset.rules[0].id == existing.id
    same = (
        existing.expression == rule["expression"]
        and existing.enabled
        and dict(existing.action_parameters) == dict(rule.get("action_parameters") or {})
    )
    if same and first:
        return existing.id, "the deny rule was already in place", zone
    body = dict(rule)
    if not first:
        body["position"] = {"before": ""}
    await cf.update_rule(zone.id, ruleset.id, existing.id, body)
    moved = " and moved it first in the list" if not first else ""
    return existing.id, f"updated the deny rule {existing.id} to cover the incident's routes{moved}", zone


def _found(ruleset: Ruleset, ref: str) -> str:
    rule = ruleset.find(ref)
    if rule is None:
        raise ApiError("Cloudflare", f"the ruleset has no rule with ref {ref} after adding it")
    return rule.id


# -- flows --------------------------------------------------------------------------------------------


def _incident(ports: Ports, number: int) -> tuple[str, dict[str, Any], Environment]:
    path = incident_path(ports.config, number)
    # The command's run read the incident a moment ago (and checked the role on it): that read is current enough,
    # as runs on one incident never overlap (one concurrency group) and the commit re-applies on the tip anyway.
    ports.git.sync(reuse_within=SYNC_FRESH_FOR)
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
        raise IncidentOpsError(
            "CLOUDFLARE_API_TOKEN is not set.",
            hint="It is a secret of the production environment: only the job that names the environment gets it.",
        )
    return ports.cloudflare(env.account_id)


def _verify_deny(ports: Ports, env: Environment, route: Route, inc: str, response: str) -> tuple[bool, list[str]]:
    """Check over HTTP that the route answers the deny, polling through propagation until the deadline."""
    entry = {"route": route.path, "hosts": list(route.hosts), "response": response}
    checks = smoke.deny_checks(ports.config, env.name, [entry], inc, "containment")
    try:
        urls = smoke.base_urls_for(ports.config, env.name, os.environ)
    except IncidentOpsError as err:
        return False, [f"deny response not checked: {err}"]
    planned = smoke.plan(checks, urls, os.environ, smoke.host_keys(ports.config, env.name))
    if not planned:
        return False, [f"deny response not checked: no base URL for {', '.join(route.hosts)}"]
    deadline, started, attempts = _verify_deadline(ports), time.monotonic(), 0
    while True:
        attempts += 1
        look = time.monotonic()
        results = smoke.execute(planned, VERIFY)
        verified = bool(results) and all(r.result == "passed" for r in results)
        waited = time.monotonic() - started
        every = VERIFY_FAST if look - started < VERIFY_FAST_FOR else VERIFY_SLOW
        pause = max(0.0, look + every - time.monotonic())
        if verified or waited + pause > deadline:
            break
        time.sleep(pause)
    if verified:
        return True, [f"deny verified: {r.check} ({r.status}; {attempts} check(s) in {waited:.1f} s)" for r in results]
    notes = [
        f"deny {NOT_YET_VERIFIED} after {waited:.0f} s ({attempts} checks): Cloudflare may still be applying the "
        "rule; run `/smoke` to check again"
    ]
    notes += [f"{r.check}: {r.reason}" for r in results if r.result != "passed"]
    return False, notes


def _prepare_reply(ports: Ports, number: int) -> None:
    """Read the issue's comments (the run reads them once; the reply is looked up by its marker before it is posted)
    and load the reply's template. Its outcome is not consulted: what fails here is done again, and fails visibly,
    when the reply is posted."""
    ports.github.comments(number)
    environment(str(ports.workspace)).get_template(REPLY_TEMPLATE)


def contain_route(ports: Ports, number: int, route: str, actor: str, key: str) -> Outcome:
    """Deny `route` at the edge for incident #number (once), check the deny response, and record both."""
    inc = incident_id(number)
    path, fields, env = _incident(ports, number)
    parsed = parse_route(route, env)
    ref = rule_ref(inc)
    covered = active_routes(fields, env)
    wanted = covered if parsed.text in {r.text for r in covered} else [*covered, parsed]
    rule_id, done, zone = asyncio.run(_apply_rule(_cloudflare(ports, env), env.zone_id, inc, wanted))
    assert rule_id is not None
    response = "custom" if zone.paid else "block-page"
    steps = [f"{done} (rule {rule_id}, ref {ref}, zone plan {zone.plan or 'unknown'})"]
    # While the edge takes the rule (seconds), the reply is made ready: only reads, nothing is written before the
    # deny has been checked and recorded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contain") as pool:
        pool.submit(_prepare_reply, ports, number)
        verified, notes = _verify_deny(ports, env, parsed, inc, response)
    steps += notes
    now = ports.clock()
    seen = format_ts(now) if verified else NOT_YET_VERIFIED
    row_key = f"{key}:contain:{parsed.slug}"
    changed: dict[str, str] = {}

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        result = record_contained(text, parsed, rule_id, ref, actor, now, row_key, _expiry(ports), response, seen)
        if result is None:
            return {}
        changed["kind"] = result[1]
        return {path: ports.redact(result[0])}

    commit = ports.git.commit(edit, f"{inc}: contain {parsed.text} (@{actor})")
    if commit.sha:
        steps.append(f"recorded the containment in {path} ({commit.sha[:12]})")
    text = ports.git.read(path) or ""
    entry = _active(f.read_fields(text).get("containment") or [], parsed) if text else None
    kind = changed.get("kind", "unchanged")
    marker = (
        f"<!-- incidentops:contain:{inc}:{f.escape_cell(parsed.slug)}:{rule_id}:"
        f"{entry.get('expires') if entry else ''} -->"
    )
    if kind != "unchanged" or not verified:
        body = render(
            REPLY_TEMPLATE,
            ports.workspace,
            marker=marker,
            kind=kind,
            incident=inc,
            route=parsed.text,
            hosts=list(parsed.hosts),
            rule_id=rule_id,
            entry=entry or {},
            status=DENY_STATUS,
            content=deny_content(inc) if response == "custom" else "",
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
        message + ("" if verified else f"; the deny response is {NOT_YET_VERIFIED}"),
        incident_id=inc,
        path=path,
        steps=steps,
        level="notice" if verified else "warning",
        details={"rule_id": rule_id, "ref": ref, "verified": verified, "response": response, "plan": zone.plan},
    )


def lift_route(ports: Ports, number: int, route: str, actor: str, key: str) -> Outcome:
    """Take `route` out of the incident's deny rule (deleting the rule with its last route) and record `lifted`."""
    inc = incident_id(number)
    path, fields, env = _incident(ports, number)
    parsed = parse_route(route, env)
    ref = rule_ref(inc)
    covered = active_routes(fields, env)
    remaining = [r for r in covered if r.text != parsed.text]
    rule_id, done, _ = asyncio.run(_apply_rule(_cloudflare(ports, env), env.zone_id, inc, remaining))
    steps = [f"{done} (ref {ref})"]
    now = ports.clock()
    row_key = f"{key}:lift:{parsed.slug}"
    changed: dict[str, bool] = {}
    was_contained = len(remaining) < len(covered)
    what = (
        f"route taken out of WAF rule {rule_id}"
        if remaining
        else f"WAF rule {rule_id} deleted"
        if rule_id
        else "no rule was left to delete"
    )

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None:
            return {}
        new = record_lifted(text, parsed, rule_id if was_contained else None, actor, now, row_key, what)
        if new is None:
            return {}
        changed["yes"] = True
        return {path: ports.redact(new)}

    commit = ports.git.commit(edit, f"{inc}: lift containment of {parsed.text} (@{actor})")
    if commit.sha:
        steps.append(f"recorded the lift in {path} ({commit.sha[:12]})")
    if not changed and not was_contained:
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
        rule_kept=bool(remaining),
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
        exit_code=max(o.exit_code or int(o.status == "failed") for o in outcomes),
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
