import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from incidentops.core import incidentfile as f

BASE = """---
id: INC-0007
title: Reports leak
severity: SEV-2
status: declared
impact: {routes: [/v1/reports], tenants: unknown}
escalations: []
---
# INC-0007 — Reports leak

## Summary

> text

## Timeline

| time (UTC) | who | what | command / link |
|---|---|---|---|
| 2026-11-27T03:14:40Z | @alice | Declared SEV-2 |  |

## Decision log

| time (UTC) | who | decision | ADR |
|---|---|---|---|
"""


def strip_diagram(text: str) -> str:
    """The file without its machine-owned diagram section."""
    return re.sub(r"## Timeline diagram\n.*?\n(?=## |\Z)", "", text, flags=re.S)


ROW = f.TimelineRow("2026-11-27T03:20:00Z", "bob", "Escalated SEV-2 → SEV-1", "", key="k1")


def test_set_field_changes_only_that_line() -> None:
    new = f.set_fields(BASE, {"severity": "SEV-1"})
    diff = [(a, b) for a, b in zip(BASE.split("\n"), new.split("\n"), strict=True) if a != b]
    assert diff == [("severity: SEV-2", "severity: SEV-1")]
    assert f.read_fields(new)["severity"] == "SEV-1"


def test_new_keys_go_before_the_closing_fence() -> None:
    new = f.set_fields(BASE, {"closed_at": "2026-11-27T05:00:00Z"})
    assert "escalations: []\nclosed_at: '2026-11-27T05:00:00Z'\n---\n" in new


def test_append_timeline_inserts_one_line_after_the_last_row() -> None:
    new = f.append_timeline(BASE, ROW)
    added = [line for line in strip_diagram(new).split("\n") if line not in BASE.split("\n")]
    assert added == [f.format_row(ROW)]
    assert new.index(f.format_row(ROW)) < new.index("## Decision log")
    assert f.has_event(new, "k1") and not f.has_event(BASE, "k1")


def test_replace_table_row_changes_only_that_row_of_that_section() -> None:
    old = "| 2026-11-27T03:14:40Z | @alice | Declared SEV-2 |  |"
    new = f.replace_table_row(BASE, "Timeline", old, "| new |")
    assert new is not None
    diff = [(a, b) for a, b in zip(BASE.split("\n"), new.split("\n"), strict=True) if a != b]
    assert diff == [(old, "| new |")]
    assert f.replace_table_row(BASE, "Decision log", old, "| new |") is None  # the row is not in that section
    assert f.replace_table_row(BASE, "Timeline", "| edited by a human |", "| new |") is None
    assert f.replace_table_row(BASE, "Containment", old, "| new |") is None  # no such section


def test_hostile_text_stays_data() -> None:
    nasty = "a | b\n---\n<script>alert(1)</script> {{ 7*7 }} \u202e"
    new = f.set_fields(BASE, {"title": nasty})
    assert f.read_fields(new)["title"] == nasty
    row = f.TimelineRow("2026-11-27T03:20:00Z", "eve|x", nasty, "", key="k|--2")
    line = f.format_row(row)
    assert len(re.findall(r"(?<!\\)\|", line)) == 5  # the cell separators only; user pipes are escaped
    assert "<script>" not in line and "\n" not in line
    assert f.timeline_rows(f.append_timeline(BASE, row))[-1][2].startswith("a \\| b")


def test_a_missing_timeline_section_is_recreated() -> None:
    without = BASE.split("## Timeline")[0]
    new = f.append_timeline(without, ROW)
    assert "## Timeline" in new and f.format_row(ROW) in new


def test_human_comment_lines_in_front_matter_survive_updates() -> None:
    text = BASE.replace("status: declared\n", "status: declared\n# keep this note\n")
    new = f.set_fields(text, {"status": "contained"})
    assert "status: contained\n# keep this note\n" in new


line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
    max_size=40,
).map(lambda s: s.replace("\n", " "))


@settings(max_examples=80, deadline=None)
@given(
    human_lines=st.lists(line_text, min_size=1, max_size=6),
    where=st.sampled_from(["## Summary", "## Decision log", "## Timeline\n"]),
    severity=st.sampled_from(["SEV-1", "SEV-2", "SEV-3"]),
    title=st.text(max_size=60),
    who=st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=12),
)
def test_human_edits_survive_byte_for_byte(
    human_lines: list[str], where: str, severity: str, title: str, who: str
) -> None:
    """Property: machine edits change only their own lines; every human line is still there, in order."""
    # A human writes free text right after a section heading (never starting a table or a heading).
    human = "\n".join("> " + line for line in human_lines)
    edited = BASE.replace(where, where + ("\n" if not where.endswith("\n") else "") + human + "\n", 1)
    row = f.TimelineRow("2026-11-27T03:30:00Z", who, "note", "", key=f"k-{who}")
    result = f.append_timeline(f.set_fields(edited, {"severity": severity, "title": title}), row)

    before = edited.split("\n")
    after = strip_diagram(result).split("\n")
    machine_keys = ("severity:", "title:")
    kept_before = [line for line in before if not line.startswith(machine_keys)]
    kept_after = [line for line in after if not line.startswith(machine_keys) and line != f.format_row(row)]
    assert kept_after == kept_before
    fields = f.read_fields(result)
    assert fields["severity"] == severity and fields["title"] == title
    assert f.has_event(result, f"k-{who}")


def test_the_diagram_follows_the_timeline_and_survives_hostile_text() -> None:
    row = f.TimelineRow("2026-11-27T03:30:00Z", "eve", "a: b | c ```mermaid %% {{x}} <b>", "", key="k9")
    new = f.append_timeline(BASE, row)
    block = new.split("## Timeline diagram\n\n", 1)[1].split("\n## ", 1)[0]
    assert block.startswith("```mermaid\ntimeline\n    title INC-0007 (UTC)\n    section 2026-11-27\n")
    assert "        03.14.40 : Declared SEV-2 (@alice)" in block
    event_line = block.split("\n")[-3]
    assert event_line.startswith("        03.30.00 : ") and event_line.count(":") == 1  # user colons cannot add events
    assert "```" not in event_line and "%%" not in event_line and "<b>" not in event_line
    again = f.append_timeline(new, f.TimelineRow("2026-11-27T03:40:00Z", "bob", "later", ""))
    assert again.count("## Timeline diagram") == 1 and "03.40.00 : later (@bob)" in again


def test_a_late_row_is_inserted_in_time_order() -> None:
    late = f.TimelineRow("2026-11-27T03:10:00Z", "bob", "Impact started (reported late)", "")
    new = f.append_timeline(BASE, f.TimelineRow("2026-11-27T03:20:00Z", "carol", "note", ""))
    new = f.append_timeline(new, late)
    times = [cells[0] for cells in f.timeline_rows(new)]
    assert times == sorted(times) and times[0] == "2026-11-27T03:10:00Z"
    same = f.append_timeline(new, f.TimelineRow("2026-11-27T03:20:00Z", "dave", "same second", ""))
    assert [c[1] for c in f.timeline_rows(same)][-2:] == ["@carol", "@dave"]  # ties keep arrival order


def test_a_field_holding_reply_markers_reads_back_as_written() -> None:
    # A marker's ':' inside a flow list is plain YAML 1.2, which libyaml's scanner (the C loader) rejects.
    value = {"at": "2026-11-30T18:04:41Z", "markers": ["incidentops:declared:INC-0007", "incidentops:ack:comment-9"]}
    text = f.set_fields(BASE, {"comments_checked": value})
    assert f.read_fields(text)["comments_checked"] == value


def test_lint_reads_the_fields_the_bot_writes() -> None:
    from incidentops.core.lint import lint_text

    text = f.set_fields(BASE, {"comments_checked": {"at": "2026-11-30T18:04:41Z", "markers": ["incidentops:a:b"]}})
    assert not [p for p in lint_text("incidents/INC-0007.md", text) if "YAML" in p.message]
