"""The report's pure core: reading hostile incident files, the numbers, and the chart geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from incidentops.core import report as r

from .builders import make_incident, resolved


def parse(text: str, name: str = "INC-0042.md") -> r.Incident:
    parsed = r.parse_incident(name, text.encode())
    assert isinstance(parsed, r.Incident), parsed
    return parsed


def test_a_declared_incident_is_read_with_its_times_and_timeline() -> None:
    incident = parse(make_incident(rows=((timedelta(minutes=5), "bob", "Contained /v1/reports"),)))
    s = incident.summary
    assert (s.id, s.severity, s.status, s.services) == ("INC-0042", "SEV-1", "declared", ("api-worker",))
    assert s.started_at == datetime(2026, 11, 27, 3, 12, 9, tzinfo=UTC)
    assert s.tta == timedelta(minutes=2, seconds=31)
    assert s.ttr is None and s.is_open and s.problems == ()
    assert [e.who for e in incident.timeline] == ["@reporter", "@alice", "incidentops", "@bob"]
    assert r.plain_text(incident.timeline[-1].what) == "Contained /v1/reports"
    titles = [section.title for section in incident.sections]
    assert "Timeline" not in titles and "Timeline diagram" not in titles
    assert {"Summary", "Evidence", "Recovery verification", "Follow-ups"} <= set(titles)


def test_mtta_and_mttr_are_means_per_severity_over_what_can_be_measured() -> None:
    files = [
        resolved(1, "SEV-1", tta_minutes=10, ttr_minutes=60),
        resolved(2, "SEV-1", tta_minutes=20, ttr_minutes=120),
        resolved(3, "SEV-1", tta_minutes=90, ttr_minutes=600),
        make_incident(4, severity="SEV-2", declared_after=timedelta(minutes=30)),  # open: no TTR
        make_incident(5, severity="SEV-2", started=None),  # start unknown: neither
    ]
    incidents, malformed = r.read_all((f"INC-{n:04d}.md", t.encode()) for n, t in enumerate(files, 1))
    assert malformed == []
    by = {s.severity: s for s in r.stats([i.summary for i in incidents])}
    sev1, sev2, total = by["SEV-1"], by["SEV-2"], by["all"]
    assert sev1.mtta == timedelta(minutes=40) and sev1.median_tta == timedelta(minutes=20)
    assert sev1.mttr == timedelta(minutes=260) and sev1.median_ttr == timedelta(minutes=120)
    assert (sev1.incidents, sev1.open, sev1.tta_measured, sev1.ttr_measured) == (3, 0, 3, 3)
    assert (sev2.incidents, sev2.open, sev2.tta_measured, sev2.ttr_measured) == (2, 2, 1, 0)
    assert sev2.mtta == timedelta(minutes=30) and sev2.mttr is None
    assert total.incidents == 5 and total.tta_measured == 4
    assert list(by) == ["SEV-1", "SEV-2", "all"]


def test_times_out_of_order_are_left_out_and_said_so() -> None:
    text = make_incident(fields={"resolved_at": "2026-11-27T03:00:00Z", "status": "resolved"})
    s = parse(text).summary
    assert s.ttr is None
    assert any("resolved_at is before started_at" in p for p in s.problems)


def test_unreadable_fields_become_unknown_with_a_problem_each() -> None:
    text = make_incident(fields={"severity": "P0", "status": "on fire", "declared_at": "yesterday", "id": "INC-9"})
    s = parse(text).summary
    assert s.severity == "P0" and s.status == "on fire" and s.declared_at is None and s.tta is None
    joined = " | ".join(s.problems)
    for expected in ("severity 'P0'", "status 'on fire'", "declared_at 'yesterday'", "differs from the file name"):
        assert expected in joined


def test_malformed_files_are_reported_not_raised() -> None:
    good = make_incident()
    cases = {
        "INC-0001.md": b"no front matter at all\n",
        "INC-0002.md": b"---\ntitle: [unclosed\n---\nbody\n",
        "INC-0003.md": b"---\n- a list\n---\n",
        "INC-0004.md": b"\xff\xfe not utf-8",
        "INC-0005.md": b"---\nid: INC-0005\nno closing fence\n",
        "INC-abc.md": good.encode(),
        "INC-0006.md": good.replace("services: [api-worker]", "services: {a: [b, {c: d}]}").encode(),
    }
    results = {name: r.parse_incident(name, data) for name, data in cases.items()}
    for name in ("INC-0001.md", "INC-0002.md", "INC-0003.md", "INC-0004.md", "INC-0005.md", "INC-abc.md"):
        assert isinstance(results[name], r.Malformed), name
        assert results[name].reason  # type: ignore[union-attr]
    odd = results["INC-0006.md"]
    assert isinstance(odd, r.Incident) and odd.summary.services == ()


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=400) | st.text(max_size=400).map(lambda t: ("---\n" + t + "\n---\n## Timeline\n" + t).encode())
)
def test_no_input_makes_reading_raise(data: bytes) -> None:
    parsed = r.parse_incident("INC-0001.md", data)
    assert isinstance(parsed, r.Incident | r.Malformed)
    if isinstance(parsed, r.Incident):
        r.timeline_chart(parsed)
        r.build_site([parsed.summary])


def test_inline_markdown_keeps_only_http_links_and_resolves_escapes() -> None:
    runs = r.inline(
        r"a \| b &lt;script&gt; [x](javascript:alert(1)) [ok](https://example.com/a) `c|d` **bold** <!-- ev:k -->"
    )
    kinds = [(run.kind, run.text, run.href) for run in runs]
    assert ("link", "ok", "https://example.com/a") in kinds
    assert all(run.href == "" or run.href.startswith("https://") for run in runs)
    assert "javascript" not in "".join(run.href for run in runs)
    text = r.plain_text(runs)
    assert "a | b <script>" in text and "ev:k" not in text and "c|d" in text


def test_blocks_cover_the_sections_the_automation_writes() -> None:
    markdown = (
        "> quoted\n> more\n\n- item one\n- [x] done thing\n\n| task | owner |\n|---|---|\n| fix \\| it | @bob |\n\n"
        "```mermaid\ntimeline\n```\n\n### Sub\n\nplain _emphasis_ text\n"
    )
    kinds = [b.kind for b in r.blocks(markdown)]
    assert kinds == ["quote", "list", "table", "code", "heading", "para"]
    table = r.blocks(markdown)[2]
    assert [r.plain_text(c) for c in table.rows[0]] == ["fix | it", "@bob"]
    assert r.plain_text(r.blocks(markdown)[1].lines[1]) == "☑ done thing"


def test_sections_ignore_headings_inside_code_fences() -> None:
    body = "# T\n\n## Evidence\n\n```\n## not a section\n```\n\n## Follow-ups\n"
    assert [t for t, _ in r.sections(body)] == ["Evidence", "Follow-ups"]


def test_missing_required_sections_are_shown_empty() -> None:
    text = make_incident()
    start = text.index("## Evidence")
    end = text.index("## Containment")
    incident = parse(text[:start] + text[end:])
    titles = [s.title for s in r.page_sections(incident)]
    assert titles[-1] == "Evidence" and titles.count("Evidence") == 1


def test_month_chart_stacks_severities_and_fills_empty_months() -> None:
    files = [
        resolved(1, "SEV-1", tta_minutes=1, ttr_minutes=5, month=1),
        resolved(2, "SEV-2", tta_minutes=1, ttr_minutes=5, month=1),
        resolved(3, "SEV-2", tta_minutes=1, ttr_minutes=5, month=4),
    ]
    incidents, _ = r.read_all((f"INC-{n:04d}.md", t.encode()) for n, t in enumerate(files, 1))
    chart = r.month_chart([i.summary for i in incidents])
    assert [m for m, _ in chart.months] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert chart.months[0][1] == {"SEV-1": 1, "SEV-2": 1} and chart.months[1][1] == {"SEV-1": 0, "SEV-2": 0}
    january = [b for b in chart.bars if b.month == "2026-01"]
    assert len(january) == 2
    lower, upper = sorted(january, key=lambda b: -b.y)
    assert abs(upper.y + upper.height - lower.y) < 0.01  # stacked
    assert all(chart.plot_top <= b.y and b.y + b.height <= chart.plot_bottom + 0.01 for b in chart.bars)
    assert chart.y_ticks[0].label == "0" and int(chart.y_ticks[-1].label) >= 2


def test_timeline_chart_places_events_in_time_order_within_the_plot() -> None:
    rows = ((timedelta(minutes=30), "bob", "Resolved"), (timedelta(minutes=10), "carol", "Contained /v1/reports"))
    incident = parse(make_incident(rows=rows, fields={"resolved_at": "2026-11-27T03:44:40Z"}))
    chart = r.timeline_chart(incident)
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs) and chart.left <= min(xs) and max(xs) <= chart.right
    assert [p.kind for p in chart.points][-1] == "resolved"
    assert {b.kind for b in chart.bands} == {"acknowledge", "resolve"}
    assert chart.ticks and all(chart.left <= t.at <= chart.right for t in chart.ticks)


def test_durations_read_like_a_person_would_write_them() -> None:
    assert r.format_duration(None) == "—"
    assert r.format_duration(timedelta(seconds=249)) == "4m 09s"
    assert r.format_duration(timedelta(hours=2, minutes=5)) == "2h 05m"
    assert r.format_duration(timedelta(days=3, hours=4, minutes=59)) == "3d 4h"
