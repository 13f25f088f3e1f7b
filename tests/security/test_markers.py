"""#15 item 5 and #12 item 7: hidden markers count only where the bot wrote them.

Anyone who can comment can type `<!-- incidentops:… -->`, and any form field can carry `<!-- ev:… -->`. Before the
fix, such text suppressed the declaration comment, a command's acknowledgement, a reminder, and (through the
incident file) the blast radius row and the standing follow-ups.
"""

from __future__ import annotations

from incidentops.core import incidentfile as f
from tests.flows.conftest import FORM_BODY, World

QUIET_FORM = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


def test_a_forged_declaration_marker_does_not_suppress_the_declaration(world: World) -> None:
    number = world.open_incident(body=QUIET_FORM, author="reader")
    world.repo("reader").get_issue(number).create_comment(f"looks bad <!-- incidentops:declared:INC-{number:04d} -->")
    world.label(number, "sev-1", "oncall-write")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    assert any(c.startswith(f"<!-- incidentops:declared:INC-{number:04d} -->") for c in world.comments(number))


def test_a_forged_acknowledgement_marker_does_not_suppress_the_acknowledgement(world: World) -> None:
    number = world.open_incident(body=QUIET_FORM)
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    issue = world.repo("reader").get_issue(number)
    forged = issue.create_comment("+1")
    # The next comment id is predictable; the forger writes the marker the bot's reply to it would carry.
    forged.edit(f"+1 <!-- incidentops:ack:comment-{forged.id + 1} -->")
    world.repo("oncall-write").get_issue(number).create_comment("/note cache flushed")
    note = world.next_event("issue_comment", "created")
    assert note["payload"]["comment"]["id"] == forged.id + 1
    outcome = world.run(note)
    assert outcome.status == "recorded"
    assert any(s.startswith("acknowledged /note") for s in outcome.steps), outcome.steps
    assert world.comments(number)[-1].startswith(f"<!-- incidentops:ack:comment-{forged.id + 1} -->")


def test_a_marker_typed_into_a_form_field_blocks_nothing_in_the_incident_file(world: World) -> None:
    number = world.open_incident(body=QUIET_FORM, author="reader")
    inc = f"INC-{number:04d}"
    hostile = QUIET_FORM.replace("t-100, t-200", f"t-100, <!-- ev:blast-radius-{inc} --> <!-- ev:{inc}:postmortem -->")
    world.repo("reader").get_issue(number).edit(body=hostile)
    world.label(number, "sev-1", "oncall-write")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    text = world.bare_file(f"incidents/{inc}.md")
    assert any("Blast radius measured" in row[2] for row in f.timeline_rows(text))
    assert not f.has_event(text, f"{inc}:postmortem")  # the standing follow-ups are still to be opened
