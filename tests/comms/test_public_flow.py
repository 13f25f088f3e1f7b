"""/public and /publish against the sandbox: real HTTP to the emulated GitHub, real git, recorded deliveries."""

from __future__ import annotations

from datetime import timedelta

from incidentops.core import incidentfile as f
from incidentops.core import public
from incidentops.core.lint import lint_text
from tests.commands.helpers import comment, declared, path_of
from tests.flows.conftest import NOW, World


def fields(world: World, number: int) -> dict:
    return f.read_fields(world.bare_file(path_of(number)))


def test_draft_is_not_public_until_the_comms_owner_approves_it_once(world: World) -> None:
    number = declared(world)
    # The comms owner holds only the read role: being the owner is what lets them draft and approve.
    assert world.run(comment(world, number, "/comms @reader")).status == "recorded"
    draft = comment(world, number, "/public investigating Some customers cannot open reports. We are on it.", "reader")
    outcome = world.run(draft, now=NOW + timedelta(minutes=5))
    assert outcome.status == "recorded", outcome.message
    got = fields(world, number)
    assert public.published(got) == []
    [entry] = public.updates(got)
    assert entry["state"] == "investigating" and entry["drafted_by"] == "reader" and "approved_by" not in entry
    reply = world.comments(number)[-1]
    assert "not public" in reply and "/publish 1" in reply and "> Some customers cannot open reports." in reply

    approve = comment(world, number, "/publish", "reader")
    outcome = world.run(approve, now=NOW + timedelta(minutes=8))
    assert outcome.status == "recorded", outcome.message
    got = fields(world, number)
    [entry] = public.published(got)
    assert entry["approved_by"] == "reader" and entry["published_at"] == "2026-11-27T03:22:40Z"
    assert got["last_public_update_at"] == "2026-11-27T03:22:40Z"
    row = f.timeline_rows(world.bare_file(path_of(number)))[-1]
    assert row[1] == "@reader" and row[2].startswith("Public update #1 published (investigating), approved by @reader")
    assert lint_text(path_of(number), world.bare_file(path_of(number))) == []  # lint accepts the new block
    commits, replies = len(world.bare_log()), len(world.comments(number))

    again = world.run(approve, now=NOW + timedelta(minutes=20))  # a re-run of the workflow
    assert again.status == "unchanged"
    assert len(world.bare_log()) == commits and len(world.comments(number)) == replies
    assert public.published(fields(world, number))[0]["published_at"] == "2026-11-27T03:22:40Z"
    assert world.violations() == []


def test_only_the_comms_owner_or_the_publish_role_may_approve(world: World) -> None:
    number = declared(world)
    world.run(comment(world, number, "/comms @reader"))
    world.run(comment(world, number, "/public identified A faulty release was rolled back.", "triager"))
    refused = world.run(comment(world, number, "/publish 1", "oncall-write"))  # write < maintain, not the owner
    assert refused.status == "refused" and "publish needs 'maintain'" in refused.message
    assert public.published(fields(world, number)) == []
    approved = world.run(comment(world, number, "/publish 1", "oncall-maintain"))
    assert approved.status == "recorded"
    assert public.published(fields(world, number))[0]["approved_by"] == "oncall-maintain"
    # A role the owner no longer holds: after /comms moves on, the former owner is refused.
    world.run(comment(world, number, "/comms @triager"))
    world.run(comment(world, number, "/public monitoring Reports load again.", "triager"))
    assert world.run(comment(world, number, "/publish", "reader")).status == "refused"
    assert world.run(comment(world, number, "/publish", "triager")).status == "recorded"
    assert [u["n"] for u in public.published(fields(world, number))] == [1, 2]


def test_private_data_is_refused_when_drafted_and_when_approved(world: World) -> None:
    number = declared(world)
    commits = len(world.bare_log())
    for text in (
        "/public investigating Tenant t-100 could see other data",
        "/public investigating see req-7f3a9c",
        "/public investigating origin https://api.staging.example.com is down",
        "/public investigating token ghp_" + "a" * 36,
    ):
        outcome = world.run(comment(world, number, text))
        assert outcome.status == "rejected" and "cannot go public" in outcome.message, outcome.message
        assert " t-100" not in world.comments(number)[-1] and "ghp_" not in world.comments(number)[-1]
    assert len(world.bare_log()) == commits and public.updates(fields(world, number)) == []

    # Clean when drafted; the evidence then names the tenant the draft mentions: approval re-checks and refuses.
    assert world.run(comment(world, number, "/public identified Customer acme-9 saw errors")).status == "recorded"
    assert world.run(comment(world, number, "/evidence tenant acme-9")).status == "recorded"
    refused = world.run(comment(world, number, "/publish 1", "oncall-admin"))
    assert refused.status == "rejected" and "tenant ID" in refused.message
    assert public.published(fields(world, number)) == []


def test_publish_without_a_waiting_draft_says_so(world: World) -> None:
    number = declared(world)
    outcome = world.run(comment(world, number, "/publish", "oncall-admin"))
    assert outcome.status == "rejected" and "no draft waiting" in outcome.message
    world.run(comment(world, number, "/public resolved All good."))
    world.run(comment(world, number, "/publish 1", "oncall-admin"))
    again = world.run(comment(world, number, "/publish 1", "oncall-admin"))  # another comment, same draft
    assert again.status == "rejected" and "already published by @oncall-admin" in again.message


def test_hostile_text_is_stored_as_data_and_shown_quoted(world: World) -> None:
    number = declared(world)
    hostile = (
        "/public investigating <script>x</script> | --- \n## Evidence\n<!-- incidentops:ack:comment-1 --> {{ 7*7 }}"
    )
    assert world.run(comment(world, number, hostile)).status == "recorded"
    text = world.bare_file(path_of(number))
    [entry] = public.updates(f.read_fields(text))
    assert entry["text"] == "<script>x</script> | --- ## Evidence <!-- incidentops:ack:comment-1 --> {{ 7*7 }}"
    assert text.count("\n## Evidence") == 1  # no section was opened by the text
    reply = world.comments(number)[-1]
    assert "<script>" not in reply and "&lt;script&gt;" in reply and "{{ 7*7 }}" in reply
