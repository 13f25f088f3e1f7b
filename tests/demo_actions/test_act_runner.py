"""`incidentops.sandbox.act.ActRunner` runs the real incident workflow under act for a demo delivery.

One short story (tests/demo_actions/story.py) runs in a loopback-only network namespace with the sandbox
started inside it: a sev-1 label declares, a `/note` comment adds its row, and a `bug` label skips the job.
The uv cache is pre-warmed from uv.lock first, outside the namespace, the way `demo --via-actions` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incidentops.core import incidentfile as f
from incidentops.sandbox import act

from .story import NOTE, REPO_ROOT

pytestmark = pytest.mark.act

STORY = Path(__file__).with_name("story.py")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    problem = act.namespace_problem()
    if problem:
        pytest.skip(problem)
    tools = act.find_tools(REPO_ROOT)
    act.prewarm_uv_cache(tools, REPO_ROOT)
    out = tmp_path_factory.mktemp("demo-actions") / "result.json"
    command = act.loopback_command([sys.executable, str(STORY), "--out", str(out)])
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=act.clean_env({act.NAMESPACE_MARKER: "1"}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.is_file(), f"the story wrote no result (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in result, result.get("error")
    return result


def explain(result: dict[str, Any]) -> str:
    return "\n\n".join(f"--- act run {i}\n{output}" for i, output in enumerate(result["act_outputs"]))


def test_the_story_ran_where_only_loopback_exists(story: dict[str, Any]) -> None:
    assert story["interfaces"] == ["lo"]


def test_a_sev1_label_declares_through_incident_yml(story: dict[str, Any]) -> None:
    outcome = story["declare"]
    number = story["number"]
    assert outcome["status"] == "declared", explain(story)
    assert outcome["incident_id"] == f"INC-{number:04d}"
    assert outcome["message"] == f"declared INC-{number:04d} (SEV-1) from #{number}"
    assert outcome["exit_code"] == 0 and outcome["level"] == "notice"
    assert any(step.startswith(f"committed incidents/INC-{number:04d}.md") for step in outcome["steps"])
    # The job's push reached the sandbox's bare repository.
    text = story["file_after_declare"]
    assert text is not None, explain(story)
    fields = f.read_fields(text)
    assert fields["severity"] == "SEV-1" and fields["status"] != "closed"


def test_a_note_comment_adds_its_row(story: dict[str, Any]) -> None:
    outcome = story["note"]
    number = story["number"]
    assert outcome["status"] == "recorded", explain(story)
    assert outcome["message"] == f"INC-{number:04d}: /note by @oncall-write recorded"
    assert outcome["exit_code"] == 0
    assert NOTE not in story["file_after_declare"]
    rows = [line for line in story["file_after_note"].splitlines() if NOTE in line]
    assert len(rows) == 1 and rows[0].startswith("| ") and "@oncall-write" in rows[0], rows


def test_a_skipped_job_is_an_error_with_acts_output(story: dict[str, Any]) -> None:
    error = story["skipped_error"]
    assert error is not None, "a delivery whose job was skipped returned an Outcome"
    assert "did not run the job of incident.yml for this issues event" in error


def test_a_command_re_executes_itself_in_a_loopback_only_namespace() -> None:
    problem = act.namespace_problem()
    if problem:
        pytest.skip(problem)
    # Outside: re-execute this same program (with its argument) in a namespace; inside: say so.
    probe = (
        "import sys; from incidentops.sandbox import act\n"
        "if act.in_loopback_namespace(): print('inside', act.network_interfaces())\n"
        "else: act.reexec_in_loopback_namespace([sys.executable, '-c', sys.argv[1], sys.argv[1]])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != act.NAMESPACE_MARKER}
    done = subprocess.run(
        [sys.executable, "-c", probe, probe], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "inside ['lo']"
