"""Builders shared by the command and follow-up tests."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from incidentops.adapters.git import GitRepo
from incidentops.flows.declare import Ports
from tests.flows.conftest import FORM_BODY, NOW, World

NO_ROLLBACK = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


def declared(world: World, body: str = NO_ROLLBACK) -> int:
    """A declared SEV-1 incident (no automatic rollback PR); returns its issue number."""
    number = world.open_incident(body=body)
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    return number


def comment(world: World, number: int, body: str, login: str = "oncall-write") -> dict[str, Any]:
    """Post a comment as `login` and return the webhook delivery GitHub would send."""
    world.repo(login).get_issue(number).create_comment(body)
    return world.next_event("issue_comment", "created")


def path_of(number: int) -> str:
    return f"incidents/INC-{number:04d}.md"


def own_clone_ports(world: World, name: str, now: datetime = NOW) -> Ports:
    """Ports with a separate clone, as a separate workflow run on its own runner would have."""
    target = world.tmp / name
    subprocess.run(["git", "clone", "-q", world.info["bare_repo"], str(target)], check=True, capture_output=True)
    ports = world.ports(now)
    # Real (jittered) back-off between push attempts, so racing runs spread out as they do in Actions.
    return replace(ports, git=GitRepo(Path(target)))
