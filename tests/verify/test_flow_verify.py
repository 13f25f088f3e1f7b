"""Closing an incident against the sandbox: real git, emulated GitHub and Cloudflare (analytics included)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from incidentops.core import incidentfile as f
from incidentops.core.events import parse_event
from incidentops.flows.base import Outcome
from incidentops.flows.verify import blast_radius, on_issue_closed, resolve_command, verify_incident
from tests.flows.conftest import NOW, World
from tests.verify.conftest import Clock

SMOKE_PASSED = {"passed": True, "at": "2026-11-27T03:50:00Z", "checks": 6}


# Declaring with "tenant isolation at risk" contains the route at once (tests/contain covers that); these tests
# are about closing, so their incident keeps the form's other answers without an active containment.
FORM = (Path(__file__).resolve().parents[1] / "fixtures/forms/full.md").read_text()
NO_CONTAINMENT = FORM.replace("- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk")


def declare(world: World) -> int:
    number = world.open_incident(body=NO_CONTAINMENT)
    world.label(number, "sev-1")
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared", outcome.message
    return number


def path(number: int) -> str:
    return f"incidents/INC-{number:04d}.md"


def human_edit(world: World, number: int, updates: Mapping[str, Any], decision: str | None = None) -> None:
    """What people (or the other command flows) record before closing: plain front matter edits in git."""

    def edit(read: Callable[[str], str | None]) -> dict[str, str]:
        text = read(path(number)) or ""
        fields = f.read_fields(text)
        merged = {k: ({**(fields.get(k) or {}), **v} if isinstance(v, dict) else v) for k, v in updates.items()}
        text = f.set_fields(text, merged)
        if decision:
            row = f"| 2026-11-27T03:20:00Z | @oncall-write | {decision} | |"
            text = f.append_table_row(text, "Decision log", row, "| time (UTC) | who | decision | ADR |")
        return {path(number): text}

    world.ports().git.commit(edit, "people fill in the evidence")


def complete(world: World, number: int) -> None:
    human_edit(
        world,
        number,
        {
            "security_impacting": False,
            "risks": {"tenant-isolation": {"status": "cleared", "why": "bad build rolled back"}},
            "verification": {"smoke": SMOKE_PASSED},
        },
        decision="Roll back api-worker to v1.2.0",
    )


def fields(world: World, number: int) -> dict[str, Any]:
    return f.read_fields(world.bare_file(path(number)))


def close_issue(world: World, number: int, login: str = "oncall-write") -> dict[str, Any]:
    # A close event is keyed on the issue's updated_at (whole seconds): a person closing again after our
    # reopen is a new event only once the second has turned, as it always has outside a fast test.
    time.sleep(1.05 - time.time() % 1)
    world.repo(login).get_issue(number).edit(state="closed")
    return world.next_event("issues", "closed")


def run_closed(world: World, delivery: dict[str, Any], clock: Clock) -> Outcome:
    event = parse_event(delivery["event"], json.loads(json.dumps(delivery["payload"])))
    return on_issue_closed(event, world.ports(clock.now))


def rollback(world: World, clock: Clock) -> None:
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    outcome = world.run(world.next_event("pull_request", "closed"), now=clock.now)
    assert outcome.status == "rolled-back", outcome.message


def test_metrics_block_closing_until_the_rollback_then_closing_closes_once(world: World, clock: Clock) -> None:
    number = declare(world)
    complete(world, number)

    # Before the rollback: everything else is in order, only the metrics of api-worker keep it open.
    clock.now = NOW + timedelta(minutes=10)
    first = run_closed(world, close_issue(world, number), clock)
    assert first.status == "unmet", first.message
    unmet = fields(world, number)["verification"]["exit_criteria"]["unmet"]
    assert [u.split(" ")[0:3] for u in unmet] == [["api-worker:", "error", "rate"], ["api-worker:", "p99", "latency"]]
    assert "is above the pre-incident baseline" in unmet[0]
    assert fields(world, number)["status"] == "declared"
    assert world.repo().get_issue(number).state == "open"  # reopened
    missing = [c for c in world.comments(number) if "stays open" in c]
    assert len(missing) == 1 and unmet[0] in missing[0] and unmet[1] in missing[0]

    # The rollback PR merges at +20 min; 25 minutes later the last quarter hour is back to baseline.
    clock.now = NOW + timedelta(minutes=20)
    rollback(world, clock)
    clock.now = NOW + timedelta(minutes=45)
    done = run_closed(world, close_issue(world, number), clock)
    assert done.status == "closed", (done.message, done.details)
    after = fields(world, number)
    assert after["status"] == "closed"
    assert after["resolved_at"] == after["closed_at"] == "2026-11-27T03:59:40Z"
    metrics = after["verification"]["metrics"]["api-worker"]
    assert metrics["recent"]["error_rate"] < 0.005 and metrics["recent"]["p99_ms"] < 250
    assert metrics["baseline"]["requests"] > 60_000
    # The rollback's own smoke run replaced the earlier record, and closing kept it.
    assert after["verification"]["smoke"]["passed"] is True
    assert world.repo().get_issue(number).state == "closed"
    summaries = [c for c in world.comments(number) if "is closed." in c]
    assert len(summaries) == 1 and "api-worker: error rate" in summaries[0]
    rows = [r[2] for r in f.timeline_rows(world.bare_file(path(number)))]
    at = rows.index("Exit criteria met: resolved")
    assert rows[at + 1] == "Incident closed"
    # The playbook's standing follow-ups came with the closing.
    assert any(r.startswith("Follow-up: Add the missing tests for the failure mode") for r in rows[at:])

    # Re-delivering the close changes nothing.
    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = run_closed(world, world.next_event("issues", "closed"), clock)
    assert again.status == "unchanged"
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_missing_evidence_reopens_with_exactly_what_is_missing_and_redelivery_is_a_no_op(
    world: World, clock: Clock
) -> None:
    number = declare(world)
    clock.now = NOW + timedelta(minutes=20)
    rollback(world, clock)
    clock.now = NOW + timedelta(minutes=45)
    delivery = close_issue(world, number)
    outcome = run_closed(world, delivery, clock)
    assert outcome.status == "unmet"
    unmet = fields(world, number)["verification"]["exit_criteria"]["unmet"]
    # The runbook's smoke checks ran against the rolled-back demo services and passed; the rest is missing.
    assert fields(world, number)["verification"]["smoke"]["passed"] is True
    assert unmet == [
        "Evidence: the Decision log is empty; record containment and rollback decisions with `/decision <text>`.",
        "Evidence: no explicit note whether security-impacting behavior changed; "
        "state it with `/security-impact yes|no <why>`.",
    ]
    assert world.repo().get_issue(number).state == "open"
    body = next(c for c in world.comments(number) if "stays open" in c)
    assert body.count("- [ ] ") == 2 and "the issue was reopened" in body

    commits, comments = len(world.bare_log()), len(world.comments(number))
    world.repo().get_issue(number).edit(state="closed")  # someone closes it again meanwhile
    again = run_closed(world, delivery, clock)  # ...and the first delivery arrives a second time
    assert again.status == "unchanged"
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments
    assert world.repo().get_issue(number).state == "open"  # the recorded verdict is projected again


def test_resolve_command_closes_when_met(world: World, clock: Clock) -> None:
    number = declare(world)
    complete(world, number)
    clock.now = NOW + timedelta(minutes=20)
    rollback(world, clock)
    clock.now = NOW + timedelta(minutes=40)
    world.repo("oncall-write").get_issue(number).create_comment("/resolve")
    event = parse_event("issue_comment", world.next_event("issue_comment", "created")["payload"])
    outcome = resolve_command(event, world.ports(clock.now), "")
    assert outcome.status == "closed", outcome.details
    assert world.repo().get_issue(number).state == "closed"
    row = next(r for r in f.timeline_rows(world.bare_file(path(number))) if r[2] == "Exit criteria met: resolved")
    assert row[1] == "@oncall-write" and "comment" in row[3]


def test_closing_without_the_resolve_role_is_refused_and_reopened(world: World, clock: Clock) -> None:
    number = declare(world)
    commits = len(world.bare_log())
    outcome = run_closed(world, close_issue(world, number, login="triager"), clock)
    assert outcome.status == "refused"
    assert world.repo().get_issue(number).state == "open"
    assert len(world.bare_log()) == commits


def test_verify_only_reports(world: World, clock: Clock) -> None:
    number = declare(world)
    commits = len(world.bare_log())
    outcome = verify_incident(world.ports(clock.now), number, "oncall-write", "cli", close=False)
    assert outcome.status == "unmet" and outcome.exit_code == 1
    assert any(step.startswith("✗ api-worker: error rate") for step in outcome.steps)
    assert len(world.bare_log()) == commits


def test_blast_radius_is_measured_once(world: World, clock: Clock) -> None:
    number = declare(world)  # declaring measures it (flows.dispatch), at the declaration's time
    clock.now = NOW + timedelta(minutes=5)
    measured = blast_radius(world.ports(clock.now), number)
    # 03:12:09 → 03:14:40 of api.example.com at ~1200 requests a minute; the bad build answers its health
    # checks (a tenth of the traffic) with 503 and leaks reports with 200s: only 5xx answers count as errors.
    assert 2500 < measured["requests"] < 3600 and 0.08 < measured["errors"] / measured["requests"] < 0.12
    assert measured["since"] == "2026-11-27T03:12:09Z" and set(measured["services"]) == {"api-worker"}
    assert measured["services"]["api-worker"]["source"].startswith("HTTP requests to api.example.com")
    recorded = fields(world, number)["impact"]
    assert recorded["measured"] == measured and recorded["routes"] == ["/v1/reports"]
    assert any(r[2].startswith("Blast radius measured:") for r in f.timeline_rows(world.bare_file(path(number))))
    commits = len(world.bare_log())
    assert blast_radius(world.ports(clock.now + timedelta(minutes=5)), number) == measured
    assert len(world.bare_log()) == commits


# -- what customers got (issue #13): zone HTTP analytics, whatever the kind of service ----------------------


def declare_for(world: World, service: str, route: str) -> int:
    body = NO_CONTAINMENT.replace("### Affected services\n\napi-worker", f"### Affected services\n\n{service}")
    body = body.replace("### Impacted routes\n\n/v1/reports", f"### Impacted routes\n\n{route}")
    number = world.open_incident(body=body)
    world.label(number, "sev-2")
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared", outcome.message
    assert fields(world, number)["services"] == [service]
    return number


def test_a_pages_only_incident_closes(world: World, clock: Clock) -> None:
    # admin-pages is a static Pages project: no Functions, so no invocation analytics exist for it at all.
    number = declare_for(world, "admin-pages", "/")
    complete(world, number)
    clock.now = NOW + timedelta(minutes=10)
    before = verify_incident(world.ports(clock.now), number, "oncall-write", "cli", close=False)
    assert any(s.startswith("✗ admin-pages: error rate") for s in before.steps), before.steps
    clock.now = NOW + timedelta(minutes=20)
    rollback(world, clock)
    clock.now = NOW + timedelta(minutes=45)
    done = run_closed(world, close_issue(world, number), clock)
    assert done.status == "closed", (done.message, done.details)
    metrics = fields(world, number)["verification"]["metrics"]["admin-pages"]
    assert metrics["source"].startswith("HTTP requests to admin.example.com")
    assert metrics["recent"]["requests"] > 1000 and metrics["recent"]["error_rate"] == 0


def test_a_worker_answering_500s_cannot_close_on_metrics(world: World, clock: Clock) -> None:
    number = declare_for(world, "ingest-worker", "/v1/events")
    complete(world, number)
    clock.now = NOW + timedelta(minutes=30)
    ports = world.ports(clock.now)

    # Its invocations look healthy: the bad build answers 500 without throwing, and answers fast.
    async def invocations() -> tuple[float | None, float | None]:
        async with world.cloudflare(world.info["cloudflare_account_id"]) as cf:
            stats = await cf.worker_invocations("ingest-worker", clock.now - timedelta(minutes=15), clock.now)
            return stats.error_rate, stats.p99_ms

    rate, p99 = asyncio.run(invocations())
    assert rate is not None and rate < 0.005 and p99 is not None and p99 < 250

    outcome = verify_incident(ports, number, "oncall-write", "cli", close=False)
    checks = {c["code"]: c for c in outcome.details["checks"]}
    assert checks["metrics:ingest-worker:error-rate"]["ok"] is False
    assert "is above the pre-incident baseline" in checks["metrics:ingest-worker:error-rate"]["message"]
    assert "HTTP requests to ingest.example.com" in checks["metrics:ingest-worker:error-rate"]["message"]
    assert checks["metrics:ingest-worker:p99"]["ok"] is True  # fast 500s: only the status shows it
    closed = resolve_command(_resolve_event(world, number), world.ports(clock.now), "")
    assert closed.status == "unmet" and fields(world, number)["status"] != "closed"


def _resolve_event(world: World, number: int) -> Any:
    world.repo("oncall-write").get_issue(number).create_comment("/resolve")
    return parse_event("issue_comment", world.next_event("issue_comment", "created")["payload"])


# -- a start older than the analytics keep (issue #16.8) ---------------------------------------------------


def declare_started(world: World, started: str) -> tuple[int, Outcome]:
    number = world.open_incident(body=NO_CONTAINMENT.replace("2026-11-27T03:12:09Z", started))
    world.label(number, "sev-2")
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared", outcome.message
    assert fields(world, number)["started_at"] == started
    return number, outcome


def test_a_start_longer_ago_than_one_query_spans_is_measured_in_several(world: World) -> None:
    # Five days: more than the 3 days one analytics query may span, well inside the 31 days kept.
    number, outcome = declare_started(world, "2026-11-22T03:12:09Z")
    measured = fields(world, number)["impact"]["measured"]
    assert "error" not in measured and "not_measured" not in measured
    assert measured["since"] == "2026-11-22T03:12:09Z"
    # ~1000 requests a minute on api.example.com for five days.
    assert measured["requests"] > 5 * 24 * 60 * 900
    assert not any("NOT measured" in s for s in outcome.steps)


def test_a_start_older_than_the_analytics_keep_says_what_was_not_measured(world: World) -> None:
    number, outcome = declare_started(world, "2026-10-17T03:12:09Z")  # 41 days before the declaration
    measured = fields(world, number)["impact"]["measured"]
    # The 31 days Cloudflare keeps are measured…
    assert measured["requests"] > 30 * 24 * 60 * 900
    assert "2026-10-27T03:1" in measured["since"]  # NOW - 31 days (+ a margin)
    # …and the ten days before them are named as not measured, and why, in the record and the run's output.
    (gap,) = measured["not_measured"]
    assert gap["from"] == "2026-10-17T03:12:09Z" and gap["until"] == measured["since"]
    assert gap["services"] == ["api-worker"] and "older than Cloudflare Analytics keeps (31 days)" in gap["why"]
    said = [s for s in outcome.steps if "NOT measured" in s]
    assert said == [
        f"blast radius NOT measured 2026-10-17T03:12:09Z → {gap['until']} (api-worker): "
        "older than Cloudflare Analytics keeps (31 days)"
    ]
    row = [r for r in f.timeline_rows(world.bare_file(path(number))) if r[2].startswith("Blast radius measured:")]
    assert row and "NOT measured 2026-10-17T03:12:09Z" in row[0][2]
    assert outcome.exit_code == 0  # the incident is declared; the gap is reported, not a failure
