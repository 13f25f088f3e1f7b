"""The slash-command parser: what it accepts, and the precise error for what it does not."""

from __future__ import annotations

from datetime import date

import pytest

from incidentops.core import commands as c

TODAY = date(2026, 11, 27)


def parse(body: str) -> c.Parsed | c.CommandError:
    found = c.find_command(body)
    assert found is not None
    return c.parse_command(found[0], found[1], TODAY)


def test_a_command_is_what_the_comment_starts_with() -> None:
    assert c.find_command("/note rolled back\n/ic @x") == ("note", "rolled back\n/ic @x")
    assert c.find_command("thanks!\n/note rolled back") is None  # the workflow never starts a run for it
    assert c.find_command("```\n/note in code\n```\n/status ok") is None
    assert c.find_command("/v1/reports is down") is None
    assert c.find_command("see /tmp/x and /note") is None
    assert c.find_command("  /help") is None  # startsWith(body, '/') in incident.yml is false for it
    assert c.find_command("> /note quoted") is None
    assert c.find_command("/help") == ("help", "")


def test_roles() -> None:
    assert parse("/ic @alice") == c.Assign("commander", "alice")
    assert parse("/comms bob-2") == c.Assign("comms_owner", "bob-2")
    assert isinstance(parse("/ic @alice @bob"), c.CommandError)
    err = parse("/ic @<script>")
    assert isinstance(err, c.CommandError) and "not a GitHub login" in err.message
    assert isinstance(parse("/ic"), c.CommandError)


def test_text_commands_keep_hostile_text_as_one_line_of_data() -> None:
    note = parse("/note a | b\n{{ 7*7 }}\n---\n<img src=x>")
    assert note == c.Note("a | b {{ 7*7 }} --- <img src=x>")
    assert parse("/status all good") == c.Note("all good", status_update=True)
    assert isinstance(parse("/note   "), c.CommandError)


def test_decision_flag_anywhere() -> None:
    assert parse("/decision --adr keep the deny rule") == c.Decision("keep the deny rule", True)
    assert parse("/decision keep it --adr") == c.Decision("keep it", True)
    assert parse("/decision keep --adrx") == c.Decision("keep --adrx", False)
    assert isinstance(parse("/decision --adr"), c.CommandError)


def test_evidence() -> None:
    assert parse("/evidence request-id req-1, req-2 req-1") == c.Evidence("request_ids", ("req-1", "req-2"))
    assert parse("/evidence tenant t-9") == c.Evidence("tenants", ("t-9",))
    assert parse("/evidence route /v1/a /v1/b") == c.Evidence("routes", ("/v1/a", "/v1/b"))
    for body, fragment in [
        ("/evidence ip 1.2.3.4", "where request-id, tenant or route was expected"),
        ("/evidence tenant", "no tenant value"),
        ("/evidence route v1/a", "does not start with /"),
    ]:
        err = parse(body)
        assert isinstance(err, c.CommandError) and fragment in err.message, err


def test_security_impact_and_risk() -> None:
    assert parse("/security-impact no only availability") == c.SecurityImpact(False, "only availability")
    assert parse("/security-impact YES cross-tenant reads") == c.SecurityImpact(True, "cross-tenant reads")
    assert isinstance(parse("/security-impact maybe x"), c.CommandError)
    assert isinstance(parse("/security-impact yes"), c.CommandError)  # why is required
    assert parse("/risk authz cleared fixed in v3") == c.Risk("authz", "cleared", "fixed in v3")
    err = parse("/risk authz closed fixed")
    assert isinstance(err, c.CommandError) and "open or cleared" in err.message
    err = parse("/risk money open x")
    assert isinstance(err, c.CommandError) and "tenant-isolation, authz, data-integrity" in err.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('/followup "Add a test" @alice 2026-12-15', c.FollowUp("Add a test", "alice", date(2026, 12, 15))),
        ("/followup “Fix runbook” alice 2026-11-27", c.FollowUp("Fix runbook", "alice", TODAY)),
    ],
)
def test_followup_ok(body: str, expected: c.FollowUp) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("/followup Add a test @alice 2026-12-15", "quoted task"),
        ('/followup "Add a test" 2026-12-15', "quoted task"),
        ('/followup "Add a test" @alice', "quoted task"),
        ('/followup "" @alice 2026-12-15', "task is empty"),
        ('/followup "x" @alice 15/12/2026', "not YYYY-MM-DD"),
        ('/followup "x" @alice 2026-02-30', "not a calendar date"),
        ('/followup "x" @alice 2026-11-26', "in the past"),
        ('/followup "x" @alice 2031-01-01', "more than a year away"),
    ],
)
def test_followup_errors(body: str, fragment: str) -> None:
    err = parse(body)
    assert isinstance(err, c.CommandError) and fragment in err.message, err
    assert err.usage == c.USAGE["followup"]


def test_unknown_command_is_an_error() -> None:
    assert isinstance(c.parse_command("frobnicate", "", TODAY), c.CommandError)


def test_slug_and_adr_numbering() -> None:
    assert c.slug("Keep the /v1/reports deny rule — for now!") == "keep-the-v1-reports-deny-rule-for-now"
    assert c.slug("!!!") == "decision"
    assert len(c.slug("word " * 40)) <= 50
    names = ["0001-record.md", "0002-source.md", "README.md", "0010-x.md", "template.md"]
    assert c.next_adr_number(names) == 11
    assert c.next_adr_number([]) == 1
