"""The Pages workflow: what it runs on, what it may do, and the exact action versions it runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "report.yml"  # the triggers and the one-publication group
REUSABLE = ROOT / ".github" / "workflows" / "reusable-report.yml"  # the jobs it calls
# Looked up, not typed from memory: the commits the v5.0.0 tags point at (both run on Node 24 or are composite
# over actions that do; docs/reliability.md, "Actions the workflows pin").
PINS = {
    "actions/upload-pages-artifact": ("fc324d3547104276b827a68afc52ff2a11cc49c9", "v5.0.0"),
    "actions/deploy-pages": ("cd2ce8fcbc39b97be8ca5fce6e763baed58fa128", "v5.0.0"),
}


def load(path: Path = WORKFLOW) -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return doc


def test_it_runs_on_pushes_to_main_that_change_incidents_and_after_the_bots_runs() -> None:
    doc = load()
    on = doc.get("on", doc.get(True))
    assert on["push"] == {"branches": ["main"], "paths": ["incidents/**"]}
    # The bot's pushes start no push workflow (GITHUB_TOKEN); workflow_run follows its completed runs.
    assert on["workflow_run"] == {"workflows": ["incident", "rollback"], "types": ["completed"], "branches": ["main"]}
    assert set(on) == {"push", "workflow_run", "workflow_dispatch"}


def test_least_privilege_per_job() -> None:
    assert load()["permissions"] == {}
    doc = load(REUSABLE)
    assert doc["permissions"] == {}
    jobs = doc["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["deploy"]["needs"] == "build"
    assert jobs["deploy"]["environment"]["name"] == "github-pages"
    for job in jobs.values():
        assert 0 < job["timeout-minutes"] <= 15


def test_one_publication_at_a_time_without_cancelling_one() -> None:
    assert load()["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_actions_are_the_looked_up_commits_and_scripts_take_no_expressions() -> None:
    text = REUSABLE.read_text(encoding="utf-8")
    steps = [step for job in load(REUSABLE)["jobs"].values() for step in job["steps"]]
    for name, (sha, version) in PINS.items():
        assert re.search(rf"uses: {re.escape(name)}@{sha} # {re.escape(version)}\n", text), name
    for step in steps:
        assert "${{" not in str(step.get("run", ""))
    build = load(REUSABLE)["jobs"]["build"]["steps"]
    checkout = next(s for s in build if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    setup = next(s for s in build if str(s.get("uses", "")).startswith("astral-sh/setup-uv@"))
    assert setup["with"]["enable-cache"] is False  # a publishing job must not restore a cache
    runs = [str(s["run"]) for s in build if "run" in s and s.get("id") != "pin"]  # after the pin check
    assert runs[0] == "uv sync --locked --no-dev --no-install-project"
    assert "-m incidentops report --out site" in runs[1]
    upload = next(s for s in build if str(s.get("uses", "")).startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "site"


def test_every_action_has_an_act_stub_with_the_inputs_the_workflow_passes() -> None:
    stubs = ROOT / "tests" / "act-stubs"
    for job in load(REUSABLE)["jobs"].values():
        for step in job["steps"]:
            if "uses" not in step:
                continue
            name = str(step["uses"]).split("@")[0].split("/")[1]
            action = YAML(typ="safe").load((stubs / name / "action.yml").read_text(encoding="utf-8"))
            assert set(step.get("with", {})) <= set(action.get("inputs", {})), name
