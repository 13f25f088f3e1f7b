"""Slash commands against the sandbox: real HTTP to the emulated GitHub, real git, recorded webhook deliveries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from incidentops.core import incidentfile as f
from tests.commands.helpers import NO_ROLLBACK, comment, declared, path_of, run_at_once
from tests.flows.conftest import NOW, World


def rows(world: World, number: int) -> list[list[str]]:
    return f.timeline_rows(world.bare_file(path_of(number)))


def fields(world: World, number: int) -> dict:
    return f.read_fields(world.bare_file(path_of(number)))


def test_note_adds_one_row_with_time_author_and_link_and_one_ack_even_when_redelivered(world: World) -> None:
    number = declared(world)
    delivery = comment(world, number, "/note rolled back api-worker by hand")
    comment_id = delivery["payload"]["comment"]["id"]
    later = NOW + timedelta(minutes=3)
    outcome = world.run(delivery, now=later)
    assert outcome.status == "recorded", outcome.message
    last = rows(world, number)[-1]
    assert last[0] == "2026-11-27T03:17:40Z" and last[1] == "@oncall-write"
    assert last[2] == "Note: rolled back api-worker by hand"
    assert f"#issuecomment-{comment_id}" in last[3] and f"<!-- ev:comment-{comment_id} -->" in last[3]
    acks = [c for c in world.comments(number) if f"incidentops:ack:comment-{comment_id}" in c]
    assert len(acks) == 1 and "/note" in acks[0] and f"INC-{number:04d}" in acks[0]
    commits = len(world.bare_log())

    again = world.run(delivery, now=later + timedelta(minutes=1))
    assert again.status == "unchanged" and "already applied" in again.message
    assert len(world.bare_log()) == commits
    assert len([c for c in world.comments(number) if "incidentops:ack:" in c]) == 1
    assert world.violations() == []


def test_an_edited_comment_does_not_apply_again(world: World) -> None:
    number = declared(world)
    world.run(comment(world, number, "/note first"))
    issue_comment = list(world.repo().get_issue(number).get_comments())[-2]  # ours, before the ack reply
    assert issue_comment.body == "/note first"
    issue_comment.edit("/note first, edited")
    outcome = world.run(world.next_event("issue_comment", "edited"))
    assert outcome.status == "skipped"
    assert [r[2] for r in rows(world, number)].count("Note: first") == 1
    assert not any("edited" in r[2] for r in rows(world, number))


def test_roles_status_and_risks_update_the_front_matter(world: World) -> None:
    number = declared(world)
    assert world.run(comment(world, number, "/ic @oncall-admin")).status == "recorded"
    assert world.run(comment(world, number, "/comms @triager")).status == "recorded"
    world.run(comment(world, number, "/status mitigation in progress"), now=NOW + timedelta(minutes=9))
    world.run(comment(world, number, "/risk tenant-isolation open reports leak"))
    world.run(comment(world, number, "/risk authz cleared tokens were scoped"))
    world.run(comment(world, number, "/security-impact yes tenant B read tenant A's reports"))
    got = fields(world, number)
    assert got["commander"] == "oncall-admin" and got["comms_owner"] == "triager"
    assert got["last_status_at"] == "2026-11-27T03:23:40Z"
    assert got["risks"] == {"tenant-isolation": "open", "authz": "cleared"}
    assert got["security_impacting"] is True
    whats = [r[2] for r in rows(world, number)]
    assert "Incident commander: @oncall-admin (was @oncall-write)" in whats
    assert "Communications owner: @triager" in whats
    assert "Status update: mitigation in progress" in whats
    assert "Risk authz: cleared — tokens were scoped" in whats
    text = world.bare_file(path_of(number))
    assert "- Security-impacting behavior changed: **yes** — tenant B read tenant A's reports" in text


def test_evidence_replaces_unknown_and_merges_values(world: World) -> None:
    body = NO_ROLLBACK.replace("req-7f3a9c\nreq-81be02", "_No response_")
    number = declared(world, body=body)
    assert fields(world, number)["impact"]["request_ids"] == "unknown"
    assert "Request IDs" in fields(world, number)["unknown_fields"]
    world.run(comment(world, number, "/evidence request-id req-1 req-2"))
    world.run(comment(world, number, "/evidence request-id req-2, req-3"))
    world.run(comment(world, number, "/evidence tenant t-300"))
    got = fields(world, number)
    assert got["impact"]["request_ids"] == ["req-1", "req-2", "req-3"]
    assert got["impact"]["tenants"] == ["t-100", "t-200", "t-300"]
    assert "Request IDs" not in got["unknown_fields"]
    assert "Evidence request ids: req-2, req-3 (1 already listed)" in [r[2] for r in rows(world, number)]


def next_adr_number() -> int:
    """The number after the ADRs this repository ships (the sandbox is seeded with them)."""
    root = Path(__file__).resolve().parents[2]
    return max(int(p.name[:4]) for p in (root / "docs/adrs").glob("[0-9][0-9][0-9][0-9]-*.md")) + 1


def test_decision_log_row_and_adr_stub_linked_both_ways(world: World) -> None:
    number = declared(world)
    world.run(comment(world, number, "/decision keep the deny rule until the fix ships"))
    delivery = comment(world, number, "/decision --adr Move tenant scoping into the query layer")
    outcome = world.run(delivery)
    assert outcome.status == "recorded", outcome.message
    text = world.bare_file(path_of(number))
    log = text.split("## Decision log", 1)[1].split("\n## ", 1)[0]
    assert "| keep the deny rule until the fix ships | — |" in log
    n = next_adr_number()
    adr = f"docs/adrs/{n:04d}-move-tenant-scoping-into-the-query-layer.md"
    assert f"| Move tenant scoping into the query layer | [ADR-{n:04d}](../{adr}) |" in log
    adr_text = world.bare_file(adr)
    assert adr_text.startswith(f"# {n}. Move tenant scoping into the query layer\n")
    for section in ("## Status", "## Context", "## Decision", "## Consequences"):
        assert section in adr_text
    assert f"[INC-{number:04d}](../../incidents/INC-{number:04d}.md)" in adr_text
    # The incident file and the ADR land in one commit.
    assert world.bare_log(adr) == world.bare_log(path_of(number))[:1]
    # A re-delivery writes no second ADR.
    adr_commits = world.bare_log("docs/adrs")
    assert world.run(delivery).status == "unchanged"
    assert world.bare_log("docs/adrs") == adr_commits


def test_below_the_configured_role_is_refused_and_nothing_written(world: World) -> None:
    number = declared(world)
    commits = len(world.bare_log())
    outcome = world.run(comment(world, number, "/note I am just reading", login="reader"))
    assert outcome.status == "refused"
    assert len(world.bare_log()) == commits
    assert any("needs at least the **triage** role" in c for c in world.comments(number))


def test_unknown_and_malformed_commands_get_the_help_text_once(world: World) -> None:
    number = declared(world)
    unknown = comment(world, number, "/frobnicate now")
    assert world.run(unknown).status == "rejected"
    assert world.run(unknown).status == "rejected"
    helps = [c for c in world.comments(number) if "incidentops:help:" in c]
    assert len(helps) == 1 and "/frobnicate is not a command" in helps[0] and "`/note <text>`" in helps[0]
    bad = comment(world, number, '/followup "x" @oncall-write 2020-01-01')
    outcome = world.run(bad)
    assert outcome.status == "rejected" and "in the past" in outcome.message
    helps = [c for c in world.comments(number) if "incidentops:help:" in c]
    assert len(helps) == 2 and 'Write it as `/followup "<task>" @owner YYYY-MM-DD`' in helps[1]
    assert world.run(comment(world, number, "/help")).status == "help"
    assert not any("Follow-up" in r[2] for r in rows(world, number))


def test_hostile_text_stays_data(world: World) -> None:
    number = declared(world)
    before = world.bare_file(path_of(number))
    hostile = "a | b\n---\nid: INC-9999\n{{ config }} {% raw %} <script>alert(1)</script> ## Decision log <!-- x -->"
    world.run(comment(world, number, "/note " + hostile))
    world.run(comment(world, number, "/decision " + hostile))
    text = world.bare_file(path_of(number))
    assert f.read_fields(text)["id"] == f"INC-{number:04d}"
    assert f.split(text)[0] == f.split(before)[0]  # the front matter is untouched
    note = rows(world, number)[-2]
    assert note[2].startswith("Note: a \\| b --- id: INC-9999 {{ config }}")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert [line for line in text.split("\n") if line.startswith("## Decision log")] == ["## Decision log"]
    assert len(rows(world, number)) == len(f.timeline_rows(before)) + 2


def test_ten_simultaneous_notes_give_ten_rows(world: World) -> None:
    number = declared(world)
    deliveries = [comment(world, number, f"/note parallel {i}") for i in range(10)]
    outcomes = run_at_once(world, deliveries, "run")
    # A run may apply an earlier comment whose own run has not got there yet (catching up with cancelled runs);
    # that comment's own run then finds it applied. Either way each note is applied exactly once.
    assert len(outcomes) == 10 and {o.status for o in outcomes} <= {"recorded", "unchanged"}
    notes = sorted(r[2] for r in rows(world, number) if r[2].startswith("Note: parallel"))
    assert notes == [f"Note: parallel {i}" for i in range(10)]
    # Every comment is acknowledged. (Runs for one issue never overlap in Actions — one concurrency group per
    # issue — so only this artificial overlap could post an acknowledgement twice.)
    acked = {
        c.split("incidentops:ack:", 1)[1].split(" ", 1)[0] for c in world.comments(number) if "incidentops:ack:" in c
    }
    assert len(acked) == 10
