"""The flows' sandbox fixture, plus helpers the smoke and containment tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentops.adapters.smoke import Settings
from tests.flows import conftest as flows
from tests.flows.conftest import World

world = flows.world  # the sandbox fixture, shared with the flow tests

FAST = Settings(concurrency=16, timeout=2.0, retries=1, retry_delay=0.05, deadline=20.0)
FORM = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "full.md"
# The full form without "deploy regression suspected", so declaring does not open a rollback PR.
FORM_NO_ROLLBACK = FORM.read_text().replace(
    "- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected"
)


def smoke_env(world: World, **drop: bool) -> dict[str, str]:
    """What a workflow step would export: the demo tenants' tokens and the sandbox's base URLs."""
    env: dict[str, Any] = {**world.info["smoke_env"], "INCIDENTOPS_BASE_URLS": json.dumps(world.info["base_urls"])}
    return {k: v for k, v in env.items() if not drop.get(k)}


def declared(world: World, services: str = "api-worker", login: str = "oncall-write", tenant_risk: bool = False) -> int:
    """An incident declared from the full form, no rollback PR; with `tenant_risk`, declaring also contains."""
    body = FORM_NO_ROLLBACK.replace("### Affected services\n\napi-worker", f"### Affected services\n\n{services}")
    if not tenant_risk:
        body = body.replace("- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk")
    number = world.open_incident(body=body)
    world.label(number, "sev-1", login=login)
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    return number
