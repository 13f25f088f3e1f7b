"""`make demo` runs `incidentops demo`: the whole playbook on the sandbox must tell its story and exit 0."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from incidentops.cli import build_parser
from incidentops.core import incidentfile as f

ROOT = Path(__file__).resolve().parents[1]


def test_demo_tells_the_whole_story_and_keeps_the_workspace(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    result = subprocess.run(
        [sys.executable, "-m", "incidentops", "demo", "--seed", str(ROOT), "--keep", str(keep)],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only: make test runs this beside three other workers
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    story = [
        "declared INC-0001 (SEV-1) from #1",
        "INC-0001: containment of /v1/reports proposed",
        "rollback PR #2 opened for api-worker, ingest-worker, admin-pages, user-portal",
        "INC-0001: this event was already applied; nothing to do",
        "INC-0001: contained /v1/reports",
        "/public investigating Tenant t-100 could read other reports → rejected: /public: this text cannot go public",
        "/publish → recorded: INC-0001: /publish by @oncall-maintain recorded",
        "runs the smoke tests: the contained route answers the deny response",
        "queue-consumer → ",
        "rolled back api-worker, ingest-worker, queue-consumer, admin-pages, user-portal",
        "smoke tests on production passed",
        "lifted containment of /v1/reports",
        "aware at 2026-11-27T03:14:40Z, deadline 2026-11-30T03:14:40Z, affected tenants ['t-100', 't-200']",
        "`incidentops remind` on that clock at +24 h posted: remind:INC-0001:breach-24h",
        "checklist complete: closing is no longer gated",
        "all exit criteria met; closed at",
        "(0 active, 1 past incident(s))",
        "status page: Resolved — Reports are available again",
        "── incidents/INC-0001.md",
        "── git log --stat -- incidents/INC-0001.md",
    ]
    positions = [out.find(line) for line in story]
    assert all(p >= 0 for p in positions), [line for line, p in zip(story, positions, strict=True) if p < 0]
    assert positions == sorted(positions)  # told in the playbook's order
    assert "live on Cloudflare: api-worker 8b4ec2a2 (good)" in out

    bare = keep / "sandbox" / "acme" / "ops.git"
    text = subprocess.run(
        ["git", "-C", str(bare), "show", "main:incidents/INC-0001.md"], capture_output=True, text=True, check=True
    ).stdout
    fields = f.read_fields(text)
    assert fields["status"] == "closed" and fields["closed_at"] and fields["security_impacting"] is True
    assert [(u["state"], u["approved_by"]) for u in fields["public_updates"]] == [
        ("investigating", "oncall-maintain"),
        ("resolved", "oncall-maintain"),
    ]
    assert set(fields["notification"]["notified"]) == {"t-100", "t-200"} and fields["notification"]["authority"]
    assert (keep / "site" / "status" / "index.html").is_file()
    assert "t-100" not in (keep / "site" / "status" / "api" / "v2" / "summary.json").read_text()
    assert [c.get("lifted") is not None for c in fields["containment"]] == [True]
    assert {s for s, v in fields["rollback"]["services"].items() if v["status"] == "done"} == {
        "api-worker",
        "ingest-worker",
        "queue-consumer",
        "admin-pages",
        "user-portal",
    }
    adrs = subprocess.run(
        ["git", "-C", str(bare), "ls-tree", "--name-only", "main", "docs/adrs/"], capture_output=True, text=True
    ).stdout
    assert "0005-reports-queries-must-carry-the-tenant-id" in adrs
    lint = subprocess.run(
        [sys.executable, "-m", "incidentops", "lint", str(keep / "workspace" / "incidents")],
        capture_output=True,
        text=True,
        cwd=keep / "workspace",
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # The kept workspace still works as a clone: its origin is the kept bare repository.
    workspace = keep / "workspace"
    origin = subprocess.run(["git", "remote", "get-url", "origin"], cwd=workspace, capture_output=True, text=True)
    assert Path(origin.stdout.strip()) == bare
    fetched = subprocess.run(["git", "fetch", "origin"], cwd=workspace, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    # Every command the narration shows is one the CLI accepts as written.
    shown = re.findall(r"`(incidentops [^`]+)`", out)
    assert shown
    for command in shown:
        build_parser().parse_args(shlex.split(command)[1:])


@pytest.mark.act
@pytest.mark.slow
def test_demo_via_actions_runs_the_same_story_through_the_real_workflows(tmp_path: Path) -> None:
    from incidentops.sandbox import act

    problem = act.namespace_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run(
        [sys.executable, "-m", "incidentops", "demo", "--seed", str(ROOT), "--via-actions"],
        capture_output=True,
        text=True,
        # About 25 workflow runs under act, each a fresh job (8–20 s on a shared 2-core machine): a hang guard only.
        timeout=900,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "each event runs the real .github/workflows file under act" in result.stdout
    # Under act a job's clock is the story time plus the job's own real seconds (wiring.py: INCIDENTOPS_SANDBOX_NOW),
    # so on a loaded machine the closing second may be a few seconds past the story's 03:53:40.
    closed = re.search(r"all exit criteria met; closed at 2026-11-27T03:5(\d):(\d\d)Z", result.stdout)
    assert closed, result.stdout[-4000:]
    assert 3 * 60 + 40 <= int(closed.group(1)) * 60 + int(closed.group(2)) < 5 * 60 + 40
