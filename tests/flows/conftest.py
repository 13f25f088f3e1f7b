"""A running sandbox plus a workflow-like workspace, for flow tests over real HTTP and real git."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from github import Auth, Github

from incidentops.adapters.cloudflare import CloudflareClient, RetryPolicy
from incidentops.adapters.git import GitRepo
from incidentops.adapters.github import GitHubClient
from incidentops.config import Config, load_config
from incidentops.core.events import Event, parse_event
from incidentops.core.redact import Redactor
from incidentops.flows.base import Outcome, Ports
from incidentops.flows.dispatch import handle
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 3, 14, 40, tzinfo=UTC)

FORM_BODY = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@dataclass
class World:
    sandbox: Sandbox
    workspace: Path
    tmp: Path
    seen_events: int = 0
    config_override: Config | None = None
    clients: list[GitHubClient] = field(default_factory=list)

    @property
    def info(self) -> dict[str, Any]:
        return self.sandbox.info

    def human(self, login: str) -> Github:
        """A PyGithub client acting as a seeded user (token = login)."""
        return Github(
            auth=Auth.Token(login),
            base_url=self.info["github_api_url"],
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )

    def repo(self, login: str = "oncall-write"):  # type: ignore[no-untyped-def]
        return self.human(login).get_repo(self.info["repository"])

    def open_incident(self, title: str = "Tenant data visible across tenants", body: str = FORM_BODY, **kw: Any) -> int:
        issue = self.repo(kw.pop("author", "oncall-write")).create_issue(title=title, body=body, **kw)
        return int(issue.number)

    def label(self, number: int, label: str, login: str = "oncall-write") -> None:
        self.repo(login).get_issue(number).add_to_labels(label)

    def events(self) -> list[dict[str, Any]]:
        return httpx.get(self.info["control_url"] + "/events").json()

    def next_event(self, name: str, action: str) -> dict[str, Any]:
        """The newest recorded webhook delivery of this kind (what GitHub would hand the workflow)."""
        matching = [e for e in self.events() if e["event"] == name and e["action"] == action]
        assert matching, f"no {name}.{action} event recorded"
        return matching[-1]

    def ports(self, now: datetime = NOW, retries: int = 0) -> Ports:
        github = GitHubClient(
            token=self.info["actions_token"],
            repository=self.info["repository"],
            api_url=self.info["github_api_url"],
            retries=retries,
            sleep=lambda s: None,
        )
        self.clients.append(github)
        return Ports(
            config=self.config_override or load_config(self.workspace),
            workspace=self.workspace,
            github=github,
            git=GitRepo(self.workspace, sleep=lambda s: None),
            repository=self.info["repository"],
            server_url=self.info["github_server_url"],
            redact=Redactor.from_env(
                {"GITHUB_TOKEN": self.info["actions_token"], "CLOUDFLARE_API_TOKEN": self.info["cloudflare_api_token"]}
            ),
            clock=lambda: now,
            cloudflare=self.cloudflare,
        )

    def cloudflare(self, account_id: str) -> CloudflareClient:
        """A client for the emulated Cloudflare, with quick back-off so fault tests stay fast."""
        return CloudflareClient(
            token=self.info["cloudflare_api_token"],
            account_id=account_id,
            base_url=self.info["cloudflare_api_base_url"],
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, deadline=10, timeout=2),
        )

    def live(self, service: str) -> str:
        """What the emulated Cloudflare serves for a service right now."""
        return self.sandbox.cloudflare.live_version(service)

    def run(self, delivery: dict[str, Any], now: datetime = NOW) -> Outcome:
        event: Event = parse_event(delivery["event"], json.loads(json.dumps(delivery["payload"])))
        return handle(event, self.ports(now))

    def bare_log(self, path: str = "incidents/INC-*") -> list[str]:
        out = git("log", "--format=%s", "main", "--", path, cwd=Path(self.info["bare_repo"]))
        return [line for line in out.split("\n") if line]

    def bare_file(self, path: str) -> str:
        return git("show", f"main:{path}", cwd=Path(self.info["bare_repo"]))

    def comments(self, number: int) -> list[str]:
        return [c.body for c in self.repo().get_issue(number).get_comments()]

    def writes(self) -> list[dict[str, Any]]:
        log = httpx.get(self.info["control_url"] + "/requests").json()
        return [r for r in log if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and r["path"].startswith("/api/v3")]

    def violations(self) -> list[dict[str, Any]]:
        return httpx.get(self.info["control_url"] + "/violations").json()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Rule changes reach the emulated edge after 50–200 ms: real propagation, kept short for the tests.
    sandbox = Sandbox(tmp_path / "sandbox", seed=ROOT, propagation=(0.05, 0.2)).start()
    # The smoke checks reach the sandbox's demo services, with the demo tenants' credentials.
    for name, value in sandbox.info["smoke_env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INCIDENTOPS_BASE_URLS", json.dumps(sandbox.info["base_urls"]))
    workspace = tmp_path / "workspace"
    git("clone", "-q", sandbox.info["bare_repo"], str(workspace), cwd=tmp_path)
    try:
        yield World(sandbox, workspace, tmp_path)
    finally:
        sandbox.stop()
