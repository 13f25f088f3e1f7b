"""Static rules every workflow must keep, and zizmor as the security gate (offline)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from . import act_harness

WORKFLOWS = act_harness.WORKFLOWS
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
# The reusable workflows that write to main (incident.yml and rollback.yml call them).
EVENT_WORKFLOWS = ("reusable-incident.yml", "reusable-rollback.yml")
# Each workflow this repository triggers, and the reusable workflow it calls (an adopting repository's callers,
# written by `incidentops init`, call the same ones pinned by SHA).
CALLERS = {
    "incident.yml": "reusable-incident.yml",
    "rollback.yml": "reusable-rollback.yml",
    "remind.yml": "reusable-remind.yml",
    "lint.yml": "reusable-lint.yml",
    "report.yml": "reusable-report.yml",
    "doctor.yml": "reusable-doctor.yml",
}
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# What any job may ask the token for; a job that needs more is listed below with exactly what it gets.
JOB_SCOPES = {"contents", "issues", "pull-requests"}
SCOPE_EXCEPTIONS = {
    # GitHub Pages: create the deployment, and prove with an OIDC token that the artifact is this run's.
    ("reusable-report.yml", "deploy"): {"pages": "write", "id-token": "write"},
    # Its caller grants what the called build and deploy jobs need between them (a called job can only lower it).
    ("report.yml", "report"): {"contents": "read", "pages": "write", "id-token": "write"},
    # The setup check reads the Pages source and visibility, and the secrets' environment (GitHub Apps, the
    # workflow token among them, need actions:read for the environments API); it writes nothing.
    ("reusable-doctor.yml", "doctor"): {"contents": "read", "issues": "read", "pages": "read", "actions": "read"},
    ("doctor.yml", "doctor"): {"contents": "read", "issues": "read", "pages": "read", "actions": "read"},
}
# The handle-event step's environment: the job token, Cloudflare, the smoke checks' tenant credentials
# (secrets) and the optional base-URL override (a repository variable; empty means incidentops.yaml).
HANDLE_EVENT_ENV = {
    "GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
    "CLOUDFLARE_API_TOKEN": "${{ secrets.CLOUDFLARE_API_TOKEN }}",
    "SMOKE_TENANT_A_TOKEN": "${{ secrets.SMOKE_TENANT_A_TOKEN }}",
    "SMOKE_TENANT_B_TOKEN": "${{ secrets.SMOKE_TENANT_B_TOKEN }}",
    "INCIDENTOPS_BASE_URLS": "${{ vars.INCIDENTOPS_BASE_URLS }}",
}
ZIZMOR = Path(sys.executable).with_name("zizmor")


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return doc


def triggers(doc: dict[Any, Any]) -> Any:
    """The `on:` block (YAML 1.1 reads a bare `on` key as True; ruamel's safe loader keeps "on")."""
    return doc["on"] if "on" in doc else doc[True]


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def calls(doc: dict[str, Any]) -> list[str]:
    """The workflows a file's jobs call (`jobs.<id>.uses`)."""
    return [str(job["uses"]) for job in doc["jobs"].values() if "uses" in job]


def test_there_are_workflows() -> None:
    names = {path.name for path in WORKFLOW_FILES}
    assert {"ci.yml", *CALLERS, *CALLERS.values()} <= names
    assert not list(WORKFLOWS.glob("*.yaml")), "name workflows *.yml so that every check here sees them"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_a_version_comment(path: Path) -> None:
    doc = load(path)
    uses = [str(step["uses"]) for step in steps(doc) if "uses" in step]
    assert uses or calls(doc), "expected at least one action or called workflow"
    for ref in uses:
        assert SHA_PIN.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
    text = path.read_text(encoding="utf-8")
    for ref in uses:
        line = next(line for line in text.splitlines() if ref in line)
        assert re.search(r"#\s*v\d+(\.\d+)*\s*$", line), f"{path.name}: no version comment on {line.strip()!r}"


@pytest.mark.parametrize(
    "path",
    [*WORKFLOW_FILES, *sorted(act_harness.STUBS_DIR.glob("*/action.yml"))],
    ids=lambda p: p.parent.name if p.name == "action.yml" else p.name,
)
def test_no_expression_is_expanded_inside_a_shell_script(path: Path) -> None:
    doc = load(path)
    all_steps = doc["runs"]["steps"] if "runs" in doc else steps(doc)
    scripts = [str(step["run"]) for step in all_steps if "run" in step]
    assert scripts or calls(doc), "expected a script, or a job that calls a workflow (checked on its own)"
    for script in scripts:
        assert "${{" not in script, f"{path.name}: pass values through env:, not ${{{{ }}}} in run:\n{script}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_empty_at_the_top_and_explicit_per_job(path: Path) -> None:
    doc = load(path)
    assert "permissions" in doc and doc["permissions"] == {}, "top-level permissions must be {}"
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"job {name} has no permissions block"
        granted = job["permissions"]
        assert isinstance(granted, dict), f"job {name}: permissions must name scopes, not {granted!r}"
        exception = SCOPE_EXCEPTIONS.get((path.name, name))
        if exception is not None:
            assert granted == exception, f"job {name} must ask for exactly {exception}, not {granted}"
        else:
            assert set(granted) <= JOB_SCOPES, f"job {name} asks for {granted}"
        assert set(granted.values()) <= {"read", "write"}


@pytest.mark.parametrize(("caller", "called"), CALLERS.items())
def test_each_caller_calls_its_reusable_workflow_with_the_pin_as_the_package_ref(caller: str, called: str) -> None:
    doc = load(WORKFLOWS / caller)
    (job,) = doc["jobs"].values()
    assert job["uses"] == f"./.github/workflows/{called}"
    # A same-repository call runs the called file from the caller's commit: the package comes from that one too.
    assert (
        job["with"]["incidentops-uses"]
        == f"${{{{ github.repository }}}}/.github/workflows/{called}@${{{{ github.sha }}}}"
    )
    assert set(job) <= {"name", "permissions", "uses", "with", "secrets"}, "triggers and groups stay, jobs go"
    assert job.get("secrets") in (None, "inherit")
    reusable = load(WORKFLOWS / called)
    assert set(triggers(reusable)) == {"workflow_call"}, f"{called} runs only when called"
    # What the caller grants is the union of what the called jobs ask for (a called job can only lower it).
    asked: dict[str, str] = {}
    for called_job in reusable["jobs"].values():
        for scope, level in called_job["permissions"].items():
            asked[scope] = "write" if "write" in (level, asked.get(scope)) else level
    assert {k: v for k, v in job["permissions"].items()} == asked


@pytest.mark.parametrize("called", CALLERS.values())
def test_the_package_comes_from_the_pinned_commit_never_the_callers_repository(called: str) -> None:
    doc = load(WORKFLOWS / called)
    inputs = triggers(doc)["workflow_call"]["inputs"]
    assert inputs["incidentops-uses"]["required"] is True
    for name, job in doc["jobs"].items():
        job_steps = job["steps"]
        runs_cli = [s for s in job_steps if "-m incidentops" in str(s.get("run", ""))]
        if not runs_cli:
            continue
        pin = next(i for i, s in enumerate(job_steps) if s.get("id") == "pin")
        assert job_steps[pin]["env"] == {"INCIDENTOPS_USES": "${{ inputs.incidentops-uses }}"}
        package = next(i for i, s in enumerate(job_steps) if (s.get("with") or {}).get("path") == ".incidentops")
        assert job_steps[package]["with"] == {
            "repository": "${{ steps.pin.outputs.repository }}",
            "ref": "${{ steps.pin.outputs.ref }}",
            "path": ".incidentops",
            "persist-credentials": False,
        }
        assert pin < package < job_steps.index(runs_cli[0])
        for step in runs_cli:
            assert 'PYTHONPATH="$GITHUB_WORKSPACE/.incidentops/scripts"' in step["run"], f"{name}: {step['name']}"


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("called", CALLERS.values())
@pytest.mark.parametrize(
    ("given", "accepted"),
    [
        ("acme/incidentops/.github/workflows/{called}@" + SHA, True),
        ("acme/incidentops/.github/workflows/{called}@v1.2.0", False),  # a tag can be moved
        ("acme/incidentops/.github/workflows/{called}@main", False),
        ("acme/incidentops/.github/workflows/{called}@" + SHA[:12], False),
        ("acme/incidentops/.github/workflows/reusable-other.yml@" + SHA, False),  # another workflow's pin
        ("acme/incidentops/.github/workflows/{called}@" + SHA + "\nrepository=mallory/x", False),
        ("", False),
    ],
    ids=["full SHA", "tag", "branch", "short SHA", "other file", "newline", "empty"],
)
def test_the_pin_check_takes_only_this_file_at_a_full_sha(
    called: str, given: str, accepted: bool, tmp_path: Path
) -> None:
    """The real step script, run by bash: what it accepts becomes the package checkout's repository and ref."""
    doc = load(WORKFLOWS / called)
    scripts = {str(s["run"]) for job in doc["jobs"].values() for s in job["steps"] if s.get("id") == "pin"}
    (script,) = scripts  # every job checks the pin the same way
    output = tmp_path / "output"
    output.touch()
    env = {"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "INCIDENTOPS_USES": given.format(called=called)}
    done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False)
    if accepted:
        assert done.returncode == 0, done.stdout + done.stderr
        assert output.read_text() == f"repository=acme/incidentops\nref={SHA}\n"
    else:
        assert done.returncode == 1 and "::error::incidentops-uses must repeat" in done.stdout
        assert output.read_text() == ""


@pytest.mark.parametrize(
    "called", ["reusable-incident.yml", "reusable-rollback.yml", "reusable-remind.yml", "reusable-doctor.yml"]
)
def test_the_production_jobs_stay_in_the_environment_the_caller_names(called: str) -> None:
    doc = load(WORKFLOWS / called)
    assert triggers(doc)["workflow_call"]["inputs"]["environment"]["default"] == "production"
    production = [job for job in doc["jobs"].values() if "CLOUDFLARE_API_TOKEN" in str(job)]
    assert production
    for job in production:
        assert job["environment"] == "${{ inputs.environment }}"


def test_every_scope_exception_names_a_real_job() -> None:
    for workflow, job in SCOPE_EXCEPTIONS:
        assert job in load(WORKFLOWS / workflow)["jobs"], f"stale exception for {workflow} job {job}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    for name, job in load(path)["jobs"].items():
        if "uses" in job:
            continue  # a calling job takes no timeout; the called workflow's jobs have theirs
        minutes = job.get("timeout-minutes")
        assert isinstance(minutes, int) and 0 < minutes <= 30, f"job {name}: timeout-minutes is {minutes!r}"


@pytest.mark.parametrize("name", EVENT_WORKFLOWS)
def test_writers_serialize_without_cancelling_and_start_from_the_live_tip(name: str) -> None:
    doc = load(WORKFLOWS / name)
    writers = {n: j for n, j in doc["jobs"].items() if any("handle-event" in str(s.get("run", "")) for s in j["steps"])}
    assert writers
    for job_name, job in writers.items():
        concurrency = job.get("concurrency") or doc.get("concurrency")
        assert concurrency, f"{job_name}: no concurrency group"
        assert concurrency["cancel-in-progress"] is False
        assert "queue" not in concurrency, "act 0.2.89 rejects concurrency.queue"
        assert job["permissions"] == {"contents": "write", "issues": "write", "pull-requests": "write"}
        checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
        assert checkout["with"] == {"ref": "main", "persist-credentials": False}  # the repository's own main
        run = next(s for s in job["steps"] if "handle-event" in str(s.get("run", "")))
        assert "::add-mask::" in run["run"], "the derived git auth header must be masked"


@pytest.mark.parametrize("name", EVENT_WORKFLOWS)
def test_handle_event_gets_the_tokens_smoke_credentials_and_base_urls(name: str) -> None:
    # The production job (the one in an environment); incident.yml's `record` job gets the token only.
    jobs = load(WORKFLOWS / name)["jobs"].values()
    job = next(j for j in jobs if j.get("environment"))
    handle = next(s for s in job["steps"] if "handle-event" in str(s.get("run", "")))
    env = dict(handle["env"])
    assert env.pop("UV_PROJECT_ENVIRONMENT") == "${{ runner.temp }}/incidentops-venv"
    assert env == HANDLE_EVENT_ENV


def test_concurrency_groups() -> None:
    jobs = load(WORKFLOWS / "reusable-incident.yml")["jobs"]
    for writer in ("record", "handle-event"):  # one group for both writers of an incident
        assert jobs[writer]["concurrency"]["group"] == "incident-${{ github.event.issue.number }}"
    rollback = load(WORKFLOWS / "reusable-rollback.yml")["jobs"]["apply"]["concurrency"]
    assert "${{" not in rollback["group"], "production rollbacks share one repository-wide group"


def test_triggers() -> None:
    incident = load(WORKFLOWS / "incident.yml")
    assert triggers(incident) == {
        # Only what a flow handles: any run takes the incident's one pending slot (docs/reliability.md).
        "issues": {"types": ["labeled", "closed"]},
        "issue_comment": {"types": ["created"]},
    }
    rollback = load(WORKFLOWS / "rollback.yml")
    assert triggers(rollback) == {"pull_request": {"types": ["closed"]}}
    condition = load(WORKFLOWS / "reusable-rollback.yml")["jobs"]["apply"]["if"]
    assert "github.event.pull_request.merged == true" in condition
    assert "contains(github.event.pull_request.labels.*.name, 'rollback')" in condition


@pytest.mark.parametrize("name", EVENT_WORKFLOWS)
def test_install_is_from_the_lock_with_the_pinned_uv(name: str) -> None:
    doc = load(WORKFLOWS / name)
    all_steps = steps(doc)
    setup = next(s for s in all_steps if str(s.get("uses", "")).startswith("astral-sh/setup-uv@"))
    bootstrap = (act_harness.REPO_ROOT / "requirements" / "bootstrap.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^uv==(\S+)", bootstrap, re.M)
    assert pinned and setup["with"]["version"] == pinned.group(1)
    assert setup["with"]["enable-cache"] is True
    assert setup["with"]["cache-dependency-glob"] == ".incidentops/uv.lock"  # the pinned package's lock
    installs = [s["run"] for s in all_steps if "uv sync" in str(s.get("run", ""))]
    # Only the locked, hash-checked runtime dependencies: the project itself is not built, because its
    # build backend (hatchling) is not in uv.lock and building would download it unpinned.
    assert set(installs) == {"uv sync --locked --no-dev --no-install-project"}  # once per job
    install = next(s for s in all_steps if "uv sync" in str(s.get("run", "")))
    assert install["env"]["UV_PYTHON_DOWNLOADS"] == "never"
    assert install["working-directory"] == ".incidentops"
    # Nothing else installs or builds: no `uv run`/`uv pip`/`uvx` (they would build the project), no pip.
    for step in all_steps:
        script = str(step.get("run", ""))
        for forbidden in ("uv run", "uv pip", "uvx", "pip install", "uv build", "uv tool"):
            assert forbidden not in script, f"{name}: {forbidden!r} in step {step.get('name')!r}"


SETUP_UV_CHECKSUMS = Path(__file__).resolve().parents[1] / "fixtures" / "setup-uv-known-checksums.json"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_uv_download_is_checked_against_the_actions_own_checksum(path: Path) -> None:
    """setup-uv verifies the archive only against `checksum:` or its own table; the value must be the table's."""
    doc = load(path)
    bootstrap = (act_harness.REPO_ROOT / "requirements" / "bootstrap.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^uv==(\S+)", bootstrap, re.M)
    assert pinned
    known = json.loads(SETUP_UV_CHECKSUMS.read_text(encoding="utf-8"))["checksums"]
    for job_name, job in doc.get("jobs", {}).items():
        setups = [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith("astral-sh/setup-uv@")]
        for setup in setups:
            # The table's entry is per platform: the archive an x86_64 Linux runner (ubuntu-latest) downloads.
            assert job["runs-on"] == "ubuntu-latest", f"{path.name}:{job_name}: the checksum is for x86_64 Linux"
            assert setup["with"]["version"] == pinned.group(1)
            key = f"x86_64-unknown-linux-gnu-{pinned.group(1)}"
            assert key in known, f"uv {pinned.group(1)} is not in setup-uv's table: take the release's sha256"
            assert setup["with"]["checksum"] == known[key], f"{path.name}:{job_name}"


@pytest.mark.parametrize("name", EVENT_WORKFLOWS)
def test_the_cli_runs_from_the_checkout_in_the_locked_environment(name: str) -> None:
    all_steps = steps(load(WORKFLOWS / name))
    install = next(s for s in all_steps if "uv sync" in str(s.get("run", "")))
    handle = next(s for s in all_steps if "handle-event" in str(s.get("run", "")))
    venv = "${{ runner.temp }}/incidentops-venv"
    assert install["env"]["UV_PROJECT_ENVIRONMENT"] == handle["env"]["UV_PROJECT_ENVIRONMENT"] == venv
    lines = [line.strip() for line in str(handle["run"]).splitlines() if line.strip()]
    # The interpreter of the locked venv, the package from its pinned checkout (templates/ too), and -P so
    # that the working directory (the team's repository) is not put in front of sys.path.
    assert lines[-1] == (
        'PYTHONPATH="$GITHUB_WORKSPACE/.incidentops/scripts" exec "$UV_PROJECT_ENVIRONMENT/bin/python"'
        " -P -m incidentops handle-event"
    )
    assert (act_harness.REPO_ROOT / "scripts" / "incidentops" / "__main__.py").is_file()


@pytest.mark.parametrize("name", EVENT_WORKFLOWS)
def test_git_gets_the_token_from_the_environment_only(name: str) -> None:
    all_steps = steps(load(WORKFLOWS / name))
    handle = next(s for s in all_steps if "handle-event" in str(s.get("run", "")))
    script = str(handle["run"])
    assert "export GIT_CONFIG_COUNT=1" in script
    assert 'export GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL}/.extraheader"' in script
    assert script.index("::add-mask::$basic") < script.index("GIT_CONFIG_VALUE_0")
    for job in load(WORKFLOWS / name)["jobs"].values():
        last = job["steps"][-1]
        for step in job["steps"]:
            text = str(step.get("run", ""))
            assert "git config" not in text, "credentials must never be written to .git/config"
            assert "GITHUB_TOKEN" not in str(step.get("env", {})) or step is last, "only the last step has the token"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_has_an_act_stub_and_every_runner_a_mapping(path: Path) -> None:
    flags = act_harness.local_repository_args(path)  # raises LookupError for an action without a stub
    assert len(flags) == 2 * len(set(act_harness.workflow_uses(path)))
    # act skips a job on an unmapped runs-on label and still exits 0.
    for job in load(path)["jobs"].values():
        if "uses" not in job:  # a calling job runs nowhere itself
            assert job["runs-on"] in act_harness.PLATFORMS


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_stub_takes_the_inputs_the_workflow_passes(path: Path) -> None:
    for step in steps(load(path)):
        if "uses" not in step:
            continue
        stub = act_harness.STUBS[str(step["uses"]).partition("@")[0]] / "action.yml"
        inputs = set(load(stub).get("inputs") or {})
        assert set(step.get("with") or {}) <= inputs, f"{path.name}: {step['uses']} stub lacks an input"


def test_every_stub_is_mapped_and_documented() -> None:
    readme = (act_harness.STUBS_DIR / "README.md").read_text(encoding="utf-8")
    on_disk = {p.parent for p in act_harness.STUBS_DIR.glob("*/action.yml")}
    assert set(act_harness.STUBS.values()) == on_disk
    for action, stub in act_harness.STUBS.items():
        assert f"| `{stub.name}/` | `{action}` |" in readme, f"{action} is not in tests/act-stubs/README.md"


def test_the_only_zizmor_exceptions_are_the_reviewed_triggers() -> None:
    ignores = sorted(
        (path.name, line.strip())
        for path in WORKFLOW_FILES
        for line in path.read_text(encoding="utf-8").splitlines()
        if "zizmor: ignore" in line
    )
    local_call = "uses: ./.github/workflows/{}  # zizmor: ignore[self-repository] -- act runs only ./ local calls"
    inherit = "secrets: inherit  # zizmor: ignore[secrets-inherit] -- reviewed, see above"
    assert ignores == sorted(
        [
            ("incident.yml", "issue_comment:  # zizmor: ignore[dangerous-triggers] -- reviewed, see above"),
            # report.yml follows the bot's runs (their pushes start no push workflow) and uses nothing from them.
            ("report.yml", "workflow_run:  # zizmor: ignore[dangerous-triggers] -- reviewed, see above"),
            # The dogfooding callers call this commit's reusable workflows; the environment secrets need `inherit`.
            *((caller, local_call.format(called)) for caller, called in CALLERS.items()),
            *((caller, inherit) for caller in ("doctor.yml", "incident.yml", "remind.yml", "rollback.yml")),
        ]
    )
    assert not (act_harness.REPO_ROOT / "zizmor.yml").exists(), "no repository-wide zizmor config is needed"


def _zizmor(*targets: str | Path) -> subprocess.CompletedProcess[str]:
    zizmor = ZIZMOR if ZIZMOR.is_file() else shutil.which("zizmor")
    if zizmor is None:
        pytest.fail("zizmor is not installed (it is in the dev group of uv.lock)")
    env = act_harness.clean_env()
    env.pop("GH_TOKEN", None)  # a token would switch on online audits
    return subprocess.run(
        [str(zizmor), "--offline", *map(str, targets)], capture_output=True, text=True, env=env, check=False
    )


def test_zizmor_finds_nothing() -> None:
    result = _zizmor(WORKFLOWS, WORKFLOWS.parent / "dependabot.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_catch_an_injected_expression(tmp_path: Path) -> None:
    """The gate is not vacuous: the same workflow with event text in a script fails it."""
    text = (WORKFLOWS / "reusable-incident.yml").read_text(encoding="utf-8")
    bad = text.replace(
        "      - name: Handle the event\n",
        '      - name: Echo the title\n        run: echo "${{ github.event.issue.title }}"\n\n'
        "      - name: Handle the event\n",
    )
    assert bad != text
    target = tmp_path / ".github" / "workflows" / "reusable-incident.yml"
    target.parent.mkdir(parents=True)
    target.write_text(bad, encoding="utf-8")
    result = _zizmor(target)
    assert result.returncode == 14, result.stdout + result.stderr
    assert "template-injection" in result.stdout


# --- the job-level `if:` filters, evaluated by act itself on the real expressions ---------------------

FIXTURES = act_harness.REPO_ROOT / "tests" / "fixtures" / "webhooks"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    """A real webhook payload with a few fields changed; keys like "issue.labels" reach into it."""
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[leaf] = value
    return doc


def labels(*names: str) -> list[dict[str, Any]]:
    return [
        {"id": i, "node_id": f"L{i}", "url": "", "name": n, "color": "ededed", "default": False, "description": None}
        for i, n in enumerate(names, 1)
    ]


BOT_SENDER = {"login": "renovate[bot]", "id": 29139614, "type": "Bot"}
FILTER_CASES = [
    # (workflow, event, payload, should the job run?)
    ("incident.yml", "issues", lambda: payload("issues.labeled"), True),
    ("incident.yml", "issues", lambda: payload("issues.labeled", **{"label.name": "bug"}), False),
    ("incident.yml", "issues", lambda: payload("issues.labeled", sender=BOT_SENDER), False),
    # No flow handles an unlabel: it must not take the pending slot (it is not in `on.issues.types` either).
    ("incident.yml", "issues", lambda: payload("issues.labeled", action="unlabeled", **{"label.name": "sev-2"}), False),
    ("incident.yml", "issues", lambda: payload("issues.closed", **{"issue.labels": labels("incident", "sev-2")}), True),
    ("incident.yml", "issues", lambda: payload("issues.closed"), False),
    (
        "incident.yml",
        "issue_comment",
        lambda: payload(
            "issue_comment.created", **{"comment.body": "/note rolled back", "issue.labels": labels("incident")}
        ),
        True,
    ),
    (
        "incident.yml",
        "issue_comment",
        lambda: payload("issue_comment.created", **{"comment.body": "thanks all", "issue.labels": labels("incident")}),
        False,
    ),
    (
        "incident.yml",
        "issue_comment",
        lambda: payload(
            "issue_comment.created",
            **{"comment.body": "graph: https://grafana.example.com/d/x", "issue.labels": labels("incident")},
        ),
        False,
    ),
    (
        "incident.yml",
        "issue_comment",
        lambda: payload(
            "issue_comment.created", **{"comment.body": "ack\n/note second line", "issue.labels": labels("incident")}
        ),
        False,
    ),
    ("incident.yml", "issue_comment", lambda: payload("issue_comment.created", **{"comment.body": "/note x"}), False),
    (
        "incident.yml",
        "issue_comment",
        lambda: payload(
            "issue_comment.created",
            **{"comment.body": "/note x", "issue.labels": labels("sev-1"), "issue.pull_request": {"url": "x"}},
        ),
        False,
    ),
    (
        "rollback.yml",
        "pull_request",
        lambda: payload("pull_request.closed.merged", **{"pull_request.labels": labels("rollback")}),
        True,
    ),
    (
        "rollback.yml",
        "pull_request",
        lambda: payload("pull_request.closed.unmerged", **{"pull_request.labels": labels("rollback")}),
        False,
    ),
    ("rollback.yml", "pull_request", lambda: payload("pull_request.closed.merged"), False),
    (
        "rollback.yml",
        "pull_request",
        lambda: payload(
            "pull_request.closed.merged",
            **{"pull_request.labels": labels("rollback"), "pull_request.head.repo.full_name": "mallory/Hello-World"},
        ),
        False,
    ),
]
FILTER_IDS = [
    "sev-1 labeled",
    "bug labeled",
    "bot labels",
    "sev-2 unlabeled",
    "incident closed",
    "other issue closed",
    "slash command",
    "chat comment",
    "a URL in a comment",
    "a command on the second line",
    "command on a non-incident",
    "comment on a PR",
    "rollback merged",
    "rollback closed unmerged",
    "other PR merged",
    "rollback from a fork",
]


@pytest.mark.act
@pytest.mark.parametrize(("workflow", "event", "make", "runs"), FILTER_CASES, ids=FILTER_IDS)
def test_job_filter(workflow: str, event: str, make: Any, runs: bool, tmp_path: Path) -> None:
    problem = act_harness.namespace_problem()
    if problem:
        pytest.skip(problem)
    result = act_harness.filter_run(
        workflow=WORKFLOWS / workflow,
        event_name=event,
        payload=make(),
        tools=act_harness.find_tools(),
        scratch=tmp_path,
    )
    assert result.returncode == 0, result.output
    if runs:
        assert "job-ran" in result.output and "Job succeeded" in result.output, result.output
    else:
        assert not act_harness.job_ran(result.output), result.output
        assert act_harness.skipped_by_if(result.output), result.output
