"""The incident workflows under the sandbox's Actions scheduler: GitHub's trigger and concurrency rules, act with
the real workflow files, and a burst of events on one incident fired faster than runs finish.

Run inside a loopback-only network namespace (tests/actions_rules/conftest.py does it):

    python tests/actions_rules/scheduler_scenario.py --out result.json --act … --uv … --python … --uv-cache-dir …

1. oncall-write opens the incident form and labels it sev-2: incident.yml declares; the bot's push starts nothing,
   but the completed run starts report.yml through workflow_run, which builds and "publishes" the site.
2. The burst, as fast as the API answers (each event is recorded before the next is made): escalate to sev-1
   (add sev-1, remove sev-2), three /notes, a /status, two comments that are not commands (one holds URLs),
   de-escalate to sev-2 (add sev-2, remove sev-1), and close the issue.
3. Wait until every recorded event was decided and every run finished; write the runs, decisions, the incident
   file and the issue to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT / "scripts"), str(REPO_ROOT / "tests" / "e2e")]

from github import Auth, Github  # noqa: E402

from incidentops.sandbox.act import ActTools  # noqa: E402
from incidentops.sandbox.scheduler import start_for_sandbox  # noqa: E402
from incidentops.sandbox.server import Sandbox  # noqa: E402

PERSON = "oncall-write"
NOTES = (
    "First note: cache flushed on api-worker",
    "Second note: t-1001 no longer sees rows of t-2002",
    "Third note: error rate back to baseline",
)
STATUS = "Mitigating: cache flushed, watching the error rate"
BODY = """\
### Summary

Tenant t-1001 sees report rows of tenant t-2002 on /v1/reports.

### Environment

production

### Start time (UTC)

2026-11-27T03:12:09Z

### Impacted routes

/v1/reports

### Affected services

api-worker

### Risk assessment

- [ ] Tenant isolation is at risk
- [ ] A deploy regression is suspected"""


def burst(issue: Any) -> list[str]:
    """Fire the burst; return what each step was, in order."""
    done: list[str] = []

    def step(what: str, action: Any) -> None:
        action()
        done.append(what)

    step("label sev-1", lambda: issue.add_to_labels("sev-1"))
    step("unlabel sev-2", lambda: issue.remove_from_labels("sev-2"))
    step("/note 1", lambda: issue.create_comment(f"/note {NOTES[0]}"))
    step(
        "comment with URLs",
        lambda: issue.create_comment("Dashboard: https://grafana.example.com/d/api/p99?from=now-1h and /v1/reports"),
    )
    step("/note 2", lambda: issue.create_comment(f"/note {NOTES[1]}"))
    step("/status", lambda: issue.create_comment(f"/status {STATUS}"))
    step("label sev-2", lambda: issue.add_to_labels("sev-2"))
    step("unlabel sev-1", lambda: issue.remove_from_labels("sev-1"))
    step("comment", lambda: issue.create_comment("thanks all, watching"))
    step("/note 3", lambda: issue.create_comment(f"/note {NOTES[2]}"))
    step("close", lambda: issue.edit(state="closed"))
    return done


def incident_text(bare: Path, number: int) -> str | None:
    shown = subprocess.run(
        ["git", "--git-dir", str(bare), "show", f"main:incidents/INC-{number:04d}.md"],
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None


def site_pages(scratch: Path) -> dict[str, str]:
    deployed = scratch / "actions" / "pages" / "deployed"
    return {
        str(path.relative_to(deployed)): path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(deployed.rglob("*.html"))
    }


def run(scratch: Path, tools: ActTools, record: dict[str, Any]) -> None:
    sandbox = Sandbox(scratch / "sandbox", seed=REPO_ROOT).start()
    scheduler = pump = None
    try:
        scheduler, pump = start_for_sandbox(sandbox, REPO_ROOT, scratch / "actions", tools=tools)
        gh = Github(auth=Auth.Token(PERSON), base_url=sandbox.info["github_api_url"], retry=None)
        repo = gh.get_repo(sandbox.info["repository"])
        issue = repo.create_issue(title="[Incident] Reports leak across tenants", body=BODY)
        record["issue_number"] = issue.number
        issue.add_to_labels("sev-2")
        if not pump.wait_idle(900):
            raise RuntimeError("the declaration's runs did not finish within 900 s")
        record["declared"] = scheduler.report()
        record["declared_text"] = incident_text(sandbox.bare_repo, issue.number)
        record["declared_site"] = site_pages(scratch)

        first = len(sandbox.github.events)
        record["burst"] = burst(issue)
        record["burst_events"] = [
            {"event": e["event"], "action": e["action"], "seq": e["seq"]} for e in sandbox.github.events[first:]
        ]
        if not pump.wait_idle(1500):
            raise RuntimeError("the burst's runs did not finish within 1500 s")
        record["final"] = scheduler.report()
        record["final_text"] = incident_text(sandbox.bare_repo, issue.number)
        record["final_site"] = site_pages(scratch)
        live = repo.get_issue(issue.number)
        record["issue"] = {
            "state": live.state,
            "labels": sorted(label.name for label in live.labels),
            "comments": [{"user": c.user.login, "body": c.body} for c in live.get_comments()],
        }
        record["violations"] = list(sandbox.github.violations)
    finally:
        if pump is not None:
            pump.stop()
        if scheduler is not None:
            scheduler.stop()
        sandbox.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--act", type=Path, required=True)
    parser.add_argument("--uv", type=Path, required=True)
    parser.add_argument("--python", type=Path, required=True)
    parser.add_argument("--uv-cache-dir", type=Path, required=True)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    tools = ActTools(act=args.act, uv=args.uv, python=args.python, uv_cache_dir=args.uv_cache_dir)
    scratch = Path(tempfile.mkdtemp(prefix="act-scheduler-"))
    record: dict[str, Any] = {"error": None, "scratch": str(scratch)}
    try:
        run(scratch, tools, record)
    except Exception:
        record["error"] = traceback.format_exc()
    finally:
        args.out.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 1 if record["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
