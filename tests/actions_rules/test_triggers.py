"""Which runs GitHub starts for an event, decided by the sandbox's scheduler against the real workflow files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from incidentops.sandbox import actions_rules as rules
from incidentops.sandbox.scheduler import ActionsScheduler, Execution, WorkflowRun, effective_jobs, load_workflows
from tests.e2e import test_workflow_security as security

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = load_workflows(REPO_ROOT / ".github" / "workflows")
REPOSITORY = {"full_name": "acme/ops", "name": "ops", "owner": {"login": "acme"}}
PERSON = {"login": "oncall-write", "type": "User"}
BOT = {"login": rules.BOT_LOGIN, "type": "Bot"}


def issue(number: int = 7, labels: tuple[str, ...] = ("sev-1", "incident")) -> dict[str, Any]:
    return {"number": number, "labels": [{"name": name} for name in labels], "state": "open"}


def labeled(label: str, sender: dict[str, Any] = PERSON, number: int = 7) -> dict[str, Any]:
    return {
        "action": "labeled",
        "label": {"name": label},
        "issue": issue(number),
        "repository": REPOSITORY,
        "sender": sender,
    }


def commented(body: str, sender: dict[str, Any] = PERSON, number: int = 7) -> dict[str, Any]:
    return {
        "action": "created",
        "comment": {"id": 1, "body": body},
        "issue": issue(number),
        "repository": REPOSITORY,
        "sender": sender,
    }


def push(files: tuple[str, ...], pusher: str = "oncall-write") -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": "a" * 40,
        "after": "b" * 40,
        "repository": REPOSITORY,
        "pusher": {"name": pusher},
        "sender": BOT if pusher == rules.BOT_LOGIN else PERSON,
    }


class Recorder:
    """Stands in for act in these rule tests only: records what would run, the job always runs."""

    def __init__(self) -> None:
        self.ran: list[WorkflowRun] = []

    def __call__(self, run: WorkflowRun) -> Execution:
        self.ran.append(run)
        return Execution(0, True, True, "")


def scheduler() -> ActionsScheduler:
    return ActionsScheduler(WORKFLOWS, Recorder(), repository="acme/ops", main_sha=lambda: "c" * 40)


def started(s: ActionsScheduler) -> list[tuple[str, str, str | None]]:
    return [(r.workflow, r.event, r.conclusion) for r in s.runs]


def test_a_person_labelling_sev_1_starts_incident_yml_only() -> None:
    s = scheduler()
    runs = s.deliver("issues", labeled("sev-1"))
    assert [(r.workflow, r.status) for r in runs] == [("incident.yml", "queued")]
    assert runs[0].group == "incident-7"


def test_events_made_with_the_actions_token_start_nothing() -> None:
    s = scheduler()
    assert s.deliver("issues", labeled("sev-1", sender=BOT)) == []
    assert s.deliver("issue_comment", commented("/note from the bot", sender=BOT)) == []
    assert s.deliver("push", push(("incidents/INC-0007.md",), pusher=rules.BOT_LOGIN)) == []
    reasons = {d["workflow"]: d["reason"] for d in s.decisions}
    assert set(reasons) == {"incident.yml", "report.yml", "ci.yml"}
    assert all(reason.startswith("made with GITHUB_TOKEN") for reason in reasons.values())


def test_workflow_dispatch_through_the_api_starts_a_run_even_from_the_actions_token() -> None:
    s = scheduler()
    payload = {"workflow": ".github/workflows/report.yml", "ref": "main", "repository": REPOSITORY, "sender": BOT}
    assert [r.workflow for r in s.deliver("workflow_dispatch", payload)] == ["report.yml"]


def test_a_persons_push_starts_the_report_only_when_incident_files_changed() -> None:
    s = scheduler()
    incident_push = s.deliver("push", push(("incidents/INC-0007.md",)), changed_files=("incidents/INC-0007.md",))
    assert [r.workflow for r in incident_push] == ["ci.yml", "report.yml"]
    assert [r.workflow for r in s.deliver("push", push(("README.md",)), changed_files=("README.md",))] == ["ci.yml"]
    assert any(d["reason"] == "on.push.paths matches none of the changed files" for d in s.decisions)


def test_a_completed_incident_run_starts_the_report_through_workflow_run() -> None:
    s = scheduler().start()
    try:
        s.deliver("issues", labeled("sev-1"))
        assert s.wait_idle(10)
    finally:
        s.stop()
    assert started(s) == [("incident.yml", "issues", "success"), ("report.yml", "workflow_run", "success")]


@pytest.mark.parametrize(
    ("event", "payload", "why"),
    [
        ("issues", labeled("bug"), "the job's `if:` is false"),
        ("issue_comment", commented("thanks, looking"), "the job's `if:` is false"),
        # A URL is not a command: only comments that start with one may take the pending slot.
        ("issue_comment", commented("graph: https://grafana.example.com/d/x"), "the job's `if:` is false"),
        ("issue_comment", commented("ack\n/note on the second line"), "the job's `if:` is false"),
    ],
)
def test_job_if_false_skips_before_joining_the_group(event: str, payload: dict[str, Any], why: str) -> None:
    s = scheduler()
    (run,) = s.deliver(event, payload)
    assert (run.status, run.conclusion, run.reason, run.group) == ("completed", "skipped", why, None)


def test_one_running_one_pending_a_newer_run_cancels_the_pending_one() -> None:
    s = scheduler()  # not started: the first run stays active, as if it were still running
    first = s.deliver("issues", labeled("sev-1"))[0]
    second = s.deliver("issue_comment", commented("/note one"))[0]
    third = s.deliver("issue_comment", commented("/note two"))[0]
    other = s.deliver("issues", labeled("sev-2", number=8))[0]
    assert (first.status, second.status, third.status) == ("queued", "completed", "pending")
    assert second.conclusion == "cancelled" and f"by run {third.id}" in second.reason
    assert other.status == "queued" and other.group == "incident-8"  # another incident, another group


def test_rollback_runs_share_one_repository_wide_group() -> None:
    s = scheduler()
    merged = {
        "action": "closed",
        "number": 3,
        "pull_request": {
            "merged": True,
            "labels": [{"name": "rollback"}],
            "base": {"ref": "main"},
            "head": {"repo": {"full_name": "acme/ops"}},
        },
        "repository": REPOSITORY,
        "sender": {"login": "oncall-admin", "type": "User"},
    }
    (run,) = s.deliver("pull_request", merged)
    assert run.group == "production-rollback"
    opened = dict(merged, action="opened")
    assert [r.workflow for r in s.deliver("pull_request", opened)] == [
        "ci.yml"
    ]  # not rollback.yml, nor lint.yml (paths)


def test_the_evaluator_matches_github_semantics_on_the_subset_used() -> None:
    github = {"event": {"issue": {"labels": [{"name": "SEV-1"}]}, "sender": {"type": "User"}}}
    ctx = {"github": github}
    assert rules.evaluate("contains(github.event.issue.labels.*.name, 'sev-1')", ctx) is True  # case-insensitive
    assert rules.evaluate("github.event.sender.type != 'Bot'", ctx) is True
    assert rules.evaluate("contains(fromJSON('[\"a\", \"b\"]'), 'B')", ctx) is True
    assert rules.evaluate("github.event.nothing.here", ctx) is None
    assert rules.interpolate("incident-${{ github.event.issue.number }}", ctx) == "incident-"
    with pytest.raises(rules.UnsupportedExpression):
        rules.evaluate("hashFiles('x')", ctx)
    with pytest.raises(rules.UnsupportedExpression):
        rules.evaluate("secrets.TOKEN", ctx)
    assert json.dumps(rules.evaluate("1 == '1'", ctx)) == "true"  # loose equality coerces to numbers


def test_activity_types_no_flow_handles_start_no_run() -> None:
    s = scheduler()
    for action in ("unlabeled", "reopened", "edited", "assigned"):
        assert s.deliver("issues", dict(labeled("sev-1"), action=action)) == []
    assert {d["reason"] for d in s.decisions if d["workflow"] == "incident.yml"} == {
        f"activity type {a!r} is not in on.issues.types" for a in ("unlabeled", "reopened", "edited", "assigned")
    }


@pytest.mark.parametrize(("workflow", "event", "make", "runs"), security.FILTER_CASES, ids=security.FILTER_IDS)
def test_the_sandbox_reads_each_jobs_if_as_act_does(workflow: str, event: str, make: Any, runs: bool) -> None:
    """The same payloads tests/e2e/test_workflow_security.py::test_job_filter hands to act: the sandbox's reading of
    the job's `if:` must agree with act's (the scheduler also reports any disagreement at run time)."""
    found = next(w for w in WORKFLOWS if w.file == workflow)
    payload = make()
    delivery = rules.Delivery(event, payload)
    github = rules.github_context(delivery, "octo-org/Hello-World", found.name, "c" * 40)
    contexts: dict[str, Any] = {"github": github, "vars": {}}
    contexts["github"]["repository"] = payload["repository"]["full_name"]
    # The caller's job calls the reusable workflow; its first job (the gate, or the only job) decides.
    jobs, problems = effective_jobs(found, contexts)
    assert not problems
    assert all(rules.condition(expression, where) for expression, where in jobs[0].conditions) is runs


def test_an_adopting_repositorys_caller_runs_the_pinned_workflows_jobs_and_groups(tmp_path: Path) -> None:
    """A caller of another repository's reusable workflow (as `incidentops init` writes it): the run belongs to the
    caller's file, the called gate's `if:` decides, and the called writers' group is where it waits."""
    from incidentops.render import render

    sha = "d" * 40
    folder = tmp_path / "workflows"
    folder.mkdir()
    gh = lambda inner: "${{ " + inner + " }}"  # noqa: E731
    text = render(
        "adopt/caller-incident.yml.j2", None, upstream="incidentops/incidentops", sha=sha, version="0.1.0", gh=gh
    )
    (folder / "incident.yml").write_text(text)
    upstream = REPO_ROOT / ".github" / "workflows"
    asked: list[str] = []

    def resolve(uses: str) -> Any:
        asked.append(uses)
        name = uses.split("/.github/workflows/")[1].split("@")[0]
        return YAML(typ="safe").load((upstream / name).read_text())

    workflows = load_workflows(folder, resolve)
    assert asked == [f"incidentops/incidentops/.github/workflows/reusable-incident.yml@{sha}"]
    s = ActionsScheduler(workflows, Recorder(), repository="acme/ops", main_sha=lambda: "c" * 40)
    (declared,) = s.deliver("issues", labeled("sev-1"))
    assert (declared.workflow, declared.group, declared.status) == ("incident.yml", "incident-7", "queued")
    (skipped,) = s.deliver("issues", labeled("bug"))
    assert (skipped.conclusion, skipped.group) == ("skipped", None)
    (waiting,) = s.deliver("issue_comment", commented("/note one"))
    assert waiting.status == "pending" and waiting.group == "incident-7"
    assert not s.problems


def test_a_call_the_sandbox_cannot_read_is_a_problem_not_a_guess(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "incident.yml").write_text(
        "name: incident\non:\n  issues:\n    types: [labeled]\npermissions: {}\njobs:\n"
        "  incident:\n    uses: elsewhere/x/.github/workflows/reusable-incident.yml@" + "e" * 40 + "\n"
    )
    s = ActionsScheduler(load_workflows(folder), Recorder(), repository="acme/ops", main_sha=lambda: "c" * 40)
    s.deliver("issues", labeled("sev-1"))
    assert s.problems == [
        "incident.yml job incident: the called workflow elsewhere/x/.github/workflows/reusable-incident.yml@"
        + "e" * 40
        + " was not found"
    ]
