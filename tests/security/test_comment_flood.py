"""#15 item 7: a comment flood neither buries the incident in replies nor exhausts the token.

Before: every command from someone without the role got its own refusal, anyone got a help reply, and every marker
look-up re-read all of the issue's comments 30 at a time. benchmarks/comment_flood.py counts the requests per run
on 5,000 comments; this test pins the behaviour on a few hundred.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from incidentops.adapters import github as github_adapter
from incidentops.core import incidentfile as f
from incidentops.core.timefmt import format_ts
from incidentops.flows.reconcile import sweep
from tests.flows.conftest import FORM_BODY, World

QUIET = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


def _declared(world: World) -> int:
    number = world.open_incident(body=QUIET.replace("- [x] Tenant isolation", "- [ ] Tenant isolation"))
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    return number


def test_one_refusal_per_person_and_no_help_for_people_without_a_role(world: World) -> None:
    number = _declared(world)
    before = len(world.comments(number))
    for route in ("a/b", "c/d", "e/f"):
        world.repo("triager").get_issue(number).create_comment(f"/contain api.example.com/{route}")
        assert world.run(world.next_event("issue_comment", "created")).status == "refused"
    world.repo("reader").get_issue(number).create_comment("/help")
    assert world.run(world.next_event("issue_comment", "created")).status == "skipped"
    replies = [c for c in world.comments(number)[before:] if c.startswith("<!-- incidentops:")]
    assert len(replies) == 1 and "needs at least the **write** role" in replies[0]


def test_a_run_reads_the_comments_once_a_hundred_at_a_time(world: World) -> None:
    number = _declared(world)
    api = f"{world.info['github_api_url']}/repos/{world.info['repository']}/issues/{number}/comments"
    with httpx.Client(headers={"Authorization": "token triager"}) as client:
        for i in range(250):
            client.post(api, json={"body": f"+1 ({i})"}).raise_for_status()
    world.repo("oncall-write").get_issue(number).create_comment("/note flood checked")
    delivery = world.next_event("issue_comment", "created")
    mark = len(httpx.get(world.info["control_url"] + "/requests").json())
    assert world.run(delivery).status == "recorded"
    made = httpx.get(world.info["control_url"] + "/requests").json()[mark:]
    pages = [r for r in made if r["method"] == "GET" and r["path"].endswith(f"/issues/{number}/comments")]
    # The catch-up reads the 252 comments once, in three pages; the acknowledgement of a note this run committed
    # needs no look-up (no earlier run can have answered a comment whose row it had not written).
    assert len(pages) == 3, [r.get("query") for r in pages]


def _flood(world: World, number: int, count: int, start: datetime) -> None:
    """`count` comments from a person without a role, then GitHub's timestamps spread one a second from `start`
    (GitHub's secondary limits allow no one 100 comments in a second; the emulator would stamp them all at once)."""
    api = f"{world.info['github_api_url']}/repos/{world.info['repository']}/issues/{number}/comments"
    with httpx.Client(headers={"Authorization": "token triager"}) as client:
        for i in range(count):
            client.post(api, json={"body": f"+1 ({i})"}).raise_for_status()


def _spread(world: World, number: int, start: datetime) -> None:
    comments = sorted((c for c in world.sandbox.github.comments.values() if c.issue == number), key=lambda c: c.id)
    for i, comment in enumerate(comments):
        comment.created_at = comment.updated_at = format_ts(start + timedelta(seconds=i))


def _comment_pages(world: World, number: int, mark: int) -> list[dict]:
    made = httpx.get(world.info["control_url"] + "/requests").json()[mark:]
    return [r for r in made if r["method"] == "GET" and r["path"].endswith(f"/issues/{number}/comments")]


def test_a_flood_costs_a_run_a_bounded_read_and_the_sweep_loses_no_command(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_adapter, "COMMENT_PAGES_PER_RUN", 1)  # 100 comments a listing, for a small flood
    number = _declared(world)
    issue = world.repo("oncall-write").get_issue(number)
    # Two notes whose runs GitHub cancelled (one pending run per group): one before a flood, one after it.
    issue.create_comment("/note before the flood")
    _flood(world, number, 250, datetime.now(UTC))
    issue.create_comment("/note after the flood")
    _spread(world, number, datetime.now(UTC) - timedelta(minutes=30))
    path = f"incidents/INC-{number:04d}.md"
    checkpoints = []
    for sweep_run in range(1, 6):
        mark = len(httpx.get(world.info["control_url"] + "/requests").json())
        outcome = sweep(world.ports())
        pages = _comment_pages(world, number, mark)
        assert len(pages) <= 1, [r["query"] for r in pages]  # the catch-up's one bounded page; acks need none
        text = world.bare_file(path)
        checkpoints.append(f.read_fields(text)["comments_checked"]["at"])
        if sweep_run == 1:
            assert "before the flood" in text and "after the flood" not in text
            assert any("the per-run bound" in s and "continues from" in s for s in outcome.steps), outcome.steps
        if "after the flood" in text:
            break
    assert "after the flood" in text and sweep_run >= 3, (sweep_run, outcome.steps)
    # The checkpoint only moves forward, a page at a time here (a window under a page is not worth a commit).
    assert checkpoints == sorted(checkpoints) and checkpoints[0] < checkpoints[1]
    for note in ("before the flood", "after the flood"):
        assert sum(note in row[2] for row in f.timeline_rows(text)) == 1  # applied once
        assert sum(note in body for body in world.comments(number)) == 1  # the command itself; the ack quotes none
    # Each was acknowledged once, and a sweep after that finds nothing left.
    acks = [b for b in world.comments(number) if b.startswith("<!-- incidentops:ack:")]
    assert len(acks) == 2
    again = sweep(world.ports())
    assert not any("caught up" in s for s in again.steps), again.steps


def test_a_comment_run_reads_a_bounded_window_however_long_the_flood(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_adapter, "COMMENT_PAGES_PER_RUN", 1)
    number = _declared(world)
    _flood(world, number, 350, datetime.now(UTC))
    _spread(world, number, datetime.now(UTC) - timedelta(minutes=30))
    world.repo("oncall-write").get_issue(number).create_comment("/note still bounded")
    delivery = world.next_event("issue_comment", "created")
    mark = len(httpx.get(world.info["control_url"] + "/requests").json())
    outcome = world.run(delivery)
    assert outcome.status == "recorded"
    pages = _comment_pages(world, number, mark)
    # One page for the catch-up (of four), and no look-up for the acknowledgement of a note this run committed.
    assert len(pages) <= 2, [r["query"] for r in pages]
    assert any("the per-run bound" in s for s in outcome.steps), outcome.steps
    assert sum(b.startswith("<!-- incidentops:ack:") for b in world.comments(number)) == 1
