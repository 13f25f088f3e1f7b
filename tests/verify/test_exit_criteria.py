"""Exit criteria as a pure function: each one failing alone, and all met."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from incidentops.core import exit_criteria as crit

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
GOOD = crit.Window(requests=18_000, errors=36, p99_ms=180.0)


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "INC-0007",
        "status": "mitigated",
        "started_at": "2026-11-27T03:12:09Z",
        "declared_at": "2026-11-27T03:14:40Z",
        "services": ["api-worker"],
        "impact": {"routes": ["/v1/reports"], "tenants": ["t-100"], "request_ids": ["req-7f3a9c"]},
        "tenant_isolation_risk": True,
        "security_impacting": False,
        "risks": {"tenant-isolation": {"status": "cleared", "why": "rolled back"}},
        "containment": [{"route": "/v1/reports", "rule_id": "r1", "since": "x", "lifted": "2026-11-27T03:50:00Z"}],
    }
    base.update(changes)
    return base


def facts(**changes: Any) -> crit.Facts:
    base = crit.Facts(
        fields=fields(),
        decision_rows=1,
        metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=crit.Window(4_500, 10, 190.0))],
        smoke={"passed": True, "at": "2026-11-27T03:55:00Z"},
    )
    return replace(base, **changes)


def unmet(f: crit.Facts) -> list[str]:
    return [c.message for c in crit.evaluate(f).unmet]


def test_all_met() -> None:
    verdict = crit.evaluate(facts())
    assert verdict.met, verdict.unmet
    assert {c.code for c in verdict.checks} >= {"smoke", "metrics:api-worker:error-rate", "metrics:api-worker:p99"}


CASES = [
    (
        "smoke not run",
        facts(smoke=None),
        ["Smoke checks: no result recorded yet; run them with `/smoke`."],
    ),
    (
        "smoke failed",
        facts(smoke={"passed": False, "at": "2026-11-27T03:55:00Z", "failed": ["GET /v1/health"]}),
        ["Smoke checks: the run at 2026-11-27T03:55:00Z failed (GET /v1/health); fix and run `/smoke` again."],
    ),
    (
        "error rate",
        facts(metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=crit.Window(4_000, 320, 185.0))]),
        [
            "api-worker: error rate 8.00% over the last 15 minutes is above the pre-incident baseline 0.20% "
            "(+0.50 points allowed)."
        ],
    ),
    (
        "p99",
        facts(metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=crit.Window(4_000, 8, 2400.0))]),
        [
            "api-worker: p99 latency 2400 ms over the last 15 minutes is above the pre-incident baseline 180 ms "
            "(+25% allowed)."
        ],
    ),
    (
        "analytics unreadable",
        facts(metrics=[crit.ServiceMetrics("api-worker", error="Cloudflare: GraphQL analytics query failed: x")]),
        [
            "api-worker: error rate and p99 latency could not be checked "
            "(Cloudflare: GraphQL analytics query failed: x)."
        ],
    ),
    (
        "no recent traffic",
        facts(metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=crit.Window(0, 0, None))]),
        ["api-worker: no traffic in the last 15 minutes, so recovery cannot be confirmed."],
    ),
    (
        "services unknown",
        facts(fields=fields(services=[])),
        [
            "Metrics: the affected services are unknown, so their error rate and latency cannot be checked; "
            "list them in `services`."
        ],
    ),
    (
        "active containment",
        facts(fields=fields(containment=[{"route": "/v1/reports", "rule_id": "r1", "since": "t0", "lifted": None}])),
        ["Containment on `/v1/reports` (rule r1, since t0) is still active; lift it with `/lift /v1/reports`."],
    ),
    (
        "form risk never cleared",
        facts(fields=fields(risks=None)),
        [
            "Risk `tenant-isolation` is open (flagged when the incident was declared); "
            "clear it with `/risk tenant-isolation cleared <why>`."
        ],
    ),
    (
        "authz open (list form)",
        facts(
            fields=fields(
                risks=[{"kind": "tenant-isolation", "status": "cleared"}, {"kind": "authz", "status": "open"}]
            )
        ),
        ["Risk `authz` is open; clear it with `/risk authz cleared <why>`."],
    ),
    (
        "data-integrity open (short form)",
        facts(fields=fields(risks={"tenant-isolation": "cleared", "data-integrity": "open"})),
        ["Risk `data-integrity` is open; clear it with `/risk data-integrity cleared <why>`."],
    ),
    ("no incident id", facts(fields=fields(id=None)), ["Evidence: incident ID missing."]),
    (
        "request ids unknown",
        facts(fields=fields(impact={"routes": ["/v1/reports"], "tenants": ["t-100"], "request_ids": "unknown"})),
        ["Evidence: request IDs are unknown; add them with `/evidence request-id <value …>`."],
    ),
    (
        "tenants unknown",
        facts(fields=fields(impact={"routes": ["/v1/reports"], "tenants": [], "request_ids": ["r"]})),
        ["Evidence: tenant IDs are unknown; add them with `/evidence tenant <value …>`."],
    ),
    (
        "routes unknown",
        facts(fields=fields(impact={"routes": "unknown", "tenants": ["t"], "request_ids": ["r"]})),
        ["Evidence: routes are unknown; add them with `/evidence route <value …>`."],
    ),
    (
        "empty decision log",
        facts(decision_rows=0),
        ["Evidence: the Decision log is empty; record containment and rollback decisions with `/decision <text>`."],
    ),
    (
        "security impact not stated",
        facts(fields=fields(security_impacting=None)),
        [
            "Evidence: no explicit note whether security-impacting behavior changed; "
            "state it with `/security-impact yes|no <why>`."
        ],
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_criterion_failing_alone(name: str, given: crit.Facts, expected: list[str]) -> None:
    assert unmet(given) == expected


def test_tolerances_are_configurable_and_the_edge_is_met() -> None:
    edge = crit.Window(10_000, 70, 225.0)  # 0.70% = 0.20% + 0.50; 225 ms = 180 ms * 1.25
    assert unmet(facts(metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=edge)])) == []
    strict = crit.Thresholds(error_rate_tolerance=0.001, latency_tolerance=0.1)
    verdict = crit.evaluate(facts(metrics=[crit.ServiceMetrics("api-worker", baseline=GOOD, recent=edge)]), strict)
    assert [c.code for c in verdict.unmet] == ["metrics:api-worker:error-rate", "metrics:api-worker:p99"]


def test_windows() -> None:
    limits = crit.Thresholds()
    start = crit.incident_start(fields())
    assert start == datetime(2026, 11, 27, 3, 12, 9, tzinfo=UTC)
    assert limits.baseline_window(start) == (
        datetime(2026, 11, 20, 2, 12, 9, tzinfo=UTC),
        datetime(2026, 11, 20, 3, 12, 9, tzinfo=UTC),
    )
    assert limits.recent_window(NOW)[0] == datetime(2026, 11, 27, 3, 45, tzinfo=UTC)
    assert crit.incident_start(fields(started_at="unknown")) == datetime(2026, 11, 27, 3, 14, 40, tzinfo=UTC)


def test_decision_log_rows_are_counted_from_the_table_only() -> None:
    body = (
        "## Decision log\n\n| time (UTC) | who | decision | ADR |\n|---|---|---|---|\n"
        "| 2026-11-27T03:20:00Z | @alice | Roll back api-worker | |\n\nProse after.\n\n"
        "## Evidence\n\n| a |\n|---|\n| b |\n"
    )
    assert crit.table_rows(body, "Decision log") == [["2026-11-27T03:20:00Z", "@alice", "Roll back api-worker", ""]]
    empty = "## Decision log\n\n| time (UTC) | who | decision | ADR |\n|---|---|---|---|\n\n## Evidence\n"
    assert crit.table_rows(empty, "Decision log") == []


def test_a_service_without_analytics_is_carried_by_the_smoke_checks() -> None:
    fields = {"services": ["static-site"]}
    why = "Cloudflare has no analytics for static-site: a Pages project without Functions"
    checks = crit.evaluate(crit.Facts(fields, 0, [crit.ServiceMetrics("static-site", no_analytics=why)])).checks
    (metric,) = [c for c in checks if c.code.startswith("metrics:")]
    assert metric.ok and why in metric.message and "smoke checks carry it" in metric.message


def test_a_source_without_latency_is_judged_on_its_error_rate() -> None:
    window = crit.Window(1000, 1, None)
    metrics = crit.ServiceMetrics("fn", baseline=window, recent=window, source="Pages Functions invocations of x")
    checks = {c.code: c for c in crit.evaluate(crit.Facts({"services": ["fn"]}, 0, [metrics])).checks}
    assert checks["metrics:fn:error-rate"].ok
    assert checks["metrics:fn:p99"].ok and "no latency in Pages Functions" in checks["metrics:fn:p99"].message
