"""#15 item 4: an edited comment is not replayed as a command in its author's name.

Catch-up (for runs GitHub cancelled) reads earlier comments' CURRENT text. Anyone with write access can edit
others' comments, so before the fix an admin's harmless comment, edited into `/decision …`, was applied as the
admin's decision by the next command's run.
"""

from __future__ import annotations

import time

from tests.flows.conftest import FORM_BODY, World

QUIET_FORM = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected")


def test_an_edited_comment_is_never_caught_up_as_a_command(world: World) -> None:
    number = world.open_incident(body=QUIET_FORM)
    world.label(number, "sev-1", "oncall-write")
    world.run(world.next_event("issues", "labeled"))
    said = world.repo("oncall-admin").get_issue(number).create_comment("thanks all, keep going")
    time.sleep(1.1)  # GitHub's timestamps have one-second resolution: the edit must land in a later second
    editor = world.repo("oncall-write").get_issue(number)
    editor.get_comment(said.id).edit("/decision Skip the rollback and ship a hotfix")
    world.repo("oncall-write").get_issue(number).create_comment("/note checking")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "recorded"
    assert not any(f"comment {said.id}" in s for s in outcome.steps), outcome.steps
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    assert "Skip the rollback" not in text
