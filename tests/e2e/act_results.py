"""Reading what an act scenario recorded: the checks every scenario test shares."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

BOT = "github-actions[bot]"
INCIDENT_FILE = re.compile(r"^incidents/(INC-\d+)[^/]*\.md$")
INSTALLED = re.compile(r"\|\s+\+ ([A-Za-z0-9_.-]+)==")


def explain(result: dict[str, Any]) -> str:
    """What to print when an assertion fails: the harness error, or act's output and the sandbox's log."""
    if result.get("error"):
        return f"harness error:\n{result['error']}\n{result.get('sandbox_stderr', '')}"
    runs = "\n\n".join(
        f"--- act run {i}: {r.get('workflow')} on {r.get('event')} (exit {r['returncode']})\n{r['output']}"
        for i, r in enumerate(result["act_runs"])
    )
    return f"{runs}\n--- sandbox stderr\n{result.get('sandbox_stderr', '')}"


def added_incident_files(result: dict[str, Any]) -> list[str]:
    return [
        f["path"]
        for commit in result["incident_commits"]
        for f in commit["files"]
        if f["status"] == "A" and INCIDENT_FILE.match(f["path"])
    ]


def bot_comments(result: dict[str, Any]) -> list[str]:
    """The bot's comments at the end of the scenario (or right after one act run, given that run's record)."""
    return [c["body"] for c in result["comments"] if c["user"] == BOT]


def new_bot_comments(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The bot's comments that appeared between two act runs (each run records the issue's comments)."""
    seen = {c["id"] for c in before["comments"]}
    return [c["body"] for c in after["comments"] if c["user"] == BOT and c["id"] not in seen]


def actions_token_requests(result: dict[str, Any]) -> list[Any]:
    """Requests the workflow's CLI made with the job token (the harness itself uses a person's token)."""
    return [r for r in result.get("requests") or [] if "sandbox-actions-token" in str(r)]


def cloudflare_writes(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests that change Cloudflare (GraphQL analytics queries are POSTs too, but only read)."""
    return [
        r
        for r in result.get("requests") or []
        if r["method"] != "GET" and str(r["path"]).startswith("/client/v4/") and r["path"] != "/client/v4/graphql"
    ]


def smoke_requests(result: dict[str, Any], environment: str = "production") -> list[dict[str, Any]]:
    """Requests that reached the sandbox's demo services at the environment's base URLs (the smoke checks)."""
    hosts = {urlsplit(url).netloc for url in result["sandbox_info"]["base_urls"][environment].values()}
    return [r for r in result.get("requests") or [] if r["headers"].get("host") in hosts]


def assert_smoke_used_the_secrets_and_base_urls(result: dict[str, Any]) -> None:
    """The smoke checks ran against the base URLs the harness passed as `vars.INCIDENTOPS_BASE_URLS`, with
    both tenant tokens the harness passed as secrets (the workflow maps them into the step's env)."""
    requests = smoke_requests(result)
    assert requests, "no smoke check reached the sandbox's demo services"
    sent = {r["headers"].get("authorization") for r in requests}
    for token in result["sandbox_info"]["smoke_env"].values():
        assert f"Bearer {token}" in sent, (token, sent)


def cli_lines(run: dict[str, Any], *needles: str) -> list[str]:
    """The CLI's report lines (`incidentops: …`) in a run's output that contain every needle."""
    return [line for line in run["output"].splitlines() if "incidentops: " in line and all(n in line for n in needles)]


def assert_job_succeeded(result: dict[str, Any], run: dict[str, Any]) -> None:
    assert run["returncode"] == 0, explain(result)
    assert run["job_ran"], explain(result)
    assert "Job succeeded" in run["output"], explain(result)


def assert_installed_only_locked_dependencies(result: dict[str, Any], run: dict[str, Any]) -> None:
    """The install step ran, installed the lock's runtime packages, and built or installed no project."""
    assert "Success - Main Install the locked dependencies" in run["output"], explain(result)
    installed = {name.lower().replace("_", "-") for name in INSTALLED.findall(run["output"])}
    assert {"pygithub", "httpx", "jinja2", "ruamel-yaml"} <= installed, explain(result)
    assert "incidentops" not in installed, explain(result)
    assert not re.search(r"\bBuilt incidentops\b|hatchling", run["output"]), explain(result)
