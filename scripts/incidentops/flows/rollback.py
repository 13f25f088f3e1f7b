"""Rollback: plan (pick last known good, preflight, open a PR changing the ledger) and apply (reconcile on merge).

Apply follows the read → verify → write → re-read recipe: a service whose live version already equals its
pin is left alone (a re-run after success makes no write); a deployment POST is never blindly retried —
after an ambiguous failure we read the live state again and retry only if nobody else deployed meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from incidentops.adapters.cloudflare import AmbiguousWriteError, CloudflareClient
from incidentops.adapters.git import BOT_EMAIL, SYNC_FRESH_FOR, Edit
from incidentops.config import Environment
from incidentops.core import approval
from incidentops.core import incidentfile as f
from incidentops.core import rollback as core
from incidentops.core.declare import incident_id, incident_path, link
from incidentops.core.events import Event, is_own_login
from incidentops.core.ledger import dump_ledger, load_ledger
from incidentops.core.timefmt import format_ts
from incidentops.errors import ApiError, IncidentOpsError
from incidentops.flows.base import Outcome, Ports, file_url, refuse
from incidentops.flows.smoke import verify_after_rollback
from incidentops.render import preload, render

BRANCH_PREFIX = "rollback/"
ROLLBACK_LABEL = "rollback"
ROLLBACK_HEADER = "| service | from | to | status | at |"
ADR_LABELS = {"architecture-significant", "adr"}
APPLIED_TEMPLATE = "comment-rollback-applied.md.j2"
SMOKE_TEMPLATE = "smoke-summary.md.j2"  # flows/smoke.py renders it after every smoke run


def ledger_path(env: str) -> str:
    return f"deployments/{env}.yaml"


def _environment(ports: Ports, fields: Mapping[str, Any]) -> Environment:
    name = str(fields.get("environment") or "")
    env = ports.config.environment(name) or ports.config.environment("production")
    if env is None:
        raise IncidentOpsError(
            f"incident environment {name!r} is not configured and there is no 'production' environment",
            hint="Add the environment to incidentops.yaml.",
        )
    return env


def _cloudflare(ports: Ports, env: Environment) -> CloudflareClient:
    if ports.cloudflare is None:
        raise IncidentOpsError(
            "CLOUDFLARE_API_TOKEN is not set.",
            hint="It is a secret of the production environment: only the job that names the environment gets it.",
        )
    return ports.cloudflare(env.account_id)


def _history(ports: Ports, path: str, at: str = "HEAD") -> list[core.LedgerSnapshot]:
    snapshots = []
    for sha, text in ports.git.history(path, rev=at):
        try:
            doc = load_ledger(text)
        except Exception:  # a broken historical ledger is skipped, not fatal: older pins may still be good
            continue
        snapshots.append(core.LedgerSnapshot(sha, core.pins_from_doc(doc, sha)))
    return snapshots


async def _gather_facts(cf: CloudflareClient, ports: Ports, names: list[str]) -> dict[str, Any]:
    async def one(name: str) -> tuple[str, Any]:
        service = ports.config.service(name)
        assert service is not None
        if service.kind == "worker":
            deployments, versions = await asyncio.gather(
                cf.list_worker_deployments(service.cloudflare_name),
                cf.list_worker_versions(service.cloudflare_name),
            )
            return name, core.WorkerFacts(
                live_version=deployments[0].full_version_id if deployments else None,
                deployments=tuple((d.created_on, d.full_version_id) for d in deployments),
                deployable={v.id: (v.created_on, v.triggered_by) for v in versions},
                secret_rotations=tuple(v.created_on for v in versions if v.triggered_by == "secret"),
                deployment_triggers=tuple(d.triggered_by for d in deployments),
            )
        project, deployments_list = await asyncio.gather(
            cf.get_pages_project(service.cloudflare_name),
            cf.list_pages_deployments(service.cloudflare_name, env="production"),
        )
        return name, core.PagesFacts(
            live_deployment=project.canonical_deployment.id if project.canonical_deployment else None,
            # Only real rollback targets count as "success": a skipped build or one whose latest stage is not a
            # successful deploy shows what it is instead, and the preflight refuses it.
            deployments=tuple((d.id, d.created_on, d.environment, d.target_status) for d in deployments_list),
        )

    async with cf:
        pairs = await asyncio.gather(*(one(n) for n in names))
    return dict(pairs)


def _services_to_plan(ports: Ports, fields: Mapping[str, Any], requested: list[str]) -> list[str]:
    known = [s.name for s in ports.config.services]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise IncidentOpsError(f"unknown service(s): {', '.join(unknown)}", hint=f"Known services: {', '.join(known)}.")
    if requested:
        return list(dict.fromkeys(requested))
    affected = [s for s in fields.get("services") or [] if s in known]
    return affected or known


def build_plan(
    ports: Ports, number: int, requested: list[str], at: str = "HEAD"
) -> tuple[core.Plan, dict[str, Any], Environment]:
    """Gather ledger history (up to commit `at`) and live state, and plan every requested (or affected) service."""
    ports.git.sync()
    path = incident_path(ports.config, number)
    text = ports.git.read(path)
    if text is None:
        raise IncidentOpsError(
            f"no incident file {path}", hint="Declare the incident first (label the issue sev-1/2/3)."
        )
    fields = f.read_fields(text)
    env = _environment(ports, fields)
    names = _services_to_plan(ports, fields, requested)
    history = _history(ports, ledger_path(env.name), at)
    current = history[0].services if history else {}
    facts = asyncio.run(_gather_facts(_cloudflare(ports, env), ports, names))
    plan = core.Plan(incident_id(number))
    for name in names:
        service = ports.config.service(name)
        assert service is not None
        fact = facts[name]
        if isinstance(fact, core.WorkerFacts):
            plan.services.append(core.plan_worker(name, fact, history, current.get(name)))
        else:
            plan.services.append(core.plan_pages(name, fact, history, current.get(name)))
    return plan, fields, env


def plan_table(plan: core.Plan) -> list[dict[str, str]]:
    return [
        {
            "service": s.service,
            "live": s.live or "unknown",
            "target": s.target or "—",
            "why": s.why,
            "preflight": s.preflight,
        }
        for s in plan.services
    ]


def open_rollback_pr(event: Event | None, ports: Ports, number: int, requested: list[str], actor: str) -> Outcome:
    """Plan and open (or find) the rollback PR for incident #number, and note it in the incident file."""
    inc = incident_id(number)
    branch = BRANCH_PREFIX + inc
    existing = ports.github.open_pull_for_branch(branch)
    if existing is not None:
        return Outcome(
            "unchanged",
            f"{inc}: rollback PR #{existing.number} is already open ({existing.html_url})",
            incident_id=inc,
            steps=[f"found open PR #{existing.number} from {branch}"],
        )
    plan, fields, env = build_plan(ports, number, requested)
    now = ports.clock()
    at = format_ts(now)
    if not plan.actionable:
        return Outcome(
            "refused" if plan.refused else "unchanged",
            f"{inc}: nothing to roll back: "
            + ("; ".join(f"{s.service}: {s.preflight}" for s in plan.refused) or "every service is at its target"),
            incident_id=inc,
            steps=[f"{s.service}: {s.preflight}" for s in plan.services],
            exit_code=1 if plan.refused else 0,
            level="warning",
        )
    ledger = ledger_path(env.name)

    def edit_ledger(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(ledger)
        if text is None:
            raise IncidentOpsError(f"{ledger} does not exist", hint="Create the ledger for this environment.")
        doc = core.ledger_with_targets(load_ledger(text), plan, actor, at)
        return {ledger: dump_ledger(doc)}

    names = ", ".join(s.service for s in plan.actionable)
    result = ports.git.publish_branch(branch, edit_ledger, f"{inc}: roll back {names} to last known good")
    marker = f"<!-- incidentops:rollback-pr:{inc} -->"
    body = render(
        "rollback-pr.md.j2",
        ports.workspace,
        marker=marker,
        incident=fields,
        incident_url=file_url(ports, incident_path(ports.config, number)),
        rows=plan_table(plan),
        refused=plan.refused,
        fallbacks=[s for s in plan.services if s.fallback],
        ledger=ledger,
        actor=actor,
    )
    pr = ports.github.create_pull(
        f"Roll back {names} for {inc}", ports.redact(body), head=branch, base=ports.config.default_branch
    )
    ports.github.add_labels(pr.number, ROLLBACK_LABEL, ports.config.incident_label)
    steps = [f"pushed {branch} ({(result.sha or '')[:12]})", f"opened PR #{pr.number} ({pr.html_url})"]

    key = (event.key if event else f"manual-{at}") + ":rollback-plan"
    path = incident_path(ports.config, number)

    def edit_incident(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None or f.has_event(text, key):
            return {}
        current = f.read_fields(text)
        rollback = dict(current.get("rollback") or {})
        rollback["pr"] = pr.number
        services = dict(rollback.get("services") or {})
        for s in plan.actionable:
            services[s.service] = {"from": s.live, "to": s.target, "status": "planned"}
        rollback["services"] = services
        text = f.set_fields(text, {"rollback": rollback})
        row = f.TimelineRow(
            at,
            actor,
            f"Rollback PR #{pr.number} opened: {names} to last known good",
            link(f"PR #{pr.number}", pr.html_url),
            key,
        )
        return {path: ports.redact(f.append_timeline(text, row))}

    ports.git.commit(edit_incident, f"{inc}: rollback PR #{pr.number} opened (@{actor})")
    comment_marker = f"<!-- incidentops:rollback-planned:{inc}:{pr.number} -->"
    ports.github.post_comment_once(
        number,
        comment_marker,
        ports.redact(
            render(
                "comment-rollback-planned.md.j2",
                ports.workspace,
                marker=comment_marker,
                pr_number=pr.number,
                pr_url=pr.html_url,
                rows=plan_table(plan),
            )
        ),
    )
    return Outcome("planned", f"{inc}: rollback PR #{pr.number} opened for {names}", incident_id=inc, steps=steps)


# -- apply ------------------------------------------------------------------------------------------------


@dataclass
class ServiceResult:
    service: str
    kind: str
    before: str | None
    pin: str
    status: str  # done | in-sync | failed | blocked
    started: str = ""
    ended: str = ""
    calls: list[str] = field(default_factory=list)
    detail: str = ""


RECOVERED = "found at its pin on re-check (deployed by an earlier, interrupted attempt of this event, or by a person)"
UNKNOWN_OUTCOME = (
    "the deployment request timed out and had not landed when re-checked; not sent again (it may still land). "
    "Re-run the job to check again"
)
SETTLE_POLL = 0.25  # seconds between re-reads while a timed-out request may still be landing


def _in_flight(err: AmbiguousWriteError) -> bool:
    """A timeout means the request may still be working on the server, unlike a 5xx or a closed connection."""
    import httpx  # loaded already: the Cloudflare client that raised this uses it

    return isinstance(err.__cause__, httpx.TimeoutException)


async def _apply_worker(cf: CloudflareClient, name: str, pin: core.Pin, message: str) -> tuple[str, str | None, str]:
    deployments = await cf.list_worker_deployments(name)
    live = deployments[0].full_version_id if deployments else None
    if live == pin.version:
        return "in-sync", live, "already live"
    expected = deployments[0].id if deployments else None
    for attempt in (1, 2):
        try:
            await cf.create_worker_deployment(name, pin.version, message=message, force=pin.force)
            return "done", live, f"deployed {pin.version[:8]} at 100%" + (" (force)" if pin.force else "")
        except AmbiguousWriteError as err:
            # The answer was lost: look before trying again (and give a timed-out request time to land).
            again = await cf.list_worker_deployments(name)
            waited = 0.0
            while _in_flight(err) and again and again[0].id == expected and waited < 2 * cf.retry.timeout:
                await asyncio.sleep(SETTLE_POLL)
                waited += SETTLE_POLL
                again = await cf.list_worker_deployments(name)
            if again and again[0].full_version_id == pin.version:
                return "done", live, f"deployed {pin.version[:8]} at 100% (confirmed by re-reading)"
            if not again or again[0].id != expected:
                return "blocked", live, "someone else deployed meanwhile; not overwriting it"
            if _in_flight(err):
                return "failed", live, UNKNOWN_OUTCOME
            if attempt == 2:
                raise
    return "failed", live, "unreachable"


async def _apply_pages(cf: CloudflareClient, name: str, pin: core.Pin) -> tuple[str, str | None, str]:
    project = await cf.get_pages_project(name)
    live = project.canonical_deployment.id if project.canonical_deployment else None
    if live == pin.version:
        return "in-sync", live, "already live"
    for attempt in (1, 2):
        try:
            await cf.rollback_pages_deployment(name, pin.version)
            return "done", live, f"rolled back to deployment {pin.version[:8]}"
        except AmbiguousWriteError as err:
            again = await cf.get_pages_project(name)
            canonical = again.canonical_deployment.id if again.canonical_deployment else None
            waited = 0.0
            while _in_flight(err) and canonical == live and waited < 2 * cf.retry.timeout:
                await asyncio.sleep(SETTLE_POLL)
                waited += SETTLE_POLL
                again = await cf.get_pages_project(name)
                canonical = again.canonical_deployment.id if again.canonical_deployment else None
            if canonical == pin.version:
                return "done", live, f"rolled back to {pin.version[:8]} (confirmed by re-reading)"
            if canonical != live:
                return "blocked", live, "someone else deployed meanwhile; not overwriting it"
            if _in_flight(err):
                return "failed", live, UNKNOWN_OUTCOME
            if attempt == 2:
                raise
    return "failed", live, "unreachable"


async def _reconcile_all(
    cf: CloudflareClient, ports: Ports, pins: dict[str, core.Pin], message: str
) -> list[ServiceResult]:
    async def one(name: str, pin: core.Pin) -> ServiceResult:
        service = ports.config.service(name)
        if service is None:
            return ServiceResult(name, "?", None, pin.version, "failed", detail="not in incidentops.yaml")
        started = format_ts(ports.clock())
        mark = len(cf.calls)
        try:
            if service.kind == "worker":
                status, before, detail = await _apply_worker(cf, service.cloudflare_name, pin, message)
            else:
                status, before, detail = await _apply_pages(cf, service.cloudflare_name, pin)
        except ApiError as err:
            status, before, detail = "failed", None, str(err)
        ours = [c for c in cf.calls[mark:] if service.cloudflare_name in c.path]
        return ServiceResult(
            name,
            service.kind,
            before,
            pin.version,
            status,
            started,
            format_ts(ports.clock()),
            [f"{c.method} {c.path} -> {c.status if c.status is not None else c.error}" for c in ours],
            detail,
        )

    # What the run built so far lives until it ends: frozen, no collection walks it between the waves of requests.
    gc.freeze()
    async with cf:
        return list(await asyncio.gather(*(one(n, p) for n, p in pins.items())))


def apply_ledger(
    ports: Ports,
    number: int | None,
    actor: str,
    key: str,
    adr: tuple[str, str] | None = None,
    only: Mapping[str, core.Pin] | None = None,
    notes: Mapping[str, str] | None = None,
) -> Outcome:
    """Reconcile Cloudflare to the ledger on the default branch and record it in the incident file.

    `adr` (title, link) marks the rollback architecture-significant: its ADR stub lands in the same commit as
    the timeline rows. `only` (a merged rollback PR's approved pins) limits the deploys to those services; `notes`
    adds a reason to a service's record (an override).
    """
    ports.git.sync(reuse_within=SYNC_FRESH_FOR)  # the run read the tip a moment ago to check the role
    fields: dict[str, Any] = {}
    path = incident_path(ports.config, number) if number is not None else None
    text = ports.git.read(path) if path else None
    if text is not None:
        fields = f.read_fields(text)
    env = _environment(ports, fields)
    ledger = ledger_path(env.name)
    ledger_text = ports.git.read(ledger)
    if ledger_text is None:
        raise IncidentOpsError(f"{ledger} does not exist on {ports.config.default_branch}")
    ledger_doc = load_ledger(ledger_text)
    pins = core.pins_from_doc(ledger_doc, "HEAD")
    if only is not None:
        pins = {name: pin for name, pin in pins.items() if name in only and only[name].version == pin.version}
    inc = incident_id(number) if number is not None else "manual"
    message = core.rollback_message(inc, key)
    # Each service reconciles independently (one can fail while the others finish). While their requests are in
    # flight, the templates of the record and the smoke summary load (a read of local files; nothing is written).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollback") as pool:
        pool.submit(preload, ports.workspace, SMOKE_TEMPLATE, *([APPLIED_TEMPLATE] if path else []))
        results = asyncio.run(_reconcile_all(_cloudflare(ports, env), ports, pins, message))
    for r in results:
        if notes and notes.get(r.service):
            r.detail = f"{r.detail} ({notes[r.service]})"
    failed = [r for r in results if r.status in ("failed", "blocked")]
    changed = [r for r in results if r.status == "done"]
    steps = [f"{r.service}: {r.status} — {r.detail}" for r in results]

    recovered: set[str] = set()
    if path and text is not None:

        def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
            recovered.clear()
            current_text = read(path)
            if current_text is None:
                return {}
            current = f.read_fields(current_text)
            rollback = dict(current.get("rollback") or {})
            services = dict(rollback.get("services") or {})
            new_text = current_text
            for r in results:
                if r.status == "in-sync" and r.service not in services:
                    continue  # a service this incident never touched: no noise in its record
                entry = dict(services.get(r.service) or {})
                status = "done" if r.status == "in-sync" else r.status
                if entry.get("status") == status:
                    continue
                if r.status == "in-sync":
                    recovered.add(r.service)  # deployed by an earlier, interrupted attempt (or by a person)
                before = entry.get("from") or r.before
                entry.update({"from": before, "to": r.pin, "status": status, "started": r.started, "at": r.ended})
                services[r.service] = entry
                row_key = f"{key}:{r.service}:{status}"
                if not f.has_event(new_text, row_key):
                    call = "; ".join(r.calls[-2:]) or "no API call"
                    detail = RECOVERED if r.status == "in-sync" else r.detail
                    row = f.TimelineRow(
                        r.ended, actor, f"Rollback {r.service}: {status} — {detail}", f"`{call}`", row_key
                    )
                    new_text = f.append_timeline(new_text, row)
                    table_row = (
                        f"| {f.escape_cell(r.service)} | `{(before or '?')[:8]}` | `{r.pin[:8]}` | "
                        f"{f.escape_cell(status)} | {r.ended} |"
                    )
                    new_text = f.append_table_row(new_text, "Rollback", table_row, ROLLBACK_HEADER)
            if not services:
                return {}
            rollback["services"] = services
            new_text = f.set_fields(new_text, {"rollback": rollback})
            return {path: ports.redact(new_text)}

        commit_edit: Edit = edit
        if adr is not None and number is not None and changed:
            from incidentops.core.commands import Context  # only a rollback that records an ADR needs them
            from incidentops.flows.adr import adr_edit

            title, where = adr
            names = ", ".join(r.service for r in changed)
            decision = f"Roll back {names} to the last known good versions pinned by {where}."
            ctx = Context(actor, format_ts(ports.clock()), where, f"{key}:adr")
            commit_edit = adr_edit(ports, number, decision=decision, ctx=ctx, title=title, before=edit)
        ports.git.commit(
            commit_edit, f"{inc}: rollback applied ({len(changed)} changed, {len(failed)} failed) (@{actor})"
        )
        table = [
            {"service": r.service, "from": r.before or "?", "to": r.pin, "status": r.status, "detail": r.detail}
            for r in results
        ]
        digest = ",".join(
            f"{r.service}={'done' if r.status == 'in-sync' else r.status}"
            for r in results
            if r.status != "in-sync" or r.service in recovered
        )
        if number is not None and digest:
            marker = f"<!-- incidentops:rollback-applied:{f.escape_cell(key)}:{digest} -->"
            ports.github.post_comment_once(
                number,
                marker,
                ports.redact(render(APPLIED_TEMPLATE, ports.workspace, marker=marker, rows=table, incident=inc)),
            )
    status = "failed" if failed else ("rolled-back" if changed else "unchanged")
    message_text = (
        f"{inc}: rollback incomplete — "
        + ", ".join(f"{r.service} {r.status}" for r in failed)
        + ". Re-run the job to retry only what is still off."
        if failed
        else f"{inc}: "
        + (f"rolled back {', '.join(r.service for r in changed)}" if changed else "every service already at its pin")
    )
    outcome = Outcome(
        status,
        message_text,
        incident_id=inc,
        path=path,
        steps=steps,
        exit_code=1 if failed else 0,
        level="error" if failed else "notice",
        details={"results": results},
    )
    # Playbook: re-run the smoke tests from the runbook after re-deploying (skipped when the rollback failed).
    verified = verify_after_rollback(ports, outcome, number, key, actor)
    rolled = [r.service for r in results if r.status == "done" or r.service in recovered]
    if verified.exit_code == 0 and rolled:
        pinned = {r.service: r.pin for r in results if r.service in rolled}
        _mark_verified(ports, ledger, pinned, inc, (ledger_text, ledger_doc))
        verified.steps.append(f"marked {', '.join(rolled)} verified in {ledger}")
    return verified


def _mark_verified(
    ports: Ports, ledger: str, pins: Mapping[str, str], inc: str, parsed: tuple[str, Any] | None = None
) -> None:
    """The smoke checks passed on these pins: record it in the ledger, so a later rollback can trust them.
    `parsed`: the ledger's text as the run read it and its document, used while the tip still has that text."""

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(ledger)
        if text is None:
            return {}
        doc = parsed[1] if parsed is not None and parsed[0] == text else load_ledger(text)
        services = doc.get("services") or {}
        for name, version in pins.items():
            entry = services.get(name)
            if entry is not None and entry.get("version") == version and entry.get("verified") is not True:
                entry["verified"] = True
        return {ledger: dump_ledger(doc)}

    ports.git.commit(edit, f"{inc}: smoke tests verified the rolled-back pins")


def on_pull_request_closed(event: Event, ports: Ports) -> Outcome:
    """A merged PR labelled `rollback` from `rollback/INC-…`: check the merger's role, then apply."""
    pr = event.raw.get("pull_request") or {}
    labels = {label.get("name") for label in pr.get("labels") or [] if isinstance(label, dict)}
    if not pr.get("merged"):
        return Outcome("skipped", "not for us: the pull request was closed without merging")
    if ROLLBACK_LABEL not in labels:
        return Outcome("skipped", "not for us: the merged pull request is not labelled 'rollback'")
    head = str((pr.get("head") or {}).get("ref") or "")
    number = None
    if head.startswith(BRANCH_PREFIX + "INC-"):
        try:
            number = int(head[len(BRANCH_PREFIX) + 4 :])
        except ValueError:
            number = None
    merger = str((pr.get("merged_by") or {}).get("login") or event.sender)
    role = ports.github.role_of(merger)
    if not ports.config.allows("rollback_apply", role):
        target = Event(event.name, event.action, merger, False, issue=event.issue, raw=event.raw)
        return refuse(target, ports, "rollback_apply", role)
    key = f"pr-{pr.get('number')}-{pr.get('merge_commit_sha') or ''}"
    if number is None or not _opened_by_us(pr):
        return _not_ours(ports, pr, key)
    review = review_merge(ports, pr, number, merger, role)
    _report_review(ports, pr, key, review)
    if not review.deploy:
        return Outcome(
            "refused",
            f"{incident_id(number)}: nothing deployed from PR #{pr.get('number')}: "
            + ("; ".join(v.reason for v in review.verdicts) or "it changed no pin"),
            incident_id=incident_id(number),
            steps=review.lines(),
            exit_code=1 if review.refused else 0,
            level="error" if review.refused else "notice",
        )
    # A rollback PR labelled architecture-significant gets an ADR stub, committed with the timeline.
    adr = None
    if ADR_LABELS & labels:
        adr = (
            str(pr.get("title") or "Roll back to last known good"),
            link(f"PR #{pr.get('number')}", str(pr.get("html_url") or "")),
        )
    outcome = apply_ledger(ports, number, merger, key, adr=adr, only=review.deploy, notes=review.notes)
    outcome.steps[:0] = review.lines()
    if review.refused:
        outcome.exit_code, outcome.level = 1, "error"
        outcome.message += "; not deployed: " + ", ".join(v.service for v in review.refused)
    return outcome


# -- what a merged rollback PR may deploy -------------------------------------------------------------------


@dataclass
class MergeReview:
    verdicts: list[approval.Verdict]
    foreign: list[tuple[str, str, str, str]]  # commits on the bot's branch by someone else
    drift: list[str]  # services whose ledger pin on main is not what is live and that this merge did not approve

    @property
    def deploy(self) -> dict[str, core.Pin]:
        return {v.service: v.pin for v in self.verdicts if v.approved}

    @property
    def refused(self) -> list[approval.Verdict]:
        return [v for v in self.verdicts if not v.approved]

    @property
    def notes(self) -> dict[str, str]:
        return {v.service: v.reason for v in self.verdicts if v.override}

    def lines(self) -> list[str]:
        out = [f"{v.service}: {'approved' if v.approved else 'REFUSED'} — {v.reason}" for v in self.verdicts]
        out += [f"commit {c[0][:12]} on the bot's branch is by {c[1]}: {c[3]}" for c in self.foreign]
        out += [f"drift: {d}" for d in self.drift]
        return out


def _opened_by_us(pr: Mapping[str, Any]) -> bool:
    """The PR was opened by the workflow's own identity from its own branch in this repository."""
    user = pr.get("user") or {}
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
    return is_own_login(str(user.get("login") or "")) and head_repo == base_repo


def _not_ours(ports: Ports, pr: Mapping[str, Any], key: str) -> Outcome:
    """A `rollback` label on someone else's PR (any triager can add it) deploys nothing; say so on the PR."""
    number = int(pr.get("number") or 0)
    marker = f"<!-- incidentops:rollback-not-ours:{f.escape_cell(key)} -->"
    body = (
        f"{marker}\n⚠️ Nothing was deployed: this pull request carries the `{ROLLBACK_LABEL}` label, but incidentops "
        "only applies rollback pull requests it opened itself (from `rollback/INC-…`). Any ledger change it merged "
        "is reported as drift and deployed only through an incidentops rollback PR."
    )
    if number:
        ports.github.post_comment_once(number, marker, body)
    return Outcome(
        "refused",
        f"PR #{number} is labelled {ROLLBACK_LABEL!r} but was not opened by incidentops; nothing deployed",
        level="warning",
        exit_code=1,
    )


def review_merge(ports: Ports, pr: Mapping[str, Any], number: int, merger: str, role: str) -> MergeReview:
    """Judge each pin the merge changed against the plan recomputed as of the commit before the merge."""
    merge_sha = str(pr.get("merge_commit_sha") or "")
    if not merge_sha:
        raise IncidentOpsError("the merged pull request has no merge_commit_sha", hint="Re-run the job.")
    ports.git.sync()
    parents = ports.git.parents(merge_sha)
    if not parents:
        raise IncidentOpsError(f"merge commit {merge_sha[:12]} has no parent", hint="Re-run the job.")
    before_rev = parents[0]
    fields = f.read_fields(ports.git.read(incident_path(ports.config, number)) or "")
    env = _environment(ports, fields)
    ledger = ledger_path(env.name)
    before = core.pins_from_doc(load_ledger(ports.git.show(before_rev, ledger) or "{}"), before_rev)
    after = core.pins_from_doc(load_ledger(ports.git.show(merge_sha, ledger) or "{}"), merge_sha)
    changed = approval.changed_pins(before, after)
    verdicts: list[approval.Verdict] = []
    if changed:
        plan, _, _ = build_plan(ports, number, sorted(changed), at=before_rev)
        may_override = ports.config.allows("rollback_override", role)
        verdicts = approval.judge(changed, plan, merger, may_override)
    head_sha = str((pr.get("head") or {}).get("sha") or "")
    try:
        ports.git.parents(head_sha)
        foreign = approval.foreign(ports.git.commits(before_rev, head_sha), BOT_EMAIL)
    except IncidentOpsError:
        foreign = [(head_sha, "unknown (the branch's commits could not be read)", "", "")]
    current = core.pins_from_doc(load_ledger(ports.git.read(ledger) or "{}"), "HEAD")
    drift = _drift(ports, env, {n: p for n, p in current.items() if n not in changed})
    return MergeReview(verdicts, foreign, drift)


def _drift(ports: Ports, env: Environment, pins: Mapping[str, core.Pin]) -> list[str]:
    """Pins on main that are not live and that no approved rollback changed: reported, never deployed here."""
    names = [n for n in pins if ports.config.service(n) is not None]
    if not names:
        return []
    facts = asyncio.run(_gather_facts(_cloudflare(ports, env), ports, names))
    out = []
    for name in names:
        fact = facts[name]
        live = fact.live_version if isinstance(fact, core.WorkerFacts) else fact.live_deployment
        if live != pins[name].version:
            out.append(
                f"{name} is pinned to {pins[name].version[:8]} on {ports.config.default_branch} but "
                f"{(live or 'nothing')[:8]} is live; not deployed (only an approved rollback PR deploys)"
            )
    return out


def _report_review(ports: Ports, pr: Mapping[str, Any], key: str, review: MergeReview) -> None:
    """Show on the merged PR what was approved, refused or overridden, foreign commits and drift (once)."""
    if not (review.refused or review.foreign or review.drift or review.notes):
        return
    number = int(pr.get("number") or 0)
    marker = f"<!-- incidentops:rollback-review:{f.escape_cell(key)} -->"
    body = render(
        "rollback-review.md.j2",
        ports.workspace,
        marker=marker,
        verdicts=review.verdicts,
        foreign=review.foreign,
        drift=review.drift,
        apply_role=ports.config.permissions["rollback_apply"],
    )
    ports.github.post_comment_once(number, marker, ports.redact(body))
