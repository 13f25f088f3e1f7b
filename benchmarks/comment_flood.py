"""Benchmark what a comment flood costs: GitHub API requests per run on an incident with 5,000 and 20,000 comments.

Anyone who can comment can bury an incident issue in comments, and a `GITHUB_TOKEN` has 1,000 REST requests per
hour per repository. For each size this seeds one declared incident with N plain comments in the sandbox, then
counts the requests the sandbox receives for four runs: a `/note` by someone with the role, a `/contain` by someone
without it, a second `/contain` by the same person, and the scheduled sweep. It prints the requests per run and the
comments' pages among them.

History on 5,000 comments: at first (30 comments a page, every marker look-up re-reading every page, one refusal per
comment) each run cost 337 requests (334 of them comment pages); with 100 a page and one read per run, 54, still
growing with the flood (about 204 on 20,000). Now a run reads at most COMMENT_PAGES_PER_RUN pages per listing from
the incident's checkpoint (the sweep moves it on), and an acknowledgement of a command the run itself committed
needs no look-up: the cost no longer depends on the number of comments. docs/security.md records the figures.

Run: .venv/bin/python benchmarks/comment_flood.py [--comments 5000 20000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from verdict import report

from incidentops.adapters.git import GitRepo
from incidentops.adapters.github import GitHubClient
from incidentops.config import load_config
from incidentops.core.events import parse_event
from incidentops.core.redact import Redactor
from incidentops.core.timefmt import utc_now
from incidentops.flows.base import Ports
from incidentops.flows.dispatch import handle
from incidentops.flows.reconcile import sweep
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
FORM = (ROOT / "tests" / "fixtures" / "forms" / "full.md").read_text().replace("[x]", "[ ]")
TARGET_PER_RUN = 40  # requests for one run on a flooded issue, whatever the flood: well inside 1,000 an hour


def _requests(info: dict[str, Any]) -> list[dict[str, Any]]:
    return httpx.get(info["control_url"] + "/requests", timeout=60).json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, nargs="+", default=[5000, 20000])
    args = parser.parse_args()
    worst = {size: flood(size) for size in args.comments}
    bounded = max(worst.values()) <= TARGET_PER_RUN
    # Bounded: the largest flood costs a run no more than the smallest one (a page of slack).
    flat = max(worst.values()) <= min(worst.values()) + 1
    sizes = ", ".join(f"{size:,}: {cost}" for size, cost in worst.items())
    print(f"worst run per flood size: {sizes} (target <= {TARGET_PER_RUN}, the same for every size)")
    met = report(
        "comment_flood",
        f"GitHub requests of the worst run on {' and '.join(f'{n:,}' for n in args.comments)} comments",
        sizes,
        f"<= {TARGET_PER_RUN}, independent of the flood",
        bounded and flat,
    )
    return 0 if met else 1


def flood(comments: int) -> int:
    """Requests of the costliest of four runs on an incident carrying `comments` comments."""
    tmp = Path(tempfile.mkdtemp(prefix="incidentops-flood-"))
    sandbox = Sandbox(tmp / "sandbox", seed=ROOT).start()
    try:
        info = sandbox.info
        api, repo = info["github_api_url"], info["repository"]
        workspace = tmp / "workspace"
        GitRepo(tmp).run("clone", "-q", info["bare_repo"], str(workspace))

        def as_user(login: str) -> httpx.Client:
            return httpx.Client(base_url=f"{api}/repos/{repo}", headers={"Authorization": f"token {login}"}, timeout=60)

        def ports() -> Ports:
            github = GitHubClient(token=info["actions_token"], repository=repo, api_url=api, retries=0)
            config = load_config(workspace)
            return Ports(
                config,
                workspace,
                github,
                GitRepo(workspace),
                repo,
                info["github_server_url"],
                Redactor(),
                utc_now,
                None,
            )

        def run(sweeping: bool = False) -> tuple[str, int, int]:
            before = len(_requests(info))
            if sweeping:
                outcome = sweep(ports())
            else:
                delivery = [e for e in httpx.get(info["control_url"] + "/events", timeout=60).json()][-1]
                outcome = handle(parse_event(delivery["event"], json.loads(json.dumps(delivery["payload"]))), ports())
            made = _requests(info)[before:]
            pages = sum(1 for r in made if r["method"] == "GET" and r["path"].endswith("/comments"))
            return outcome.status, len(made), pages

        writer, triager = as_user("oncall-write"), as_user("triager")
        number = writer.post("/issues", json={"title": "Flooded incident", "body": FORM}).json()["number"]
        writer.post(f"/issues/{number}/labels", json={"labels": ["sev-1"]})
        print("declare:", run()[0])
        for i in range(comments):
            triager.post(f"/issues/{number}/comments", json={"body": f"+1 from the flood ({i})"})
        worst = 0
        for who, client, body in (
            ("/note by oncall-write", writer, "/note checking the flood"),
            ("/contain by triager", triager, "/contain api.example.com/v1/reports"),
            ("/contain again by triager", triager, "/contain api.example.com/v1/admin"),
            ("scheduled sweep", None, ""),
        ):
            if client is not None:
                client.post(f"/issues/{number}/comments", json={"body": body})
            status, made, pages = run(sweeping=client is None)
            worst = max(worst, made)
            print(f"{who:<28} {status:<10} {made:>5} requests ({pages} comment pages) on {comments:,} comments")
        return worst
    finally:
        sandbox.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
