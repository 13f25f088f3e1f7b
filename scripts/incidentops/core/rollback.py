"""Rollback planning and reconciliation decisions (pure: the facts are gathered by the flow).

Last known good, per service: the newest earlier ledger pin that smoke tests verified (from the ledger's
git history); failing that, and saying so in the plan, Cloudflare's previous deployment of other code at
100% (Workers; secret-change re-deployments skipped) or previous successful production deployment (Pages).
Every target is preflighted; a refused preflight keeps that service out of the PR with the reason shown.
Secrets changed since the target need `force: true` in the ledger, written by a person, never implied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WORKER_VERSION_WINDOW = 100  # Cloudflare deploys only a Worker's newest 100 versions


@dataclass(frozen=True)
class Pin:
    """One service's entry in one ledger snapshot."""

    version: str
    set_by: str
    set_at: str
    verified: bool
    commit: str  # the ledger commit that holds this snapshot
    force: bool = False


@dataclass(frozen=True)
class LedgerSnapshot:
    commit: str
    services: dict[str, Pin]


def pins_from_doc(doc: Any, commit: str) -> dict[str, Pin]:
    """Read the services of one ledger document; malformed entries are skipped, not fatal."""
    services = (doc or {}).get("services") if isinstance(doc, dict) else None
    pins: dict[str, Pin] = {}
    if not isinstance(services, dict):
        return pins
    for name, entry in services.items():
        if not isinstance(entry, dict) or not entry.get("version"):
            continue
        pins[str(name)] = Pin(
            version=str(entry["version"]),
            set_by=str(entry.get("set_by", "")),
            set_at=str(entry.get("set_at", "")),
            verified=entry.get("verified") is True,
            commit=commit,
            force=entry.get("force") is True,
        )
    return pins


@dataclass(frozen=True)
class WorkerFacts:
    """What Cloudflare says about a Worker right now."""

    live_version: str | None  # the version at 100% in the newest deployment (None when split)
    deployments: tuple[tuple[str, str | None], ...]  # (created_on, full version id), newest first
    deployable: dict[str, tuple[str, str | None]]  # version id -> (created_on, triggered_by), newest 100
    secret_rotations: tuple[str, ...]  # created_on of versions made by a secret change
    # `workers/triggered_by` of each deployment in `deployments` (same order); "secret" marks a re-deployment of
    # the same code that a secret change made (Cloudflare docs, Workers "Versions & Deployments").
    deployment_triggers: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class PagesFacts:
    live_deployment: str | None  # canonical production deployment id
    deployments: tuple[tuple[str, str, str, str], ...]  # (id, created_on, environment, status), newest first


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ServicePlan:
    service: str
    kind: str
    live: str | None
    target: str | None
    why: str
    checks: tuple[Check, ...] = ()
    force: bool = False

    @property
    def ok(self) -> bool:
        return self.target is not None and all(c.ok for c in self.checks)

    @property
    def fallback(self) -> bool:
        """The target does not come from the ledger (no verified pin): the PR says so."""
        return self.why.startswith(NO_VERIFIED_PIN)

    @property
    def preflight(self) -> str:
        failed = [c for c in self.checks if not c.ok]
        if self.target is None:
            return "no target"
        if failed:
            return "refused: " + "; ".join(c.detail for c in failed)
        return "ok" + (" (force: secrets changed, operator confirmed)" if self.force else "")


@dataclass
class Plan:
    incident: str
    services: list[ServicePlan] = field(default_factory=list)

    @property
    def actionable(self) -> list[ServicePlan]:
        return [s for s in self.services if s.ok and s.target != s.live]

    @property
    def refused(self) -> list[ServicePlan]:
        return [s for s in self.services if not s.ok]


def _short(version: str | None) -> str:
    return version[:8] if version else "—"


def choose_target(
    service: str, current: str | None, live: str | None, history: list[LedgerSnapshot]
) -> tuple[str, str, Pin] | None:
    """Newest pin in ledger history (newest snapshot first) that was verified and is not the bad version."""
    bad = {v for v in (current, live) if v}
    for snapshot in history:
        pin = snapshot.services.get(service)
        if pin and pin.verified and pin.version not in bad:
            why = f"last verified ledger pin (set by {pin.set_by} at {pin.set_at}, ledger commit {pin.commit[:7]})"
            return pin.version, why, pin
    return None


def pick_worker_target(
    service: str, facts: WorkerFacts, history: list[LedgerSnapshot], current_pin: Pin | None
) -> tuple[str | None, str]:
    """Choose a Worker's last known good version and say why."""
    live = facts.live_version
    chosen = choose_target(service, current_pin.version if current_pin else None, live, history)
    if chosen:
        return chosen[0], chosen[1]
    previous = previous_code_deployment(facts)
    if previous is not None:
        why = f"{NO_VERIFIED_PIN}: fallback to Cloudflare's previous deployment of other code at 100% (check it)"
        return previous, why
    older = previous_code_version(facts)
    if older is not None:
        why = (
            f"{NO_VERIFIED_PIN}, and the deployments list (its 10 most recent) holds only the live code: "
            "fallback to the newest earlier upload in the versions list (check it)"
        )
        return older, why
    return None, f"{NO_VERIFIED_PIN}, and no earlier deployment or version of other code"


NO_VERIFIED_PIN = "no verified pin in the ledger's history"


def previous_code_deployment(facts: WorkerFacts) -> str | None:
    """The version of the newest deployment before the live code was deployed, at 100%.

    A secret change re-deploys the live code as a new version (annotation `workers/triggered_by: secret`), so
    "the previous deployment" after a rotation is the bad code again: skip secret-made deployments and the
    deployment whose code they carried, then take the next full deployment of another version that was not
    itself made by a secret change.
    """
    triggers = facts.deployment_triggers or (None,) * len(facts.deployments)
    rows = list(zip(facts.deployments, triggers, strict=False))
    start = 0
    while start < len(rows) and rows[start][1] == "secret":
        start += 1  # the live deployment(s) re-deployed the code of the next one
    current = {facts.live_version, rows[start][0][1] if start < len(rows) else None} - {None}
    for (_, version), trigger in rows[start + 1 :]:
        if version and version not in current and trigger != "secret":
            return version
    return None


def previous_code_version(facts: WorkerFacts) -> str | None:
    """The newest uploaded version older than the code that is live, from the versions list.

    The deployments list shows only the 10 most recent deployments (wrangler: "Displays the 10 most recent
    deployments"); when all of them carry the live code, older history is in the versions list, where up to
    100 versions can be deployed. A version a secret change made carries the code of the upload before it, so
    secret-made versions are skipped both to find the live code and as targets.
    """
    newest_first = sorted(facts.deployable.items(), key=lambda item: item[1][0], reverse=True)
    ids = [vid for vid, _ in newest_first]
    if facts.live_version not in ids:
        return None
    at = ids.index(facts.live_version)
    while at < len(ids) and newest_first[at][1][1] == "secret":
        at += 1  # the live version re-deployed older code after a secret change
    for vid, (_, trigger) in newest_first[at + 1 :]:
        if trigger != "secret":
            return vid
    return None


def plan_worker(
    service: str,
    facts: WorkerFacts,
    history: list[LedgerSnapshot],
    current_pin: Pin | None,
    target_exists: bool | None = None,
) -> ServicePlan:
    """Pick and preflight a Worker's rollback target (`target_exists` from a GET of the version)."""
    live = facts.live_version
    target, why = pick_worker_target(service, facts, history, current_pin)
    if target is None:
        return ServicePlan(service, "worker", live, None, why)
    in_window = target in facts.deployable
    exists = in_window if target_exists is None else target_exists
    checks = [Check("exists", exists, f"version {_short(target)} " + ("exists" if exists else "does not exist"))]
    if exists:
        checks.append(
            Check(
                "deployable",
                in_window,
                f"version {_short(target)} is "
                + ("within" if in_window else "outside")
                + f" Cloudflare's newest-{WORKER_VERSION_WINDOW}-versions window",
            )
        )
    force = bool(current_pin and current_pin.force)
    if in_window:
        created = facts.deployable[target][0]
        rotated = [at for at in facts.secret_rotations if at > created]
        if rotated:
            detail = f"secrets changed since {_short(target)} (at {rotated[0]}); " + (
                "force: true is set in the ledger"
                if force
                else "set `force: true` for this service in the ledger to roll back anyway"
            )
            checks.append(Check("secrets", force, detail))
    return ServicePlan(service, "worker", live, target, why, tuple(checks), force=force)


def plan_pages(service: str, facts: PagesFacts, history: list[LedgerSnapshot], current_pin: Pin | None) -> ServicePlan:
    """Pick and preflight a Pages project's rollback target."""
    live = facts.live_deployment
    chosen = choose_target(service, current_pin.version if current_pin else None, live, history)
    by_id = {d[0]: d for d in facts.deployments}
    if chosen:
        target, why = chosen[0], chosen[1]
    else:
        order = [d[0] for d in facts.deployments]
        start = order.index(live) + 1 if live in order else 0
        previous = next(
            (d[0] for d in facts.deployments[start:] if d[2] == "production" and d[3] == "success" and d[0] != live),
            None,
        )
        if previous is None:
            return ServicePlan(service, "pages", live, None, f"{NO_VERIFIED_PIN}, and no earlier good deployment")
        target, why = (
            previous,
            f"{NO_VERIFIED_PIN}: fallback to Cloudflare's previous successful production deployment (check it)",
        )
    found = by_id.get(target)
    checks = [Check("exists", found is not None, f"deployment {_short(target)} exists in the project")]
    if found is not None:
        good = found[2] == "production" and found[3] == "success"
        checks.append(
            Check(
                "production-success",
                good,
                f"deployment {_short(target)} is a {found[2]} build with status {found[3]}"
                + ("" if good else "; Cloudflare only rolls back to successful production builds"),
            )
        )
    return ServicePlan(service, "pages", live, target, why, tuple(checks))


def ledger_with_targets(doc: Any, plan: Plan, actor: str, at: str) -> Any:
    """Change the pins of the actionable services in a round-trip ledger document (other lines untouched)."""
    services = doc["services"]
    for item in plan.actionable:
        entry = services.get(item.service)
        if entry is None:
            continue
        entry["version"] = item.target
        entry["set_by"] = actor
        entry["set_at"] = at
        entry["verified"] = False  # becomes true when the smoke tests pass after the rollback
        entry["incident"] = plan.incident
    return doc


@dataclass(frozen=True)
class Reconcile:
    """What to do for one service when applying the ledger."""

    service: str
    kind: str
    live: str | None
    pin: str
    action: str  # deploy | in-sync | blocked
    detail: str = ""
    force: bool = False


def reconcile(service: str, kind: str, live: str | None, pin: Pin) -> Reconcile:
    """Deploy only what differs: a re-run after success makes no write."""
    if live == pin.version:
        return Reconcile(service, kind, live, pin.version, "in-sync", "already live")
    return Reconcile(service, kind, live, pin.version, "deploy", force=pin.force)


def rollback_message(incident: str, run: str) -> str:
    """The annotation on our own deployments, so a re-read can recognise them."""
    return f"incidentops {incident} rollback (run {run})"
