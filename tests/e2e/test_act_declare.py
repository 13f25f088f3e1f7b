"""The real incident workflow under act, offline, against the sandbox: declare, skip, re-delivery.

Each scenario is one `act_scenario.py` run in its own loopback-only network namespace (see
act_harness.run_scenario); the assertions read what it recorded: act's exit code and output, the
commits that reached the sandbox's bare repository, and the comments on the issue.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from . import act_harness

pytestmark = pytest.mark.act

BOT = "github-actions[bot]"
INCIDENT_FILE = re.compile(r"^incidents/(INC-\d+)[^/]*\.md$")


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Any:
    problem = act_harness.namespace_problem()
    if problem:
        pytest.skip(problem)
    results: dict[str, dict[str, Any]] = {}

    def get(name: str) -> dict[str, Any]:
        if name not in results:
            out = tmp_path_factory.mktemp(f"act-{name}") / "result.json"
            results[name] = act_harness.run_scenario(name, out)
        return results[name]

    return get


def explain(result: dict[str, Any]) -> str:
    """What to print when an assertion fails: the harness error, or act's output and the sandbox's log."""
    if result.get("error"):
        return f"harness error:\n{result['error']}\n{result.get('sandbox_stderr', '')}"
    runs = "\n\n".join(
        f"--- act run {i} (exit {r['returncode']})\n{r['output']}" for i, r in enumerate(result["act_runs"])
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
    return [c["body"] for c in result["comments"] if c["user"] == BOT]


def actions_token_requests(result: dict[str, Any]) -> list[Any]:
    """Requests the workflow's CLI made with the job token (the harness itself uses a person's token)."""
    return [r for r in result.get("requests") or [] if "sandbox-actions-token" in str(r)]


def assert_job_succeeded(result: dict[str, Any], run: dict[str, Any]) -> None:
    assert run["returncode"] == 0, explain(result)
    assert run["job_ran"], explain(result)
    assert "Job succeeded" in run["output"], explain(result)


def test_sev1_label_declares_the_incident(scenarios: Any) -> None:
    result = scenarios("declare")
    assert result["error"] is None, explain(result)
    assert len(result["act_runs"]) == 1
    run = result["act_runs"][0]
    assert_job_succeeded(result, run)

    added = added_incident_files(result)
    assert len(added) == 1, result["incident_commits"]
    match = INCIDENT_FILE.match(added[0])
    assert match
    incident_id = match.group(1)
    commit = next(c for c in result["incident_commits"] if any(f["path"] == added[0] for f in c["files"]))
    assert commit["author"] == BOT
    # The job really ran our CLI: its report line names the incident it declared.
    cli_lines = [line for line in run["output"].splitlines() if "incidentops: " in line and incident_id in line]
    assert cli_lines, explain(result)

    comments = bot_comments(result)
    assert len(comments) == 1, result["comments"]
    assert incident_id in comments[0]
    assert len(result["comments"]) == 1, "nobody else commented"

    assert actions_token_requests(result), "the CLI never called the API with the job token"
    assert result["violations"] == [], result["violations"]


def test_a_non_severity_label_skips_the_job(scenarios: Any) -> None:
    result = scenarios("skip")
    assert result["error"] is None, explain(result)
    run = result["act_runs"][0]
    assert run["returncode"] == 0, explain(result)
    assert not run["job_ran"], explain(result)
    assert run["skipped_by_if"], explain(result)  # skipped by the job's `if:`, not for another reason
    assert result["main_after"] == result["main_before"]
    assert result["incident_commits"] == []
    assert result["comments"] == []
    assert actions_token_requests(result) == []
    assert result["violations"] == [], result["violations"]


def test_a_redelivered_event_changes_nothing_the_second_time(scenarios: Any) -> None:
    result = scenarios("redeliver")
    assert result["error"] is None, explain(result)
    assert len(result["act_runs"]) == 2
    for run in result["act_runs"]:
        assert_job_succeeded(result, run)
        assert "incidentops: " in run["output"], explain(result)  # the CLI ran both times
    assert len(result["incident_files"]) == 1, result["incident_files"]
    assert len(added_incident_files(result)) == 1, result["incident_commits"]
    assert len(bot_comments(result)) == 1, result["comments"]
    assert result["violations"] == [], result["violations"]


def test_the_harness_cleans_up(scenarios: Any) -> None:
    result = scenarios("declare")
    assert result["sandbox_exit"] == 0, result.get("sandbox_stderr")
    assert not Path(result["scratch"]).exists()


def test_merging_a_rollback_pr_runs_the_rollback_workflow(scenarios: Any) -> None:
    """rollback.yml end to end: the merge event passes the job filter, the job checks out the merged tip,
    installs from the lock and hands the event to the CLI. (What the rollback flow then does to Cloudflare
    is tested with the flow itself; extend this once it lands.)"""
    result = scenarios("rollback")
    assert result["error"] is None, explain(result)
    run = result["act_runs"][0]
    assert_job_succeeded(result, run)
    assert f"checked out main at {result['main_before']}" in run["output"], explain(result)
    assert "incidentops: " in run["output"], explain(result)
    assert result["violations"] == [], result["violations"]
