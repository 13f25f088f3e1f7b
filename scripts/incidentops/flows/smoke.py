"""Smoke flow: run the runbook's checks for an environment and record the verdict.

parse (runbook, base URLs, secrets, active containments) → plan (checks to run, checks skipped or not run)
→ apply (send the requests; then, for an incident: rewrite its Recovery verification section, set
`verification.smoke`, add one timeline row and one comment, each keyed on the event and the verdict so a
re-run with the same outcome changes nothing). Output: a table, job-summary markdown and JUnit XML.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from incidentops.adapters import smoke as runner
from incidentops.config import Config, load_config
from incidentops.core import incidentfile as f
from incidentops.core import runbook as rb
from incidentops.core.declare import incident_id, incident_path, link
from incidentops.core.events import Event
from incidentops.core.redact import Redactor
from incidentops.core.timefmt import format_ts, parse_ts
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome, Ports, authorize, file_url
from incidentops.render import preload, render
from incidentops.wiring import ports_from_env

BASE_URLS_VAR = "INCIDENTOPS_BASE_URLS"
SECTION = "Recovery verification"
CONTAINMENT = "containment"  # the service column of the checks that prove a deny response
SUMMARY_TEMPLATE = "smoke-summary.md.j2"


@dataclass(frozen=True)
class SmokeResult:
    check: str
    service: str
    result: str  # passed | failed | not run | skipped
    status: int | None
    latency_ms: float | None
    attempts: int
    reason: str
    where: str  # runbook file:line, or the incident whose containment the check proves


@dataclass(frozen=True)
class Planned:
    check: rb.Check
    url: str
    headers: dict[str, str]
    skip: str = ""  # why it does not run ("not run: …" or "skipped: …")


# -- parse -----------------------------------------------------------------------------------------------


def load_runbook(config: Config, workspace: Path) -> rb.Runbook:
    """Read and parse the runbook from the workspace."""
    path = workspace / rb.RUNBOOK_PATH
    if not path.is_file():
        raise IncidentOpsError(f"{rb.RUNBOOK_PATH} not found", hint="The smoke checks live in the deploy runbook.")
    return rb.parse_runbook(path.read_text(encoding="utf-8"), [s.name for s in config.services], rb.RUNBOOK_PATH)


def base_urls_for(
    config: Config, environment: str, env: Mapping[str, str], override: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment's base URLs: incidentops.yaml, then INCIDENTOPS_BASE_URLS, then an explicit override."""
    configured = config.environment(environment)
    if configured is None:
        known = ", ".join(e.name for e in config.environments)
        raise IncidentOpsError(f"unknown environment {environment!r}", hint=f"Known environments: {known}.")
    urls = dict(configured.base_urls)
    raw = env.get(BASE_URLS_VAR, "").strip()
    if raw:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise IncidentOpsError(f"{BASE_URLS_VAR} is not JSON: {exc}") from exc
        chosen = data.get(environment, {}) if isinstance(data, dict) else None
        if not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values()):
            raise IncidentOpsError(f'{BASE_URLS_VAR} must look like {{"{environment}": {{"api": "http://…"}}}}')
        urls.update(chosen)
    urls.update(override or {})
    return urls


def host_keys(config: Config, environment: str) -> dict[str, str]:
    """Real host name → base URL name (api.example.com → api), from incidentops.yaml."""
    configured = config.environment(environment)
    urls = configured.base_urls if configured else {}
    return {urlsplit(url).hostname or "": key for key, url in urls.items()}


def active_containments(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Containment entries of an incident that have not been lifted."""
    entries = fields.get("containment") or []
    return [e for e in entries if isinstance(e, dict) and not e.get("lifted") and e.get("route")]


def expired(fields: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Active containments whose expiry has passed (reported, never lifted automatically)."""
    out = []
    for entry in active_containments(fields):
        try:
            due = parse_ts(str(entry.get("expires")))
        except ValueError:
            continue
        if due <= now:
            out.append(entry)
    return out


def expiry_notes(fields: Mapping[str, Any], now: datetime) -> list[str]:
    """One line per expired containment, saying what to do about it."""
    return [
        f"containment of {e['route']} expired at {e['expires']} and is still in place: "
        f"/lift {e['route']} when safe, or /contain {e['route']} again to renew it"
        for e in expired(fields, now)
    ]


# -- plan ------------------------------------------------------------------------------------------------


BLOCK_PAGE = "Sorry, you have been blocked"  # Cloudflare's block page, what a plain block answers


def deny_checks(
    config: Config, environment: str, entries: Sequence[Mapping[str, Any]], inc: str, source: str
) -> list[rb.Check]:
    """One check per contained route and host: it must answer with the deny response.

    On a paid plan that is our JSON body naming the incident; on a Free zone (entry `response: block-page`) it is
    Cloudflare's own block page, "Sorry, you have been blocked" with a Ray ID (cloudflare-docs waf/custom-rules:
    custom block responses need a paid plan; the default block answers 403).
    """
    keys = host_keys(config, environment)
    checks = []
    for entry in entries:
        route = str(entry["route"])
        path = route[route.index("/") :] if "/" in route else route
        marker = BLOCK_PAGE if entry.get("response") == "block-page" else inc
        for host in entry.get("hosts") or []:
            key = keys.get(str(host))
            if key is None:
                continue
            checks.append(
                rb.Check(
                    name=f"contained: {path} on {host} answers the deny response",
                    service=CONTAINMENT,
                    environment=environment,
                    url=f"{{{key}}}{path}",
                    expect=rb.Expect(status=(403,), contains=(marker,)),
                    source=source,
                )
            )
    return checks


def _contained_by(url_template: str, resolved: str, keys: dict[str, str], entries: Sequence[Mapping[str, Any]]) -> str:
    """The route of an active containment this check's URL falls under, or ""."""
    match = re.match(r"^\{([a-z][a-z0-9_-]*)\}", url_template)
    key = match.group(1) if match else keys.get(urlsplit(resolved).hostname or "")
    path = urlsplit(resolved).path or "/"
    for entry in entries:
        route = str(entry.get("route"))
        covered = {keys.get(str(h)) for h in entry.get("hosts") or []}
        if key in covered and (path == route or path.startswith(route.rstrip("/") + "/")):
            return route
    return ""


def plan(
    checks: Sequence[rb.Check],
    base_urls: Mapping[str, str],
    env: Mapping[str, str],
    keys: dict[str, str],
    containments: Sequence[Mapping[str, Any]] = (),
    inc: str = "",
) -> list[Planned]:
    """Resolve URLs and secrets; mark what cannot run, and runbook checks on a contained route as skipped."""
    out = []
    for check in checks:
        try:
            url = rb.resolve_url(check, base_urls)
        except rb.RunbookError as err:
            out.append(Planned(check, check.url, {}, f"not run: {err.message}"))
            continue
        headers, missing = rb.resolve_headers(check, env)
        if missing:
            out.append(Planned(check, url, {}, f"not run: {missing[0]} is not set"))
            continue
        route = "" if check.service == CONTAINMENT else _contained_by(check.url, url, keys, containments)
        if route:
            out.append(Planned(check, url, headers, f"skipped: {route} is contained by {inc} (deny checked instead)"))
            continue
        if check.json_body is not None:
            headers = {"Content-Type": "application/json", **headers}
        out.append(Planned(check, url, headers))
    return out


# -- apply -----------------------------------------------------------------------------------------------


def execute(planned: Sequence[Planned], settings: runner.Settings) -> list[SmokeResult]:
    """Send the runnable checks; return one result per planned check, in order."""
    probes = [
        runner.Probe(
            id=str(i),
            method=p.check.method,
            url=p.url,
            headers=p.headers,
            body=p.check.json_body.encode() if p.check.json_body is not None else None,
            judge=_judge(p.check.expect),
        )
        for i, p in enumerate(planned)
        if not p.skip
    ]
    answers = {r.id: r for r in runner.run(probes, settings)}
    results = []
    for i, p in enumerate(planned):
        where = p.check.where if p.check.line else p.check.source
        if p.skip:
            kind, _, why = p.skip.partition(": ")
            results.append(SmokeResult(p.check.name, p.check.service, kind, None, None, 0, why, where))
            continue
        r = answers[str(i)]
        results.append(
            SmokeResult(
                p.check.name,
                p.check.service,
                "passed" if r.passed else "failed",
                r.status,
                r.latency_ms,
                r.attempts,
                r.reason,
                where,
            )
        )
    return results


def _judge(expect: rb.Expect) -> Callable[[runner.Answer], list[str]]:
    return lambda answer: rb.evaluate(expect, answer.status, answer.body, answer.latency_ms)


def verdict(results: Sequence[SmokeResult]) -> str:
    """failed if any check failed; incomplete if some could not run; else passed."""
    if any(r.result == "failed" for r in results):
        return "failed"
    if any(r.result == "not run" for r in results) or not results:
        return "incomplete"
    return "passed"


def counts(results: Sequence[SmokeResult]) -> dict[str, int]:
    """How many checks passed, failed, did not run or were skipped."""
    return {kind: sum(1 for r in results if r.result == kind) for kind in ("passed", "failed", "not run", "skipped")}


def rows(results: Sequence[SmokeResult]) -> list[dict[str, str]]:
    """The table's cells as text (check, service, result, status code, latency, attempts, reason)."""
    return [
        {
            "check": r.check,
            "service": r.service,
            "result": r.result,
            "status": str(r.status) if r.status is not None else "—",
            "latency": f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "—",
            "attempts": str(r.attempts),
            "reason": r.reason or "",
        }
        for r in results
    ]


def text_table(results: Sequence[SmokeResult]) -> str:
    """A plain-text table for the terminal."""
    header = {"check": "check", "service": "service", "result": "result", "status": "status"}
    header.update({"latency": "latency", "attempts": "attempts", "reason": "reason"})
    table = [header, *rows(results)]
    columns = list(header)
    widths = {c: max(len(row[c]) for row in table) for c in columns[:-1]}
    return "\n".join(
        "  ".join([*(row[c].ljust(widths[c]) for c in columns[:-1]), row["reason"]]).rstrip() for row in table
    )


def junit_xml(results: Sequence[SmokeResult], environment: str) -> str:
    """JUnit XML: one testcase per check; a failure per failed check, `skipped` for checks that did not run."""
    c = counts(results)
    suite = ET.Element(
        "testsuite",
        name=f"smoke-{environment}",
        tests=str(len(results)),
        failures=str(c["failed"]),
        errors="0",
        skipped=str(c["not run"] + c["skipped"]),
        time=f"{sum((r.latency_ms or 0) for r in results) / 1000:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"smoke.{environment}.{r.service}",
            name=r.check,
            time=f"{(r.latency_ms or 0) / 1000:.3f}",
        )
        if r.result == "failed":
            failure = ET.SubElement(case, "failure", message=r.reason, type="SmokeCheckFailed")
            failure.text = f"{r.where}: {r.reason} (attempts: {r.attempts}, status: {r.status})"
        elif r.result in ("not run", "skipped"):
            ET.SubElement(case, "skipped", message=f"{r.result}: {r.reason}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def replace_section(text: str, title: str, body: str) -> str:
    """Replace the text between `## title` and the next `## ` heading (adding the section if it is missing)."""
    front, rest = f.split(text)
    lines = rest.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {title}"), None)
    new = body.strip("\n").split("\n")
    if start is None:
        while lines and lines[-1] == "":
            lines.pop()
        lines += ["", f"## {title}", "", *new, ""]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start + 1 : end] = ["", *new, ""]
    return f.FENCE + "\n" + front + f.FENCE + "\n" + "\n".join(lines)


def _digest(results: Sequence[SmokeResult]) -> str:
    text = "\n".join(f"{r.check}={r.result}" for r in results)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _headline(environment: str, results: Sequence[SmokeResult], inc: str | None) -> str:
    c = counts(results)
    outcome = verdict(results)
    parts = [f"{c['passed']} passed", f"{c['failed']} failed"]
    parts += [f"{c[k]} {k}" for k in ("not run", "skipped") if c[k]]
    prefix = f"{inc}: " if inc else ""
    failed = [r.check for r in results if r.result == "failed"]
    tail = f" — failing: {', '.join(failed[:5])}" + (" …" if len(failed) > 5 else "") if failed else ""
    return f"{prefix}smoke tests on {environment} {outcome} ({', '.join(parts)}){tail}"


def check_environment(
    config: Config,
    workspace: Path,
    redact: Callable[[str], str],
    environment: str,
    services: Sequence[str],
    env: Mapping[str, str],
    base_urls: Mapping[str, str] | None = None,
    *,
    containments: Sequence[Mapping[str, Any]] = (),
    number: int | None = None,
    junit_path: Path | None = None,
    settings: runner.Settings | None = None,
) -> Outcome:
    """Run the environment's checks (and deny checks for `containments`); write nothing but the JUnit file."""
    book = load_runbook(config, workspace)
    urls = base_urls_for(config, environment, env, base_urls)
    known = [s.name for s in config.services]
    unknown = [s for s in services if s not in known]
    if unknown:
        raise IncidentOpsError(f"unknown service(s): {', '.join(unknown)}", hint=f"Known services: {', '.join(known)}.")
    checks = [c for c in book.for_environment(environment) if not services or c.service in services]
    inc = incident_id(number) if number is not None else ""
    if containments:
        checks += deny_checks(config, environment, containments, inc, f"{incident_path(config, number or 0)}")
    if not checks:
        raise IncidentOpsError(
            f"the runbook has no smoke checks for {environment}" + (f" and {', '.join(services)}" if services else ""),
            hint=f"Add a ```smoke block for {environment} to {rb.RUNBOOK_PATH}.",
        )
    planned = plan(checks, urls, env, host_keys(config, environment), containments, inc)
    # While the requests are in flight, the summary's template loads (a read of local files; nothing is written):
    # in a fresh process, jinja2 and the template's compilation cost about as much as a check's answer takes.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smoke") as pool:
        pool.submit(preload, workspace, SUMMARY_TEMPLATE)
        results = execute(planned, settings or runner.Settings())
    outcome_kind = verdict(results)
    headline = _headline(environment, results, inc or None)
    summary = redact(
        render(SUMMARY_TEMPLATE, workspace, headline=headline, rows=rows(results), environment=environment)
    )
    xml = junit_xml(results, environment)
    steps = [f"{r.result}: {r.check} — {r.reason}" if r.reason else f"{r.result}: {r.check}" for r in results]
    if junit_path is not None:
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(redact(xml), encoding="utf-8")
        steps.append(f"wrote JUnit XML to {junit_path.name}")
    return Outcome(
        outcome_kind,
        headline,
        incident_id=inc or None,
        path=incident_path(config, number) if number is not None else None,
        steps=steps,
        exit_code=0 if outcome_kind == "passed" else 1,
        level={"passed": "notice", "incomplete": "warning"}.get(outcome_kind, "error"),
        details={"results": results, "summary": summary, "junit": xml, "table": text_table(results)},
    )


def run_smoke(
    ports: Ports,
    environment: str,
    services: Sequence[str],
    number: int | None,
    key: str,
    base_urls: Mapping[str, str] | None = None,
    *,
    actor: str = "incidentops",
    env: Mapping[str, str] | None = None,
    junit_path: Path | None = None,
    settings: runner.Settings | None = None,
) -> Outcome:
    """Run the environment's smoke checks (optionally only some services); record them on incident `number`."""
    env = os.environ if env is None else env
    containments: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    if number is not None:
        path = incident_path(ports.config, number)
        ports.git.sync()
        text = ports.git.read(path)
        if text is None:
            raise IncidentOpsError(f"no incident file {path}", hint="Declare the incident first.")
        fields = f.read_fields(text)
        containments = active_containments(fields)
    outcome = check_environment(
        ports.config,
        ports.workspace,
        ports.redact,
        environment,
        services,
        env,
        base_urls,
        containments=containments,
        number=number,
        junit_path=junit_path,
        settings=settings,
    )
    if number is not None:
        results = outcome.details["results"]
        outcome.steps += _record(ports, number, environment, results, key, actor)
        outcome.steps += expiry_notes(fields, ports.clock())
    return outcome


def _record(
    ports: Ports,
    number: int,
    environment: str,
    results: Sequence[SmokeResult],
    key: str,
    actor: str,
) -> list[str]:
    inc, path = incident_id(number), incident_path(ports.config, number)
    at = format_ts(ports.clock())
    digest = _digest(results)
    row_key = f"{key}:smoke:{digest}"
    c = counts(results)
    outcome_kind = verdict(results)
    section = render(
        "smoke-verification.md.j2",
        ports.workspace,
        at=at,
        actor=actor,
        environment=environment,
        verdict=outcome_kind,
        counts=c,
        rows=rows(results),
    )
    # `passed` is the yes/no the exit criteria read; the rest says what ran.
    smoke = {
        "passed": outcome_kind == "passed",
        "result": outcome_kind,
        "environment": environment,
        "at": at,
        "counts": {"passed": c["passed"], "failed": c["failed"], "not_run": c["not run"], "skipped": c["skipped"]},
        "failures": [r.check for r in results if r.result == "failed"],
    }
    runbook_url = file_url(ports, rb.RUNBOOK_PATH)

    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        text = read(path)
        if text is None or f.has_event(text, row_key):
            return {}
        fields = f.read_fields(text)
        verification = fields.get("verification")
        verification = dict(verification) if isinstance(verification, dict) else {}
        verification["smoke"] = smoke
        text = f.set_fields(text, {"verification": verification})
        text = replace_section(text, SECTION, section)
        row = f.TimelineRow(
            at, actor, _headline(environment, results, None).capitalize(), link("runbook", runbook_url), row_key
        )
        return {path: ports.redact(f.append_timeline(text, row))}

    result = ports.git.commit(edit, f"{inc}: smoke tests on {environment} {outcome_kind} (@{actor})")
    steps = [f"recorded the verification in {path} ({result.sha[:12]})"] if result.sha else []
    marker = f"<!-- incidentops:smoke:{f.escape_cell(key)}:{digest} -->"
    body = render(
        "smoke-comment.md.j2",
        ports.workspace,
        marker=marker,
        headline=_headline(environment, results, inc),
        verdict=outcome_kind,
        rows=rows(results),
        file_url=file_url(ports, path),
    )
    posted = ports.github.post_comment_once(number, marker, ports.redact(body))
    if posted.created:
        steps.append(f"posted the smoke results ({posted.url})")
    return steps


# -- entry points ----------------------------------------------------------------------------------------


def incident_environment(ports: Ports, number: int) -> str:
    """The incident's environment if it is configured, else production."""
    text = ports.git.read(incident_path(ports.config, number)) or ""
    name = str(f.read_fields(text).get("environment") or "") if text else ""
    return name if ports.config.environment(name) else "production"


def smoke_command(event: Event, ports: Ports, args: str) -> Outcome:
    """`/smoke [service …]` on an incident issue."""
    assert event.issue is not None
    services = [s for s in re.split(r"[\s,]+", args.strip()) if s]
    number = event.issue.number
    ports.git.sync()
    return run_smoke(ports, incident_environment(ports, number), services, number, event.key, actor=event.sender)


def verify_after_rollback(ports: Ports, outcome: Outcome, number: int | None, key: str, actor: str) -> Outcome:
    """Re-run the smoke tests after a rollback apply and fold the verdict into the rollback's outcome."""
    if outcome.status == "failed":
        outcome.steps.append("smoke tests not run: the rollback is incomplete")
        return outcome
    environment = incident_environment(ports, number) if number is not None else "production"
    try:
        smoke = run_smoke(ports, environment, [], number, key, actor=actor)
    except IncidentOpsError as err:
        outcome.steps.append(f"smoke tests not run: {err}")
        outcome.level, outcome.exit_code = "error", 1
        return outcome
    outcome.message += f"; {smoke.message}"
    outcome.steps += smoke.steps
    outcome.details["smoke"] = smoke
    if smoke.exit_code:
        outcome.exit_code, outcome.level = smoke.exit_code, smoke.level
    return outcome


def smoke_from_env(
    env: Mapping[str, str],
    environment: str,
    services: Sequence[str],
    number: int | None = None,
    junit_path: Path | None = None,
) -> Outcome:
    """`incidentops smoke`: build what the run needs from the job's environment and run it."""
    if number is not None:
        ports = ports_from_env(env)
        actor = authorize(ports, env, "smoke")
        # A job's re-run replays its key; by hand, each run is a new event.
        run_id = env.get("GITHUB_RUN_ID")
        key = f"run-{run_id}-{env.get('GITHUB_RUN_ATTEMPT', '')}" if run_id else f"manual-{format_ts(ports.clock())}"
        return run_smoke(ports, environment, services, number, key, actor=actor, env=env, junit_path=junit_path)
    # Without an incident nothing is written, so no GitHub token or git remote is needed.
    workspace = Path(env.get("GITHUB_WORKSPACE") or os.getcwd())
    return check_environment(
        load_config(workspace), workspace, Redactor.from_env(env), environment, services, env, junit_path=junit_path
    )
