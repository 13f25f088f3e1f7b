"""Parsing public updates and the check that keeps private data off the status page (pure)."""

from __future__ import annotations

import pytest

from incidentops.core import public
from incidentops.core.commands import Context

FIELDS = {
    "impact": {"tenants": ["t-100", "t-200"], "request_ids": ["req-7f3a9c", "req-81be02"], "routes": ["/v1/reports"]},
}
PRIVATE = public.private_facts(
    FIELDS, ["api.staging.example.com"], ["f13620d226fb5c33abb54db360570197", "e7cdb8bd5e8f5c6eafec1a9af2770527"]
)


@pytest.mark.parametrize("state", public.STATES)
def test_each_state_drafts(state: str) -> None:
    assert public.parse("public", f"{state.upper()} Reports are delayed.\nMore soon.") == public.Draft(
        state, "Reports are delayed. More soon."
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("", "where one of investigating"),
        ("fixed all good", "'fixed' where one of investigating"),
        ("monitoring", "text for customers is empty"),
        ("monitoring    \n  ", "text for customers is empty"),
        ("resolved " + "x" * 1001, "at most 1000"),
    ],
)
def test_bad_drafts_say_what_is_wrong(args: str, problem: str) -> None:
    parsed = public.parse("public", args)
    assert isinstance(parsed, public.Problem) and problem in parsed.message
    assert parsed.usage.startswith("/public investigating|identified")


def test_publish_takes_an_optional_draft_number() -> None:
    assert public.parse("publish", "") == public.Publish(None)
    assert public.parse("publish", "#3") == public.Publish(3)
    bad = public.parse("publish", "latest please")
    assert isinstance(bad, public.Problem) and "'latest please'" in bad.message


@pytest.mark.parametrize(
    "text",
    [
        "We are investigating elevated error rates on api.example.com and the customer portal.",
        "Reports export v1.2.3 failed for some customers between 03:05 and 04:10 UTC; fixed in 2.0.",
        "Some customers could briefly see another organisation's report titles. Access is blocked.",
        "See https://portal.example.com/help for details.",
    ],
)
def test_customer_language_passes(text: str) -> None:
    assert public.leaks(text, PRIVATE) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Tenant t-100 saw data of another tenant", "tenant ID"),
        ("Affected: T-200.", "tenant ID"),
        ("tenant t&#45;100 was affected", "tenant ID"),  # an HTML entity
        ("tenant t&amp;#45;200 was affected", "tenant ID"),  # doubly encoded
        ("tenant t%2D100 was affected", "tenant ID"),  # percent-encoded
        ("tenant ｔ-１００ was affected", "tenant ID"),  # full-width letters and digits
        ("tenant t-1\u200b00 was affected", "tenant ID"),  # a zero-width space inside
        ("tenant t\u2011100 was affected", "tenant ID"),  # a non-breaking hyphen
        ("see request req-7f3a9c", "request ID from this incident"),
        ("see request req-deadbeef", "shaped like a request"),
        ("ray 8f3b2a91c4d5e6f7-FRA", "shaped like a request"),
        ("trace 123e4567-e89b-12d3-a456-426614174000", "shaped like a request"),
        ("see https://api.staging.example.com/v1/reports", "internal host"),
        ("origin api-worker.acme.workers.dev returned 500", "internal host"),
        ("preview at 3f2a.admin-pages.pages.dev", "internal host"),
        ("the database db1.prod.internal was slow", "internal host"),
        ("fallback to http://localhost:8080", "internal host"),
        ("the node 10.0.3.17 failed", "IP address"),
        ("the node fe80::1:2:3 failed", "IP address"),
        ("zone e7cdb8bd5e8f5c6eafec1a9af2770527 rules", "account or zone id"),
    ],
)
def test_private_data_is_refused_however_it_is_written(text: str, reason: str) -> None:
    found = public.leaks(text, PRIVATE)
    assert any(reason in r for r in found), found
    assert all("t-100" not in r and "req-" not in r for r in found)  # the reasons never repeat the value


def test_direction_overrides_are_removed_before_the_check() -> None:
    # Displayed as "t-100" with the override in place; stored (and checked, and shown) without it.
    draft = public.parse("public", "investigating tenant t-\u202e001 was affected")
    assert isinstance(draft, public.Draft) and draft.text == "tenant t-001 was affected"


def test_a_tenant_id_inside_a_longer_word_is_not_a_match() -> None:
    assert public.leaks("our t-1000 plan and at-100 speeds", PRIVATE) == []


def test_draft_then_publish_records_who_and_when_once_per_event() -> None:
    text = "---\nid: INC-0001\n---\n\n## Timeline\n\n| time (UTC) | who | what | command / link |\n|---|---|---|---|\n"
    draft = public.Draft("investigating", "Reports are delayed.")
    first = public.apply_draft(text, draft, Context("carol", "2026-11-27T03:20:00Z", "[c](u)", "comment-1"))
    assert first is not None
    text, number = first
    assert number == 1 and public.published(_fields(text)) == []
    assert public.apply_draft(text, draft, Context("carol", "2026-11-27T03:21:00Z", "", "comment-1")) is None
    approved = public.apply_publish(text, 1, Context("dave", "2026-11-27T03:25:00Z", "", "comment-2"))
    assert approved is not None
    got = public.published(_fields(approved))
    assert [(u["n"], u["approved_by"], u["published_at"], u["drafted_by"]) for u in got] == [
        (1, "dave", "2026-11-27T03:25:00Z", "carol")
    ]
    assert _fields(approved)["last_public_update_at"] == "2026-11-27T03:25:00Z"
    assert public.pending(_fields(approved), 1) == "draft #1 was already published by @dave at 2026-11-27T03:25:00Z"
    assert public.pending(_fields(approved), None).startswith("there is no draft waiting")
    assert public.pending(_fields(approved), 7) == "there is no draft #7"


def _fields(text: str) -> dict:
    from incidentops.core import incidentfile as f

    return f.read_fields(text)


def test_lint_reports_a_mangled_public_update() -> None:
    from incidentops.core.lint import lint_text

    head = "---\nid: INC-0001\ntitle: t\nseverity: SEV-1\nstatus: declared\n"
    head += "declared_at: '2026-11-27T03:14:40Z'\nissue: 1\n"
    body = "---\n\n## Timeline\n\n| time (UTC) | who | what | command / link |\n|---|---|---|---|\n"
    good = "public_updates: [{n: 1, state: monitoring, text: ok, drafted_by: a, drafted_at: '2026-11-27T03:20:00Z'}]\n"
    assert lint_text("incidents/INC-0001.md", head + good + body) == []
    bad = "public_updates: [{n: 1, state: fixed, text: ok, drafted_by: a, approved_by: b}, {n: 1}]\n"
    messages = [p.message for p in lint_text("incidents/INC-0001.md", head + bad + body)]
    assert "public_updates[1].state 'fixed' is not one of investigating, identified, monitoring, resolved" in messages
    assert "public_updates[1] needs both approved_by and published_at, or neither (a draft)" in messages
    assert "public_updates[2].n must be a unique draft number, found 1" in messages
