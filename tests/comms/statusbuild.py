"""A history of incident files for the status page tests: public, internal-only, hand-edited, old and staging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentops.core.timefmt import format_ts
from tests.report.builders import make_incident

NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)
DRAFT_ONLY = "Draft nobody approved: the t-100 export job"
INTERNAL_TITLE = "Tenant data visible across tenants on /v1/reports"


def ts(moment: datetime) -> str:
    return format_ts(moment)


def update(n: int, state: str, text: str, at: datetime | None, **more: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": n, "state": state, "text": text, "drafted_by": "carol", "drafted_at": ts(NOW)}
    if at is not None:
        entry |= {"approved_by": "dave", "published_at": ts(at)}
    return entry | more


def write_history(folder: Path) -> dict[str, datetime]:
    """Write the incident files; return the key moments the tests compute expectations from."""
    folder.mkdir(parents=True, exist_ok=True)
    moments = {}
    # Resolved 10 days ago: a SEV-2 on the public API for 2 hours.
    start1 = NOW - timedelta(days=10, hours=3)
    moments["inc1_start"], moments["inc1_end"] = start1, start1 + timedelta(hours=2)
    inc1 = make_incident(
        1,
        severity="SEV-2",
        started=start1,
        declared_after=timedelta(minutes=5),
        services=("api-worker",),
        fields={
            "status": "resolved",
            "resolved_at": ts(start1 + timedelta(hours=2)),
            "public_updates": [
                update(1, "investigating", "Some API requests fail.", start1 + timedelta(minutes=20)),
                update(2, "resolved", "API requests succeed again.", start1 + timedelta(hours=2)),
            ],
        },
    )
    # Active SEV-1 on the API and the portal: one approved update, one draft that must stay internal.
    start2 = NOW - timedelta(minutes=50)
    moments["inc2_start"] = start2
    inc2 = make_incident(
        2,
        severity="SEV-1",
        started=start2,
        services=("api-worker", "user-portal"),
        fields={
            "impact": {"tenants": ["t-100", "t-200"], "request_ids": ["req-7f3a9c"], "routes": ["/v1/reports"]},
            "public_updates": [
                update(
                    1,
                    "identified",
                    "Reports may show wrong data; access to reports is paused.",
                    NOW - timedelta(minutes=30),
                ),
                update(2, "monitoring", DRAFT_ONLY, None),
            ],
        },
    )
    # Internal only: no approved update, so customers never see it.
    inc3 = make_incident(3, severity="SEV-1", services=("admin-pages",), started=NOW - timedelta(hours=1))
    # Hand-edited: a "published" update naming a tenant from the evidence is withheld by the build.
    inc4 = make_incident(
        4,
        severity="SEV-3",
        services=("ingest-worker",),
        started=NOW - timedelta(hours=2),
        fields={
            "impact": {"tenants": ["acme-9"]},
            "public_updates": [update(1, "investigating", "acme-9 sees slow ingestion", NOW - timedelta(hours=1))],
        },
    )
    # Resolved 120 days ago: outside the 90-day window.
    old = NOW - timedelta(days=120)
    inc5 = make_incident(
        5,
        severity="SEV-1",
        started=old,
        services=("queue-consumer",),
        fields={
            "status": "closed",
            "resolved_at": ts(old + timedelta(hours=1)),
            "public_updates": [update(1, "resolved", "Old outage over.", old + timedelta(hours=1))],
        },
    )
    # Staging: never on the public page.
    inc6 = make_incident(
        6,
        services=("api-worker",),
        started=NOW - timedelta(hours=1),
        fields={"environment": "staging", "public_updates": [update(1, "investigating", "Staging down.", NOW)]},
    )
    for n, text in enumerate((inc1, inc2, inc3, inc4, inc5, inc6), 1):
        (folder / f"INC-{n:04d}.md").write_text(text, encoding="utf-8")
    return moments
