"""`incidentops init` on an empty repository of the emulated GitHub, discovering the emulated Cloudflare account:
files, labels and config from discovery; a second run changes nothing; an edited file is kept without --force."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from incidentops.config import ACTIONS, parse_config
from incidentops.core.doctor import FAIL, OK
from incidentops.core.runbook import parse_runbook
from incidentops.flows.doctor import run_doctor
from incidentops.flows.measure import service_hosts
from incidentops.sandbox.server import Sandbox

from .conftest import Setup

PIN = "incidentops/incidentops@" + "a" * 40
FLAGS = [
    "--services",
    "api-worker,ingest-worker,queue-consumer,admin-pages,user-portal",
    "--environment",
    "production",
    "--zone",
    "example.com",
    "--uses",
    PIN,
]
INCIDENTOPS_LABELS = (
    "sev-1",
    "sev-2",
    "sev-3",
    "incident",
    "rollback",
    "incident-followup",
    "architecture-significant",
)


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Setup]:
    """An empty ops repository (one README) on the emulated GitHub, without the labels incidentops needs."""
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "README.md").write_text("# ops\n")
    sandbox = Sandbox(tmp_path / "sandbox", seed, ledger_history=False).start()
    try:
        setup = Setup(sandbox, tmp_path / "ops")
        for name in INCIDENTOPS_LABELS:
            assert setup.github("DELETE", f"/labels/{name}").status_code == 204
        subprocess.run(["git", "clone", "-q", setup.info["bare_repo"], str(setup.workspace)], check=True)
        yield setup
    finally:
        sandbox.stop()


def init(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CLOUDFLARE_"))}
    env.update(setup.env())
    return subprocess.run(
        [sys.executable, "-m", "incidentops", "init", *args],
        cwd=setup.workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_init_sets_up_an_empty_repository_from_discovery(empty: Setup) -> None:
    run = init(empty, *FLAGS)
    assert run.returncode == 0, run.stdout + run.stderr
    ws = empty.workspace
    raw_config = YAML(typ="safe").load((ws / "incidentops.yaml").read_text())
    config = parse_config(raw_config)
    # Every action's role is written out, so a team sees (and tunes) who may do each, comms and overrides included.
    assert sorted(raw_config["permissions"]) == sorted(ACTIONS)
    assert [(s.name, s.kind) for s in config.services] == [
        ("api-worker", "worker"),
        ("ingest-worker", "worker"),
        ("queue-consumer", "worker"),
        ("admin-pages", "pages"),
        ("user-portal", "pages"),
    ]
    # Each service reachable on a host names it, so exit criteria read what its customers got there (the zone's
    # HTTP analytics: a 500 or a leak answered with 200 is invisible in a Worker's invocation errors). The queue
    # consumer answers no host: its invocations are all there is.
    assert {s.name: s.hosts for s in config.services} == {
        "api-worker": ("api",),
        "ingest-worker": ("ingest",),
        "queue-consumer": (),
        "admin-pages": ("admin",),
        "user-portal": ("portal",),
    }
    (production,) = config.environments
    api, ingest = config.services[:2]
    assert (service_hosts(production, api), service_hosts(production, ingest)) == (
        ("api.example.com",),
        ("ingest.example.com",),
    )
    assert production.account_id == empty.info["cloudflare_account_id"]
    assert production.zone_id == empty.sandbox.cloudflare.zone_id
    assert production.base_urls == {
        "api": "https://api.example.com",
        "ingest": "https://ingest.example.com",
        "admin": "https://admin.example.com",
        "portal": "https://portal.example.com",
    }
    runbook = parse_runbook(
        (ws / "docs/runbooks/environment-deploy-runbook.md").read_text(), [s.name for s in config.services]
    )
    assert sorted(c.service for c in runbook.for_environment("production")) == [
        "admin-pages",
        "api-worker",
        "ingest-worker",
        "user-portal",
    ]
    assert (
        "No HTTP route was found for queue-consumer" in (ws / "docs/runbooks/environment-deploy-runbook.md").read_text()
    )
    ledger = YAML(typ="safe").load((ws / "deployments/production.yaml").read_text())
    for name in ("api-worker", "admin-pages"):
        assert ledger["services"][name]["version"] == empty.sandbox.cloudflare.live_version(name)
        assert ledger["services"][name]["verified"] is False
    for name in ("incident", "rollback", "remind", "lint", "doctor"):
        caller = (ws / f".github/workflows/{name}.yml").read_text()
        (job,) = YAML(typ="safe").load(caller)["jobs"].values()
        # The reusable workflow pinned by SHA, and the same string again for the package code it checks out.
        assert job["uses"] == PIN.replace("@", f"/.github/workflows/reusable-{name}.yml@")
        assert job["with"]["incidentops-uses"] == job["uses"]
        assert f"{job['uses']} # v" in caller  # the version comment Dependabot keeps in step
        assert "secrets." not in caller  # environment secrets reach the called job through `inherit` only
    zizmor = Path(sys.executable).parent / "zizmor"
    audit = subprocess.run([str(zizmor), "--offline", str(ws / ".github/workflows")], capture_output=True, text=True)
    assert audit.returncode == 0 and "failed to parse" not in audit.stderr, audit.stdout + audit.stderr
    assert (ws / ".github/dependabot.yml").is_file()
    assert (ws / "docs/adrs/0001-record-architecture-decisions.md").is_file()
    form = YAML(typ="safe").load((ws / ".github/ISSUE_TEMPLATE/incident.yml").read_text())
    assert "user-portal" in str(form)
    labels = {item["name"]: item for item in empty.github("GET", "/labels?per_page=100").json()}
    for name in INCIDENTOPS_LABELS:
        assert name in labels and labels[name]["description"], name
    assert "wrote     incidentops.yaml" in run.stdout and "created   label sev-1" in run.stdout
    # …and the result passes doctor (the secret it needs is set in the emulated repository).
    checks = run_doctor(ws, empty.env())
    assert [c for c in checks if c.status == FAIL] == []
    (pins,) = [c for c in checks if c.id == "github.callers"]
    assert pins.status == OK and "5 caller(s) pin incidentops/incidentops@aaaaaaaaaaaa" in pins.detail
    # A person moves one copy of the pin by hand: the workflow and its package code would part ways.
    caller = ws / ".github/workflows/rollback.yml"
    caller.write_text(caller.read_text().replace("a" * 40 + " # v", "b" * 40 + " # v", 1))
    (pins,) = [c for c in run_doctor(ws, empty.env()) if c.id == "github.callers"]
    assert pins.status == FAIL and "rollback.yml (job rollback)" in pins.detail, pins


def test_a_second_run_changes_nothing_and_says_so(empty: Setup) -> None:
    assert init(empty, *FLAGS).returncode == 0
    before = snapshot(empty.workspace)
    logged = len(empty.control("GET", "/requests"))
    again = init(empty, *FLAGS)
    assert again.returncode == 0, again.stderr
    assert "Nothing changed" in again.stdout and "wrote" not in again.stdout and "created" not in again.stdout
    assert snapshot(empty.workspace) == before
    writes = [
        r
        for r in empty.control("GET", "/requests")[logged:]
        if r["method"] != "GET" and not r["path"].startswith("/_sandbox")
    ]
    assert writes == []


def test_an_edited_file_is_kept_unless_forced(empty: Setup) -> None:
    assert init(empty, *FLAGS).returncode == 0
    config = empty.workspace / "incidentops.yaml"
    edited = config.read_text().replace("rollback_apply: maintain", "rollback_apply: admin")
    config.write_text(edited)
    kept = init(empty, *FLAGS)
    assert kept.returncode == 0
    assert "kept      incidentops.yaml" in kept.stdout and config.read_text() == edited
    forced = init(empty, *FLAGS, "--force")
    assert "rewrote   incidentops.yaml" in forced.stdout and "rollback_apply: maintain" in config.read_text()


def test_without_a_terminal_a_missing_answer_is_a_usage_error(empty: Setup) -> None:
    run = init(empty, "--uses", PIN, "--zone", "example.com")
    assert run.returncode == 2
    said = run.stdout + run.stderr
    assert "which services?" in said and "api-worker" in said and "--services" in said
    assert not (empty.workspace / "incidentops.yaml").exists()


def test_an_unknown_service_or_bad_pin_is_refused(empty: Setup) -> None:
    run = init(empty, "--services", "api-wrker", "--environment", "production", "--zone", "example.com", "--uses", PIN)
    said = run.stdout + run.stderr  # errors go to stderr on a terminal, to annotations in a job
    assert run.returncode == 2 and "api-wrker" in said and "api-worker" in said
    bad = init(empty, *FLAGS[:-1], "incidentops/incidentops@v1")
    assert bad.returncode == 2 and "full 40-character commit SHA" in bad.stdout + bad.stderr + bad.stderr
    assert not (empty.workspace / "incidentops.yaml").exists()


def test_on_a_terminal_init_asks_what_the_flags_leave_open(empty: Setup) -> None:
    from incidentops.flows.init import Answers, run_init

    asked: list[tuple[str, list[str]]] = []

    def ask(question: str, choices: list[str], multiple: bool) -> list[str]:
        asked.append((question, choices))
        if "zone" in question:
            return ["staging.example.com"]
        if "services" in question:
            return ["api-worker"]
        return ["staging"]

    result = run_init(empty.workspace, empty.env(), Answers(uses=PIN, ask=ask))
    assert [q for q, _ in asked] == ["Which zone?", "Which services?", "Which environment is this (e.g. production)?"]
    assert asked[0][1] == ["example.com", "staging.example.com"]
    assert "wrote     deployments/staging.yaml" in result.lines
    config = parse_config(YAML(typ="safe").load((empty.workspace / "incidentops.yaml").read_text()))
    assert [s.name for s in config.services] == ["api-worker"]
    assert config.environments[0].base_urls == {"api": "https://api.staging.example.com"}


def test_init_writes_codeowners_over_what_incidentops_trusts(empty: Setup) -> None:
    from incidentops.core.adopt import uncovered_paths

    run = init(empty, *FLAGS)
    assert run.returncode == 0, run.stdout + run.stderr
    owners = empty.workspace / ".github/CODEOWNERS"
    assert "wrote     .github/CODEOWNERS" in run.stdout
    text = owners.read_text()
    # The token's owner by default: the person setting the repository up.
    for path in ("/deployments/", "/docs/runbooks/", "/incidentops.yaml", "/.github/workflows/"):
        assert f"{path} " in text and text.split(path, 1)[1].split("\n", 1)[0].strip() == "@oncall-admin"
    assert uncovered_paths(text) == []
    # A team's own CODEOWNERS is kept; --owners with --force rewrites it for a team.
    owners.write_text("* @acme/platform\n")
    kept = init(empty, *FLAGS, "--owners", "@acme/sre")
    assert "kept      .github/CODEOWNERS" in kept.stdout and owners.read_text() == "* @acme/platform\n"
    forced = init(empty, *FLAGS, "--owners", "@acme/sre", "--force")
    assert "rewrote   .github/CODEOWNERS" in forced.stdout and "/deployments/        @acme/sre" in owners.read_text()
    bad = init(empty, *FLAGS, "--owners", "acme sre!")
    assert bad.returncode == 2 and "not a GitHub user or team" in bad.stdout + bad.stderr


def test_doctor_warns_when_codeowners_misses_what_incidentops_trusts(empty: Setup) -> None:
    assert init(empty, *FLAGS).returncode == 0
    checks = {c.id: c for c in run_doctor(empty.workspace, empty.env())}
    assert checks["repo.codeowners"].status == "ok"
    owners = empty.workspace / ".github/CODEOWNERS"
    owners.write_text("/docs/ @acme/writers\n")
    check = {c.id: c for c in run_doctor(empty.workspace, empty.env())}["repo.codeowners"]
    assert (
        check.status == "warn" and "deployments/production.yaml" in check.detail and "incidentops.yaml" in check.detail
    )
    owners.unlink()
    check = {c.id: c for c in run_doctor(empty.workspace, empty.env())}["repo.codeowners"]
    assert check.status == "warn" and "missing" in check.detail
