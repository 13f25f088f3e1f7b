"""Reminders for the communications owner: the pure conditions, and each posted once through the reminder flow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from incidentops.core import reminders as core
from incidentops.flows.remind import run_reminders
from tests.commands.helpers import comment, declared
from tests.flows.conftest import NOW, World

DECLARED = datetime(2026, 11, 27, 3, 14, 40, tzinfo=UTC)
COMMS = core.Comms(timedelta(minutes=30), timedelta(minutes=60))


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "INC-0007",
        "severity": "SEV-1",
        "status": "contained",
        "declared_at": "2026-11-27T03:14:40Z",
        "commander": "alice",
        "comms_owner": "bob",
        "last_status_at": "2099-01-01T00:00:00Z",  # keep the /status reminder out of these tests
    }
    return base | changes


def public_keys(given: dict[str, Any], now: datetime, comms: core.Comms | None = COMMS) -> list[str]:
    return [r.key for r in core.due_reminders(given, "", now, comms=comms) if r.kind == "public"]


def published(state: str, at: str) -> dict[str, Any]:
    return {"n": 1, "state": state, "text": "x", "drafted_by": "bob", "approved_by": "bob", "published_at": at}


def test_a_sev1_with_no_public_update_is_reminded_after_the_configured_minutes() -> None:
    assert public_keys(fields(), DECLARED + timedelta(minutes=29, seconds=59)) == []
    assert public_keys(fields(), DECLARED + timedelta(minutes=30)) == ["remind:INC-0007:public-first"]
    assert public_keys(fields(), DECLARED + timedelta(minutes=12), core.Comms(timedelta(minutes=10))) == [
        "remind:INC-0007:public-first"
    ]
    assert (
        public_keys(fields(severity="SEV-2"), DECLARED + timedelta(hours=3)) == []
    )  # the first-update rule is SEV-1's
    assert public_keys(fields(status="resolved"), DECLARED + timedelta(hours=3)) == []
    assert public_keys(fields(), DECLARED + timedelta(hours=3), comms=None) == []  # not asked for: not reminded
    # A draft nobody approved is not a public update.
    draft = {"n": 1, "state": "investigating", "text": "x", "drafted_by": "bob", "drafted_at": "2026-11-27T03:20:00Z"}
    assert public_keys(fields(public_updates=[draft]), DECLARED + timedelta(minutes=31)) == [
        "remind:INC-0007:public-first"
    ]


def test_an_active_public_incident_goes_stale_and_each_lapse_is_its_own_condition() -> None:
    first = fields(severity="SEV-2", public_updates=[published("identified", "2026-11-27T03:30:00Z")])
    at = datetime(2026, 11, 27, 4, 29, 59, tzinfo=UTC)
    assert public_keys(first, at) == []
    assert public_keys(first, at + timedelta(seconds=1)) == ["remind:INC-0007:public-stale:2026-11-27T03:30:00Z"]
    later = fields(public_updates=[published("monitoring", "2026-11-27T04:40:00Z")])
    assert public_keys(later, datetime(2026, 11, 27, 5, 40, tzinfo=UTC)) == [
        "remind:INC-0007:public-stale:2026-11-27T04:40:00Z"
    ]
    done = fields(public_updates=[published("resolved", "2026-11-27T03:30:00Z")])
    assert public_keys(done, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) == []  # resolved publicly: nothing to say


def test_the_reminder_flow_posts_each_once_to_the_comms_owner(world: World) -> None:
    number = declared(world)
    inc = f"INC-{number:04d}"
    world.run(comment(world, number, "/comms @triager"))
    world.run(comment(world, number, "/status working on it"), now=NOW + timedelta(minutes=25))

    def public_posted(now: datetime) -> list[str]:
        return [k for k in run_reminders(world.ports(now)).details.get("posted", []) if ":public-" in k]

    assert public_posted(NOW + timedelta(minutes=29)) == []
    assert public_posted(NOW + timedelta(minutes=30)) == [f"remind:{inc}:public-first"]
    assert public_posted(NOW + timedelta(minutes=35)) == []  # the next scheduled run says nothing new
    reminder = next(c for c in world.comments(number) if f"incidentops:remind:{inc}:public-first" in c)
    assert "@triager" in reminder and "customers have heard nothing" in reminder and "/publish" in reminder

    world.run(comment(world, number, "/public investigating Reports are unavailable."), now=NOW + timedelta(minutes=36))
    world.run(comment(world, number, "/publish", "triager"), now=NOW + timedelta(minutes=40))
    assert public_posted(NOW + timedelta(minutes=99)) == []
    stale = "2026-11-27T03:54:40Z"
    assert public_posted(NOW + timedelta(minutes=100)) == [f"remind:{inc}:public-stale:{stale}"]
    assert public_posted(NOW + timedelta(minutes=101)) == []
    assert any("last public update (investigating) is 60 minutes old" in c for c in world.comments(number))
