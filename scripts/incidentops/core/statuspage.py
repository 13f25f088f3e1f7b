"""The public status page's data, from the incident files (pure; no I/O).

Only what the communications owner approved goes public: an incident appears once it has a published update
(core.public), and what it shows is those update texts, the affected components and the times. The incident's
title, notes, evidence and timeline never reach this module's output. Each published text is checked again
(core.public.leaks): a hand-edited file cannot slip a tenant ID past the check the commands ran.

Shapes follow Atlassian Statuspage, so widgets and monitors that read `/api/v2/summary.json` read ours:
component statuses operational | degraded_performance | partial_outage | major_outage, incident impact
none | minor | major | critical, page indicator none | minor | major | critical (the summary endpoint's schema as
documented for a Statuspage-hosted page: https://www.mongodb.com/docs/api/doc/cloud-status/operation/operation-getstatussummary,
and the statuspage.io client's types: https://app.unpkg.com/statuspage.io@3.1.1/files/dist/interfaces/Result.d.ts).
Uptime uses Statuspage's rule: a major outage counts fully as downtime, a partial outage at 30 %, degraded
performance not at all (https://help.statuspage.io/help/uptime-calendar; https://instatus.com/help/status-page/uptime-colors).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentops.core import incidentfile as f
from incidentops.core import public
from incidentops.core.timefmt import format_ts

HISTORY_DAYS = 90
IMPACT = {"SEV-1": "critical", "SEV-2": "major", "SEV-3": "minor"}
COMPONENT_STATUS = {"critical": "major_outage", "major": "partial_outage", "minor": "degraded_performance"}
DOWNTIME_WEIGHT = {"major_outage": 1.0, "partial_outage": 0.3, "degraded_performance": 0.0}
STATUS_RANK = ("operational", "degraded_performance", "partial_outage", "major_outage")
IMPACT_RANK = ("none", "minor", "major", "critical")
INDICATOR_TEXT = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
}
STATUS_TEXT = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
}
STATE_TEXT = {"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring",
              "resolved": "Resolved"}  # fmt: skip


@dataclass(frozen=True)
class Component:
    id: str  # the service name: stable, and already public in the page's URLs of nothing else
    name: str
    group: str


@dataclass(frozen=True)
class Layout:
    """How customers see the services: page name and URL, and each service as a named component in a group."""

    name: str
    url: str
    groups: tuple[tuple[str, tuple[Component, ...]], ...]
    private: public.Private = field(default_factory=public.Private)  # installation-wide internal names

    @property
    def components(self) -> tuple[Component, ...]:
        return tuple(c for _, members in self.groups for c in members)


@dataclass(frozen=True)
class Update:
    id: str
    status: str  # investigating | identified | monitoring | resolved
    body: str
    at: datetime


@dataclass(frozen=True)
class PublicIncident:
    id: str
    name: str
    impact: str
    status: str
    started_at: datetime
    created_at: datetime
    updated_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    components: tuple[Component, ...]
    updates: tuple[Update, ...]  # newest first, as Statuspage lists them

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class DayBar:
    day: str  # YYYY-MM-DD
    downtime: timedelta  # weighted
    worst: str  # component status, the worst seen that day
    incidents: tuple[str, ...]


@dataclass(frozen=True)
class ComponentState:
    component: Component
    status: str
    uptime: float  # percent over the history window
    days: tuple[DayBar, ...]


@dataclass(frozen=True)
class Page:
    layout: Layout
    now: datetime
    indicator: str
    description: str
    components: tuple[ComponentState, ...]
    active: tuple[PublicIncident, ...]
    history: tuple[PublicIncident, ...]  # resolved within the window, newest first
    withheld: int = 0  # published updates left out because they name private data


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def incident_name(impact: str, components: Sequence[Component]) -> str:
    """A public name built from the components, never the internal title (which may name tenants or hosts)."""
    what = {"critical": "Outage", "major": "Partial outage", "minor": "Degraded performance"}.get(impact, "Incident")
    names = ", ".join(c.name for c in components) or "some services"
    return f"{what}: {names}"


def read_incident(name: str, text: str, layout: Layout, now: datetime) -> tuple[PublicIncident | None, int]:
    """The public view of one incident file (None when nothing of it is public, or it cannot be read), and how
    many published updates were withheld because they name private data."""
    try:
        fields = f.read_fields(text)
    except f.IncidentFileError:
        return None, 0
    if str(fields.get("environment") or "production") != "production":
        return None, 0
    own = public.private_facts(fields)
    private = public.Private(own.tenants, own.request_ids, layout.private.internal_hosts, layout.private.ids)
    shown: list[Update] = []
    withheld = 0
    for entry in public.published(fields):
        at = _ts(entry.get("published_at"))
        state = entry.get("state")
        body = str(entry.get("text") or "")
        if at is None or state not in public.STATES or at > now:
            continue
        if public.leaks(body, private):
            withheld += 1
            continue
        shown.append(Update(f"{name}-{entry.get('n')}", str(state), f.clean_line(body, public.TEXT_LIMIT), at))
    if not shown:
        return None, withheld
    shown.sort(key=lambda u: u.at)
    impact = IMPACT.get(str(fields.get("severity")), "minor")
    services = fields.get("services") if isinstance(fields.get("services"), list) else []
    by_id = {c.id: c for c in layout.components}
    affected = tuple(by_id[s] for s in dict.fromkeys(str(s) for s in services or []) if s in by_id)
    started = _ts(fields.get("started_at")) or _ts(fields.get("declared_at")) or shown[0].at
    if shown[-1].status == "resolved":
        resolved_at: datetime | None = shown[-1].at
    elif str(fields.get("status")) in ("resolved", "closed"):  # resolved without a last public word
        resolved_at = _ts(fields.get("resolved_at")) or _ts(fields.get("closed_at")) or shown[-1].at
    else:
        resolved_at = None
    monitoring = next((u.at for u in shown if u.status == "monitoring"), None)
    status = "resolved" if resolved_at is not None else shown[-1].status
    return PublicIncident(
        id=name,
        name=incident_name(impact, affected),
        impact=impact,
        status=status,
        started_at=min(started, shown[0].at),
        created_at=shown[0].at,
        updated_at=shown[-1].at,
        monitoring_at=monitoring,
        resolved_at=resolved_at,
        components=affected,
        updates=tuple(reversed(shown)),
    ), withheld


def _worst(values: Iterable[str], order: Sequence[str]) -> str:
    return max(values, key=order.index, default=order[0])


def _day_bars(component: Component, incidents: Sequence[PublicIncident], now: datetime) -> tuple[DayBar, ...]:
    today = now.date()
    first = today - timedelta(days=HISTORY_DAYS - 1)
    bars = []
    for n in range(HISTORY_DAYS):
        day = first + timedelta(days=n)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = min(start + timedelta(days=1), now)
        spans: list[tuple[datetime, datetime, str]] = []
        names: list[str] = []
        for incident in incidents:
            if component not in incident.components:
                continue
            lo, hi = max(incident.started_at, start), min(incident.resolved_at or now, end)
            if lo < hi:
                spans.append((lo, hi, COMPONENT_STATUS[incident.impact]))
                names.append(incident.id)
        bars.append(
            DayBar(day.isoformat(), _downtime(spans), _worst((s for _, _, s in spans), STATUS_RANK), tuple(names))
        )
    return tuple(bars)


def _downtime(spans: list[tuple[datetime, datetime, str]]) -> timedelta:
    """Weighted downtime; overlapping incidents count once, at the heavier weight."""
    cuts = sorted({t for lo, hi, _ in spans for t in (lo, hi)})
    total = timedelta()
    for lo, hi in itertools.pairwise(cuts):
        weights = [DOWNTIME_WEIGHT[s] for a, b, s in spans if a <= lo and hi <= b]
        if weights:
            total += (hi - lo) * max(weights)
    return total


def build(files: Iterable[tuple[str, str]], layout: Layout, now: datetime) -> Page:
    """The page from (incident id, file text) pairs."""
    window = now - timedelta(days=HISTORY_DAYS)
    read = [read_incident(name, text, layout, now) for name, text in files]
    incidents = [i for i, _ in read if i is not None]
    incidents = [i for i in incidents if i.resolved_at is None or i.resolved_at >= window]
    active = sorted((i for i in incidents if i.active), key=lambda i: i.started_at, reverse=True)
    history = sorted((i for i in incidents if not i.active), key=lambda i: i.started_at, reverse=True)
    states = []
    period = now - datetime.combine((now - timedelta(days=HISTORY_DAYS - 1)).date(), datetime.min.time(), UTC)
    for component in layout.components:
        status = _worst((COMPONENT_STATUS[i.impact] for i in active if component in i.components), STATUS_RANK)
        days = _day_bars(component, incidents, now)
        down = sum((d.downtime for d in days), timedelta())
        uptime = 100.0 * (1 - down / period) if period > timedelta() else 100.0
        states.append(ComponentState(component, status, round(max(uptime, 0.0), 2), days))
    indicator = _worst((i.impact for i in active), IMPACT_RANK)
    withheld = sum(n for _, n in read)
    return Page(
        layout, now, indicator, INDICATOR_TEXT[indicator], tuple(states), tuple(active), tuple(history), withheld
    )


# -- Statuspage's /api/v2/summary.json ---------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return format_ts(moment) if moment else None


PAGE_ID = "incidentops"


def summary(page: Page) -> dict[str, Any]:
    """The page as Statuspage's summary endpoint answers: page, components (groups too), incidents (unresolved),
    scheduled_maintenances, status."""
    updated = max([page.now, *(i.updated_at for i in page.active)])
    components: list[dict[str, Any]] = []
    position = 0
    by_id = {s.component.id: s for s in page.components}
    for group, members in page.layout.groups:
        position += 1
        group_id = "group-" + "-".join(group.lower().split())
        components.append(
            _component(
                group_id, group, _worst((by_id[c.id].status for c in members), STATUS_RANK), position, page, None
            )
            | {"group": True, "components": [c.id for c in members]}
        )
        for member in members:
            position += 1
            components.append(_component(member.id, member.name, by_id[member.id].status, position, page, group_id))
    return {
        "page": {
            "id": PAGE_ID,
            "name": page.layout.name,
            "url": page.layout.url,
            "time_zone": "Etc/UTC",
            "updated_at": _iso(updated),
        },
        "components": components,
        "incidents": [_incident(i) for i in page.active],
        "scheduled_maintenances": [],
        "status": {"indicator": page.indicator, "description": page.description},
    }


def _component(ident: str, name: str, status: str, position: int, page: Page, group_id: str | None) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "status": status,
        "created_at": _iso(page.now - timedelta(days=HISTORY_DAYS)),
        "updated_at": _iso(page.now),
        "position": position,
        "description": None,
        "showcase": group_id is not None,
        "start_date": None,
        "group_id": group_id,
        "page_id": PAGE_ID,
        "group": False,
        "only_show_if_degraded": False,
    }


def _incident(incident: PublicIncident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status,
        "created_at": _iso(incident.created_at),
        "updated_at": _iso(incident.updated_at),
        "monitoring_at": _iso(incident.monitoring_at),
        "resolved_at": _iso(incident.resolved_at),
        "impact": incident.impact,
        "shortlink": None,
        "started_at": _iso(incident.started_at),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": u.id,
                "status": u.status,
                "body": u.body,
                "incident_id": incident.id,
                "created_at": _iso(u.at),
                "updated_at": _iso(u.at),
                "display_at": _iso(u.at),
                "affected_components": [
                    {
                        "code": c.id,
                        "name": c.name,
                        "old_status": "operational",
                        "new_status": _status_after(incident, u),
                    }
                    for c in incident.components
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in incident.updates
        ],
        "components": [{"id": c.id, "name": c.name} for c in incident.components],
    }


def _status_after(incident: PublicIncident, update: Update) -> str:
    return "operational" if update.status == "resolved" else COMPONENT_STATUS[incident.impact]


def layout_from(config_layout: Mapping[str, Any], services: Sequence[str], private: public.Private) -> Layout:
    """A Layout from the validated `status_page` section of incidentops.yaml (or defaults: one group of all)."""
    name = str(config_layout.get("name") or "Status")
    url = str(config_layout.get("url") or "")
    groups: list[tuple[str, tuple[Component, ...]]] = []
    listed: set[str] = set()
    for group in config_layout.get("groups") or []:
        members = tuple(Component(s, str(n), str(group["name"])) for s, n in dict(group["components"]).items())
        listed |= {c.id for c in members}
        groups.append((str(group["name"]), members))
    rest = tuple(Component(s, s, "Services") for s in services if s not in listed)
    if rest:
        groups.append(("Services" if not groups else "Other services", rest))
    return Layout(name, url, tuple(groups), private)
