"""A comment whose workflow run was cancelled (GitHub keeps one pending run per group) is applied by the next run."""

from __future__ import annotations

from incidentops.core import incidentfile as f
from tests.flows.conftest import FORM_BODY, World

QUIET = FORM_BODY.replace("- [x] A deploy regression is suspected", "- [ ] A deploy regression is suspected").replace(
    "- [x] Tenant isolation is at risk", "- [ ] Tenant isolation is at risk"
)


def test_a_cancelled_runs_command_is_applied_by_the_next_run_once(world: World) -> None:
    number = world.open_incident(body=QUIET)
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    issue = world.repo("oncall-write").get_issue(number)
    issue.create_comment("/note first: the run for this comment was cancelled")
    world.repo("reader").get_issue(number).create_comment("/note a reader's note, also never run")
    issue.create_comment("plain discussion, no command")
    issue.create_comment("/note second")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "recorded", outcome.message
    assert any("caught up with comment" in step for step in outcome.steps), outcome.steps
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    notes = [r[2] for r in f.timeline_rows(text) if r[2].startswith("Note")]
    assert len(notes) == 2 and any("first" in n for n in notes) and any("second" in n for n in notes)
    assert not any("reader" in n for n in notes)
    assert any("needs at least the **triage** role" in c for c in world.comments(number))  # the reader is told

    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = world.run(world.next_event("issue_comment", "created"))  # a re-run of the last event
    assert not any("caught up" in step for step in again.steps)
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_the_scheduled_sweep_repairs_what_no_later_event_did(world: World) -> None:
    from incidentops.flows.reconcile import sweep

    number = world.open_incident(body=QUIET)
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    issue = world.repo("oncall-write").get_issue(number)
    # The last events of a burst whose runs GitHub cancelled, with nothing after them to repair them.
    issue.create_comment("/note written while the runs were cancelled")
    world.repo("reader").get_issue(number).create_comment("/note a reader may not note")
    issue.edit(state="closed")
    outcome = sweep(world.ports())
    assert outcome.status == "repaired", outcome.message
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    rows = [r[2] for r in f.timeline_rows(text)]
    assert sum("written while the runs were cancelled" in r for r in rows) == 1
    assert not any("reader may not" in r for r in rows)
    judged = [i for i, r in enumerate(rows) if r.startswith("Exit criteria not met")]
    assert len(judged) == 1 and judged[0] > next(i for i, r in enumerate(rows) if "written while" in r)
    assert world.repo().get_issue(number).state == "open"  # reopened with what is missing

    commits, comments = len(world.bare_log()), len(world.comments(number))
    assert sweep(world.ports()).status == "unchanged"  # the next scheduled run finds nothing missed
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_a_sweep_racing_the_commands_own_run_leaves_the_acknowledgement_to_it(world: World) -> None:
    """The sweep (remind.yml's group) and a comment's own run (the incident's group) can apply the same command at
    once. The row is keyed on the comment, so it is written once; the acknowledgement must be posted once too,
    even when the sweep looks for it between the other run's commit and its reply."""
    import json

    from incidentops.adapters.github import PostedComment
    from incidentops.core.events import parse_event
    from incidentops.flows.dispatch import handle
    from incidentops.flows.reconcile import sweep

    number = world.open_incident(body=QUIET)
    world.label(number, "sev-1")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    world.repo("oncall-write").get_issue(number).create_comment("/note racing the sweep")
    delivery = world.next_event("issue_comment", "created")
    own = world.ports()
    held: list[tuple] = []  # the comment's own run, paused between its commit and its reply
    reply = own.github.post_comment_once

    def hold(*args: object, **kwargs: object) -> PostedComment:
        held.append((args, kwargs))
        return PostedComment(0, "", created=False)

    own.github.post_comment_once = hold  # type: ignore[method-assign]
    sweeper = world.ports()
    commit = sweeper.git.commit

    def the_other_run_commits_first(*args: object, **kwargs: object) -> object:
        if not held:
            handle(parse_event(delivery["event"], json.loads(json.dumps(delivery["payload"]))), own)
        return commit(*args, **kwargs)  # type: ignore[arg-type]

    sweeper.git.commit = the_other_run_commits_first  # type: ignore[method-assign]
    sweep(sweeper)
    assert held, "the comment's own run did not reach its reply"
    reply(*held[0][0], **held[0][1])  # type: ignore[arg-type]  # …which it then posts
    text = world.bare_file(f"incidents/INC-{number:04d}.md")
    assert sum("racing the sweep" in row[2] for row in f.timeline_rows(text)) == 1
    acks = [b for b in world.comments(number) if b.startswith("<!-- incidentops:ack:")]
    assert len(acks) == 1, acks


def test_a_comment_run_applies_a_severity_label_whose_run_was_cancelled_once(world: World) -> None:
    """The live issue is read while the command runs (not after it); what it shows is still applied, once."""
    number = world.open_incident(body=QUIET)
    world.label(number, "sev-2")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    world.label(number, "sev-1")  # its run was cancelled
    world.repo("oncall-write").get_issue(number).create_comment("/note escalating")
    delivery = world.next_event("issue_comment", "created")
    outcome = world.run(delivery)
    assert outcome.status == "recorded", outcome.message
    assert any(s.startswith("reconciled the severity label 'sev-1'") for s in outcome.steps), outcome.steps
    path = f"incidents/INC-{number:04d}.md"
    assert f.read_fields(world.bare_file(path))["severity"] == "SEV-1"

    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = world.run(delivery)  # a re-run of the same event
    assert again.status == "unchanged" and not any("reconciled" in s for s in again.steps), again.steps
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_a_failed_read_of_the_live_issue_is_reported_and_the_command_still_applied(world: World) -> None:
    import httpx

    number = world.open_incident(body=QUIET)
    world.label(number, "sev-2")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    world.repo("oncall-write").get_issue(number).create_comment("/note while GitHub stumbles")
    fault = {"method": "GET", "path": rf"/issues/{number}$", "status": 502, "count": None}
    httpx.post(world.info["control_url"] + "/faults", json=fault).raise_for_status()
    try:
        outcome = world.run(world.next_event("issue_comment", "created"))
    finally:
        httpx.delete(world.info["control_url"] + "/faults").raise_for_status()
    assert outcome.status == "recorded", outcome.message
    assert any(s.startswith("could not reconcile with the live issue") for s in outcome.steps), outcome.steps
    rows = f.timeline_rows(world.bare_file(f"incidents/INC-{number:04d}.md"))
    assert sum("while GitHub stumbles" in r[2] for r in rows) == 1
