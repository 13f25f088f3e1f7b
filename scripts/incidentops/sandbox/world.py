"""The seeded world the sandbox starts from: five services, their histories, and the GitOps ledger.

Pure data and deterministic: ids are uuid5 of names and every timestamp is fixed in November 2026,
so tests, the demo and the benchmarks all see the same world. In each service's history the live
deployment is bad and an earlier one is good and was verified by smoke tests; `queue-consumer` had a
secret rotated after its good version, so rolling back to it needs an explicit `force`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Quality = Literal["good", "bad"]
Kind = Literal["worker", "pages"]

_NAMESPACE = uuid.UUID("6f1f3c2e-8d0a-5b7e-9c41-2a6d5e0b7f13")

ACCOUNT_ID = uuid.uuid5(_NAMESPACE, "account/acme").hex
ACCOUNT_NAME = "Acme Platform"
ZONE_ID = uuid.uuid5(_NAMESPACE, "zone/example.com").hex
ZONE_NAME = "example.com"
# A second zone for staging (incidentops.yaml names it); the demo keeps it on the Free plan, production on Pro.
STAGING_ZONE_ID = "1a2b3c4d5e6f708192a3b4c5d6e7f809"
STAGING_ZONE_NAME = "staging.example.com"
ZONE_PLANS = {ZONE_ID: "pro", STAGING_ZONE_ID: "free"}
ZONE_NAMES = {ZONE_ID: ZONE_NAME, STAGING_ZONE_ID: STAGING_ZONE_NAME}
# The custom domain each Pages project answers on, besides <name>.pages.dev.
PAGES_DOMAINS = {"admin-pages": ("admin.example.com",), "user-portal": ("portal.example.com",)}
# The one API token the emulated Cloudflare accepts; shaped like a real one (40 characters).
API_TOKEN = "cfsandbox-" + hashlib.sha256(b"incidentops sandbox token").hexdigest()[:30]
TOKEN_ID = uuid.uuid5(_NAMESPACE, "token/sandbox").hex
USER_ID = uuid.uuid5(_NAMESPACE, "user/deploy-bot").hex
USER_EMAIL = "deploy-bot@acme.example"
ENVIRONMENT = "production"
LEDGER_PATH = "deployments/production.yaml"

WORKERS = ("api-worker", "ingest-worker", "queue-consumer")
PAGES = ("admin-pages", "user-portal")
SERVICES = WORKERS + PAGES
# Pages projects that have Functions; a static project has no Functions invocations analytics at all.
PAGES_WITH_FUNCTIONS = ("user-portal",)


def pages_script_name(project: str) -> str:
    """The internal script name Pages Functions analytics are keyed by (`production_script_name`).

    Shaped like the real ones, e.g. `pages-worker--7435187-production` (Pages project object,
    cloudflare-typescript `pages/projects/projects.ts` field `production_script_name`).
    """
    digits = int(hashlib.sha256(project.encode()).hexdigest()[:8], 16) % 10_000_000
    return f"pages-worker--{digits}-production"


# Who did what in the seeded history (GitHub logins) and their e-mail as Cloudflare records it.
PEOPLE = {
    "alice": "alice@acme.example",
    "bob": "bob@acme.example",
    "carol": "carol@acme.example",
    "dave": "dave@acme.example",
}


def iso(moment: datetime) -> str:
    """Format a UTC moment the way Cloudflare does (microseconds, `Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_iso(moment: datetime) -> str:
    """Format a UTC moment to the second, as the ledger and git history use it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(*parts: str) -> str:
    """Return a uuid5 (dashed) for a path of names, the same on every run."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class WorkerVersion:
    service: str
    id: str
    number: int
    created_on: datetime
    author: str  # GitHub login; Cloudflare shows the e-mail
    quality: Quality
    message: str
    tag: str
    triggered_by: str = "upload"  # "secret" for the version a secret change creates
    handlers: tuple[str, ...] = ("fetch",)


@dataclass(frozen=True)
class WorkerDeployment:
    service: str
    id: str
    created_on: datetime
    author: str
    versions: tuple[tuple[str, float], ...]  # (version id, percentage)
    message: str
    triggered_by: str = "upload"  # what wrangler labels the source: upload, promotion, rollback, secret
    verified: bool = False  # smoke tests passed after it (recorded in the ledger)


@dataclass(frozen=True)
class SecretChange:
    service: str
    at: datetime
    names: tuple[str, ...]


@dataclass(frozen=True)
class PagesDeployment:
    project: str
    id: str
    short_id: str
    created_on: datetime
    author: str
    environment: Literal["production", "preview"]
    branch: str
    commit_hash: str
    commit_message: str
    status: Literal["success", "failure"]
    quality: Quality
    verified: bool = False
    skipped: bool = False  # a build Pages skipped (`is_skipped`): it never deployed

    @property
    def rollback_target(self) -> bool:
        """Only successful production builds that really deployed may be rolled back to."""
        return self.environment == "production" and self.status == "success" and not self.skipped


@dataclass
class World:
    """Every seeded object, oldest first within each list."""

    worker_versions: dict[str, list[WorkerVersion]] = field(default_factory=dict)
    worker_deployments: dict[str, list[WorkerDeployment]] = field(default_factory=dict)
    secret_changes: list[SecretChange] = field(default_factory=list)
    pages_deployments: dict[str, list[PagesDeployment]] = field(default_factory=dict)

    def kind(self, service: str) -> Kind:
        """Tell whether `service` is a Worker or a Pages project."""
        if service in self.worker_versions:
            return "worker"
        if service in self.pages_deployments:
            return "pages"
        raise KeyError(service)

    def live(self, service: str) -> str:
        """Return the live Worker version (newest 100% deployment) or canonical Pages deployment id."""
        if self.kind(service) == "worker":
            newest = self.worker_deployments[service][-1]
            return max(newest.versions, key=lambda split: split[1])[0]
        canonical = [d for d in self.pages_deployments[service] if d.rollback_target]
        return canonical[-1].id

    def quality(self, service: str, ident: str) -> Quality:
        """Return whether a Worker version or Pages deployment of `service` is good or bad."""
        items: list[WorkerVersion] | list[PagesDeployment] = (
            self.worker_versions[service] if self.kind(service) == "worker" else self.pages_deployments[service]
        )
        for item in items:
            if item.id == ident:
                return item.quality
        raise KeyError(f"{service}: {ident}")

    def good_target(self, service: str) -> str:
        """Return the id the seeded story expects a rollback to: the newest verified good pin."""
        for entry in reversed(_pin_events(self)):
            if entry.service == service and entry.verified and entry.quality == "good":
                return entry.ident
        raise KeyError(service)


# -- the seeded history ----------------------------------------------------------------------------


def _worker_story(world: World, service: str, plan: list[tuple[datetime, str, Quality, str]]) -> list[WorkerVersion]:
    handlers = ("queue",) if service == "queue-consumer" else ("fetch",)
    versions = [
        WorkerVersion(
            service=service,
            id=stable_id(service, "version", str(n)),
            number=n,
            created_on=created,
            author=author,
            quality=quality,
            message=message,
            tag=f"v1.{n}.0",
            handlers=handlers,
        )
        for n, (created, author, quality, message) in enumerate(plan, start=1)
    ]
    world.worker_versions[service] = versions
    return versions


def _deployment(
    service: str,
    n: int,
    version: WorkerVersion | list[tuple[WorkerVersion, float]],
    created: datetime,
    *,
    message: str | None = None,
    triggered_by: str = "upload",
    verified: bool = False,
) -> WorkerDeployment:
    splits = [(version, 100.0)] if isinstance(version, WorkerVersion) else version
    newest = max((v for v, _ in splits), key=lambda v: v.created_on)
    return WorkerDeployment(
        service=service,
        id=stable_id(service, "deployment", str(n)),
        created_on=created,
        author=newest.author,
        versions=tuple((v.id, pct) for v, pct in splits),
        message=message if message is not None else f"Deploy {newest.tag}",
        triggered_by=triggered_by,
        verified=verified,
    )


def _seed_workers(world: World) -> None:
    # api-worker: v3 went out as a 10% canary, was promoted to 100% and broke; v4 was uploaded only.
    v = _worker_story(
        world,
        "api-worker",
        [
            (_at(2, 9, 5), "alice", "good", "Add tenant-scoped report export"),
            (_at(9, 9, 10), "bob", "good", "Cache tenant lookups"),
            (_at(20, 9, 15), "carol", "bad", "Refactor report query builder"),
            (_at(26, 9, 20), "carol", "bad", "Follow-up to the query builder refactor"),
        ],
    )
    world.worker_deployments["api-worker"] = [
        _deployment("api-worker", 1, v[0], _at(2, 9, 15), verified=True),
        _deployment("api-worker", 2, v[1], _at(9, 9, 20), verified=True),
        _deployment("api-worker", 3, [(v[2], 10.0), (v[1], 90.0)], _at(20, 9, 25), message="Canary v1.3.0"),
        _deployment("api-worker", 4, v[2], _at(26, 21, 0), message="Promote v1.3.0", triggered_by="promotion"),
    ]

    # ingest-worker: v2 went out without smoke tests; v3 is the last verified one; v4 is live and bad.
    v = _worker_story(
        world,
        "ingest-worker",
        [
            (_at(3, 11, 5), "bob", "good", "Batch ingest writes"),
            (_at(10, 11, 10), "dave", "good", "Retry on upstream 503"),
            (_at(17, 11, 15), "bob", "good", "Validate payload sizes"),
            (_at(26, 18, 0), "alice", "bad", "Switch to the new queue producer"),
        ],
    )
    world.worker_deployments["ingest-worker"] = [
        _deployment("ingest-worker", 1, v[0], _at(3, 11, 15), verified=True),
        _deployment("ingest-worker", 2, v[1], _at(10, 11, 20)),
        _deployment("ingest-worker", 3, v[2], _at(17, 11, 25), verified=True),
        _deployment("ingest-worker", 4, v[3], _at(26, 18, 10)),
    ]

    # queue-consumer: v2 is good and verified, v3 is bad, then a secret rotation made v4 (v3's code).
    v = _worker_story(
        world,
        "queue-consumer",
        [
            (_at(4, 14, 5), "dave", "good", "Consume tenant events"),
            (_at(12, 14, 10), "alice", "good", "Dead-letter poisoned messages"),
            (_at(25, 14, 15), "bob", "bad", "Parallel batch acknowledgement"),
        ],
    )
    rotated_at = _at(26, 10, 0)
    rotation = WorkerVersion(
        service="queue-consumer",
        id=stable_id("queue-consumer", "version", "4"),
        number=4,
        created_on=rotated_at,
        author="dave",
        quality="bad",
        message="Secret change",
        tag=v[2].tag,
        triggered_by="secret",
        handlers=("queue",),
    )
    world.worker_versions["queue-consumer"].append(rotation)
    world.secret_changes.append(SecretChange("queue-consumer", rotated_at, ("QUEUE_SIGNING_KEY",)))
    world.worker_deployments["queue-consumer"] = [
        _deployment("queue-consumer", 1, v[0], _at(4, 14, 15), verified=True),
        _deployment("queue-consumer", 2, v[1], _at(12, 14, 20), verified=True),
        _deployment("queue-consumer", 3, v[2], _at(25, 14, 25)),
        _deployment("queue-consumer", 4, rotation, _at(26, 10, 0), message="Secret Change", triggered_by="secret"),
    ]


def _seed_pages(world: World) -> None:
    rows: dict[str, list[tuple[str, str, str, str, Quality, bool, str]]] = {
        # (environment, branch, status, author, quality, verified, commit message)
        "admin-pages": [
            ("production", "main", "success", "carol", "good", True, "Admin: tenant switcher"),
            ("preview", "feat/audit-log", "success", "bob", "good", False, "Admin: audit log preview"),
            ("production", "main", "success", "carol", "good", True, "Admin: audit log"),
            ("production", "main", "failure", "alice", "bad", False, "Admin: bump build tooling"),
            ("production", "main", "success", "alice", "bad", False, "Admin: new tenant table"),
        ],
        "user-portal": [
            ("production", "main", "success", "bob", "good", True, "Portal: invoices page"),
            ("production", "main", "success", "bob", "good", True, "Portal: faster dashboard"),
            ("preview", "feat/sso", "success", "dave", "good", False, "Portal: SSO preview"),
            ("production", "main", "failure", "dave", "bad", False, "Portal: SSO login"),
            ("production", "main", "success", "dave", "bad", False, "Portal: SSO login (fixed build)"),
        ],
    }
    for offset, (project, plan) in enumerate(rows.items()):
        deployments = []
        for n, (env, branch, status, author, quality, verified, message) in enumerate(plan, start=1):
            ident = stable_id(project, "deployment", str(n))
            # The failed build and the bad production build both land the evening before the incident.
            day, hour = ((3, 16), (8, 16), (14, 16), (26, 19), (26, 20))[n - 1]
            created = _at(day, hour + offset, 7 * n)
            deployments.append(
                PagesDeployment(
                    project=project,
                    id=ident,
                    short_id=ident[:8],
                    created_on=created,
                    author=author,
                    environment=env,  # type: ignore[arg-type]
                    branch=branch,
                    commit_hash=hashlib.sha1(f"{project}/{n}".encode()).hexdigest(),
                    commit_message=message,
                    status=status,  # type: ignore[arg-type]
                    quality=quality,
                    verified=verified,
                )
            )
        world.pages_deployments[project] = deployments


def seed() -> World:
    """Build a fresh copy of the seeded world."""
    world = World()
    _seed_workers(world)
    _seed_pages(world)
    return world


# -- the GitOps ledger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PinEvent:
    at: datetime
    service: str
    kind: Kind
    ident: str
    author: str
    verified: bool
    quality: Quality
    label: str


def _pin_events(world: World) -> list[_PinEvent]:
    """Every full production rollout in time order: what the ledger pinned, by whom, and when."""
    events: list[_PinEvent] = []
    for service, deployments in world.worker_deployments.items():
        tags = {v.id: v.tag for v in world.worker_versions[service]}
        for dep in deployments:
            if len(dep.versions) != 1:
                continue  # a canary split is not a pin; the ledger records full rollouts only
            version_id = dep.versions[0][0]
            events.append(
                _PinEvent(
                    at=dep.created_on,
                    service=service,
                    kind="worker",
                    ident=version_id,
                    author=dep.author,
                    verified=dep.verified,
                    quality=world.quality(service, version_id),
                    label=tags[version_id] if dep.triggered_by != "secret" else f"{tags[version_id]} (secret change)",
                )
            )
    for project, pages in world.pages_deployments.items():
        for page in pages:
            if page.rollback_target:
                events.append(
                    _PinEvent(
                        at=page.created_on,
                        service=project,
                        kind="pages",
                        ident=page.id,
                        author=page.author,
                        verified=page.verified,
                        quality=page.quality,
                        label=page.short_id,
                    )
                )
    events.sort(key=lambda e: (e.at, e.service))
    return events


def ledger_history(world: World | None = None) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Return (commit message, author login, timestamp, ledger document) snapshots, oldest first.

    The first snapshot pins every service's first rollout; each later one changes one pin, and a
    smoke-test verification is its own commit half an hour after the pin. The last snapshot holds
    the live, bad and unverified, pins.
    """
    world = world or seed()
    events = _pin_events(world)
    services: dict[str, dict[str, Any]] = {}
    history: list[tuple[str, str, str, dict[str, Any]]] = []

    def snapshot() -> dict[str, Any]:
        ordered = {name: dict(services[name]) for name in SERVICES if name in services}
        return {"environment": ENVIRONMENT, "services": ordered}

    first: dict[str, _PinEvent] = {}
    rest: list[_PinEvent] = []
    for event in events:
        if event.service in first:
            rest.append(event)
        else:
            first[event.service] = event
    start = max(e.at for e in first.values())
    for event in first.values():
        services[event.service] = _pin(event, verified=event.verified)
    history.append(("Pin the initial production versions", "alice", short_iso(start), snapshot()))

    # Verifications trail their pin by 30 minutes; merge both streams in time order.
    stream: list[tuple[datetime, str, _PinEvent]] = [(e.at, "pin", e) for e in rest]
    stream += [(e.at + timedelta(minutes=30), "verify", e) for e in rest if e.verified]
    stream.sort(key=lambda item: (item[0], item[1], item[2].service))
    for moment, action, event in stream:
        if action == "pin":
            services[event.service] = _pin(event, verified=False)
            message = f"Pin {event.service} to {event.label}"
            author = event.author
        else:
            if services[event.service]["version"] != event.ident:
                continue  # superseded before the smoke tests finished
            services[event.service] = {**services[event.service], "verified": True}
            message = f"Mark {event.service} {event.label} verified by smoke tests"
            author = "deploy-bot"
        history.append((message, author, short_iso(moment), snapshot()))
    return history


def _pin(event: _PinEvent, *, verified: bool) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "version": event.ident,
        "set_by": event.author,
        "set_at": short_iso(event.at),
        "verified": verified,
    }
