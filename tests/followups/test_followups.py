"""Follow-up issues and the standing follow-ups, against the sandbox; and two ADRs racing for a number."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx

from incidentops.core import incidentfile as f
from incidentops.core.events import parse_event
from incidentops.flows.dispatch import handle
from incidentops.flows.followups import LABEL, add_standing_followups
from tests.commands.helpers import comment, declared, path_of, run_at_once
from tests.flows.conftest import NOW, World, git


def followup_issues(world: World) -> list:
    return [i for i in world.repo().get_issues(state="all", labels=[LABEL])]


def followups_table(text: str) -> list[str]:
    section = text.split("## Follow-ups", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.split("\n") if line.startswith("| ") and not line.startswith("| task |")]


def test_followup_opens_one_assigned_labelled_issue_linked_in_the_table(world: World) -> None:
    number = declared(world)
    delivery = comment(world, number, '/followup "Add a tenant-scope test to /v1/reports" @oncall-maintain 2026-12-15')
    outcome = world.run(delivery)
    assert outcome.status == "recorded", outcome.message
    issues = followup_issues(world)
    assert len(issues) == 1
    issue = issues[0]
    assert issue.title == f"[INC-{number:04d}] Add a tenant-scope test to /v1/reports (due 2026-12-15)"
    assert [a.login for a in issue.assignees] == ["oncall-maintain"]
    assert f"INC-{number:04d}" in issue.body and "Due: **2026-12-15**" in issue.body
    text = world.bare_file(path_of(number))
    link = f"[#{issue.number}]({issue.html_url})"
    row = f"| Add a tenant-scope test to /v1/reports | @oncall-maintain | 2026-12-15 | {link} |"
    assert followups_table(text) == [row]
    assert any(r[2].startswith("Follow-up: Add a tenant-scope test") for r in f.timeline_rows(text))

    again = world.run(delivery, now=NOW + timedelta(minutes=5))
    assert again.status == "unchanged"
    assert len(followup_issues(world)) == 1 and len(followups_table(world.bare_file(path_of(number)))) == 1
    assert world.violations() == []


def test_a_lost_answer_is_found_by_its_marker_not_created_twice(world: World) -> None:
    number = declared(world)
    delivery = comment(world, number, '/followup "Rotate the leaked key" @oncall-write 2026-12-01')
    # The issue is created but the answer never arrives; the retry must look before it posts again.
    httpx.post(
        world.info["control_url"] + "/faults",
        json={"method": "POST", "path": "/issues$", "drop_response": True, "count": 1},
    ).raise_for_status()
    outcome = handle(parse_event("issue_comment", json.loads(json.dumps(delivery["payload"]))), world.ports(retries=0))
    assert outcome.status == "recorded", outcome.message
    assert len(followup_issues(world)) == 1


def test_owner_without_access_and_bad_dates_are_rejected_with_help(world: World) -> None:
    number = declared(world)
    outcome = world.run(comment(world, number, '/followup "x" @outsider 2026-12-01'))
    assert outcome.status == "rejected" and "no access" in outcome.message
    outcome = world.run(comment(world, number, '/followup "x" @oncall-write 2027-12-31'))
    assert outcome.status == "rejected" and "more than a year" in outcome.message
    assert followup_issues(world) == []
    assert followups_table(world.bare_file(path_of(number))) == []


def test_standing_followups_are_added_once(world: World) -> None:
    number = declared(world)
    world.run(comment(world, number, "/ic @oncall-admin"))
    first = add_standing_followups(world.ports(NOW + timedelta(hours=2)), number, "oncall-write", "issues-closed-x")
    assert first.status == "recorded", first.message
    issues = followup_issues(world)
    assert sorted(i.title for i in issues) == [
        f"[INC-{number:04d}] Add the missing tests for the failure mode (due 2026-12-11)",
        f"[INC-{number:04d}] Fix the runbook steps that were wrong (due 2026-12-11)",
    ]
    assert all([a.login for a in i.assignees] == ["oncall-admin"] for i in issues)
    table = followups_table(world.bare_file(path_of(number)))
    assert len(table) == 2 and all("@oncall-admin | 2026-12-11" in row for row in table)

    second = add_standing_followups(world.ports(NOW + timedelta(hours=3)), number, "oncall-write", "issues-closed-y")
    assert second.status == "unchanged"
    assert len(followup_issues(world)) == 2 and len(followups_table(world.bare_file(path_of(number)))) == 2


ROOT_DIR = Path(__file__).resolve().parents[2]


def test_two_incidents_adding_an_adr_at_the_same_moment_get_distinct_numbers(world: World) -> None:
    numbers = [declared(world), declared(world)]
    deliveries = [comment(world, n, f"/decision --adr Decision of incident {n}") for n in numbers]
    outcomes = run_at_once(world, deliveries, "adr")
    assert [o.status for o in outcomes] == ["recorded", "recorded"]
    first = max(int(p.name[:4]) for p in (ROOT_DIR / "docs/adrs").glob("[0-9][0-9][0-9][0-9]-*.md")) + 1
    expected = (f"{first:04d}-", f"{first + 1:04d}-")
    adrs = sorted(line for line in world_ls(world, "docs/adrs") if line.startswith(expected))
    assert len(adrs) == 2 and adrs[0].startswith(expected[0]) and adrs[1].startswith(expected[1])
    # Each incident links the ADR that names it.
    for name in adrs:
        adr_text = world.bare_file(f"docs/adrs/{name}")
        n = next(n for n in numbers if f"INC-{n:04d}" in adr_text)
        assert f"(../docs/adrs/{name})" in world.bare_file(path_of(n))


def world_ls(world: World, folder: str) -> list[str]:
    out = git("ls-tree", "--name-only", "main", f"{folder}/", cwd=Path(world.info["bare_repo"]))
    return [line.rsplit("/", 1)[-1] for line in out.split("\n") if line]
