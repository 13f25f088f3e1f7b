"""#15 item 2: the production secrets reach only authorized commands that need them, on main.

Before: the Cloudflare and tenant tokens were repository secrets passed to the one incident job, so every comment
run (an outsider's `/help` included) started with them, and any workflow on any branch could read them.
After: they live in the `production` environment (limited to main by its deployment branch policy, which
docs/security.md asks for), used only by jobs that declare it; incident.yml's `gate` job decides with no secrets
and a read-only token, and commands that need only the repository run in a job without them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from incidentops.core.events import parse_event
from incidentops.flows.dispatch import gate
from tests.e2e.act_results import explain
from tests.e2e.conftest import scenarios  # noqa: F401  (the act scenarios, run once per session)
from tests.flows.conftest import FORM_BODY, World

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
SECRET = re.compile(r"secrets\.([A-Z0-9_]+)")
ZIZMOR = Path(sys.executable).with_name("zizmor")


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in YAML(typ="safe").load(path.read_text())["jobs"].items():
            out.append((path.name, name, job))
    return out


@pytest.mark.parametrize(("workflow", "name", "job"), _jobs(), ids=lambda v: v if isinstance(v, str) else "")
def test_production_secrets_only_in_jobs_of_an_environment(workflow: str, name: str, job: dict[str, Any]) -> None:
    used = set(SECRET.findall(str(job))) - {"GITHUB_TOKEN"}
    if used:
        assert job.get("environment"), f"{workflow} {name} reads {sorted(used)} outside an environment"


def test_the_incident_gate_has_no_secrets_and_a_read_only_token() -> None:
    doc = YAML(typ="safe").load((WORKFLOWS / "reusable-incident.yml").read_text())
    jobs = doc["jobs"]
    assert jobs["gate"]["permissions"] == {"contents": "read"}
    assert set(SECRET.findall(str(jobs["gate"]))) == {"GITHUB_TOKEN"}
    assert set(SECRET.findall(str(jobs["record"]))) == {"GITHUB_TOKEN"}
    assert jobs["record"]["if"] == "needs.gate.outputs.decision == 'record'"
    assert jobs["handle-event"]["if"] == "needs.gate.outputs.decision == 'production'"
    # The caller names the environment (default production); only this job declares it.
    assert jobs["handle-event"]["environment"] == "${{ inputs.environment }}"
    assert doc["on"]["workflow_call"]["inputs"]["environment"]["default"] == "production"
    assert "environment" not in jobs["gate"] and "environment" not in jobs["record"]


def test_a_caller_passes_secrets_on_only_by_inherit_and_reads_none_itself() -> None:
    """An explicit `NAME: ${{ secrets.NAME }}` is evaluated in the calling job, outside any environment: it would
    need the production secrets at repository level. `inherit` leaves them in the environment that gates them."""
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in YAML(typ="safe").load(path.read_text())["jobs"].items():
            if "uses" in job:
                assert job.get("secrets") in (None, "inherit"), f"{path.name} {name}"
                assert not SECRET.findall(str(job)), f"{path.name} {name} reads a secret outside an environment"


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing(persona: str) -> None:
    result = subprocess.run(
        [str(ZIZMOR), "--offline", "--persona", persona, str(WORKFLOWS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


QUIET = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


@pytest.mark.parametrize(
    ("login", "body", "decision"),
    [
        ("triager", "/contain api.example.com/v1/reports", "record"),  # refusal only: no secrets
        ("oncall-write", "/contain api.example.com/v1/reports", "production"),
        ("oncall-write", "/note cache flushed", "record"),
        ("triager", "/smoke", "production"),
        ("reader", "/help", "skip"),  # no configured role: no reply at all
        ("triager", "/help", "record"),
        ("reader", "thanks, see https://example.com/a/b", "skip"),
    ],
)
def test_the_gate_sends_each_comment_to_the_job_it_needs(world: World, login: str, body: str, decision: str) -> None:
    number = world.open_incident(body=QUIET)
    world.repo(login).get_issue(number).create_comment(body)
    delivery = world.next_event("issue_comment", "created")
    outcome = gate(parse_event(delivery["event"], delivery["payload"]), world.ports())
    assert outcome.details["decision"] == decision, outcome.message


@pytest.mark.act
@pytest.mark.slow
def test_a_refused_production_command_never_starts_the_job_with_the_secrets(scenarios: Any) -> None:  # noqa: F811
    result = scenarios("unprivileged")
    assert result["error"] is None, explain(result)
    declared, refused = result["act_runs"]
    assert "incident event (production)" in declared["output"], explain(result)
    assert "gate: record" in refused["output"], explain(result)
    assert "incident event (production)" not in refused["output"], explain(result)
    # act names a called job <caller workflow>/<called workflow>/<called job>.
    assert "[incident/incident (reusable)/incident event (repository only)]" in refused["output"], explain(result)
    assert not any(r["path"].startswith("/client/v4") for r in result["requests_after"])
    assert "needs at least the **write** role" in result["comments"][-1]["body"]
