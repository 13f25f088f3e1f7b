"""Builders shared by the command and follow-up tests."""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from incidentops.adapters.git import GitRepo
from incidentops.core.events import parse_event
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.dispatch import handle
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


def run_at_once(world: World, deliveries: list[dict[str, Any]], name: str) -> list[Outcome]:
    """Handle each delivery in its own thread with its own clone, all released at the same moment."""
    ports = [own_clone_ports(world, f"{name}-{i}") for i in range(len(deliveries))]
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(deliveries))

    def run(i: int) -> None:
        try:
            event = parse_event(deliveries[i]["event"], json.loads(json.dumps(deliveries[i]["payload"])))
            start.wait()
            outcomes.append(handle(event, ports[i]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(deliveries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return outcomes
