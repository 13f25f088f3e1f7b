"""`incidentops demo`: run the playbook against the built-in sandbox and narrate each step.

Everything is real except GitHub and Cloudflare themselves: a real bare git repository, real HTTP on
127.0.0.1, PyGithub as the client, and the same `handle-event` code path the workflows run, fed the
webhook events the emulated GitHub recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from github import Auth, Github

from incidentops.errors import IncidentOpsError
from incidentops.flows.declare import Outcome
from incidentops.flows.dispatch import handle_from_env

DEMO_FORM = """### Summary

Tenant A can read tenant B's reports on /v1/reports since the 03:05 deploy of api-worker.

### Environment

production

### Start time (UTC)

{started_at}

### Impacted routes

/v1/reports

### Tenant IDs

t-100, t-200

### Request IDs

req-7f3a9c
req-81be02

### Request volume

1200/min

### Affected services

api-worker, user-portal

### Risk assessment

- [x] Tenant isolation is at risk
- [x] A deploy regression is suspected
"""


class DemoFailed(IncidentOpsError):
    """A demo step failed; the message names the step."""


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()
        self.step_no = 0

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.step_no += 1
        began = time.monotonic()
        stamp = time.strftime("%H:%M:%S", time.gmtime())
        self.line(f"[{stamp}] {self.step_no:>2}. {title} …")
        try:
            yield
        except Exception as exc:
            raise DemoFailed(
                f"demo step {self.step_no} ({title}) failed: {exc}",
                hint="Run `make demo` again; if it fails the same way, this is a bug worth reporting.",
            ) from exc
        self.line(f"           done in {time.monotonic() - began:.2f}s")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class DemoWorld:
    """The sandbox, a workflow-like workspace, and people acting through the API."""

    def __init__(self, root: Path, seed: Path) -> None:
        from incidentops.sandbox.server import Sandbox  # the sandbox is imported only by demo and tests

        self.root = root
        self.sandbox = Sandbox(root / "sandbox", seed=seed).start()
        self.info: dict[str, Any] = self.sandbox.info
        self.workspace = root / "workspace"
        _git("clone", "-q", self.info["bare_repo"], str(self.workspace), cwd=root)
        self.event_file = root / "event.json"
        self.summary_file = root / "step-summary.md"

    def person(self, login: str) -> Github:
        return Github(
            auth=Auth.Token(login),
            base_url=self.info["github_api_url"],
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )

    def latest_event(self, name: str, action: str) -> dict[str, Any]:
        repo_events = self.sandbox.github.events
        for delivery in reversed(repo_events):
            if delivery["event"] == name and delivery["action"] == action:
                return delivery
        raise DemoFailed(f"the sandbox recorded no {name}.{action} event")

    def run_workflow_step(self, delivery: dict[str, Any]) -> Outcome:
        """Run `incidentops handle-event` as the workflow step would, with the Actions environment."""
        self.event_file.write_text(json.dumps(delivery["payload"]), encoding="utf-8")
        env = {
            "GITHUB_EVENT_NAME": delivery["event"],
            "GITHUB_EVENT_PATH": str(self.event_file),
            "GITHUB_REPOSITORY": self.info["repository"],
            "GITHUB_API_URL": self.info["github_api_url"],
            "GITHUB_SERVER_URL": self.info["github_server_url"],
            "GITHUB_TOKEN": self.info["actions_token"],
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_STEP_SUMMARY": str(self.summary_file),
            "CLOUDFLARE_API_BASE_URL": self.info["cloudflare_api_base_url"],
            "CLOUDFLARE_API_TOKEN": self.info["cloudflare_api_token"],
        }
        _, outcome = handle_from_env(env)
        if outcome.exit_code != 0:
            raise DemoFailed(outcome.message)
        return outcome

    def stop(self) -> None:
        self.sandbox.stop()


def run_demo(seed: Path, keep: Path | None = None, out: TextIO | None = None) -> int:
    """Tell the story; return 0 when every step worked."""
    narrator = Narrator(out or sys.stdout)
    temp = tempfile.mkdtemp(prefix="incidentops-demo-")
    root = Path(temp)
    world: DemoWorld | None = None
    try:
        narrator.line("incidentops demo: a SEV-1 on the built-in sandbox (GitHub and Cloudflare emulated on 127.0.0.1)")
        narrator.line()
        with narrator.step("Start the sandbox (emulated GitHub over a real bare git repo, emulated Cloudflare)"):
            world = DemoWorld(root, seed)
            narrator.line(
                f"           GitHub API {world.info['github_api_url']}, repository {world.info['repository']}"
            )
        assert world is not None
        repo = world.person("oncall-write").get_repo(world.info["repository"])
        number = 0
        with narrator.step("@oncall-write opens an incident issue from the form"):
            issue = repo.create_issue(
                title="[Incident] Tenant data visible across tenants on /v1/reports",
                body=DEMO_FORM.format(started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 180))),
            )
            number = issue.number
            narrator.line(f"           issue #{number}: {issue.html_url}")
        with narrator.step(f"@oncall-write labels #{number} sev-1"):
            issue.add_to_labels("sev-1")
        with narrator.step("The incident workflow runs `incidentops handle-event` on the issues.labeled event"):
            delivery = world.latest_event("issues", "labeled")
            outcome = world.run_workflow_step(delivery)
            narrator.line(f"           {outcome.message}")
            for step in outcome.steps:
                narrator.line(f"             - {step}")
        with narrator.step("A re-run of the same workflow (same event) changes nothing"):
            again = world.run_workflow_step(delivery)
            narrator.line(f"           {again.message}")
        path = outcome.path or ""
        bare = Path(world.info["bare_repo"])
        comments = [c.body for c in repo.get_issue(number).get_comments()]
        narrator.line()
        narrator.line(f"── the comment on issue #{number} " + "─" * 40)
        narrator.line(comments[0] if comments else "(no comment)")
        narrator.line(f"── {path} on main " + "─" * 40)
        narrator.line(_git("show", f"main:{path}", cwd=bare))
        narrator.line(f"── git log --stat -- {path} " + "─" * 30)
        narrator.line(_git("log", "--stat", "main", "--", path, cwd=bare))
        narrator.line(f"Finished in {time.monotonic() - narrator.started:.1f}s.")
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(root, keep, dirs_exist_ok=True)
            narrator.line(f"Workspace kept in {keep} (bare repo: {keep / 'sandbox' / 'acme' / 'ops.git'}).")
        return 0
    finally:
        if world is not None:
            world.stop()
        shutil.rmtree(root, ignore_errors=True)
