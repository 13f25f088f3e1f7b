"""One end-to-end scenario: a person acts on GitHub, GitHub delivers the event, act runs the real workflow.

Run inside a loopback-only network namespace (see act_harness.run_scenario), e.g.:

    unshare -n sh -c 'ip link set lo up && exec python tests/e2e/act_scenario.py --scenario declare \
        --out result.json'

It starts `incidentops sandbox serve` (whose repository is seeded with this project's package, lock and
workflows, as a team's ops repository holds them), plays the people through the sandbox's GitHub API with
PyGithub, takes each webhook payload the sandbox recorded for their actions, and runs act with the real
.github/workflows/*.yml on it. Scenarios, one sandbox and at most one declaration each:

  declare    oncall-write opens the incident form and labels it sev-1     -> incident.yml (declares),
             GitHub delivers that same event once more                    -> incident.yml (changes nothing),
             oncall-write comments `/note …`                              -> incident.yml (timeline row),
             oncall-write closes the issue, exit criteria unmet           -> incident.yml (reopens, lists them)
  skip       the same with the label `bug`                               -> incident.yml (job skipped)
  rollback   declare with "A deploy regression is suspected" ticked and    -> incident.yml (opens the PR),
             all five services affected; oncall-admin pins queue-consumer's
             refused target with `force: true` and merges the rollback PR  -> rollback.yml (re-deploys, smoke)
  comment    declare, then oncall-write comments `/rollback api-worker`   -> incident.yml twice

It writes what came out (every act run's exit code and output with the issue's state, its comments and the
incident file right after that run; at the end the incident commits and file in the bare repository, the
issue's state and comments, the rollback pull requests, Cloudflare's live versions, the sandbox's
request log and contract violations) to --out as JSON, and always stops the sandbox.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from act_harness import REPO_ROOT, WORKFLOWS, ActResult, Tools, job_ran, run_act, skipped_by_if
from github import Auth, Github

from incidentops.core.ledger import dump_ledger, load_ledger
from incidentops.sandbox.act import called_workflows
from incidentops.sandbox.world import seed

HUMAN_TOKEN = "oncall-write"  # declares and comments (role: write)
ROLLBACK_APPROVER = "oncall-admin"  # merges the rollback PR (permissions.rollback_apply: maintain)
LEDGER = "deployments/production.yaml"
EVENT_WORKFLOWS = ("incident.yml", "rollback.yml")
ROLLBACK_COMMENT = "/rollback api-worker"
NOTE_TEXT = "Cache flushed on api-worker; t-1001 still sees rows of t-2002"
NOTE_COMMENT = f"/note {NOTE_TEXT}"
SCENARIOS = ("declare", "skip", "rollback", "comment", "unprivileged", "adopt-declare", "adopt-rollback")
# The adopt-* scenarios run the same story in a team's repository that holds no package: its caller workflows
# (as `incidentops init` writes them) call UPSTREAM's reusable workflows pinned by SHA, which act fetches from the
# sandbox's git server, and the package code comes from UPSTREAM at that commit.
UPSTREAM = "incidentops/incidentops"
ADOPTER_CALLERS = ("incident", "rollback")
UPSTREAM_PATHS = ("scripts", "templates", "pyproject.toml", "uv.lock", "README.md")

Event = tuple[str, dict[str, Any]]  # (event name, the sandbox's recorded delivery)
PUBLIC_ORIGIN = "https://github.com/acme/ops.git"

ALL_SERVICES = ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal")
INCIDENT_TITLE = "[Incident] Tenant data visible across tenants on /v1/reports"

# How GitHub renders a submitted .github/ISSUE_TEMPLATE/incident.yml form.
INCIDENT_BODY = """\
### Summary

Tenant t-1001 sees report rows of tenant t-2002 on /v1/reports since the 03:05 deploy.

### Environment

production

### Start time (UTC)

2026-11-27T03:12:09Z

### Impacted routes

/v1/reports

### Tenant IDs

t-1001, t-2002

### Request IDs

8e1f0c2a9b7d6e54-AMS

### Request volume

1200/min

### Affected services

api-worker

### Risk assessment

- [ ] Tenant isolation is at risk
- [ ] A deploy regression is suspected"""

# The same form with "A deploy regression is suspected" ticked: declaring it also plans a rollback.
REGRESSION_BODY = INCIDENT_BODY.replace(
    "- [ ] A deploy regression is suspected", "- [x] A deploy regression is suspected"
).replace("### Affected services\n\napi-worker\n", "### Affected services\n\n" + ", ".join(ALL_SERVICES) + "\n")


class SandboxProcess:
    """`incidentops sandbox serve` in a child process; `info` is its JSON ready line."""

    def __init__(self, workdir: Path, seed: Path, ready_timeout: float = 60) -> None:
        self.stderr_path = workdir / "sandbox.stderr"
        workdir.mkdir(parents=True, exist_ok=True)
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        command = [sys.executable, "-m", "incidentops", "sandbox", "serve", "--port", "0"]
        command += ["--seed", str(seed), "--workdir", str(workdir / "world")]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.info = self._read_ready_line(ready_timeout)

    def _read_ready_line(self, timeout: float) -> dict[str, Any]:
        box: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not box or not box[0].strip():
            self.stop()
            raise RuntimeError(f"sandbox printed no ready line: {self.stderr_path.read_text()[-3000:]}")
        info: dict[str, Any] = json.loads(box[0])
        return info

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.info["control_url"] + path, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout


def prepare_workspace(bare_repo: Path, scratch: Path, *, own_workflows: bool = True) -> Path:
    """A clone act runs in: origin names github.com (act reads the repository from it), pushes go local.
    It holds this checkout's event workflows, whatever the seeded repository has (unless `own_workflows` is
    false: an adopting repository runs the callers it committed)."""
    workspace = scratch / "workspace"
    git("clone", "--quiet", str(bare_repo), str(workspace))
    git("remote", "set-url", "origin", PUBLIC_ORIGIN, cwd=workspace)
    git("config", "remote.origin.pushurl", str(bare_repo), cwd=workspace)
    if not own_workflows:
        return workspace
    target = workspace / ".github" / "workflows"
    target.mkdir(parents=True, exist_ok=True)
    for name in EVENT_WORKFLOWS:
        for file in [name, *called_workflows(WORKFLOWS / name)]:  # the callers and the workflows they call
            shutil.copy2(WORKFLOWS / file, target / file)
    return workspace


def find_event(sandbox: SandboxProcess, since: int, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    events: list[dict[str, Any]] = sandbox.get(f"/events?since={since}")
    for event in events:
        if match(event):
            return event
    seen = [(e.get("event"), e.get("action")) for e in events]
    raise LookupError(f"the sandbox recorded no matching event; it recorded {seen}")


def incident_commits(bare_repo: Path, since_sha: str) -> list[dict[str, Any]]:
    """Commits on main after `since_sha` that touch incidents/, with the files each added or changed."""
    log = git(
        "--git-dir",
        str(bare_repo),
        "log",
        "--reverse",
        "--format=@@%H%x09%an%x09%s",
        "--name-status",
        f"{since_sha}..main",
        "--",
        "incidents/",
    )
    commits: list[dict[str, Any]] = []
    for line in log.splitlines():
        if line.startswith("@@"):
            sha, author, subject = line[2:].split("\t", 2)
            commits.append({"sha": sha, "author": author, "subject": subject, "files": []})
        elif line.strip() and commits:
            status, _, path = line.partition("\t")
            commits[-1]["files"].append({"status": status, "path": path})
    return commits


def act_record(result: ActResult) -> dict[str, Any]:
    return {
        "returncode": result.returncode,
        "output": result.output,
        "seconds": round(result.seconds, 3),
        "job_ran": job_ran(result.output),
        "skipped_by_if": skipped_by_if(result.output),
    }


def open_and_label(repo: Any, sandbox: SandboxProcess, label: str, body: str = INCIDENT_BODY) -> tuple[int, Event]:
    """Open an incident issue from the form and add `label`; return its number and the `labeled` delivery."""
    since = len(sandbox.get("/events"))
    issue = repo.create_issue(title=INCIDENT_TITLE, body=body)
    issue.add_to_labels(label)
    event = find_event(
        sandbox,
        since,
        lambda e: (
            e.get("event") == "issues"
            and e.get("action") == "labeled"
            and e["payload"].get("label", {}).get("name") == label
            and e["payload"].get("issue", {}).get("number") == issue.number
        ),
    )
    return issue.number, ("issues", event)


def comment(repo: Any, sandbox: SandboxProcess, number: int, body: str) -> Event:
    """Comment on issue #number; return the `issue_comment` `created` delivery."""
    since = len(sandbox.get("/events"))
    created = repo.get_issue(number).create_comment(body)
    event = find_event(
        sandbox,
        since,
        lambda e: (
            e.get("event") == "issue_comment"
            and e.get("action") == "created"
            and e["payload"].get("comment", {}).get("id") == created.id
        ),
    )
    return "issue_comment", event


def close(repo: Any, sandbox: SandboxProcess, number: int) -> Event:
    """Close issue #number as the person behind `repo`; return the `issues` `closed` delivery."""
    since = len(sandbox.get("/events"))
    repo.get_issue(number).edit(state="closed")
    event = find_event(
        sandbox,
        since,
        lambda e: (
            e.get("event") == "issues"
            and e.get("action") == "closed"
            and e["payload"].get("issue", {}).get("number") == number
        ),
    )
    return "issues", event


def plan_rows(body: str) -> list[list[str]]:
    """The rows of the rollback PR's plan table: service, live, target, why, preflight."""
    rows = (
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in body.splitlines()
        if line.startswith("| ")
    )
    return [row for row in rows if len(row) == 5 and row[0] != "service"]


def force_refused_targets(repo: Any, pull_number: int, approver: str) -> dict[str, str]:
    """What the rollback PR asks of its reviewer for a service whose preflight refused its target (secrets
    rotated since): read the target from the PR's table and pin it with `force: true` on the PR's branch.
    Returns {service: forced target}."""
    pull = repo.get_pull(pull_number)
    refused = {row[0]: row[2] for row in plan_rows(pull.body or "") if row[4].startswith("refused:")}
    if not refused:
        return {}
    current = repo.get_contents(LEDGER, ref=pull.head.ref)
    doc = load_ledger(current.decoded_content.decode())
    for service, target in refused.items():
        entry = doc["services"][service]
        entry.update(version=target, set_by=approver, verified=False, force=True)
    message = f"Force {', '.join(refused)} back to the last verified pin (rotated secrets checked)"
    repo.update_file(LEDGER, message, dump_ledger(doc), current.sha, branch=pull.head.ref)
    return refused


def merge(repo: Any, sandbox: SandboxProcess, number: int) -> Event:
    """Merge pull request #number; return the `pull_request` `closed` delivery."""
    since = len(sandbox.get("/events"))
    repo.get_pull(number).merge(merge_method="merge")
    event = find_event(
        sandbox,
        since,
        lambda e: (
            e.get("event") == "pull_request"
            and e.get("action") == "closed"
            and e["payload"].get("pull_request", {}).get("merged") is True
            and e["payload"].get("number") == number
        ),
    )
    return "pull_request", event


def rollback_pulls(repo: Any) -> list[dict[str, Any]]:
    """Every pull request (open or closed) from a `rollback/` branch, as the test reads them."""
    return [
        {
            "number": pull.number,
            "head": pull.head.ref,
            "base": pull.base.ref,
            "state": pull.state,
            "merged": pull.merged,
            "user": pull.user.login,
            "labels": sorted(label.name for label in pull.labels),
            "title": pull.title,
            "body": pull.body,
        }
        for pull in repo.get_pulls(state="all")
        if pull.head.ref.startswith("rollback/")
    ]


def build_upstream(root: Path) -> tuple[Path, str]:
    """incidentops as its own repository holds it (this checkout's package, lock, templates and reusable
    workflows) in one commit of a bare repository; returns it and the commit a caller pins."""
    bare = root / "upstream.git"
    git("init", "--bare", "--quiet", "-b", "main", str(bare))
    tree = root / "upstream-tree"
    git("init", "--quiet", "-b", "main", str(tree))
    for rel in UPSTREAM_PATHS:
        source = REPO_ROOT / rel
        if source.is_dir():
            shutil.copytree(source, tree / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tree / rel)
    (tree / ".github" / "workflows").mkdir(parents=True)
    for reusable in sorted(WORKFLOWS.glob("reusable-*.yml")):
        shutil.copy2(reusable, tree / ".github" / "workflows" / reusable.name)
    git("add", "-A", cwd=tree)
    git("-c", "user.name=maintainer", "-c", "user.email=m@incidentops.invalid", "commit", "-qm", "Release", cwd=tree)
    git("push", "--quiet", str(bare), "main", cwd=tree)
    return bare, git("rev-parse", "HEAD", cwd=tree).strip()


def adopter_seed(root: Path, sha: str) -> Path:
    """A team's ops repository after `incidentops init`: its config, runbook, ledger, form and the caller
    workflows init writes, pinned to UPSTREAM@sha. No scripts/, no lock, no package, no reusable workflows."""
    from incidentops.render import render
    from incidentops.sandbox.server import seed_tree

    seed = root / "adopter-seed"
    seed_tree(REPO_ROOT, seed)
    for rel in (*UPSTREAM_PATHS, ".github/workflows"):
        target = seed / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (seed / ".github" / "workflows").mkdir(parents=True)
    for name in ADOPTER_CALLERS:
        text = render(
            f"adopt/caller-{name}.yml.j2",
            None,
            upstream=UPSTREAM,
            sha=sha,
            version="0.1.0",
            gh=lambda inner: "${{ " + inner + " }}",
        )
        (seed / ".github" / "workflows" / f"{name}.yml").write_text(text, encoding="utf-8")
    return seed


class Scenario:
    """One sandbox, one workspace, and a log of every act run made in them."""

    def __init__(
        self,
        sandbox: SandboxProcess,
        tools: Tools,
        scratch: Path,
        record: dict[str, Any],
        upstream: tuple[Path, str] | None = None,
    ) -> None:
        self.sandbox, self.tools, self.scratch, self.record = sandbox, tools, scratch, record
        self.info = sandbox.info
        self.bare_repo = Path(self.info["bare_repo"])
        self.workspace = prepare_workspace(self.bare_repo, scratch, own_workflows=upstream is None)
        # The reusable workflows act fetches for an adopting repository's callers: their actions need stubs too.
        self.also_map: tuple[Path, ...] = ()
        if upstream is not None:
            bare, sha = upstream
            # Served by the sandbox at <server>/incidentops/incidentops, beside the team's acme/ops.
            served = self.bare_repo.parent.parent / UPSTREAM.split("/")[0] / f"{UPSTREAM.split('/')[1]}.git"
            served.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(bare, served)
            called = scratch / "called"
            called.mkdir()
            for name in ADOPTER_CALLERS:
                path = f".github/workflows/reusable-{name}.yml"
                (called / f"reusable-{name}.yml").write_text(git("--git-dir", str(served), "show", f"{sha}:{path}"))
            self.also_map = tuple(sorted(called.glob("*.yml")))
        self.number: int | None = None  # the incident issue, once opened
        record["act_runs"] = []

    def repo(self, login: str) -> Any:
        gh = Github(
            auth=Auth.Token(login),
            base_url=self.info["github_api_url"],
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )
        return gh.get_repo(self.info["repository"])

    def main_sha(self) -> str:
        return git("--git-dir", str(self.bare_repo), "rev-parse", "main").strip()

    def act(self, workflow_name: str, event: Event, *, verbose: bool = False) -> dict[str, Any]:
        """Hand one recorded delivery to act with the real `workflow_name`; log and return the run."""
        event_name, delivery = event
        index = len(self.record["act_runs"])
        event_path = self.scratch / f"event-{index}.json"
        event_path.write_text(json.dumps(delivery["payload"]), encoding="utf-8")
        main_before = self.main_sha()
        result = run_act(
            workdir=self.workspace,
            event_name=event_name,
            event_path=event_path,
            workflow=self.workspace / ".github" / "workflows" / workflow_name,
            sandbox=self.info,
            tools=self.tools,
            scratch=self.scratch / f"act-{index}",
            verbose=verbose,
            also_map=self.also_map,
        )
        run = act_record(result)
        run.update(
            workflow=workflow_name,
            event=event_name,
            action=delivery.get("action"),
            delivery=delivery.get("delivery"),
            main_before=main_before,
            main_after=self.main_sha(),
        )
        if self.number is not None:  # what a person would see right after this run
            issue = self.repo(HUMAN_TOKEN).get_issue(self.number)
            run["issue_state"] = issue.state
            run["comments"] = comments(issue)
            run["incident_text"] = self.incident_text(self.number)
        self.record["act_runs"].append(run)
        return run

    def live(self) -> dict[str, Any]:
        live: dict[str, Any] = self.sandbox.get("/cloudflare/live")
        return live

    def incident_text(self, number: int) -> str | None:
        try:
            return git("--git-dir", str(self.bare_repo), "show", f"main:incidents/INC-{number:04d}.md")
        except subprocess.CalledProcessError:
            return None


def comments(issue: Any) -> list[dict[str, Any]]:
    return [{"id": c.id, "user": c.user.login, "body": c.body} for c in issue.get_comments()]


def run(
    scenario: str, sandbox: SandboxProcess, tools: Tools, scratch: Path, upstream: tuple[Path, str] | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"sandbox_info": sandbox.info}
    s = Scenario(sandbox, tools, scratch, record, upstream)
    if upstream is not None:
        record["upstream_sha"] = upstream[1]
        record["adopter_tree"] = git("--git-dir", str(s.bare_repo), "ls-tree", "-r", "--name-only", "main").split()
        scenario = scenario.removeprefix("adopt-")
    human = s.repo(HUMAN_TOKEN)
    before = s.main_sha()
    record["main_before"] = before

    if scenario == "skip":
        number, event = open_and_label(human, sandbox, "bug")
        record.update(issue_number=number, delivery=event[1].get("delivery"))
        s.act("incident.yml", event, verbose=True)
    elif scenario == "declare":
        number, event = open_and_label(human, sandbox, "sev-1")
        s.number = number
        record.update(issue_number=number, delivery=event[1].get("delivery"))
        s.act("incident.yml", event)
        s.act("incident.yml", event)  # GitHub (or a re-run) delivers the same event again
        s.act("incident.yml", comment(human, sandbox, number, NOTE_COMMENT))
        # Nothing was rolled back, decided or cleared: closing now must not close the incident.
        s.act("incident.yml", close(human, sandbox, number))
    elif scenario == "rollback":
        # The declaration itself suspects a deploy regression, so the same run plans the rollback.
        record["live_before"] = s.live()
        number, event = open_and_label(human, sandbox, "sev-1", REGRESSION_BODY)
        s.number = number
        record.update(issue_number=number, delivery=event[1].get("delivery"))
        s.act("incident.yml", event)
        record["live_planned"] = s.live()
        pulls = [p for p in rollback_pulls(human) if p["state"] == "open"]
        if len(pulls) != 1:
            raise RuntimeError(f"expected one open rollback PR after the declaration, found {pulls}")
        # The target the PR's plan names for each service, against the seeded story's newest verified good pins.
        record["planned_targets"] = {row[0]: row[2] for row in plan_rows(pulls[0]["body"] or "")}
        world = seed()
        record["expected_pins"] = {service: world.good_target(service) for service in ALL_SERVICES}
        # The human approval: someone allowed to apply a rollback reviews the PR (queue-consumer's secrets
        # were rotated since its good version, so the preflight asks for an explicit `force: true`), then
        # merges it.
        approver = s.repo(ROLLBACK_APPROVER)
        record["forced"] = force_refused_targets(approver, pulls[0]["number"], ROLLBACK_APPROVER)
        s.act("rollback.yml", merge(approver, sandbox, pulls[0]["number"]))
        record["live_after"] = s.live()
    elif scenario == "comment":
        number, event = open_and_label(human, sandbox, "sev-1")
        s.number = number
        record.update(issue_number=number, delivery=event[1].get("delivery"))
        s.act("incident.yml", event)
        record["incident_text_declared"] = s.incident_text(number)
        record["live_before"] = s.live()
        s.act("incident.yml", comment(human, sandbox, number, ROLLBACK_COMMENT))
        record["live_after"] = s.live()
    elif scenario == "unprivileged":
        # Declared without a deploy regression; then a triager asks for a production command it may not run.
        number, event = open_and_label(human, sandbox, "sev-1")
        s.number = number
        record.update(issue_number=number, delivery=event[1].get("delivery"))
        s.act("incident.yml", event)
        record["requests_before"] = len(sandbox.get("/requests"))
        s.act("incident.yml", comment(s.repo("triager"), sandbox, number, "/contain api.example.com/v1/reports"))
        record["requests_after"] = sandbox.get("/requests")[record["requests_before"] :]
    else:
        raise ValueError(f"unknown scenario {scenario!r}")

    record["main_after"] = s.main_sha()
    record["incident_commits"] = incident_commits(s.bare_repo, before)
    record["incident_files"] = [
        name
        for name in git("--git-dir", str(s.bare_repo), "ls-tree", "--name-only", "main", "incidents/").splitlines()
        if name.rsplit("/", 1)[-1].startswith("INC-")
    ]
    record["incident_text"] = s.incident_text(number)
    record["issue_state"] = human.get_issue(number).state
    record["comments"] = comments(human.get_issue(number))
    record["rollback_pulls"] = rollback_pulls(human)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--act", type=Path, required=True)
    parser.add_argument("--uv", type=Path, required=True)
    parser.add_argument("--python", type=Path, required=True)
    parser.add_argument("--uv-cache-dir", type=Path, required=True)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory for debugging")
    args = parser.parse_args(argv)
    tools = Tools(act=args.act, uv=args.uv, python=args.python, uv_cache_dir=args.uv_cache_dir)

    scratch = Path(tempfile.mkdtemp(prefix=f"act-{args.scenario}-"))
    result: dict[str, Any] = {"scenario": args.scenario, "error": None, "scratch": str(scratch)}
    sandbox: SandboxProcess | None = None
    try:
        if args.scenario.startswith("adopt-"):
            upstream = build_upstream(scratch)
            sandbox = SandboxProcess(scratch / "sandbox", seed=adopter_seed(scratch, upstream[1]))
            result.update(run(args.scenario, sandbox, tools, scratch, upstream))
        else:
            sandbox = SandboxProcess(scratch / "sandbox", seed=REPO_ROOT)
            result.update(run(args.scenario, sandbox, tools, scratch))
    except Exception:
        result["error"] = traceback.format_exc()
    finally:
        if sandbox is not None:
            for key, path in (("requests", "/requests"), ("violations", "/violations")):
                try:
                    result[key] = sandbox.get(path)
                except Exception as exc:
                    result[key] = None
                    result[f"{key}_error"] = repr(exc)
            result["sandbox_exit"] = sandbox.stop()
            result["sandbox_stderr"] = sandbox.stderr_path.read_text(encoding="utf-8")[-5000:]
        args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
