"""Reading the CLI's outcome back from act's output, and the namespace helper's refusal (no act needed)."""

from __future__ import annotations

import pytest

from incidentops.errors import IncidentOpsError
from incidentops.sandbox import act

JOB = "[incident/incident event]"

# The tail of a real act run (act 0.2.89) whose step reported and then failed: outputs of an earlier step,
# the report, its annotation, and the outputs the step wrote to $GITHUB_OUTPUT.
FAILED_AFTER_REPORT = f"""\
{JOB} ⭐ Run Main Set up uv
{JOB}   ⚙  ::set-output:: status=not-this-one
{JOB}   ✅  Success - Main Set up uv [28.131739ms]
{JOB} ⭐ Run Main Handle the event
{JOB}   ⚙  ***
{JOB}   | incidentops: INC-0001: smoke tests on production failed (4 passed, 6 failed)
{JOB}   |   - failed: api health — status 503, expected 200
{JOB}   |   - recorded the verification in incidents/INC-0001.md (34c6c490821c)
{JOB}   🚧  ::warning::INC-0001: smoke tests on production failed (4 passed, 6 failed)
{JOB}   ❌  Failure - Main Handle the event [1.2s]
{JOB}   ⚙  ::set-output:: status=failed
{JOB}   ⚙  ::set-output:: incident_id=INC-0001
{JOB} exitcode '1': failure
{JOB} 🏁  Job failed
Error: Job 'incident event' failed
"""

NO_REPORT = f"""\
{JOB} ⭐ Run Main Install the locked dependencies
{JOB}   | error: Failed to fetch: `https://pypi.org/simple/httpx/`
{JOB}   ❌  Failure - Main Install the locked dependencies [10ms]
{JOB} 🏁  Job failed
"""


def run(output: str, returncode: int) -> act.ActRun:
    return act.ActRun("incident.yml", "issue_comment", returncode, output, 1.5)


def test_a_report_followed_by_a_failed_job_is_an_outcome_with_exit_code_1() -> None:
    outcome = act.outcome_from_run(run(FAILED_AFTER_REPORT, 1))
    assert outcome.status == "failed"
    assert outcome.incident_id == "INC-0001"
    assert outcome.message == "INC-0001: smoke tests on production failed (4 passed, 6 failed)"
    assert outcome.steps == [
        "failed: api health — status 503, expected 200",
        "recorded the verification in incidents/INC-0001.md (34c6c490821c)",
    ]
    assert outcome.level == "warning"
    assert outcome.exit_code == 1


def test_no_report_is_an_error_carrying_acts_tail() -> None:
    with pytest.raises(act.ActFailed) as caught:
        act.outcome_from_run(run(NO_REPORT, 1))
    assert "reported no outcome (exit 1)" in str(caught.value)
    assert "Failed to fetch" in str(caught.value)
    assert isinstance(caught.value, IncidentOpsError)


def test_a_skipped_job_is_an_error() -> None:
    with pytest.raises(act.ActFailed, match=r"did not run the job of incident\.yml"):
        act.outcome_from_run(run("", 0))


def test_the_namespace_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(act.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(act.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert "needs root" in (act.namespace_problem() or "")
    with pytest.raises(IncidentOpsError, match=r"cannot run act offline: .*needs root"):
        act.reexec_in_loopback_namespace(["true"])


def test_the_wrapped_command_brings_loopback_up_and_passes_arguments_verbatim() -> None:
    command = act.loopback_command(["incidentops", "demo", "--keep", "a dir; rm -rf /"])
    assert command[:3] == ["unshare", "-n", "sh"]
    assert command[3:5] == ["-c", 'ip link set lo up && exec "$@"']
    assert command[5:] == ["sh", "incidentops", "demo", "--keep", "a dir; rm -rf /"]
