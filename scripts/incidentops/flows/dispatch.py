"""Route a GitHub Actions event to its flow, and build the ports from the job's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from incidentops.adapters.git import GitRepo
from incidentops.adapters.github import DEFAULT_API_URL, GitHubClient
from incidentops.config import load_config
from incidentops.core.events import Event, load_event
from incidentops.core.redact import Redactor
from incidentops.core.timefmt import utc_now
from incidentops.flows.declare import Outcome, Ports, declare


def ports_from_env(env: Mapping[str, str]) -> Ports:
    """Build the ports exactly from the variables GitHub Actions sets."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or os.getcwd())
    config = load_config(workspace)
    repository = env.get("GITHUB_REPOSITORY", "")
    github = GitHubClient(
        token=env.get("GITHUB_TOKEN", ""),
        repository=repository,
        api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
    )
    return Ports(
        config=config,
        workspace=workspace,
        github=github,
        git=GitRepo(workspace, branch=config.default_branch),
        repository=repository,
        server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
        redact=Redactor.from_env(env),
        clock=utc_now,
    )


def handle(event: Event, ports: Ports) -> Outcome:
    """Run the flow for this event, or say plainly why there is none."""
    if event.name == "issues" and event.action == "labeled":
        return declare(event, ports)
    return Outcome("skipped", f"not for us: no flow handles {event.name}.{event.action or '?'} yet")


def handle_from_env(env: Mapping[str, str]) -> tuple[Event, Outcome]:
    event = load_event(env.get("GITHUB_EVENT_NAME"), env.get("GITHUB_EVENT_PATH"))
    return event, handle(event, ports_from_env(env))
