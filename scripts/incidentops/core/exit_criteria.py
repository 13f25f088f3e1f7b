"""Recovery exit criteria (playbook "Recovery Exit Criteria" and "Required Evidence"): facts in, checks out.

Pure: the flow gathers the facts (the incident file, the smoke result, metrics read from Cloudflare) and
passes the clock; this module decides what is met and words exactly what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from incidentops.core import breach
from incidentops.core.timefmt import parse_ts

UNKNOWN = "unknown"
RISK_KINDS = ("tenant-isolation", "authz", "data-integrity")


@dataclass(frozen=True)
class Thresholds:
    """How recovery is judged; defaults until incidentops.yaml carries an `exit_criteria` section."""

    recent_minutes: int = 15  # "the last N minutes"
    baseline_minutes: int = 60  # length of the baseline window
    # The baseline window ends this long before started_at. A week by default: a regression often ran for
    # hours before anyone declared, so the hour just before started_at may already be bad; the same hour a
    # week earlier also has the same daily and weekly traffic shape.
    baseline_lag_minutes: int = 7 * 24 * 60
    error_rate_tolerance: float = 0.005  # absolute: recent error rate may exceed the baseline by 0.5 points
    latency_tolerance: float = 0.25  # relative: recent p99 may exceed the baseline p99 by 25 %

    def recent_window(self, now: datetime) -> tuple[datetime, datetime]:
        """Return the window whose metrics must be back to baseline."""
        return now - timedelta(minutes=self.recent_minutes), now

    def baseline_window(self, started_at: datetime) -> tuple[datetime, datetime]:
        """Return the pre-incident window the recent metrics are compared with."""
        end = started_at - timedelta(minutes=self.baseline_lag_minutes)
        return end - timedelta(minutes=self.baseline_minutes), end


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        """Return errors / requests, or None without traffic."""
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class ServiceMetrics:
    """What Cloudflare Analytics said about one affected service, or why it could not be read."""

    service: str
    baseline: Window | None = None
    recent: Window | None = None
    error: str | None = None
    source: str = ""  # which analytics the numbers come from (zone HTTP requests, invocations, …)
    no_analytics: str | None = None  # why Cloudflare has no analytics for it: then the smoke checks carry it


@dataclass(frozen=True)
class Facts:
    fields: Mapping[str, Any]  # the incident's front matter
    decision_rows: int  # data rows in the Decision log table
    metrics: Sequence[ServiceMetrics] = ()
    smoke: Mapping[str, Any] | None = None  # {passed: bool, at: ts, ...} from verification.smoke


@dataclass(frozen=True)
class Check:
    code: str  # stable id, e.g. "metrics:api-worker:error-rate", "evidence:request-ids"
    ok: bool
    message: str  # what is met, or exactly what is missing and how to fix it


@dataclass(frozen=True)
class Verdict:
    checks: list[Check] = field(default_factory=list)

    @property
    def unmet(self) -> list[Check]:
        """Return the checks that are not met, in the order evaluated."""
        return [c for c in self.checks if not c.ok]

    @property
    def met(self) -> bool:
        """Return whether every criterion is met."""
        return not self.unmet


def _missing(value: Any) -> bool:
    if value is None or value == UNKNOWN or value == "":
        return True
    if isinstance(value, list | tuple):
        return not [v for v in value if v not in (None, "", UNKNOWN)]
    return False


# Cloudflare's GraphQL Analytics datasets limit how far back a query may read (`notOlderThan`) and how long a span
# one query may cover (`maxDuration`), per dataset and plan (developers.cloudflare.com/analytics/graphql-api/limits/,
# read through the `settings` node: …/graphql-api/features/discovery/settings/). These are the Workers invocations
# dataset's, which the sandbox enforces on every dataset; a query beyond a stricter plan's limit still fails and is
# reported as not measured, with Cloudflare's reason.
ANALYTICS_MAX_SPAN = timedelta(seconds=259_200)  # 3 days per query
ANALYTICS_RETENTION = timedelta(seconds=2_678_400)  # 31 days back
_RETENTION_MARGIN = timedelta(minutes=5)  # the queries run a little after `end`: stay clear of the edge


@dataclass(frozen=True)
class Spans:
    """How to measure [start, end): the queries to send, and the part no query can read (older than retention)."""

    queries: tuple[tuple[datetime, datetime], ...]
    too_old: tuple[datetime, datetime] | None


def analytics_spans(
    start: datetime,
    end: datetime,
    max_span: timedelta = ANALYTICS_MAX_SPAN,
    retention: timedelta = ANALYTICS_RETENTION,
) -> Spans:
    """Split [start, end) into back-to-back queries no longer than `max_span`, none older than `retention`."""
    oldest = end - retention + _RETENTION_MARGIN
    too_old = None
    if start < oldest:
        too_old = (start, oldest)
        start = oldest
    queries = []
    while start < end:
        stop = min(start + max_span, end)
        queries.append((start, stop))
        start = stop
    return Spans(tuple(queries), too_old)


def incident_start(fields: Mapping[str, Any]) -> datetime | None:
    """Return started_at, else declared_at, as a datetime (None when neither is a timestamp)."""
    for key in ("started_at", "declared_at"):
        value = fields.get(key)
        if isinstance(value, str):
            try:
                return parse_ts(value)
            except ValueError:
                continue
    return None


def last_recovery_at(fields: Mapping[str, Any]) -> str | None:
    """Return the newest rollback or lift timestamp: smoke results older than it prove nothing."""
    moments: list[str] = []
    rollback = fields.get("rollback")
    services = rollback.get("services") if isinstance(rollback, Mapping) else None
    if isinstance(services, Mapping):
        moments += [str(s["at"]) for s in services.values() if isinstance(s, Mapping) and s.get("at")]
    entries = fields.get("containment")
    if isinstance(entries, list):
        moments += [str(e["lifted"]) for e in entries if isinstance(e, Mapping) and isinstance(e.get("lifted"), str)]
    return max(moments) if moments else None


def smoke_is_current(fields: Mapping[str, Any]) -> bool:
    """Return whether a passing smoke result is recorded after the last recovery action (no need to re-run)."""
    verification = fields.get("verification")
    smoke = verification.get("smoke") if isinstance(verification, Mapping) else None
    if not isinstance(smoke, Mapping) or smoke.get("passed") is not True or not isinstance(smoke.get("at"), str):
        return False
    last = last_recovery_at(fields)
    return last is None or smoke["at"] >= last


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _smoke(facts: Facts) -> Check:
    smoke = facts.smoke
    if not isinstance(smoke, Mapping) or "passed" not in smoke:
        return Check("smoke", False, "Smoke checks: no result recorded yet; run them with `/smoke`.")
    at = smoke.get("at") or "an unknown time"
    if smoke.get("passed") is not True:
        failed = smoke.get("failed") or smoke.get("failures")
        detail = f" ({', '.join(map(str, failed))})" if isinstance(failed, list) and failed else ""
        return Check("smoke", False, f"Smoke checks: the run at {at} failed{detail}; fix and run `/smoke` again.")
    return Check("smoke", True, f"Smoke checks passed at {at}.")


def _metric_checks(facts: Facts, thresholds: Thresholds) -> list[Check]:
    services = facts.fields.get("services")
    if _missing(services) or not isinstance(services, list):
        return [
            Check(
                "metrics:services",
                False,
                "Metrics: the affected services are unknown, so their error rate and latency cannot be checked; "
                "list them in `services`.",
            )
        ]
    checks: list[Check] = []
    by_name = {m.service: m for m in facts.metrics}
    recent = f"the last {thresholds.recent_minutes} minutes"
    for service in services:
        code = f"metrics:{service}"
        found = by_name.get(str(service))
        if found is not None and found.no_analytics:
            checks.append(Check(code, True, f"{service}: {found.no_analytics}; its smoke checks carry it."))
            continue
        if found is None or found.error:
            why = found.error if found and found.error else "no metrics were read"
            checks.append(Check(code, False, f"{service}: error rate and p99 latency could not be checked ({why})."))
            continue
        base, now = found.baseline, found.recent
        if base is None or base.error_rate is None:
            checks.append(
                Check(code, False, f"{service}: no traffic in the pre-incident baseline window to compare with.")
            )
            continue
        if now is None or now.error_rate is None:
            checks.append(Check(code, False, f"{service}: no traffic in {recent}, so recovery cannot be confirmed."))
            continue
        limit = base.error_rate + thresholds.error_rate_tolerance
        checks.append(
            Check(
                f"{code}:error-rate",
                now.error_rate <= limit,
                f"{service}: error rate {_pct(now.error_rate)} over {recent}"
                + (" is within" if now.error_rate <= limit else " is above")
                + f" the pre-incident baseline {_pct(base.error_rate)}"
                + f" (+{thresholds.error_rate_tolerance * 100:.2f} points allowed)."
                + (f" Source: {found.source}." if found.source else ""),
            )
        )
        if base.p99_ms is None or now.p99_ms is None:
            where = found.source or "the analytics read"
            checks.append(Check(f"{code}:p99", True, f"{service}: no latency in {where}; the error rate decides."))
            continue
        ceiling = base.p99_ms * (1 + thresholds.latency_tolerance)
        checks.append(
            Check(
                f"{code}:p99",
                now.p99_ms <= ceiling,
                f"{service}: p99 latency {now.p99_ms:.0f} ms over {recent}"
                + (" is within" if now.p99_ms <= ceiling else " is above")
                + f" the pre-incident baseline {base.p99_ms:.0f} ms"
                + f" (+{thresholds.latency_tolerance * 100:.0f}% allowed).",
            )
        )
    return checks


def _containment(fields: Mapping[str, Any]) -> list[Check]:
    entries = fields.get("containment") or []
    active = [e for e in entries if isinstance(e, Mapping) and not e.get("lifted")] if isinstance(entries, list) else []
    if not active:
        return [Check("containment", True, "No active containment.")]
    return [
        Check(
            f"containment:{entry.get('route', '?')}",
            False,
            f"Containment on `{entry.get('route', '?')}` (rule {entry.get('rule_id') or '?'}, since "
            f"{entry.get('since') or '?'}) is still active; lift it with `/lift {entry.get('route', '')}`.",
        )
        for entry in active
    ]


def open_risks(fields: Mapping[str, Any]) -> dict[str, str]:
    """Return each open risk kind with its reason, from `risks` and the form's tenant-isolation answer.

    `risks` may be a mapping (`{authz: open}` or `{authz: {status: open, why: …}}`) or a list of
    `{kind, status, why}`; a risk the form flagged stays open until `risks` clears it.
    """
    states: dict[str, tuple[str, str]] = {}
    raw = fields.get("risks")
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [(e.get("kind") or e.get("risk") or e.get("name"), e) for e in raw if isinstance(e, Mapping)]
    for kind, value in items:
        if isinstance(value, Mapping):
            status = value.get("status") or value.get("state")
            why = str(value.get("why") or "")
        else:
            status, why = value, ""
        states[str(kind)] = (str(status).lower(), why)
    if fields.get("tenant_isolation_risk") is True and "tenant-isolation" not in states:
        states["tenant-isolation"] = ("open", "flagged when the incident was declared")
    return {kind: why for kind, (status, why) in states.items() if status != "cleared"}


def _risks(fields: Mapping[str, Any]) -> list[Check]:
    risks = open_risks(fields)
    if not risks:
        return [Check("risks", True, "No open tenant-isolation, authz or data-integrity risk.")]
    return [
        Check(
            f"risk:{kind}",
            False,
            f"Risk `{kind}` is open" + (f" ({why})" if why else "") + f"; clear it with `/risk {kind} cleared <why>`.",
        )
        for kind, why in sorted(risks.items())
    ]


def _evidence(facts: Facts) -> list[Check]:
    fields = facts.fields
    impact = fields.get("impact") if isinstance(fields.get("impact"), Mapping) else {}
    assert isinstance(impact, Mapping)
    checks = [
        Check(
            "evidence:incident-id",
            isinstance(fields.get("id"), str) and bool(re.fullmatch(r"INC-\d+", str(fields.get("id")))),
            "Evidence: incident ID " + (str(fields.get("id")) if fields.get("id") else "missing") + ".",
        )
    ]
    for key, label, kind in (
        ("request_ids", "request IDs", "request-id"),
        ("tenants", "tenant IDs", "tenant"),
        ("routes", "routes", "route"),
    ):
        value = impact.get(key)
        ok = not _missing(value)
        message = (
            f"Evidence: {label} recorded."
            if ok
            else f"Evidence: {label} are unknown; add them with `/evidence {kind} <value …>`."
        )
        checks.append(Check(f"evidence:{kind}s", ok, message))
    checks.append(
        Check(
            "evidence:decision-log",
            facts.decision_rows > 0,
            f"Evidence: {facts.decision_rows} decision(s) logged."
            if facts.decision_rows
            else "Evidence: the Decision log is empty; "
            "record containment and rollback decisions with `/decision <text>`.",
        )
    )
    security = fields.get("security_impacting")
    explicit = isinstance(security, bool)
    checks.append(
        Check(
            "evidence:security-impact",
            explicit,
            f"Evidence: security-impacting behavior changed: {'yes' if security else 'no'}."
            if explicit
            else "Evidence: no explicit note whether security-impacting behavior changed; "
            "state it with `/security-impact yes|no <why>`.",
        )
    )
    return checks


def evaluate(facts: Facts, thresholds: Thresholds | None = None) -> Verdict:
    """Evaluate every exit criterion; the verdict lists each check, met or not, in a stable order."""
    thresholds = thresholds or Thresholds()
    checks = [_smoke(facts)]
    checks += _metric_checks(facts, thresholds)
    checks += _containment(facts.fields)
    checks += _risks(facts.fields)
    checks += _evidence(facts)
    checks += _notification(facts.fields)
    return Verdict(checks)


def _notification(fields: Mapping[str, Any]) -> list[Check]:
    """The breach-notification checklist, when the incident has one: complete, or waived by an admin."""
    if breach.block(fields) is None:
        return []
    problem = breach.closing_problem(fields)
    if problem:
        return [Check("notification", False, problem)]
    done = "waived by an admin" if breach.waived(fields) else "the authority and every affected tenant notified"
    return [Check("notification", True, f"Breach notification: {done}.")]


def table_rows(body: str, section: str) -> list[list[str]]:
    """Data rows of the first table under `## section` (header and separator skipped)."""
    rows: list[list[str]] = []
    inside = seen_header = False
    for line in body.split("\n"):
        if line.startswith("## "):
            if inside:
                break
            inside = line.strip() == f"## {section}"
            continue
        if not inside or not line.startswith("|"):
            if inside and rows and not line.startswith("|"):
                break
            continue
        if not seen_header:
            seen_header = True
            continue
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+\s*", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if any(cells):
            rows.append(cells)
    return rows
