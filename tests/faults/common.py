"""Builders shared by the fault tests (declaring without the containment and blast-radius steps, rollbacks)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from incidentops.adapters.cloudflare import CloudflareClient, RetryPolicy
from incidentops.core import rollback as core
from incidentops.core.events import parse_event
from incidentops.core.ledger import load_ledger
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.declare import declare
from incidentops.flows.rollback import open_rollback_pr
from tests.flows.conftest import FORM_BODY, World, git

NO_ROLLBACK = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")
ROLLBACK_SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")
WORKERS = ("api-worker", "ingest-worker", "queue-consumer")

SECONDARY_RATE_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


def path_of(number: int) -> str:
    return f"incidents/INC-{number:04d}.md"


def labelled(world: World, body: str = NO_ROLLBACK) -> tuple[int, dict[str, Any]]:
    """An incident issue labelled sev-1; returns its number and the `issues.labeled` delivery."""
    number = world.open_incident(body=body)
    world.label(number, "sev-1")
    return number, world.next_event("issues", "labeled")


def run_declare(delivery: dict[str, Any], ports: Ports) -> Outcome:
    """The declare flow alone (no containment or blast radius): what the GitHub and git faults exercise."""
    return declare(parse_event("issues", json.loads(json.dumps(delivery["payload"]))), ports)


def ports_with_cloudflare(world: World, policy: RetryPolicy, retries: int = 0) -> Ports:
    """The world's ports with a Cloudflare client using `policy` (e.g. a short per-attempt timeout)."""

    def factory(account_id: str) -> CloudflareClient:
        return CloudflareClient(
            token=world.info["cloudflare_api_token"],
            account_id=account_id,
            base_url=world.info["cloudflare_api_base_url"],
            retry=policy,
        )

    return replace(world.ports(retries=retries), cloudflare=factory)


def worker_post(service: str) -> str:
    return rf"/workers/scripts/{service}/deployments$"


def pages_post(service: str) -> str:
    return rf"/pages/projects/{service}/deployments/[^/]+/rollback$"


def deployment_post(service: str) -> str:
    """The path regex of the one write a rollback makes for `service`."""
    return worker_post(service) if service in WORKERS else pages_post(service)


def allow_forced_rollback(world: World, service: str) -> None:
    """A person sets `force: true` on a service's pin (its good version predates a secret rotation)."""
    workspace = world.workspace
    git("pull", "-q", "origin", "main", cwd=workspace)
    ledger = workspace / "deployments/production.yaml"
    text = ledger.read_text()
    header = f"  {service}:\n    kind: worker\n"
    assert header in text
    ledger.write_text(text.replace(header, header + "    force: true\n"))
    git("-c", "user.name=p", "-c", "user.email=p@x", "commit", "-qam", f"force the {service} rollback", cwd=workspace)
    git("push", "-q", "origin", "main", cwd=workspace)


def merged_rollback(world: World, services: tuple[str, ...] = ROLLBACK_SERVICES) -> tuple[int, dict[str, Any]]:
    """Declare for `services`, open the rollback PR and merge it as an admin; return (issue, merge delivery).

    queue-consumer's last good version predates a secret rotation, so its rollback needs a person's `force: true`.
    """
    number, delivery = labelled(
        world,
        NO_ROLLBACK.replace("### Affected services\n\napi-worker", "### Affected services\n\n" + ", ".join(services)),
    )
    assert run_declare(delivery, world.ports()).status == "declared"
    if "queue-consumer" in services:
        allow_forced_rollback(world, "queue-consumer")
    planned = open_rollback_pr(None, world.ports(), number, [], "oncall-write")
    assert planned.status == "planned", planned.message
    pr = next(iter(world.repo().get_pulls(state="open")))
    world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
    return number, world.next_event("pull_request", "closed")


def pins(world: World) -> dict[str, str]:
    """The version (Workers) or deployment id (Pages) the ledger on main pins each service to."""
    doc = load_ledger(world.bare_file("deployments/production.yaml"))
    return {name: pin.version for name, pin in core.pins_from_doc(doc, "HEAD").items()}
