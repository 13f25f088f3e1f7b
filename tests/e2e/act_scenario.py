"""One end-to-end scenario: a person acts on GitHub, GitHub delivers the event, act runs the real workflow.

Run inside a loopback-only network namespace (see act_harness.run_scenario), e.g.:

    unshare -n sh -c 'ip link set lo up && exec python tests/e2e/act_scenario.py --scenario declare \
        --out result.json'

It starts `incidentops sandbox serve`, plays the on-call engineer through the sandbox's GitHub API with
PyGithub, takes the webhook payload the sandbox recorded for that action, and runs act with the real
.github/workflows/incident.yml on it. It writes what came out (act's exit code and output, the incident
commits in the bare repository, the issue's comments, the sandbox's request log and contract violations)
to --out as JSON, and always stops the sandbox.
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

HUMAN_TOKEN = "oncall-write"
PUBLIC_ORIGIN = "https://github.com/acme/ops.git"

# The project's own tooling: a team's ops repository is a copy of this project, so its main branch holds
# the package and the lock the workflow installs from, beside the layout the sandbox seeds.
TOOLING = ("pyproject.toml", "uv.lock", "README.md", ".gitignore", "scripts")

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


def add_tooling(bare_repo: Path, scratch: Path) -> str | None:
    """Commit the package and its lock to the sandbox repo's main, as a team's ops repo has them."""
    tree = scratch / "tooling"
    git("clone", "--quiet", str(bare_repo), str(tree))
    for rel in TOOLING:
        src, dst = REPO_ROOT / rel, tree / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, dst)
    git("add", "-A", cwd=tree)
    if not git("status", "--porcelain", cwd=tree).strip():
        return None
    identity = ["-c", "user.name=platform-team", "-c", "user.email=platform@acme.invalid"]
    git(*identity, "commit", "--quiet", "-m", "Add the incidentops tooling", cwd=tree)
    git("push", "--quiet", "origin", "HEAD:main", cwd=tree)
    return git("rev-parse", "HEAD", cwd=tree).strip()


def prepare_workspace(bare_repo: Path, scratch: Path, workflow_name: str) -> Path:
    """A clone act runs in: origin names github.com (act reads the repository from it), pushes go local."""
    workspace = scratch / "workspace"
    git("clone", "--quiet", str(bare_repo), str(workspace))
    git("remote", "set-url", "origin", PUBLIC_ORIGIN, cwd=workspace)
    git("config", "remote.origin.pushurl", str(bare_repo), cwd=workspace)
    target = workspace / ".github" / "workflows"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(WORKFLOWS / workflow_name, target / workflow_name)
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


def label_issue(repo: Any, sandbox: SandboxProcess, label: str, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Open an incident issue from the form and add `label`; return the `issues` `labeled` delivery."""
    since = len(sandbox.get("/events"))
    issue = repo.create_issue(title=INCIDENT_TITLE, body=INCIDENT_BODY)
    issue.add_to_labels(label)
    record.update(issue_number=issue.number, label=label)
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
    return "issues", event


def merge_rollback_pr(repo: Any, sandbox: SandboxProcess, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Open a pull request that changes the production ledger, label it `rollback`, merge it."""
    branch = "incidentops/rollback-e2e"
    path = "deployments/production.yaml"
    repo.create_git_ref(f"refs/heads/{branch}", repo.get_branch("main").commit.sha)
    current = repo.get_contents(path, ref=branch)
    text = current.decoded_content.decode("utf-8") + "# rolled back by the e2e scenario\n"
    repo.update_file(path, "Roll back api-worker", text, current.sha, branch=branch)
    pull = repo.create_pull(
        title="Roll back api-worker", body="Rollback for the e2e scenario.", head=branch, base="main"
    )
    pull.add_to_labels("rollback")
    since = len(sandbox.get("/events"))
    pull.merge(merge_method="merge")
    record.update(issue_number=pull.number, label="rollback")
    event = find_event(
        sandbox,
        since,
        lambda e: (
            e.get("event") == "pull_request"
            and e.get("action") == "closed"
            and e["payload"].get("pull_request", {}).get("merged") is True
            and e["payload"].get("number") == pull.number
        ),
    )
    return "pull_request", event


def run(scenario: str, sandbox: SandboxProcess, tools: Tools, scratch: Path) -> dict[str, Any]:
    info = sandbox.info
    bare_repo = Path(info["bare_repo"])
    record: dict[str, Any] = {"sandbox_info": info}
    record["tooling_commit"] = add_tooling(bare_repo, scratch)
    workflow_name = "rollback.yml" if scenario == "rollback" else "incident.yml"
    workspace = prepare_workspace(bare_repo, scratch, workflow_name)

    gh = Github(
        auth=Auth.Token(HUMAN_TOKEN),
        base_url=info["github_api_url"],
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    repo = gh.get_repo(info["repository"])
    if scenario == "rollback":
        event_name, event = merge_rollback_pr(repo, sandbox, record)
    else:
        event_name, event = label_issue(repo, sandbox, "bug" if scenario == "skip" else "sev-1", record)
    event_path = scratch / "event.json"
    event_path.write_text(json.dumps(event["payload"]), encoding="utf-8")
    record["delivery"] = event.get("delivery")
    before = git("--git-dir", str(bare_repo), "rev-parse", "main").strip()
    record["main_before"] = before

    deliveries = 2 if scenario == "redeliver" else 1
    record["act_runs"] = []
    for attempt in range(deliveries):
        result = run_act(
            workdir=workspace,
            event_name=event_name,
            event_path=event_path,
            workflow=workspace / ".github" / "workflows" / workflow_name,
            sandbox=info,
            tools=tools,
            scratch=scratch / f"act-{attempt}",
            verbose=scenario == "skip",
        )
        record["act_runs"].append(act_record(result))

    record["main_after"] = git("--git-dir", str(bare_repo), "rev-parse", "main").strip()
    record["incident_commits"] = incident_commits(bare_repo, before)
    record["incident_files"] = [
        name
        for name in git("--git-dir", str(bare_repo), "ls-tree", "--name-only", "main", "incidents/").splitlines()
        if name.rsplit("/", 1)[-1].startswith("INC-")
    ]
    record["comments"] = [
        {"id": c.id, "user": c.user.login, "body": c.body}
        for c in repo.get_issue(record["issue_number"]).get_comments()
    ]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=["declare", "skip", "redeliver", "rollback"], required=True)
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
