"""Benchmark `incidentops report` and `incidentops lint` over a long incident history.

Generates N realistic incident files the way the automation writes them — the real incident template
(`new_incident_text`), then the real surgical edits (`set_fields`, `append_timeline`, `append_table_row`)
for containment, rollback, verification, follow-ups, resolution and closure — plus one hand-broken file in
every 500. Then it times the report over 1,000 and 10,000 files and prints the time per 1,000 incidents at
each size and the ratio of the per-incident costs: about 1.0 means the cost grows linearly (target: <= 1.5;
the seconds are the inputs to that ratio, with no target of their own as they depend on the machine).

Run: .venv/bin/python benchmarks/history.py [--sizes 1000,10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from verdict import report

from incidentops.core import incidentfile as f
from incidentops.core.events import Event, Issue
from incidentops.core.form import Intake
from incidentops.core.timefmt import format_ts
from incidentops.flows.declare import new_incident_text
from incidentops.flows.lint import lint
from incidentops.flows.report import build_report

SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")
ROUTES = ("/v1/reports", "/v1/ingest", "/v1/tenants", "/admin/users", "/portal/billing")
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")
FOLLOWUP_HEADER = "| task | owner | due | issue |"
REPO_URL = "https://github.com/example/ops"
BROKEN_EVERY = 500
# The per-incident cost at the largest size over that at the smallest: 1.0 is linear growth.
LINEAR_TARGET = 1.5


def _event(number: int, title: str, sender: str, at: datetime, label: str) -> Event:
    issue = Issue(
        number=number,
        title=title,
        body="",
        state="open",
        html_url=f"{REPO_URL}/issues/{number}",
        labels=(label,),
        assignees=(),
        author=sender,
        updated_at=format_ts(at),
        is_pull_request=False,
    )
    return Event(name="issues", action="labeled", sender=sender, sender_is_bot=False, label=label, issue=issue)


def make_incident(number: int, rng: random.Random, base: datetime) -> str:
    """One incident's file as the automation would have left it, from declaration to wherever it got.

    Rows are appended with the same functions the flows use; the front matter keys and the Mermaid diagram
    are written once at the end instead of after every row, which gives the same file in a fraction of
    the time (each `set_fields` and diagram refresh re-parses the front matter)."""
    severity = rng.choices(("SEV-1", "SEV-2", "SEV-3"), weights=(1, 3, 6))[0]
    started = (base + timedelta(hours=number * 8 + rng.uniform(0, 7))).replace(microsecond=0)
    declared = started + timedelta(seconds=rng.randint(60, 3600 if severity == "SEV-1" else 4 * 3600))
    services = rng.sample(SERVICES, rng.randint(1, 3))
    route = rng.choice(ROUTES)
    who = rng.choice(PEOPLE)
    intake = Intake(
        summary=f"Errors on {route} after a deploy of {services[0]}.\nCustomers report failures; see the dashboard.",
        environment="production",
        started_at=format_ts(started),
        routes=[route],
        tenants=[f"t-{rng.randint(100, 999)}" for _ in range(rng.randint(1, 3))],
        request_ids=[f"req-{rng.getrandbits(24):06x}" for _ in range(rng.randint(1, 4))],
        request_volume=f"{rng.randint(10, 5000)}/min",
        services=services,
        tenant_isolation_risk=severity == "SEV-1" and rng.random() < 0.5,
        deploy_regression_suspected=rng.random() < 0.6,
    )
    title = f"{route} failing for some tenants ({services[0]})"
    label = "sev-" + severity[-1]
    text = new_incident_text(_event(number, title, who, declared, label), intake, severity, declared)
    now = declared
    updates: dict[str, object] = {}
    stage = rng.choices(range(6), weights=(2, 3, 5, 5, 10, 75))[0]

    def row(what: str, link: str = "", minutes: tuple[int, int] = (2, 40)) -> None:
        nonlocal text, now
        now += timedelta(minutes=rng.randint(*minutes), seconds=rng.randint(0, 59))
        line = f.format_row(f.TimelineRow(format_ts(now), rng.choice(PEOPLE), what, link, f"ev-{number}-{now:%s}"))
        text = f.append_table_row(text, "Timeline", line, f.TIMELINE_HEADER)

    row(f"Note: paged the owners of {', '.join(services)}")
    if stage >= 1:
        rule = f"{rng.getrandbits(64):016x}"
        row(f"Contained {route} (WAF rule {rule})", f"`/contain {route}`")
        since, expires = format_ts(now), format_ts(now + timedelta(hours=4))
        updates["status"] = "contained"
        updates["containment"] = [{"route": route, "rule_id": rule, "since": since, "expires": expires}]
        line = f"| `{route}` | {rule} | {since} | {expires} |  |"
        text = f.append_table_row(text, "Containment", line, "| route | rule | since | expires | lifted |")
    if stage >= 2:
        pr = number + 100_000
        decided = format_ts(now + timedelta(minutes=1))
        decision = f"Roll back {', '.join(services)} to the last verified pins"
        line = f"| {decided} | @{who} | {f.escape_cell(decision)} | — |"
        text = f.append_table_row(text, "Decision log", line, "| time (UTC) | who | decision | ADR |")
        row(f"Decision: {decision}", minutes=(1, 1))
        row(f"Rollback PR #{pr} opened: {', '.join(services)} to last known good", f"[PR #{pr}]({REPO_URL}/pull/{pr})")
        done: dict[str, dict[str, str]] = {}
        for s in services:
            row(f"Rollback {s}: done — deployed at 100%", "`POST /deployments -> 200`", minutes=(0, 2))
            done[s] = {"from": f"{rng.getrandbits(32):08x}", "to": f"{rng.getrandbits(32):08x}", "status": "done"}
            done[s]["at"] = format_ts(now)
            line = f"| {s} | `{done[s]['from']}` | `{done[s]['to']}` | done | {done[s]['at']} |"
            text = f.append_table_row(text, "Rollback", line, "| service | from | to | status | at |")
        updates["status"] = "mitigated"
        updates["rollback"] = {"pr": pr, "services": done}
    if stage >= 3:
        row("Smoke tests passed (5 passed, 0 failed)", "`/smoke`")
        smoke = {"verdict": "passed", "at": format_ts(now), "passed": 5, "failed": 0}
        updates["verification"] = {"smoke": smoke, "metrics": "error rate back to baseline"}
        text = text.replace(
            "_Not run yet._",
            f"Smoke tests on **production** at {format_ts(now)}: **passed** (5 passed, 0 failed, 0 not run).",
        )
    if stage >= 4:
        for n in range(rng.randint(1, 3)):
            issue = number * 10 + n
            due = (now + timedelta(days=rng.randint(3, 30))).date().isoformat()
            line = f"| Add a regression test for {route} ({n + 1}) | @{rng.choice(PEOPLE)} | {due} | #{issue} |"
            text = f.append_table_row(text, "Follow-ups", line, FOLLOWUP_HEADER)
            row(f"Follow-up: regression test for {route}", f"[#{issue}]({REPO_URL}/issues/{issue})")
        row("Resolved", "`/resolve`", minutes=(5, 240))
        updates.update(status="resolved", resolved_at=format_ts(now), security_impacting=False)
    if stage >= 5:
        row("Closed: exit criteria met", minutes=(30, 2000))
        updates.update(status="closed", closed_at=format_ts(now))
    if updates:
        text = f.set_fields(text, updates)
    return f.refresh_diagram(text)


def _write_chunk(directory: Path, first: int, last: int, seed: int) -> None:
    rng = random.Random(f"{seed}-{first}")  # one stream per chunk: the same files whatever the worker count
    base = datetime(2023, 1, 2, tzinfo=UTC)
    for number in range(first, last + 1):
        text = make_incident(number, rng, base)
        if number % BROKEN_EVERY == 0:
            text = text.replace("\nstatus:", "\nstatus: [unclosed", 1)
        (directory / f"INC-{number:04d}.md").write_text(text, encoding="utf-8")


def write_history(directory: Path, count: int, seed: int = 7, chunk: int = 250) -> None:
    """Write INC-0001.md … INC-<count>.md on every core; every BROKEN_EVERY-th file has a hand-broken front matter."""
    directory.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [
            pool.submit(_write_chunk, directory, first, min(first + chunk - 1, count), seed)
            for first in range(1, count + 1, chunk)
        ]
        for job in jobs:
            job.result()


def bench_size(root: Path, size: int) -> dict[str, float]:
    """Generate (or reuse) a history of `size` incidents, build its site, lint it; return the seconds of each."""
    workspace = root / f"history-{size}"
    incidents = workspace / "incidents"
    times: dict[str, float] = {"generate": 0.0}  # 0: reused from an earlier --keep run
    if not (incidents.is_dir() and len(list(incidents.glob("INC-*.md"))) == size):
        shutil.rmtree(workspace, ignore_errors=True)
        began = time.perf_counter()
        write_history(incidents, size)
        times["generate"] = time.perf_counter() - began
    out = workspace / "site"
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    outcome = build_report(incidents, out, repo_url=REPO_URL)
    times["report"] = time.perf_counter() - began
    line = (
        f"{size:>6} incidents: generated in {times['generate']:6.1f} s; report {times['report']:6.2f} s "
        f"({times['report'] / size * 1000:5.2f} s per 1,000; {outcome.incidents} pages, "
        f"{len(outcome.malformed)} unreadable)"
    )
    began = time.perf_counter()
    lint(workspace, "incidents")
    times["lint"] = time.perf_counter() - began
    line += f"; lint {times['lint']:6.2f} s ({times['lint'] / size * 1000:5.2f} s per 1,000)"
    print(line + " [no target of their own: inputs to the ratio]", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated history sizes (default 1000,10000)")
    parser.add_argument("--keep", metavar="DIR", help="keep the generated incidents and sites in DIR")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-history-"))
    missed = False
    try:
        results = {size: bench_size(root, size) for size in sizes}
        small, large = sizes[0], sizes[-1]
        if large > small:
            for name in ("report", "lint"):
                ratio = (results[large][name] / large) / (results[small][name] / small)
                verdict = "meets" if ratio <= LINEAR_TARGET else "MISSES"
                print(
                    f"{name}: per-incident cost at {large} / at {small} = {ratio:.2f} "
                    f"({verdict} the target <= {LINEAR_TARGET}; 1.0 = linear)"
                )
                met = report(
                    "history",
                    f"{name}: per-incident cost at {large} / at {small}",
                    f"{ratio:.2f}",
                    f"<= {LINEAR_TARGET}",
                    ratio <= LINEAR_TARGET,
                )
                missed = missed or not met
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
