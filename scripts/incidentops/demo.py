"""`incidentops demo`: the whole playbook against the built-in sandbox, narrated step by step.

Everything is real except GitHub and Cloudflare themselves: a real bare git repository, real HTTP on
127.0.0.1, PyGithub and httpx as the clients, and the same `handle-event` dispatch the workflows run, fed
the webhook events the emulated GitHub recorded. The story runs on a story clock (it starts at
2026-11-27T03:14:40Z and moves forward with each step) so metrics, expiries and timestamps are reproducible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from github import Auth, Github

from incidentops.core import incidentfile as f
from incidentops.core.events import parse_event
from incidentops.core.timefmt import format_ts
from incidentops.errors import IncidentOpsError
from incidentops.flows.base import Outcome

if TYPE_CHECKING:
    from incidentops.sandbox.act import ActRunner

STORY_START = datetime(2026, 11, 27, 3, 14, 40, tzinfo=UTC)
ALL_SERVICES = "api-worker, ingest-worker, queue-consumer, admin-pages, user-portal"

DEMO_FORM = f"""### Summary

Tenant t-100 can read tenant t-200's reports on /v1/reports since last night's deploys; health checks are red.

### Environment

production

### Start time (UTC)

2026-11-27T03:12:09Z

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

{ALL_SERVICES}

### Risk assessment

- [x] Tenant isolation is at risk
- [x] A deploy regression is suspected
"""


PUBLIC_FIRST = (
    "Some customers may see incorrect data in reports. We have paused access to reports while we investigate."
)
PUBLIC_RESOLVED = "Reports are available again and show only your own data. We are contacting affected customers."


class DemoFailed(IncidentOpsError):
    """A demo step failed; the message names the step."""


class StoryClock:
    """The demo's clock: flows and the emulated Cloudflare read it; steps move it forward."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


class Narrator:
    def __init__(self, out: TextIO, clock: StoryClock) -> None:
        self.out = out
        self.clock = clock
        self.started = time.monotonic()
        self.step_no = 0

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def detail(self, text: str) -> None:
        self.line(f"      {text}")

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.step_no += 1
        self.line(f"[{format_ts(self.clock.now)}] {self.step_no:>2}. {title}")
        began = time.monotonic()
        try:
            yield
        except DemoFailed:
            raise
        except Exception as exc:
            raise DemoFailed(
                f"demo step {self.step_no} ({title}) failed: {type(exc).__name__}: {exc}",
                hint="Run `make demo` again; if it fails the same way, this is a bug worth reporting.",
            ) from exc
        self.line(f"      ({time.monotonic() - began:.2f}s)")


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class DemoWorld:
    """The sandbox, a workflow-like workspace, and people acting through the API."""

    def __init__(self, root: Path, seed: Path, clock: StoryClock, via_actions: bool = False) -> None:
        from incidentops.sandbox.server import Sandbox  # the sandbox is imported only by demo and tests

        self.root = root
        self.clock = clock
        # Rule changes reach the emulated edge after 0.5–1.5 s: the deny check waits for them, as it would for real.
        self.sandbox = Sandbox(root / "sandbox", seed=seed, propagation=(0.5, 1.5)).start()
        self.sandbox.cloudflare.set_clock(clock)
        self.info: dict[str, Any] = self.sandbox.info
        self.workspace = root / "workspace"
        _git("clone", "-q", self.info["bare_repo"], str(self.workspace), cwd=root)
        self.event_file = root / "event.json"
        # What a workflow step's env holds: the job token, Cloudflare, the smoke credentials and base URLs.
        self.env = {
            **os.environ,
            "GITHUB_REPOSITORY": self.info["repository"],
            "GITHUB_API_URL": self.info["github_api_url"],
            "GITHUB_SERVER_URL": self.info["github_server_url"],
            "GITHUB_TOKEN": self.info["actions_token"],
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ACTIONS": "true",  # the demo plays the workflow's job, on the job's own checkout
            "GITHUB_STEP_SUMMARY": str(root / "step-summary.md"),
            "CLOUDFLARE_API_BASE_URL": self.info["cloudflare_api_base_url"],
            "CLOUDFLARE_API_TOKEN": self.info["cloudflare_api_token"],
            "INCIDENTOPS_BASE_URLS": json.dumps(self.info["base_urls"]),
            **self.info["smoke_env"],
        }
        # The smoke runner reads its credentials from the process environment, as in a workflow step.
        os.environ.update({k: self.env[k] for k in (*self.info["smoke_env"], "INCIDENTOPS_BASE_URLS")})
        # --via-actions: each delivery runs the real workflow file under act (seed is the checkout holding
        # .github/workflows and tests/act-stubs); otherwise the workflow's step runs in-process.
        self.act: ActRunner | None = None
        if via_actions:
            from incidentops.sandbox.act import ActRunner

            self.act = ActRunner(seed, self.info, root / "act")
        bare = Path(self.info["bare_repo"])
        self.seeded_adrs = set(_git("ls-tree", "--name-only", "main", "docs/adrs/", cwd=bare).split())

    def person(self, login: str) -> Github:
        return Github(
            auth=Auth.Token(login),
            base_url=self.info["github_api_url"],
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )

    def repo(self, login: str) -> Any:
        return self.person(login).get_repo(self.info["repository"])

    def latest_event(self, name: str, action: str) -> dict[str, Any]:
        for delivery in reversed(self.sandbox.github.events):
            if delivery["event"] == name and delivery["action"] == action and not self._by_bot(delivery):
                return delivery
        raise DemoFailed(f"the sandbox recorded no {name}.{action} event by a person")

    @staticmethod
    def _by_bot(delivery: dict[str, Any]) -> bool:
        return (delivery["payload"].get("sender") or {}).get("type") == "Bot"

    def workflow(self, delivery: dict[str, Any]) -> Outcome:
        """Run the incident workflow's step: `incidentops handle-event` with the recorded event."""
        from incidentops.flows.dispatch import handle
        from incidentops.wiring import ports_from_env

        if self.act is not None:
            # The job runs on real time; the CLI takes the story's "now" from this (sandbox-only) variable.
            return self.act.run(delivery, extra_env={"INCIDENTOPS_SANDBOX_NOW": format_ts(self.clock.now)})
        self.event_file.write_text(json.dumps(delivery["payload"]), encoding="utf-8")
        env = {**self.env, "GITHUB_EVENT_NAME": delivery["event"], "GITHUB_EVENT_PATH": str(self.event_file)}
        ports = ports_from_env(env)
        ports.clock = self.clock
        return handle(parse_event(delivery["event"], delivery["payload"]), ports)

    def comment(self, number: int, login: str, body: str) -> Outcome:
        self.repo(login).get_issue(number).create_comment(body)
        return self.workflow(self.latest_event("issue_comment", "created"))

    def live(self) -> dict[str, Any]:
        return {s: (self.sandbox.cloudflare.live_version(s), self.sandbox.cloudflare.is_good(s)) for s in SERVICES}

    def incident(self, number: int) -> str:
        return _git("show", f"main:incidents/INC-{number:04d}.md", cwd=Path(self.info["bare_repo"]))

    def stop(self) -> None:
        self.sandbox.stop()


SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")


def _report(narrator: Narrator, outcome: Outcome, expect: tuple[str, ...]) -> None:
    narrator.detail(outcome.message)
    for step in outcome.steps:
        narrator.detail(f"  - {step}")
    if outcome.status not in expect:
        raise DemoFailed(f"expected {' or '.join(expect)}, got {outcome.status}: {outcome.message}")


def _proposal_digest(world: DemoWorld, number: int) -> str:
    """The digest a person repeats to confirm the containment the declaration proposed."""
    for comment in world.repo("oncall-write").get_issue(number).get_comments():
        found = re.search(r"/contain confirm ([0-9a-f]{8})", comment.body or "")
        if found and "incidentops:contain-proposal" in (comment.body or ""):
            return found.group(1)
    raise DemoFailed("the declaration proposed no containment")


def _health(narrator: Narrator, world: DemoWorld) -> None:
    live = world.live()
    narrator.detail(
        "live on Cloudflare: " + ", ".join(f"{s} {v[:8]} ({'good' if g else 'BAD'})" for s, (v, g) in live.items())
    )


def run_demo(seed: Path, keep: Path | None = None, out: TextIO | None = None, via_actions: bool = False) -> int:
    """Tell the whole story; return 0 when every step worked."""
    clock = StoryClock(STORY_START)
    n = Narrator(out or sys.stdout, clock)
    root = Path(tempfile.mkdtemp(prefix="incidentops-demo-"))
    world: DemoWorld | None = None
    saved_env = dict(os.environ)
    try:
        n.line("incidentops demo: a SEV-1 from first report to closure, on the built-in sandbox")
        n.line("(emulated GitHub over a real bare git repo, emulated Cloudflare, five demo services; all on 127.0.0.1)")
        if via_actions:
            n.line("(each event runs the real .github/workflows file under act, offline: only loopback is up)")
        n.line()
        with n.step("Start the sandbox"):
            world = DemoWorld(root, seed, clock, via_actions=via_actions)
            n.detail(f"GitHub API {world.info['github_api_url']} · repository {world.info['repository']}")
            _health(n, world)
        assert world is not None
        number = 0
        with n.step("@oncall-write opens an incident issue from the form (tenant isolation at risk, deploy suspected)"):
            issue = world.repo("oncall-write").create_issue(
                title="[Incident] Tenant data visible across tenants on /v1/reports", body=DEMO_FORM
            )
            number = issue.number
            n.detail(f"issue #{number}: {issue.html_url}")
        with n.step(f"@oncall-write labels #{number} sev-1 → the incident workflow runs"):
            issue.add_to_labels("sev-1")
            declared = world.latest_event("issues", "labeled")
            _report(n, world.workflow(declared), ("declared",))
        inc = f"INC-{number:04d}"
        clock.advance(1)
        with n.step("A re-run of that workflow (same event) changes nothing"):
            _report(n, world.workflow(declared), ("unchanged",))
        clock.advance(1)
        with n.step("@oncall-write reads the proposed containment and confirms it: /contain confirm <digest>"):
            digest = _proposal_digest(world, number)
            _report(n, world.comment(number, "oncall-write", f"/contain confirm {digest}"), ("contained",))
        clock.advance(1)
        with n.step("The comms owner tells customers: a draft naming a tenant is refused; a clean one is approved"):
            for login, body, expect in (
                ("oncall-write", "/comms @oncall-maintain", ("recorded",)),
                ("oncall-maintain", "/public investigating Tenant t-100 could read other reports", ("rejected",)),
                ("oncall-maintain", f"/public investigating {PUBLIC_FIRST}", ("recorded",)),
                ("oncall-maintain", "/publish", ("recorded",)),
            ):
                outcome = world.comment(number, login, body)
                n.detail(f"@{login}: {body[:60]} → {outcome.status}: {outcome.message}")
                if outcome.status not in expect:
                    raise DemoFailed(f"{body.split()[0]}: expected {expect[0]}, got {outcome.status}")
        clock.advance(1)
        with n.step("@oncall-write runs the smoke tests: the contained route answers the deny response"):
            _report(n, world.comment(number, "oncall-write", "/smoke"), ("failed", "passed", "incomplete"))
        pr = next(iter(world.repo("oncall-admin").get_pulls(state="open")))
        clock.advance(2)
        with n.step(f"@oncall-admin reviews rollback PR #{pr.number}: queue-consumer needs force (secrets rotated)"):
            _force_queue_consumer(n, world, number, pr)
        clock.advance(2)
        with n.step(f"@oncall-admin merges PR #{pr.number} → the rollback workflow re-deploys all five concurrently"):
            world.repo("oncall-admin").get_pull(pr.number).merge(merge_method="merge")
            began = time.monotonic()
            _report(n, world.workflow(world.latest_event("pull_request", "closed")), ("rolled-back",))
            n.detail(f"rollback and smoke run took {time.monotonic() - began:.2f}s")
            _health(n, world)
        clock.advance(5)
        with n.step("@oncall-write lifts the containment: /lift /v1/reports"):
            _report(n, world.comment(number, "oncall-write", "/lift /v1/reports"), ("lifted",))
        clock.advance(2)
        with n.step("The team records roles, evidence, decisions and follow-ups in comments"):
            for login, body in (
                ("oncall-write", "/status Rolled back; tenant data no longer exposed. Watching metrics."),
                ("oncall-write", "/security-impact yes tenant t-100 could read t-200's reports for 2 hours"),
                ("oncall-write", "/risk tenant-isolation cleared rolled back to v1.2.0; smoke isolation checks green"),
                ("oncall-write", "/decision --adr Reports queries must carry the tenant id in the query builder"),
                (
                    "oncall-write",
                    '/followup "Add a tenant-scoping test to the report query builder" @oncall-write 2026-12-04',
                ),
            ):
                outcome = world.comment(number, login, body)
                n.detail(f"{body.split()[0]:<16} → {outcome.status}: {outcome.message}")
                if outcome.exit_code:
                    raise DemoFailed(f"{body.split()[0]} failed: {outcome.message}")
        clock.advance(1)
        with n.step("The breach clock: /security-impact yes on a tenant-isolation incident started it (72 hours)"):
            _breach_clock(n, world, number)
        clock.advance(19)
        with n.step("@oncall-maintain publishes the resolution for customers"):
            for login, body in (
                ("oncall-maintain", f"/public resolved {PUBLIC_RESOLVED}"),
                ("oncall-maintain", "/publish"),
            ):
                _report(n, world.comment(number, login, body), ("recorded",))
        clock.advance(4)
        with n.step("@oncall-write comments /resolve → exit criteria checked on smoke tests, metrics and evidence"):
            _report(n, world.comment(number, "oncall-write", "/resolve"), ("closed",))
        text = world.incident(number)
        fields = f.read_fields(text)
        bare = Path(world.info["bare_repo"])
        path = f"incidents/{inc}.md"
        followups = [i for i in world.repo("oncall-write").get_issues(state="open", labels=["incident-followup"])]
        adrs = [
            p
            for p in _git("ls-tree", "--name-only", "main", "docs/adrs/", cwd=bare).split()
            if p not in world.seeded_adrs
        ]
        n.line()
        n.line(
            f"Status {fields.get('status')} · resolved {fields.get('resolved_at')} · closed {fields.get('closed_at')}"
        )
        n.line(f"Follow-up issues: {', '.join(f'#{i.number} {i.title}' for i in followups) or 'none'}")
        n.line(f"New ADRs: {', '.join(adrs) or 'none'}")
        with n.step("`incidentops report` builds the incident history and the public status page"):
            _status_page(n, world, root / "site")
        n.line(f"── {path} " + "─" * 50)
        n.line(text)
        n.line(f"── git log --stat -- {path} " + "─" * 36)
        n.line(_git("log", "--stat", "--format=%h %ad %an%n    %s", "--date=iso", "main", "--", path, cwd=bare))
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copytree(root, keep, dirs_exist_ok=True)
            kept_bare = keep / bare.relative_to(root)
            # The copy's `origin` must point at the kept bare repository: the original goes with the temp folder.
            _git("remote", "set-url", "origin", str(kept_bare), cwd=keep / world.workspace.relative_to(root))
            n.line(f"Workspace kept in {keep / 'workspace'} (its origin, the bare repository: {kept_bare}).")
            n.line(f"Status page kept in {keep / 'site' / 'status' / 'index.html'} (open it in a browser).")
        n.line(f"Finished in {time.monotonic() - n.started:.1f}s (wall time).")
        return 0
    finally:
        if world is not None:
            world.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(root, ignore_errors=True)


def _force_queue_consumer(n: Narrator, world: DemoWorld, number: int, pr: Any) -> None:
    """The operator decision the preflight asked for: pin queue-consumer's target with `force: true`."""
    from incidentops.core.ledger import dump_ledger, load_ledger
    from incidentops.flows.rollback import build_plan
    from incidentops.wiring import ports_from_env

    ports = ports_from_env(world.env)
    plan, _, _ = build_plan(ports, number, ["queue-consumer"])
    (item,) = plan.services
    n.detail(f"`incidentops rollback plan --incident INC-{number:04d} --service queue-consumer`: {item.preflight}")
    if item.target is None:
        raise DemoFailed("no rollback target for queue-consumer")
    repo = world.repo("oncall-admin")
    branch = pr.head.ref
    current = repo.get_contents("deployments/production.yaml", ref=branch)
    doc = load_ledger(current.decoded_content.decode())
    entry = doc["services"]["queue-consumer"]
    entry["version"] = item.target
    entry["set_by"] = "oncall-admin"
    entry["set_at"] = format_ts(world.clock.now)
    entry["verified"] = False
    entry["force"] = True
    repo.update_file(
        "deployments/production.yaml",
        "Force queue-consumer back to its last good version (QUEUE_SIGNING_KEY checked)",
        dump_ledger(doc),
        current.sha,
        branch=branch,
    )
    n.detail(f"pushed to {branch}: queue-consumer → {item.target[:8]} with force: true")


def _breach_clock(n: Narrator, world: DemoWorld, number: int) -> None:
    """The notification block, the reminders a controlled clock makes due, and the checklist completed."""
    from dataclasses import replace

    from incidentops.core import breach
    from incidentops.flows.remind import run_reminders
    from incidentops.wiring import ports_from_env

    clock = f.read_fields(world.incident(number)).get("notification") or {}
    if not clock:
        raise DemoFailed("/security-impact yes started no breach-notification clock")
    n.detail(f"aware at {clock['aware_at']}, deadline {clock['deadline']}, affected tenants {clock['tenants']}")
    aware = datetime.strptime(clock["aware_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    for hours in (24, 48, 66):
        ahead = aware + timedelta(hours=hours)
        due = breach.due(f.read_fields(world.incident(number)), ahead)
        n.detail(f"on a clock at +{hours} h the reminder due is {due[0] if due else 'none'}")
    ports = replace(ports_from_env(world.env), clock=lambda: aware + timedelta(hours=24))
    posted = [k for k in run_reminders(ports).details.get("posted", []) if ":breach-" in k]
    n.detail(f"`incidentops remind` on that clock at +24 h posted: {', '.join(posted) or 'nothing'}")
    if not posted:
        raise DemoFailed("the reminder run at +24 h posted no breach reminder")
    for login, body in (
        ("oncall-maintain", "/notification tenant t-100 t-200"),
        ("oncall-admin", "/notification authority reported to the supervisory authority, case DPA-2026-117"),
    ):
        outcome = world.comment(number, login, body)
        n.detail(f"@{login}: {body} → {outcome.status}")
        if outcome.status != "recorded":
            raise DemoFailed(f"{body}: {outcome.message}")
    left = breach.open_items(f.read_fields(world.incident(number)))
    n.detail("checklist complete: closing is no longer gated" if not left else f"still open: {left}")


def _status_page(n: Narrator, world: DemoWorld, site: Path) -> None:
    """Build the site from the pushed incident files, as the report workflow does, and show the status page."""
    from incidentops.config import load_config
    from incidentops.flows.report import build_report
    from incidentops.flows.statuspage import build_status_page

    _git("pull", "-q", "--ff-only", cwd=world.workspace)
    incidents = world.workspace / "incidents"
    n.detail(build_report(incidents, site, workspace=world.workspace).message)
    status = build_status_page(incidents, site / "status", load_config(world.workspace), world.clock.now)
    n.detail(status.message)
    summary = json.loads((site / "status" / "api" / "v2" / "summary.json").read_text(encoding="utf-8"))
    n.detail(f"summary.json: {summary['status']['description']}; {len(summary['components'])} components")
    page = (site / "status" / "index.html").read_text(encoding="utf-8")
    for text in re.findall(r'<li><span class="state">(\w+)</span> — (.*?) <span class="when">', page):
        n.detail(f"status page: {text[0]} — {text[1]}")
