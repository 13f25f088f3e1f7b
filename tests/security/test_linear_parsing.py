"""#15 item 8: every parser of user text handles GitHub's 65,536-character body limit, correctly.

The old `(.*?)\\s*$` line patterns of core/form.py, the lazy `<!--.*?-->` comment strippers and the PEM-key
redaction pattern backtracked quadratically: about two minutes for one 65,536-character form body. Speed is
measured in benchmarks/parsing.py (a ratio of 4x the input, not a clock limit); these tests pin what the linear
replacements must still find on inputs of exactly that size.
"""

from __future__ import annotations

from datetime import UTC, datetime

from incidentops.core.form import read_intake
from incidentops.core.incidentfile import strip_comments
from incidentops.core.redact import MASK, Redactor

LIMIT = 65_536  # GitHub's issue and comment body limit, in characters
NOW = datetime(2026, 11, 27, 4, tzinfo=UTC)


def _pad(head: str, tail: str, filler: str = " ") -> str:
    return head + filler * (LIMIT - len(head) - len(tail)) + tail


def test_a_heading_padded_to_the_body_limit_is_still_read() -> None:
    body = _pad("### Summary", "\n\nit leaks\n\n### Environment\n\nproduction\n")
    assert len(body) == LIMIT
    intake = read_intake(body, ("api-worker",), ("production",), now=NOW)
    assert intake.environment == "production"


def test_a_checkbox_padded_to_the_body_limit_is_still_read() -> None:
    tail = "Tenant isolation is at risk   \n"
    body = _pad("### Risk assessment\n\n- [x] ", tail)
    assert len(body) == LIMIT
    assert read_intake(body, (), ("production",), now=NOW).tenant_isolation_risk is True


def test_unclosed_comment_openers_to_the_limit() -> None:
    text = _pad("<!-- a --> kept ", "", "<!--")[:LIMIT]
    assert strip_comments(text).startswith(" kept ")
    assert strip_comments("a<!-- x -->b<!-- y -->c") == "abc"


def test_unclosed_private_key_headers_to_the_limit_are_masked() -> None:
    begin = "-----BEGIN PRIVATE KEY-----\n"
    text = "ok " + begin * ((LIMIT - 3) // len(begin))
    assert Redactor()(text) == "ok " + MASK
    closed = f"a {begin}MIIE\n-----END PRIVATE KEY----- b"
    assert Redactor()(closed) == f"a {MASK} b"
