"""Exit criteria: `/resolve`, closing the incident issue, and `incidentops verify`; plus the measured blast radius.

gather facts (incident file, smoke result, Cloudflare Analytics) → evaluate (core.exit_criteria) → apply:
all met closes the incident (resolved, then closed, one summary comment, the issue closed, standing
follow-ups); anything unmet keeps it open (the issue reopened) with one comment listing what is missing.
Every write is keyed on the event, so a re-delivered event changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from incidentops.adapters.cloudflare import CloudflareClient
from incidentops.config import Environment, Service
from incidentops.core import exit_criteria as crit
from incidentops.core import incidentfile as f
from incidentops.core.declare import incident_id, incident_path
from incidentops.core.events import Event
from incidentops.core.timefmt import format_ts
from incidentops.errors import ApiError, IncidentOpsError
from incidentops.flows import measure
from incidentops.flows.base import Outcome, Ports, file_url, refuse
from incidentops.flows.followups import add_standing_followups
from incidentops.flows.smoke import run_smoke
from incidentops.render import render

ACTION = "resolve"  # the permission `/resolve` and closing the issue need


def thresholds(ports: Ports) -> crit.Thresholds:
    """Thresholds from `exit_criteria` in the configuration when present, else the defaults."""
    raw = ports.config.extra.get("exit_criteria") if isinstance(ports.config.extra, Mapping) else None
    if not isinstance(raw, Mapping):
        return crit.Thresholds()
    known = set(crit.Thresholds.__dataclass_fields__)
    return crit.Thresholds(**{k: v for k, v in raw.items() if k in known})


# -- facts ---------------------------------------------------------------------------------------


def _environment(ports: Ports, fields: Mapping[str, Any]) -> Environment | None:
    return ports.config.environment(str(fields.get("environment") or "")) or ports.config.environment("production")


def _client(ports: Ports, fields: Mapping[str, Any]) -> CloudflareClient | str:
    """A Cloudflare client for the incident's account, or why there is none."""
    env = _environment(ports, fields)
    if env is None:
        return f"environment {fields.get('environment')!r} is not configured"
    if ports.cloudflare is None:
        return "CLOUDFLARE_API_TOKEN is not set"
    try:
        return ports.cloudflare(env.account_id)
    except IncidentOpsError as err:
        return str(err)


def read_metrics(
    ports: Ports, fields: Mapping[str, Any], now: datetime, limits: crit.Thresholds
) -> list[crit.ServiceMetrics]:
    """Read the baseline and recent windows of every affected service from Cloudflare Analytics."""
    services = [str(s) for s in fields.get("services") or [] if s != crit.UNKNOWN]
    start = crit.incident_start(fields)
    if not services:
        return []
    if start is None:
        return [crit.ServiceMetrics(s, error="the incident has no started_at to place the baseline") for s in services]
    client = _client(ports, fields)
    env = _environment(ports, fields)
    if isinstance(client, str) or env is None:
        return [crit.ServiceMetrics(s, error=str(client)) for s in services]
    baseline, recent = limits.baseline_window(start), limits.recent_window(now)

    async def one(cf: CloudflareClient, name: str) -> crit.ServiceMetrics:
        service = ports.config.service(name)
        if service is None:
            return crit.ServiceMetrics(name, error="not a service in incidentops.yaml")
        try:
            source = await measure.source_for(cf, env, service)
            if source.kind == "none":
                return crit.ServiceMetrics(name, source=source.label, no_analytics=source.label)
            before, after = await asyncio.gather(
                measure.read_window(cf, source, *baseline), measure.read_window(cf, source, *recent)
            )
        except ApiError as err:
            return crit.ServiceMetrics(name, error=str(err))
        return crit.ServiceMetrics(name, baseline=before, recent=after, source=source.label)

    async def all_of(cf: CloudflareClient) -> list[crit.ServiceMetrics]:
        async with cf:
            return list(await asyncio.gather(*(one(cf, s) for s in services)))

    return asyncio.run(all_of(client))


def _run_smoke(ports: Ports, fields: Mapping[str, Any], number: int, key: str) -> str | None:
    """Run the runbook's smoke checks (they record their result in the file); return a note for the steps."""
    services = [str(s) for s in fields.get("services") or [] if s != crit.UNKNOWN]
    try:
        outcome = run_smoke(ports, str(fields.get("environment") or "production"), services, number, f"{key}-smoke")
    except IncidentOpsError as err:
        return f"smoke checks could not run: {err}"
    return f"smoke checks: {outcome.message}"


def gather(ports: Ports, number: int, key: str, now: datetime, *, smoke: bool) -> tuple[str, crit.Facts, list[str]]:
    """Read the incident file (after the smoke run, which records its result there) and the metrics."""
    path = incident_path(ports.config, number)
    ports.git.sync()
    text = ports.git.read(path)
    if text is None:
        raise IncidentOpsError(f"{incident_id(number)} does not exist ({path} is not in the repository)")
    notes: list[str] = []
    if smoke and not crit.smoke_is_current(f.read_fields(text)):
        note = _run_smoke(ports, f.read_fields(text), number, key)
        if note:
            notes.append(note)
            ports.git.sync()
            text = ports.git.read(path) or text
    fields = f.read_fields(text)
    _, body = f.split(text)
    verification = fields.get("verification") if isinstance(fields.get("verification"), Mapping) else {}
    assert isinstance(verification, Mapping)
    facts = crit.Facts(
        fields=fields,
        decision_rows=len(crit.table_rows(body, "Decision log")),
        metrics=read_metrics(ports, fields, now, thresholds(ports)),
        smoke=verification.get("smoke") if isinstance(verification.get("smoke"), Mapping) else None,
    )
    return text, facts, notes


def _metrics_record(facts: crit.Facts, now: datetime, limits: crit.Thresholds) -> dict[str, Any]:
    start = crit.incident_start(facts.fields)
    record: dict[str, Any] = {"at": format_ts(now)}
    if start is not None:
        record["baseline"] = [format_ts(t) for t in limits.baseline_window(start)]
    record["recent"] = [format_ts(t) for t in limits.recent_window(now)]
    for m in facts.metrics:
        if m.no_analytics:
            record[m.service] = {"no_analytics": m.no_analytics}
            continue
        if m.error or m.baseline is None or m.recent is None:
            record[m.service] = {"error": m.error or "no data"}
            continue
        entry: dict[str, Any] = {"source": m.source}
        for label, window in (("baseline", m.baseline), ("recent", m.recent)):
            rate = window.error_rate
            entry[label] = {
                "requests": window.requests,
                "error_rate": round(rate, 5) if rate is not None else None,
                "p99_ms": window.p99_ms,
            }
        record[m.service] = entry
    return record


# -- the flow ------------------------------------------------------------------------------------


def _issue_state(ports: Ports, number: int, state: str) -> bool:
    """Open or close the issue unless it already is; return whether it changed."""
    if ports.github.issue_state(number) == state:
        return False
    from github import GithubException  # already loaded by the call above

    issue = ports.github.issue(number)
    try:
        if state == "closed":
            issue.edit(state="closed", state_reason="completed")
        else:
            issue.edit(state="open")
    except GithubException as exc:
        raise ApiError("GitHub", f"setting #{number} {state} failed: HTTP {exc.status}", status=exc.status) from exc
    return True


def _standing_followups(ports: Ports, number: int, actor: str, key: str) -> str:
    return f"standing follow-ups: {add_standing_followups(ports, number, actor, key).message}"


def verify_incident(ports: Ports, number: int, actor: str, key: str, close: bool, link: str = "") -> Outcome:
    """Evaluate the exit criteria; with `close`, close the incident when all are met, else keep it open."""
    inc = incident_id(number)
    path = incident_path(ports.config, number)
    now = ports.clock()
    limits = thresholds(ports)
    ports.git.sync()
    current = ports.git.read(path)
    if current is None:
        # Asked about one incident by name: its absence is a failure to report, not an event to ignore.
        return Outcome(
            "missing",
            f"{inc} does not exist: no {path} on {ports.config.default_branch}",
            incident_id=inc,
            exit_code=1,
            level="error",
        )
    if close and f.has_event(current, key):
        return _project(ports, number, actor, key, current, replay=True)
    if close and f.read_fields(current).get("status") == "closed":
        return Outcome("unchanged", f"{inc} is already closed; nothing to do", incident_id=inc, path=path)

    _, facts, steps = gather(ports, number, key, now, smoke=close)
    verdict = crit.evaluate(facts, limits)
    details = {"checks": [c.__dict__ for c in verdict.checks]}
    if not close:
        message = f"{inc}: all exit criteria met" if verdict.met else f"{inc}: {len(verdict.unmet)} exit criteria unmet"
        return Outcome(
            "met" if verdict.met else "unmet",
            message,
            incident_id=inc,
            path=path,
            steps=[("✓ " if c.ok else "✗ ") + c.message for c in verdict.checks],
            exit_code=0 if verdict.met else 1,
            level="notice" if verdict.met else "warning",
            details=details,
        )

    at = format_ts(now)
    record = _metrics_record(facts, now, limits)
    unmet = [c.message for c in verdict.unmet]

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None or f.has_event(text, key):
            return {}
        fields = f.read_fields(text)
        if fields.get("status") == "closed":
            return {}
        verification = dict(fields.get("verification") or {})
        verification["metrics"] = record
        verification["exit_criteria"] = {"at": at, "by": actor, "met": verdict.met, "unmet": unmet}
        updates: dict[str, Any] = {"verification": verification}
        if verdict.met:
            updates.update(status="closed", resolved_at=fields.get("resolved_at") or at, closed_at=at)
            text = f.set_fields(text, updates)
            text = f.append_timeline(text, f.TimelineRow(at, actor, "Exit criteria met: resolved", link, key))
            text = f.append_timeline(text, f.TimelineRow(at, "incidentops", "Incident closed", "", f"{key}-closed"))
        else:
            text = f.set_fields(text, updates)
            what = f"Exit criteria not met ({len(unmet)} missing); incident stays open"
            text = f.append_timeline(text, f.TimelineRow(at, actor, what, link, key))
        return {path: ports.redact(text)}

    verb = "close" if verdict.met else "keep open"
    result = ports.git.commit(edit, f"{inc}: exit criteria {'met' if verdict.met else 'unmet'}, {verb} (@{actor})")
    if result.sha:
        steps.append(f"committed {path} ({result.sha[:12]})")
    text = ports.git.read(path) or ""
    outcome = _project(ports, number, actor, key, text, replay=False)
    outcome.steps[:0] = steps
    outcome.details.update(details)
    return outcome


def _project(ports: Ports, number: int, actor: str, key: str, text: str, *, replay: bool) -> Outcome:
    """Make GitHub match what the file records for this event: comment, issue state, follow-ups."""
    inc = incident_id(number)
    path = incident_path(ports.config, number)
    fields = f.read_fields(text)
    verification = fields.get("verification") if isinstance(fields.get("verification"), Mapping) else {}
    assert isinstance(verification, Mapping)
    recorded = verification.get("exit_criteria") if isinstance(verification.get("exit_criteria"), Mapping) else {}
    assert isinstance(recorded, Mapping)
    steps: list[str] = []
    url = file_url(ports, path)
    if fields.get("status") == "closed":
        marker = f"<!-- incidentops:closed:{inc} -->"
        body = render(
            "comment-verify-closed.md.j2",
            ports.workspace,
            marker=marker,
            incident=fields,
            actor=actor,
            metrics=verification.get("metrics") or {},
            smoke=verification.get("smoke") or {},
            file_url=url,
        )
        posted = ports.github.post_comment_once(number, marker, ports.redact(body))
        if posted.created:
            steps.append(f"posted the closing summary ({posted.url})")
        if _issue_state(ports, number, "closed"):
            steps.append(f"closed #{number}")
        steps.append(_standing_followups(ports, number, actor, key))
        status = "unchanged" if replay else "closed"
        message = f"{inc}: all exit criteria met; closed at {fields.get('closed_at')}"
        return Outcome(status, message, incident_id=inc, path=path, steps=steps)

    unmet = [str(u) for u in recorded.get("unmet") or []]
    marker = f"<!-- incidentops:verify:{f.escape_cell(key)} -->"
    reopened = _issue_state(ports, number, "open")
    if reopened:
        steps.append(f"reopened #{number}: the incident stays open")
    body = render(
        "comment-verify-unmet.md.j2",
        ports.workspace,
        marker=marker,
        incident=fields,
        actor=actor,
        unmet=unmet,
        reopened=reopened or replay,
        file_url=url,
    )
    posted = ports.github.post_comment_once(number, marker, ports.redact(body))
    if posted.created:
        steps.append(f"listed what is missing ({posted.url})")
    status = "unchanged" if replay else "unmet"
    message = f"{inc}: {len(unmet)} exit criteria unmet; the incident stays open"
    # Handling a close event is done when the issue is reopened with the list; `verify --close` by hand maps
    # "unmet" to exit 1 (the close that was asked for did not happen).
    return Outcome(status, message, incident_id=inc, path=path, steps=steps, exit_code=0, level="warning")


# -- entry points ----------------------------------------------------------------------------------


def resolve_command(event: Event, ports: Ports, args: str) -> Outcome:
    """`/resolve`: check the exit criteria and close the incident when all are met (role checked by the caller)."""
    assert event.issue is not None
    link = f"[comment]({event.comment_url})" if event.comment_url else ""
    return verify_incident(ports, event.issue.number, event.sender, event.key, close=True, link=link)


def on_issue_closed(event: Event, ports: Ports) -> Outcome:
    """`issues` `closed` on an incident issue: close the incident, or reopen the issue with what is missing."""
    if event.issue is None or event.issue.is_pull_request:
        return Outcome("skipped", "not for us: no issue in the payload")
    if event.sender_is_bot:
        return Outcome("skipped", "not for us: closed by a bot (incidentops closes issues itself)")
    number = event.issue.number
    ports.git.sync()
    if ports.git.read(incident_path(ports.config, number)) is None:
        return Outcome("skipped", f"not for us: #{number} is not a declared incident")
    role = ports.github.role_of(event.sender)
    if not ports.config.allows(ACTION, role):
        outcome = refuse(event, ports, ACTION, role)
        if _issue_state(ports, number, "open"):
            outcome.steps.append(f"reopened #{number}: closing it needs the {ACTION} permission")
        return outcome
    link = f"[closed #{number}]({event.issue.html_url})" if event.issue.html_url else f"closed #{number}"
    return verify_incident(ports, number, event.sender, event.key, close=True, link=link)


# -- blast radius ----------------------------------------------------------------------------------


def blast_radius(ports: Ports, number: int) -> dict[str, Any]:
    """Measure requests and errors of the affected services since started_at; record `impact.measured` once."""
    inc = incident_id(number)
    path = incident_path(ports.config, number)
    ports.git.sync()
    text = ports.git.read(path)
    if text is None:
        raise IncidentOpsError(f"{inc} does not exist ({path} is not in the repository)")
    fields = f.read_fields(text)
    impact = fields.get("impact") if isinstance(fields.get("impact"), Mapping) else {}
    assert isinstance(impact, Mapping)
    if isinstance(impact.get("measured"), Mapping):
        return dict(impact["measured"])
    now = ports.clock()
    since = crit.incident_start(fields)
    services = [str(s) for s in fields.get("services") or [] if s != crit.UNKNOWN]
    if since is None or not services:
        return {"error": "the incident names no services or start time to measure"}
    client = _client(ports, fields)
    env = _environment(ports, fields)
    if isinstance(client, str) or env is None:
        return {"error": str(client)}

    # Analytics answer at most a few days per query and keep about a month: longer spans are read in several
    # queries, and what is older than the data kept is said plainly as not measured, never silently dropped.
    spans = crit.analytics_spans(since, now)
    gaps: dict[tuple[str, str, str], list[str]] = {}  # (from, until, why) -> services
    if spans.too_old is not None:
        old_from, old_until = spans.too_old
        why = f"older than Cloudflare Analytics keeps ({crit.ANALYTICS_RETENTION.days} days)"
        gaps[(format_ts(old_from), format_ts(old_until), why)] = list(services)

    async def one(cf: CloudflareClient, service: Service) -> tuple[str, measure.Source, crit.Window | None]:
        source = await measure.source_for(cf, env, service)
        if source.kind == "none":
            return service.name, source, None
        total = crit.Window(0, 0, None)
        for start, end in spans.queries:
            try:
                part = await measure.read_window(cf, source, start, end)
            except ApiError as err:
                if not _analytics_limit(err):
                    raise
                gaps.setdefault((format_ts(start), format_ts(end), err.message), []).append(service.name)
                continue
            p99 = max((p for p in (total.p99_ms, part.p99_ms) if p is not None), default=None)
            total = crit.Window(total.requests + part.requests, total.errors + part.errors, p99)
        return service.name, source, total

    async def all_of(cf: CloudflareClient) -> list[tuple[str, measure.Source, crit.Window | None]]:
        async with cf:
            known = [s for s in (ports.config.service(n) for n in services) if s is not None]
            return list(await asyncio.gather(*(one(cf, s) for s in known)))

    try:
        reads = asyncio.run(all_of(client))
    except ApiError as err:
        return {"error": str(err)}
    windows = [w for _, _, w in reads if w is not None]
    requests, errors = sum(w.requests for w in windows), sum(w.errors for w in windows)
    measured_from = spans.queries[0][0] if spans.queries else now
    measured: dict[str, Any] = {
        "requests": requests,
        "errors": errors,
        "since": format_ts(measured_from),
        "until": format_ts(now),
        "services": {
            name: {"requests": w.requests, "errors": w.errors, "source": source.label}
            if w is not None
            else {"no_analytics": source.label}
            for name, source, w in reads
        },
    }
    if gaps:
        measured["not_measured"] = [
            {"from": start, "until": end, "why": why, "services": sorted(names)}
            for (start, end, why), names in sorted(gaps.items())
        ]
    key = f"blast-radius-{inc}"
    rate = errors / requests if requests else 0.0
    what = (
        f"Blast radius measured: {requests} requests, {errors} errors "
        f"({rate * 100:.2f}%) on {', '.join(services)} since {measured['since']}"
    ) + "".join(f"; {line}" for line in not_measured_lines(measured))

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        current = read(path)
        if current is None or f.has_event(current, key):
            return {}
        fresh = f.read_fields(current).get("impact")
        new_impact = {**(fresh if isinstance(fresh, Mapping) else {}), "measured": measured}
        updated = f.set_fields(current, {"impact": new_impact})
        return {path: f.append_timeline(updated, f.TimelineRow(format_ts(now), "incidentops", what, "", key))}

    ports.git.commit(edit, f"{inc}: measure the blast radius from Cloudflare Analytics")
    return measured


def _analytics_limit(err: ApiError) -> bool:
    """Whether Cloudflare refused a query for its dataset's time limits (too old, too long a span)."""
    text = err.message.lower()
    return "older than" in text or "cannot exceed" in text or "maxduration" in text


def not_measured_lines(measured: Mapping[str, Any]) -> list[str]:
    """Each interval the blast radius does not cover, and why, in words for a comment or a log."""
    return [
        f"NOT measured {gap['from']} → {gap['until']} ({', '.join(gap['services'])}): {gap['why']}"
        for gap in measured.get("not_measured") or []
    ]
