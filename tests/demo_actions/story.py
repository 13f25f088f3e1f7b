"""A short demo story through `ActRunner`, meant to run inside a loopback-only network namespace.

    python tests/demo_actions/story.py --out result.json

Starts the sandbox in this process (so in the same namespace as act), then: @oncall-write opens the demo's
incident form and labels it sev-1 (incident.yml declares), comments `/note …` (incident.yml adds the row),
and labels a second issue `bug` (incident.yml's `if:` skips the job, which the runner must report as a
failure). Writes what came back (each Outcome, the incident file in the bare repository after each run,
the error for the skipped job) to --out as JSON and always stops the sandbox.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from github import Auth, Github

from incidentops.demo import DEMO_FORM
from incidentops.sandbox.act import ActFailed, ActRunner, network_interfaces
from incidentops.sandbox.server import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTE = "Cache flushed on api-worker; t-100 still sees rows of t-200"
TITLE = "[Incident] Tenant data visible across tenants on /v1/reports"


def latest(sandbox: Sandbox, event: str, action: str) -> dict[str, Any]:
    for delivery in reversed(sandbox.github.events):
        if delivery["event"] == event and delivery["action"] == action:
            return dict(delivery)
    raise LookupError(f"the sandbox recorded no {event}.{action}")


def incident_file(bare: Path, number: int) -> str | None:
    shown = subprocess.run(
        ["git", "--git-dir", str(bare), "show", f"main:incidents/INC-{number:04d}.md"],
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None


def story(root: Path) -> dict[str, Any]:
    record: dict[str, Any] = {"interfaces": network_interfaces()}
    sandbox = Sandbox(root / "sandbox", seed=REPO_ROOT, propagation=(0.2, 0.5)).start()
    try:
        info = sandbox.info
        bare = Path(info["bare_repo"])
        runner = ActRunner(REPO_ROOT, info, root / "act")
        person = Github(auth=Auth.Token("oncall-write"), base_url=info["github_api_url"], retry=None)
        repo = person.get_repo(info["repository"])

        issue = repo.create_issue(title=TITLE, body=DEMO_FORM)
        issue.add_to_labels("sev-1")
        record["number"] = issue.number
        record["declare"] = dataclasses.asdict(runner.run(latest(sandbox, "issues", "labeled")))
        record["file_after_declare"] = incident_file(bare, issue.number)

        issue.create_comment(f"/note {NOTE}")
        record["note"] = dataclasses.asdict(runner.run(latest(sandbox, "issue_comment", "created")))
        record["file_after_note"] = incident_file(bare, issue.number)

        other = repo.create_issue(title="Typo on the status page", body="Not an incident.")
        other.add_to_labels("bug")
        try:
            runner.run(latest(sandbox, "issues", "labeled"))
            record["skipped_error"] = None
        except ActFailed as err:
            record["skipped_error"] = str(err)
        record["act_seconds"] = [round(run.seconds, 2) for run in runner.runs]
        record["act_outputs"] = [run.output[-3000:] for run in runner.runs]
    finally:
        sandbox.stop()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo-actions-") as tmp:
        try:
            result = story(Path(tmp))
        except Exception:
            result = {"error": traceback.format_exc()}
    args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
