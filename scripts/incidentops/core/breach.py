"""The breach-notification clock (pure; no I/O).

GDPR Art. 33(1): a controller notifies the supervisory authority "without undue delay and, where feasible, not later
than 72 hours after having become aware" of a personal data breach; Art. 33(2)/28(3)(f) have a processor (this SaaS,
for its tenants' data) tell each controller (tenant) without undue delay (https://gdpr-info.eu/art-33-gdpr/).

The clock starts when `/security-impact yes` is recorded on an incident whose tenant isolation was at risk: the front
matter key `notification` gets one mapping:

    notification: {aware_at: T, deadline: T+72h, tenants: [t-100, t-200], authority: {by, at, ref},
                   notified: {t-100: {by, at}}, waiver: {by, at, reason}}

`aware_at` is the declaration or the security note, whichever came first; `tenants` are the evidence's tenant IDs
then (tenants added to the evidence later join the checklist). `authority`, `notified` and `waiver` are written by
`/notification authority|tenant|waive`. Closing is gated on the checklist: complete, or waived by an admin with a
reason. Reminders fall due 24, 48 and 66 hours after `aware_at` while anything is open, and once more at the deadline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from incidentops.core import incidentfile as f
from incidentops.core.timefmt import format_ts

if TYPE_CHECKING:
    from incidentops.core.commands import Context

DEADLINE = timedelta(hours=72)
REMIND_AFTER_HOURS = (24, 48, 66)
USAGE = "/notification authority <reference> | tenant <id …> | waive <reason>"
REFERENCE_LIMIT = 300


@dataclass(frozen=True)
class Authority:
    reference: str  # the authority's case number, or how it was notified


@dataclass(frozen=True)
class Tenants:
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Waive:
    reason: str


@dataclass(frozen=True)
class Problem:
    message: str


Parsed = Authority | Tenants | Waive


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def tenant_isolation_at_risk(fields: Mapping[str, Any]) -> bool:
    """Whether tenant isolation was at risk at any point: flagged on the form, or a tenant-isolation risk recorded."""
    risks = fields.get("risks")
    return fields.get("tenant_isolation_risk") is True or (isinstance(risks, Mapping) and "tenant-isolation" in risks)


def block(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = fields.get("notification")
    return dict(raw) if isinstance(raw, Mapping) else None


def _evidence_tenants(fields: Mapping[str, Any]) -> list[str]:
    impact = fields.get("impact") if isinstance(fields.get("impact"), Mapping) else {}
    assert isinstance(impact, Mapping)
    value = impact.get("tenants")
    return [str(v) for v in value if str(v).strip() and v != "unknown"] if isinstance(value, list) else []


def start(fields: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The notification block for a security note recorded now (`ctx.at`)."""
    moments = [m for m in (_ts(fields.get("declared_at")), _ts(ctx.at)) if m is not None]
    aware = min(moments)
    return {
        "aware_at": format_ts(aware),
        "deadline": format_ts(aware + DEADLINE),
        "tenants": _evidence_tenants(fields),
        "started_by": ctx.actor,
    }


def tenants(fields: Mapping[str, Any]) -> list[str]:
    """Every affected tenant: those listed when the clock started plus any the evidence names since."""
    found = block(fields) or {}
    listed = [str(t) for t in found.get("tenants") or [] if isinstance(t, str | int)]
    return list(dict.fromkeys([*listed, *_evidence_tenants(fields)]))


def open_items(fields: Mapping[str, Any]) -> list[str]:
    """What is still to be notified (empty when there is no clock or everything is done)."""
    found = block(fields)
    if found is None:
        return []
    items = [] if isinstance(found.get("authority"), Mapping) else ["the supervisory authority"]
    notified = found.get("notified") if isinstance(found.get("notified"), Mapping) else {}
    assert isinstance(notified, Mapping)
    return items + [f"tenant {t}" for t in tenants(fields) if t not in notified]


def waived(fields: Mapping[str, Any]) -> bool:
    found = block(fields) or {}
    waiver = found.get("waiver")
    return isinstance(waiver, Mapping) and bool(str(waiver.get("reason") or "").strip())


def closing_problem(fields: Mapping[str, Any]) -> str | None:
    """Why the incident may not close yet (None: no clock, checklist complete, or waived)."""
    items = open_items(fields)
    if not items or waived(fields):
        return None
    found = block(fields) or {}
    return (
        f"Breach notification is incomplete (deadline {found.get('deadline')}): {', '.join(items)} not notified; "
        "record each with `/notification authority <reference>` or `/notification tenant <id …>`, "
        "or an admin waives it with `/notification waive <reason>`."
    )


def time_to_notify(fields: Mapping[str, Any]) -> timedelta | None:
    """From becoming aware to notifying the supervisory authority."""
    found = block(fields) or {}
    authority = found.get("authority")
    aware, at = _ts(found.get("aware_at")), _ts(authority.get("at")) if isinstance(authority, Mapping) else None
    return at - aware if aware and at and at >= aware else None


def due(fields: Mapping[str, Any], now: datetime) -> tuple[str, dict[str, Any]] | None:
    """The reminder that is due now, as (condition, facts): the latest of 24/48/66 hours passed, or the deadline."""
    found = block(fields)
    aware = _ts((found or {}).get("aware_at"))
    if found is None or aware is None or waived(fields) or not open_items(fields):
        return None
    elapsed = now - aware
    facts = {
        "open": open_items(fields),
        "deadline": found.get("deadline"),
        "hours": int(elapsed.total_seconds() // 3600),
    }
    if elapsed >= DEADLINE:
        return "breach-deadline-passed", facts | {"passed": True}
    passed = [h for h in REMIND_AFTER_HOURS if elapsed >= timedelta(hours=h)]
    if not passed:
        return None
    left = DEADLINE - elapsed
    return f"breach-{passed[-1]}h", facts | {"passed": False, "left_hours": int(left.total_seconds() // 3600)}


def parse(args: str) -> Parsed | Problem:
    """`/notification authority <reference>`, `/notification tenant <id …>` or `/notification waive <reason>`."""
    line = args.split("\n", 1)[0].strip()
    head, _, rest = line.partition(" ")
    kind = head.lower()
    rest = f.clean_line(rest, limit=REFERENCE_LIMIT * 4)
    if kind == "authority":
        if not rest:
            return Problem("say how or under which reference the authority was notified")
        return Authority(rest[:REFERENCE_LIMIT])
    if kind in ("tenant", "tenants"):
        ids = tuple(dict.fromkeys(t for t in re.split(r"[\s,]+", rest) if t))
        return Tenants(ids) if ids else Problem("name the tenant IDs that were notified")
    if kind == "waive":
        if not rest:
            return Problem("a waiver needs a reason (the audit trail keeps it)")
        return Waive(rest[:REFERENCE_LIMIT])
    return Problem(f"found {head[:40]!r} where authority, tenant or waive was expected")


def check(fields: Mapping[str, Any], parsed: Parsed) -> str | None:
    """Why the checklist command cannot apply to this incident (None: it can)."""
    if block(fields) is None:
        return (
            "there is no breach-notification clock on this incident; it starts with `/security-impact yes <why>` "
            "when tenant isolation was at risk"
        )
    if isinstance(parsed, Tenants):
        unknown = [t for t in parsed.ids if t not in tenants(fields)]
        if unknown:
            return (
                f"{', '.join(unknown[:5])} is not among the affected tenants; add it with `/evidence tenant <id>` first"
            )
    return None


def apply(text: str, parsed: Parsed, ctx: Context) -> str | None:
    """The file with the checklist entry recorded, or None when this event is already recorded."""
    if f.has_event(text, ctx.key):
        return None
    fields = f.read_fields(text)
    found = block(fields) or {}
    stamp = {"by": ctx.actor, "at": ctx.at}
    if isinstance(parsed, Authority):
        found["authority"] = stamp | {"ref": parsed.reference}
        what = f"Breach notification: supervisory authority notified ({parsed.reference})"
    elif isinstance(parsed, Tenants):
        notified = dict(found.get("notified") or {})
        for tenant in parsed.ids:
            notified.setdefault(tenant, stamp)
        found["notified"] = notified
        what = f"Breach notification: tenant(s) notified: {', '.join(parsed.ids)}"
    else:
        found["waiver"] = stamp | {"reason": parsed.reason}
        what = f"Breach notification waived: {parsed.reason}"
    text = f.set_fields(text, {"notification": found})
    left = open_items(f.read_fields(text))
    if not isinstance(parsed, Waive):
        what += "; still open: " + ", ".join(left) if left else "; checklist complete"
    return f.append_timeline(text, f.TimelineRow(ctx.at, ctx.actor, what, ctx.link, ctx.key))
