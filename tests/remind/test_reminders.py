"""Reminders: the pure conditions, and each reminder posted once against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from incidentops.core import incidentfile as f
from incidentops.core import reminders as core
from incidentops.flows.remind import run_reminders
from tests.flows.conftest import NOW, World

DECLARED = "2026-11-27T03:14:40Z"
BODY = (
    "## Follow-ups\n\n| task | owner | due | issue |\n|---|---|---|---|\n"
    "| Add tests | @alice | 2026-11-30 | [#12](https://x/12) |\n| Fix runbook | @bob | 2026-12-20 | |\n"
)


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "INC-0007",
        "severity": "SEV-1",
        "status": "contained",
        "declared_at": DECLARED,
        "commander": "alice",
        "comms_owner": "bob",
        "last_status_at": "2026-11-27T03:40:00Z",
        "containment": [],
    }
    base.update(changes)
    return base


def keys(given: dict[str, Any], now: datetime, body: str = "", closed: tuple[int, ...] = ()) -> list[str]:
    return [r.key for r in core.due_reminders(given, body, now, closed)]


AT = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def test_nothing_is_due_for_a_well_run_incident() -> None:
    assert keys(fields(), AT, BODY) == []


def test_roles_unassigned_only_after_15_minutes() -> None:
    unassigned = fields(commander=None, comms_owner="unknown")
    assert keys(unassigned, datetime(2026, 11, 27, 3, 29, 39, tzinfo=UTC)) == []
    assert keys(unassigned, datetime(2026, 11, 27, 3, 29, 40, tzinfo=UTC)) == [
        "remind:INC-0007:commander-unassigned",
        "remind:INC-0007:comms-unassigned",
    ]


def test_a_sev1_status_goes_stale_after_30_minutes_and_each_lapse_is_its_own_condition() -> None:
    assert keys(fields(last_status_at=None), datetime(2026, 11, 27, 3, 44, 39, tzinfo=UTC)) == []
    assert keys(fields(last_status_at=None), datetime(2026, 11, 27, 3, 44, 40, tzinfo=UTC)) == [
        f"remind:INC-0007:status-stale:{DECLARED}"
    ]
    assert keys(fields(), datetime(2026, 11, 27, 4, 10, tzinfo=UTC)) == [
        "remind:INC-0007:status-stale:2026-11-27T03:40:00Z"
    ]
    assert keys(fields(severity="SEV-2", last_status_at=None), AT) == []


def test_containment_past_its_expiry_unless_lifted() -> None:
    entry = {"route": "/v1/reports", "rule_id": "r1", "since": DECLARED, "expires": "2026-11-27T03:59:00Z"}
    assert keys(fields(containment=[entry]), AT) == ["remind:INC-0007:containment-expired:r1:2026-11-27T03:59:00Z"]
    assert keys(fields(containment=[{**entry, "lifted": "2026-11-27T03:58:00Z"}]), AT) == []
    assert keys(fields(containment=[{**entry, "expires": "2026-11-27T05:00:00Z"}]), AT) == []


def test_overdue_followups_even_after_closing_but_not_once_their_issue_is_closed() -> None:
    later = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    closed = fields(status="closed", commander=None)
    assert keys(closed, later, BODY) == ["remind:INC-0007:followup-overdue:#12:2026-11-30"]
    assert keys(closed, later, BODY, closed=(12,)) == []
    assert keys(closed, datetime(2026, 11, 30, 23, 59, tzinfo=UTC), BODY) == []  # due today is not overdue
    assert core.followups(BODY)[1] == core.FollowUp("Fix runbook", "bob", date(2026, 12, 20), None)


def test_markers_are_hidden_comments() -> None:
    (reminder,) = core.due_reminders(fields(comms_owner=None), "", AT)
    assert reminder.marker == "<!-- incidentops:remind:INC-0007:comms-unassigned -->"


# -- against the sandbox ------------------------------------------------------------------------------


def edit(world: World, number: int, change: Callable[[str], str]) -> None:
    path = f"incidents/INC-{number:04d}.md"
    world.ports().git.commit(lambda read: {path: change(read(path) or "")}, "people edit the incident")


def remind(world: World, now: datetime) -> list[str]:
    outcome = run_reminders(world.ports(now))
    posted: list[str] = outcome.details.get("posted", [])
    return posted


def test_each_reminder_fires_once(world: World) -> None:
    number = world.open_incident()
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    inc = f"INC-{number:04d}"

    assert remind(world, NOW + timedelta(minutes=10)) == []
    assert remind(world, NOW + timedelta(minutes=15)) == [f"remind:{inc}:comms-unassigned"]
    assert remind(world, NOW + timedelta(minutes=20)) == []  # the next scheduled run says nothing new

    expires = "2026-11-27T03:50:00Z"
    followup = world.repo().create_issue(title=f"[{inc}] Add tests (due 2026-11-26)").number
    done = world.repo().create_issue(title=f"[{inc}] Fix runbook (due 2026-11-26)")
    done.edit(state="closed")

    def contained_with_followups(text: str) -> str:
        entry = {"route": "/v1/reports", "rule_id": "r9", "since": "2026-11-27T03:20:00Z", "expires": expires}
        text = f.set_fields(text, {"containment": [entry], "comms_owner": "oncall-maintain"})
        for task, issue in (("Add tests", followup), ("Fix runbook", done.number)):
            row = f"| {task} | @oncall-write | 2026-11-26 | [#{issue}](x) |"
            text = f.append_table_row(text, "Follow-ups", row, "| task | owner | due | issue |")
        return text

    edit(world, number, contained_with_followups)
    assert sorted(remind(world, NOW + timedelta(minutes=40))) == [
        f"remind:{inc}:containment-expired:r9:{expires}",
        f"remind:{inc}:followup-overdue:#{followup}:2026-11-26",
        f"remind:{inc}:public-first",  # a SEV-1 with no public update 30 minutes after its declaration
        f"remind:{inc}:status-stale:2026-11-27T03:14:40Z",
    ]
    assert remind(world, NOW + timedelta(minutes=45)) == []
    comments = world.comments(number)
    assert sum("has no communications owner" in c for c in comments) == 1
    stale = next(c for c in comments if "no status update for 40 minutes" in c)
    assert "@oncall-write" in stale and "@oncall-maintain" in stale
    assert sum("overdue" in c for c in comments) == 1  # the closed follow-up is not reminded

    # A status update ends that lapse; the next lapse is a new condition, reminded once more.
    edit(world, number, lambda text: f.set_fields(text, {"last_status_at": "2026-11-27T03:55:00Z"}))
    assert remind(world, NOW + timedelta(minutes=60)) == []
    assert remind(world, NOW + timedelta(minutes=71)) == [f"remind:{inc}:status-stale:2026-11-27T03:55:00Z"]
    assert world.violations() == []


def test_a_deleted_or_moved_followup_issue_is_reported_and_skipped(world: World) -> None:
    number = world.open_incident()
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    inc = f"INC-{number:04d}"
    deleted = world.repo().create_issue(title=f"[{inc}] Add tests (due 2026-11-26)").number
    moved = world.repo().create_issue(title=f"[{inc}] Move runbook (due 2026-11-26)").number
    kept = world.repo().create_issue(title=f"[{inc}] Rotate keys (due 2026-11-26)").number

    def with_followups(text: str) -> str:
        text = f.set_fields(text, {"comms_owner": "oncall-maintain"})
        for task, issue in (("Add tests", deleted), ("Move runbook", moved), ("Rotate keys", kept)):
            row = f"| {task} | @oncall-write | 2026-11-26 | [#{issue}](x) |"
            text = f.append_table_row(text, "Follow-ups", row, "| task | owner | due | issue |")
        return text

    edit(world, number, with_followups)
    control = world.info["control_url"]
    httpx.post(f"{control}/github/issues/{deleted}/delete").raise_for_status()
    httpx.post(f"{control}/github/issues/{moved}/transfer", json={"repository": "acme/platform", "number": 3})
    outcome = run_reminders(world.ports(NOW + timedelta(minutes=20)))
    assert outcome.status == "reminded", outcome.message
    assert outcome.details["posted"] == [f"remind:{inc}:followup-overdue:#{kept}:2026-11-26"]
    assert f"skipped follow-up issue #{deleted}: it was deleted (HTTP 410)" in outcome.steps
    assert any(step.startswith(f"skipped follow-up issue #{moved}: it was moved") for step in outcome.steps)


def test_while_a_sev_1_is_open_one_run_keeps_checking_and_posts_within_a_minute_of_due(world: World) -> None:
    from dataclasses import replace

    from incidentops.flows.remind import watch_reminders

    number = world.open_incident()
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    inc = f"INC-{number:04d}"
    declared_ts = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The scheduled run starts 5 minutes after the declaration: comms-unassigned is due at +15 minutes, a status
    # update and a first public update at +30.
    clock = [NOW + timedelta(minutes=5)]
    elapsed = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)
        elapsed[0] += seconds

    posted_at: list[datetime] = []
    ports = replace(world.ports(), clock=lambda: clock[0])
    real_post = ports.github.post_comment_once

    def post(number: int, marker: str, body: str) -> Any:
        posted_at.append(clock[0])
        return real_post(number, marker, body)

    ports.github.post_comment_once = post  # type: ignore[method-assign]
    outcome = watch_reminders(ports, minutes=28, interval=60, sleep=sleep, monotonic=lambda: elapsed[0])
    # Both reminders that fell due during the run's 28 minutes, each on the first check at or after its due time.
    assert outcome.details["posted"] == [
        f"remind:{inc}:comms-unassigned",
        f"remind:{inc}:status-stale:{declared_ts}",
        f"remind:{inc}:public-first",
    ]
    assert posted_at == [NOW + timedelta(minutes=15), NOW + timedelta(minutes=30), NOW + timedelta(minutes=30)]
    assert outcome.details["passes"] == 28  # one check a minute for the run's 28 minutes, no more


def test_with_nothing_watched_a_run_checks_once(world: World) -> None:
    from incidentops.flows.remind import watch_reminders

    number = world.open_incident()
    world.label(number, "sev-2")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    slept: list[float] = []
    outcome = watch_reminders(world.ports(NOW + timedelta(minutes=5)), minutes=28, sleep=slept.append)
    assert slept == [] and outcome.details["passes"] == 1
