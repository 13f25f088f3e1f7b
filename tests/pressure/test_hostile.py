"""Hostile titles, bodies and comments: no crash, data stays data, every incident file stays well-formed."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incidentops.config import load_config
from incidentops.core import incidentfile as f
from incidentops.core.declare import FIELD_ORDER_NEW
from incidentops.core.events import parse_event
from incidentops.core.form import read_intake
from incidentops.flows.declare import new_incident_text
from tests.flows.conftest import World
from tests.pressure.hostile import LABELS_LOOKALIKE, bodies, comments, titles

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT)
NOW = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)
PAYLOAD = json.loads((ROOT / "tests/fixtures/webhooks/issues.labeled.json").read_text())
SERVICES = tuple(s.name for s in CONFIG.services)
ENVS = tuple(e.name for e in CONFIG.environments)


def event_for(title: str, body: str):  # type: ignore[no-untyped-def]
    payload = copy.deepcopy(PAYLOAD)
    payload["issue"]["title"], payload["issue"]["body"] = title, body
    return parse_event("issues", payload)


COMMAND_KEYS = {*FIELD_ORDER_NEW, "last_status_at", "risks"}


def check_file(text: str, lint: bool = True, keys: set[str] | None = None, path: str = "incidents/INC-0001.md") -> None:
    """The structural promises every incident file keeps, whatever the input."""
    if lint:
        from incidentops.core.lint import lint_text

        assert lint_text(path, text) == []
    fields = f.read_fields(text)
    if keys is None:
        assert tuple(fields) == FIELD_ORDER_NEW  # no key added or dropped by user text
    else:
        assert set(FIELD_ORDER_NEW) <= set(fields) <= keys
    body = f.split(text)[1]
    headings = [line for line in body.split("\n") if line.startswith("## ")]
    assert headings == [
        "## Summary",
        "## Timeline",
        "## Timeline diagram",
        "## Decision log",
        "## Evidence",
        "## Containment",
        "## Rollback",
        "## Recovery verification",
        "## Follow-ups",
    ]
    rows = f.timeline_rows(text)
    assert all(len(cells) == 4 for cells in rows), rows
    # No row a user forged: every row starts with a timestamp the automation wrote.
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", cells[0]) for cells in rows), rows
    assert "boomboomboom" not in text and "\n49\n" not in text and "__globals__>" not in text
    # The body is rendered as HTML by GitHub: no live markup. (Front matter keeps user text verbatim as YAML data.)
    assert "<script>" not in body and "<img" not in body
    assert "\x00" not in text and "\u202e" not in text


@pytest.mark.parametrize("index", range(len(bodies())))
def test_every_hostile_body_still_declares_a_well_formed_file(index: int) -> None:
    body = bodies()[index]
    intake = read_intake(body, SERVICES, ENVS, now=NOW)
    text = new_incident_text(event_for("Reports leak", body), intake, "SEV-1", NOW)
    check_file(text)
    fields = f.read_fields(text)
    assert fields["environment"] in (*ENVS, "unknown")
    assert set(fields["services"]) <= set(SERVICES)
    assert fields["started_at"] == "unknown" or fields["started_at"] <= "2026-11-27T04:00:00Z"


@pytest.mark.parametrize("title", titles())
def test_every_hostile_title_is_one_clean_line(title: str) -> None:
    text = new_incident_text(event_for(title, ""), read_intake("", SERVICES, ENVS, now=NOW), "SEV-1", NOW)
    check_file(text)
    stored = f.read_fields(text)["title"]
    assert "\n" not in stored and len(stored) <= 200


@pytest.mark.parametrize("label", LABELS_LOOKALIKE)
def test_look_alike_labels_declare_nothing(label: str) -> None:
    from incidentops.core.declare import NotForUs, classify

    payload = copy.deepcopy(PAYLOAD)
    payload["label"]["name"] = label
    assert isinstance(classify(parse_event("issues", payload), CONFIG), NotForUs)


@pytest.mark.slow
def test_hostile_issues_through_the_real_flow(world: World) -> None:
    """A sample through GitHub, git and the declare flow end to end."""
    sample = bodies()[::12]
    numbers = []
    for i, body in enumerate(sample):
        numbers.append(world.open_incident(title=titles()[i % len(titles())][:250] or "x", body=body[:60_000]))
        world.label(numbers[-1], "sev-1")
        outcome = world.run(world.next_event("issues", "labeled"))
        assert outcome.status == "declared", outcome.message
    for number in numbers:
        path = f"incidents/INC-{number:04d}.md"
        check_file(world.bare_file(path), path=path, keys=COMMAND_KEYS)
        comment = world.comments(number)[0]
        assert "<script>" not in comment and "{{ 7*7 }}" not in comment.replace("\\", "")
    assert world.violations() == []


@pytest.mark.parametrize("index", range(len(comments())))
def test_every_hostile_comment_is_data_or_a_clear_refusal(index: int) -> None:
    """Parse and apply each comment as the command flows do; the file stays well-formed and lint-clean."""
    from incidentops.core.commands import (
        CommandError,
        Context,
        FollowUp,
        Help,
        apply,
        apply_followup,
        find_command,
        parse_command,
    )

    body = comments()[index]
    base = new_incident_text(event_for("Reports leak", ""), read_intake(FORM, SERVICES, ENVS, now=NOW), "SEV-1", NOW)
    found = find_command(body)
    if found is None:
        return  # not a command: nothing to do, nothing to say
    parsed = parse_command(found[0], found[1], NOW.date())
    if isinstance(parsed, CommandError):
        assert parsed.message  # a precise complaint, answered with the help text
        return
    ctx = Context("eve", "2026-11-27T04:05:00Z", "[comment](https://example.invalid/c/1)", f"comment-{index}")
    if isinstance(parsed, Help):
        return  # answered with the help text; the file is not touched
    if isinstance(parsed, FollowUp):  # the follow-ups flow opens the issue, then records it with this edit
        text = apply_followup(base, parsed, "[#99](https://github.com/acme/ops/issues/99)", ctx)
    else:
        text = apply(base, parsed, ctx)
    assert text is not None  # a first application always records something
    check_file(text, keys=COMMAND_KEYS)


FORM = (ROOT / "tests/fixtures/forms/full.md").read_text()


@pytest.mark.slow
def test_every_hostile_followup_through_the_real_flow(world: World) -> None:
    """Each hostile `/followup` as a comment, end to end: one follow-up issue each, data kept as data."""
    from incidentops.core.commands import FollowUp, find_command, parse_command

    followups = []
    for body in comments():
        found = find_command(body)
        if found and found[0] == "followup":
            assignable = body.replace(" @x ", " @oncall-write ")  # @x has no access, so GitHub could not assign
            if isinstance(parse_command("followup", find_command(assignable)[1], NOW.date()), FollowUp):  # type: ignore[index]
                followups.append(assignable)
    assert len(followups) > 20
    number = world.open_incident()
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled"), now=NOW).status == "declared"
    issue = world.repo("oncall-write").get_issue(number)
    for body in followups:
        issue.create_comment(body)
        outcome = world.run(world.next_event("issue_comment", "created"), now=NOW)
        assert outcome.status == "recorded", (body[:80], outcome.status, outcome.message)
    path = f"incidents/INC-{number:04d}.md"
    text = world.bare_file(path)
    check_file(text, path=path, keys=COMMAND_KEYS)
    opened = [i for i in world.repo().get_issues(state="all", labels=["incident-followup"])]
    assert len(opened) == len(followups)
    for created in opened:
        assert "\n" not in created.title and len(created.title) <= 256
        assert "<script>" not in created.body and "<img" not in created.body
        assert "\x00" not in created.body + created.title and "\u202e" not in created.body + created.title
        assert "\n49\n" not in created.body and "boomboomboom" not in created.body
    acknowledgements = [c.body for c in issue.get_comments() if c.user.login == "github-actions[bot]"]
    assert len([c for c in acknowledgements if "the Follow-ups table (issue #" in c]) == len(followups)
    assert all("<script>" not in c and "<img" not in c and "\x00" not in c for c in acknowledgements)
    assert world.violations() == []
