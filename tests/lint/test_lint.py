"""incidentops lint: each kind of broken incident file is caught with its file and line; valid files pass."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from incidentops.cli import main
from incidentops.core.events import parse_event
from incidentops.core.form import read_intake
from incidentops.core.lint import lint_text
from incidentops.core.timefmt import parse_ts
from incidentops.flows import lint as flow
from incidentops.flows.declare import new_incident_text

ROOT = Path(__file__).resolve().parents[2]
PATH = "incidents/INC-0042.md"

CLOSED = """---
id: INC-0042
title: Tenant data visible across tenants
severity: SEV-1
status: closed
environment: production
started_at: '2026-11-27T03:12:09Z'
declared_at: '2026-11-27T03:14:40Z'
issue: 42
commander: alice
comms_owner: bob
services: [api-worker]
impact: {routes: [/v1/reports], tenants: [t-100], request_ids: [req-1], request_volume: 1200/min}
tenant_isolation_risk: true
deploy_regression_suspected: true
security_impacting: true
risks: {tenant-isolation: cleared}
containment: []
rollback: null
verification: {smoke: passed, metrics: baseline}
escalations: []
unknown_fields: []
resolved_at: '2026-11-27T05:00:00Z'
closed_at: '2026-11-27T05:10:00Z'
---
# INC-0042 — Tenant data visible across tenants

## Timeline

| time (UTC) | who | what | command / link |
|---|---|---|---|
| 2026-11-27T03:12:09Z | @carol | Impact started |  |
| 2026-11-27T03:14:40Z | @alice | Declared SEV-1 (label sev-1) | [issue #42](x) <!-- ev:a --> |
| 2026-11-27T05:10:00Z | incidentops | Closed |  |

## Decision log

| time (UTC) | who | decision | ADR |
|---|---|---|---|
| 2026-11-27T03:20:00Z | @alice | Roll back api-worker | — |

## Follow-ups

| task | owner | due | issue |
|---|---|---|---|
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def problems(text: str, path: str = PATH) -> list[str]:
    return [str(p) for p in lint_text(path, text)]


def test_a_complete_closed_incident_is_valid() -> None:
    assert problems(CLOSED) == []


def test_a_freshly_declared_incident_is_valid() -> None:
    payload = json.loads((ROOT / "tests/fixtures/webhooks/issues.labeled.json").read_text())
    payload["label"]["name"] = "sev-1"
    event = parse_event("issues", payload)
    body = (ROOT / "tests/fixtures/forms/full.md").read_text()
    now = parse_ts("2026-11-27T03:14:40Z")
    intake = read_intake(body, ("api-worker",), ("production",), now=now)
    text = new_incident_text(event, intake, "SEV-1", now)
    assert event.issue is not None
    assert problems(text, f"incidents/INC-{event.issue.number:04d}.md") == []


@pytest.mark.parametrize(
    ("old", "new", "needle", "expected"),
    [
        ("severity: SEV-1", "severity: SEV-9", "severity:", "severity 'SEV-9' is not one of SEV-1, SEV-2, SEV-3"),
        ("status: closed", "status: done", "status:", "status 'done' is not one of"),
        ("issue: 42", "issue: '42'", "issue:", "issue '42' is not an issue number"),
        ("id: INC-0042", "id: INC-0043", "id:", "id INC-0043 does not match the file name"),
        ("title: Tenant data visible across tenants", "title: ''", "title:", "title must be a non-empty string"),
        (
            "declared_at: '2026-11-27T03:14:40Z'",
            "declared_at: '2026-11-27 03:14'",
            "declared_at:",
            "not a UTC timestamp",
        ),
        (
            "declared_at: '2026-11-27T03:14:40Z'",
            "declared_at: '2026-11-27T03:14:40+02:00'",
            "declared_at:",
            "not a UTC",
        ),
        (
            "closed_at: '2026-11-27T05:10:00Z'",
            "closed_at: '2026-11-27T04:10:00Z'",
            "closed_at:",
            "is before resolved_at",
        ),
        ("services: [api-worker]", "services: api-worker", "services:", "services must be a list"),
        ("security_impacting: true", "security_impacting: maybe", "security_impacting:", "must be true, false or null"),
        ("risks: {tenant-isolation: cleared}", "risks: {money: open}", "risks:", "risk 'money' is not one of"),
        ("tenant_isolation_risk: true", "tenant_isolation_risk: 1", "tenant_isolation_risk:", "must be true or false"),
    ],
)
def test_front_matter_problems_name_the_line(old: str, new: str, needle: str, expected: str) -> None:
    text = CLOSED.replace(old, new)
    assert text != CLOSED
    found = problems(text)
    line = line_of(text, needle)
    assert any(p.startswith(f"{PATH}:{line}: ") and expected in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("resolved_at: '2026-11-27T05:00:00Z'", "resolved_at: null", "a closed incident needs resolved_at"),
        ("closed_at: '2026-11-27T05:10:00Z'", "closed_at: null", "a closed incident needs closed_at"),
        ("security_impacting: true", "security_impacting: null", "a closed incident needs security_impacting"),
        ("| 2026-11-27T03:20:00Z | @alice | Roll back api-worker | — |\n", "", "at least one Decision log row"),
        ("tenants: [t-100]", "tenants: unknown", "a closed incident needs impact.tenants"),
        ("request_ids: [req-1]", "request_ids: []", "a closed incident needs impact.request_ids"),
        ("risks: {tenant-isolation: cleared}", "risks: {authz: open}", "open risks: authz"),
        ("verification: {smoke: passed, metrics: baseline}", "verification: null", "recovery verification"),
    ],
)
def test_closed_incidents_must_be_complete(old: str, new: str, expected: str) -> None:
    text = CLOSED.replace(old, new)
    assert text != CLOSED
    assert any(expected in p for p in problems(text)), problems(text)


def test_resolved_needs_resolved_at() -> None:
    text = CLOSED.replace("status: closed", "status: resolved").replace(
        "resolved_at: '2026-11-27T05:00:00Z'", "resolved_at: null"
    )
    text = text.replace("closed_at: '2026-11-27T05:10:00Z'", "closed_at: null")
    assert any("a resolved incident needs resolved_at" in p for p in problems(text))


def test_timeline_rows_must_be_valid_and_in_order() -> None:
    text = CLOSED.replace(
        "| 2026-11-27T05:10:00Z | incidentops | Closed |  |", "| 2026-11-27T03:00:00Z | incidentops | Closed |  |"
    )
    found = problems(text)
    assert found == [
        f"{PATH}:{line_of(text, '| 2026-11-27T03:00:00Z')}: timeline row at 2026-11-27T03:00:00Z comes "
        "after a row at 2026-11-27T03:14:40Z; rows must be in time order"
    ]
    text = CLOSED.replace("| 2026-11-27T03:12:09Z | @carol |", "| 03:12 | @carol |")
    assert any(p.startswith(f"{PATH}:{line_of(text, '| 03:12 |')}: timeline time") for p in problems(text))
    text = CLOSED.replace("| Impact started |  |", "| Impact started |")
    assert any("expected 4" in p for p in problems(text))
    text = CLOSED.replace("## Timeline\n", "## Events\n")
    assert any("## Timeline section is missing" in p for p in problems(text))


def test_unreadable_files_say_where() -> None:
    assert problems("# no front matter\n") == [f"{PATH}:1: the file does not start with a '---' front matter line"]
    assert "no closing '---'" in problems("---\nid: INC-0042\n")[0]
    broken = CLOSED.replace("services: [api-worker]", "services: [api-worker")
    found = problems(broken)
    assert len(found) == 1 and "not valid YAML" in found[0]
    duplicate = CLOSED.replace("status: closed", "status: closed\nstatus: open")
    assert "not valid YAML" in problems(duplicate)[0]
    missing = CLOSED.replace("severity: SEV-1\n", "")
    assert any("required key 'severity' is missing" in p for p in problems(missing))


def test_the_command_lints_a_tree_and_exits_1_with_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    (tmp_path / "incidents").mkdir()
    (tmp_path / "incidents/README.md").write_text("not an incident")
    (tmp_path / "incidents/INC-0042.md").write_text(CLOSED)
    assert main(["lint"]) == 0
    assert "1 incident file(s) valid" in capsys.readouterr().out
    (tmp_path / "incidents/INC-0043.md").write_text(
        CLOSED.replace("id: INC-0042", "id: INC-0043")
        .replace("issue: 42", "issue: 43")
        .replace("status: closed", "status: done")
    )
    assert main(["lint"]) == 1
    out = capsys.readouterr().out
    assert f"::error file=incidents/INC-0043.md,line={line_of(CLOSED, 'status:')}::status 'done'" in out
    assert out.count("status 'done'") == 1  # each problem once
    assert "1 problem(s) in 1 of 2 incident file(s)" in out
    assert main(["lint", "incidents/INC-0042.md"]) == 0


@pytest.mark.slow
def test_ten_thousand_files_lint_in_linear_time(tmp_path: Path) -> None:
    folder = tmp_path / "incidents"
    folder.mkdir()
    for n in range(1, 10_001):
        text = CLOSED.replace("id: INC-0042", f"id: INC-{n:04d}").replace("issue: 42", f"issue: {n}")
        if n % 2500 == 0:
            text = text.replace("status: closed", "status: bogus")
        (folder / f"INC-{n:04d}.md").write_text(text)
    started = time.perf_counter()
    outcome = flow.lint(tmp_path)
    elapsed = time.perf_counter() - started
    assert outcome.details["files"] == 10_000
    assert sorted(p.path for p in outcome.details["problems"]) == sorted(
        f"incidents/INC-{n:04d}.md" for n in (2500, 5000, 7500, 10000)
    )
    assert elapsed < 60, f"linting 10,000 files took {elapsed:.1f} s"
