"""#14: a team's repository that holds only its own files (config, runbook, ledger, form and the caller workflows
`incidentops init` writes, pinned by SHA) declares and rolls back through incidentops' reusable workflows, under act.

The reusable workflows live in another sandbox repository (incidentops/incidentops, one release commit). act fetches
each one the caller `uses:` from the sandbox's git server over HTTP, as it fetches them from github.com (its
GoGitActionCache, with `GITHUB_SERVER_URL` pointing at the sandbox), and the called jobs check the package code out
from that repository at that same commit. Each scenario is one sandbox in one loopback-only network namespace.
"""

from __future__ import annotations

from typing import Any

import pytest

from incidentops.core import incidentfile
from tests.e2e.act_results import assert_job_succeeded, cli_lines, explain
from tests.e2e.conftest import scenarios  # noqa: F401  (the act scenarios, run once per session)

pytestmark = pytest.mark.act
UPSTREAM = "/incidentops/incidentops/"


def git_requests(result: dict[str, Any], agent: str) -> list[dict[str, Any]]:
    """The clone requests to the upstream repository by one git client (go-git is act's, git the checkout's)."""
    return [
        r
        for r in result["requests"]
        if str(r["path"]).startswith(UPSTREAM) and str(r["headers"].get("user-agent", "")).startswith(agent)
    ]


def assert_ran_from_the_pinned_upstream(result: dict[str, Any], run: dict[str, Any]) -> None:
    sha = result["upstream_sha"]
    # act fetched the called workflow at the pinned commit from the sandbox's git server...
    fetches = [r for r in git_requests(result, "go-git") if r["path"].endswith("/git-upload-pack")]
    assert any(f"want {sha}" in r["body"] for r in fetches), explain(result)
    # ...the called jobs ran (their names are the reusable workflow's)...
    assert "/incident (reusable)/" in run["output"] or "/rollback (reusable)/" in run["output"], explain(result)
    # ...and checked the package code out from that repository at that same commit.
    assert f"checked out incidentops/incidentops at {sha} (detached, depth 1) into .incidentops" in run["output"]
    checkouts = [r for r in git_requests(result, "git/") if r["path"].endswith("/git-upload-pack")]
    assert any(f"want {sha}" in r["body"] for r in checkouts), explain(result)


def assert_holds_no_package(result: dict[str, Any]) -> None:
    tree = result["adopter_tree"]
    assert "incidentops.yaml" in tree and ".github/workflows/incident.yml" in tree
    for path in tree:
        assert not path.startswith(("scripts/", "templates/")), path
        assert path not in ("uv.lock", "pyproject.toml"), path
        assert not path.startswith(".github/workflows/reusable-"), path


def test_an_adopting_repository_declares_through_the_pinned_reusable_workflow(scenarios: Any) -> None:  # noqa: F811
    result = scenarios("adopt-declare")
    assert result["error"] is None, explain(result)
    assert_holds_no_package(result)
    declare = result["act_runs"][0]
    assert (declare["workflow"], declare["event"], declare["action"]) == ("incident.yml", "issues", "labeled")
    assert_job_succeeded(result, declare)
    inc = f"INC-{result['issue_number']:04d}"
    assert cli_lines(declare, "declared", inc), explain(result)
    assert_ran_from_the_pinned_upstream(result, declare)
    # The incident file is committed to the team's repository.
    assert result["incident_commits"][0]["files"] == [{"status": "A", "path": f"incidents/{inc}.md"}]
    # The later events of the story went through the same caller.
    assert all(run["workflow"] == "incident.yml" for run in result["act_runs"])
    assert cli_lines(result["act_runs"][2], inc), explain(result)  # the /note comment


def test_an_adopting_repository_rolls_back_through_the_pinned_reusable_workflow(scenarios: Any) -> None:  # noqa: F811
    result = scenarios("adopt-rollback")
    assert result["error"] is None, explain(result)
    assert_holds_no_package(result)
    declare, apply = result["act_runs"]
    assert_job_succeeded(result, declare)
    assert (apply["workflow"], apply["event"], apply["action"]) == ("rollback.yml", "pull_request", "closed")
    assert_job_succeeded(result, apply)
    assert_ran_from_the_pinned_upstream(result, apply)
    before, after = result["live_before"], result["live_after"]
    for service in before:
        assert before[service]["good"] is False and after[service]["good"] is True, (service, before, after)
    fields = incidentfile.read_fields(result["incident_text"])
    assert all(entry["status"] == "done" for entry in fields["rollback"]["services"].values()), fields
    assert fields["verification"]["smoke"]["passed"] is True
