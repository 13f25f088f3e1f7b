"""The written site: every page from the files, hostile text escaped, unreadable files listed, nothing stale."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from incidentops.flows import report as report_flow
from incidentops.flows.report import build_report

from .builders import make_incident, resolved

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> {{ 7*7 }} {% raw %}"


class Collector(HTMLParser):
    """Tags, attributes and scripts of a page, to check what a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read(path: Path) -> Collector:
    page = Collector()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def write_incidents(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (directory / name).write_bytes(data)
    return directory


def test_the_site_has_an_index_a_page_per_incident_and_its_assets(tmp_path: Path) -> None:
    incidents = write_incidents(
        tmp_path / "incidents",
        {
            "INC-0001.md": resolved(1, "SEV-1", tta_minutes=5, ttr_minutes=50),
            "INC-0002.md": make_incident(2, severity="SEV-3", services=("user-portal", "admin-pages")),
            "README.md": "# not an incident\n",
        },
    )
    out = tmp_path / "site"
    outcome = build_report(incidents, out, repo_url="https://github.com/example/ops")
    assert outcome.incidents == 2 and outcome.malformed == ()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "assets/filter.js",
        "assets/report.css",
        "incidents/INC-0001.html",
        "incidents/INC-0002.html",
        "index.html",
    ]
    index = read(out / "index.html")
    links = [a["href"] for tag, a in index.tags if tag == "a"]
    assert "incidents/INC-0001.html" in links and "incidents/INC-0002.html" in links
    rows = [a for tag, a in index.tags if tag == "tr" and "data-severity" in a]
    assert [(a["data-severity"], a["data-status"], a["data-services"]) for a in rows] == [
        ("SEV-3", "declared", '["user-portal", "admin-pages"]'),
        ("SEV-1", "resolved", '["api-worker"]'),
    ]
    options = [a.get("value") for tag, a in index.tags if tag == "option"]
    assert options.count("") == 3  # "all" in each of the three filters
    assert any(tag == "svg" and a.get("id") == "month-chart" for tag, a in index.tags)
    page = read(out / "incidents" / "INC-0001.html")
    assert any(tag == "svg" and a.get("id") == "timeline-chart" for tag, a in page.tags)
    text = " ".join(page.text)
    for heading in ("Timeline", "Evidence", "Recovery verification", "Follow-ups"):
        assert heading in text
    assert "https://github.com/example/ops/issues/1" in [a.get("href") for tag, a in page.tags if tag == "a"]


def test_every_page_forbids_inline_script_and_foreign_resources(tmp_path: Path) -> None:
    incidents = write_incidents(tmp_path / "incidents", {"INC-0001.md": make_incident(1)})
    out = tmp_path / "site"
    build_report(incidents, out)
    for path in (out / "index.html", out / "incidents" / "INC-0001.html"):
        page = read(path)
        csp = next(
            a["content"] for tag, a in page.tags if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"
        )
        assert csp and "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        for tag, attrs in page.tags:
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            for name in ("src", "href"):
                value = attrs.get(name) or ""
                assert not re.match(r"^(https?:)?//", value) or tag == "a", (tag, attrs)


def test_hostile_incident_text_is_escaped_everywhere(tmp_path: Path) -> None:
    text = make_incident(
        7,
        title=HOSTILE,
        summary=HOSTILE + "\n[click](javascript:alert(3))",
        services=(HOSTILE,),
        rows=((timedelta(minutes=1), "mallory", HOSTILE),),
    )
    text = text.replace("## Evidence\n", "## Evidence\n\n" + HOSTILE + "\n\n<b>raw html</b> [x](https://ok.example/)\n")
    text = text.replace("severity: SEV-1", "severity: '" + HOSTILE.replace("'", "''") + "'")
    incidents = write_incidents(tmp_path / "incidents", {"INC-0007.md": text})
    out = tmp_path / "site"
    # A private site shows the Evidence section (a public one withholds it: test_report_private.py).
    outcome = build_report(incidents, out, private=True)
    assert outcome.incidents == 1
    for path in (out / "index.html", out / "incidents" / "INC-0007.html"):
        html = path.read_text(encoding="utf-8")
        page = read(path)
        assert [tag for tag, _ in page.tags].count("script") == (1 if path.name == "index.html" else 0)
        assert not any(tag == "img" for tag, _ in page.tags)
        assert not any(tag == "b" for tag, _ in page.tags)
        assert "javascript:" not in " ".join(str(a.get("href")) for _, a in page.tags)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "{{ 7*7 }}" in " ".join(page.text)  # data is shown, never run as template code
    assert "https://ok.example/" in [
        a.get("href") for t, a in read(out / "incidents" / "INC-0007.html").tags if t == "a"
    ]


def test_unreadable_files_are_listed_and_do_not_stop_the_build(tmp_path: Path) -> None:
    incidents = write_incidents(
        tmp_path / "incidents",
        {
            "INC-0001.md": make_incident(1),
            "INC-0002.md": b"---\ntitle: [unclosed\n---\n",
            "INC-0003.md": b"\xff\xfe",
            "INC-0004.md": make_incident(4, fields={"severity": "P0"}),
        },
    )
    out = tmp_path / "site"
    outcome = build_report(incidents, out)
    assert outcome.incidents == 2
    assert [m.source for m in outcome.malformed] == ["INC-0002.md", "INC-0003.md"]
    assert outcome.with_problems == 1
    assert "could not be read" in outcome.message
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="unreadable"' in index and "INC-0002.md" in index and "not UTF-8" in index
    assert not (out / "incidents" / "INC-0002.html").exists()
    assert "could not be understood" in (out / "incidents" / "INC-0004.html").read_text(encoding="utf-8")


def test_a_rebuild_removes_pages_of_deleted_incidents(tmp_path: Path) -> None:
    incidents = write_incidents(
        tmp_path / "incidents", {"INC-0001.md": make_incident(1), "INC-0002.md": make_incident(2)}
    )
    out = tmp_path / "site"
    build_report(incidents, out)
    (incidents / "INC-0002.md").unlink()
    build_report(incidents, out)
    assert sorted(p.name for p in (out / "incidents").iterdir()) == ["INC-0001.html"]


def test_an_empty_history_still_builds(tmp_path: Path) -> None:
    incidents = write_incidents(tmp_path / "incidents", {})
    outcome = build_report(incidents, tmp_path / "site")
    assert outcome.incidents == 0
    assert "No incidents yet." in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_a_workspace_template_overrides_the_default(tmp_path: Path) -> None:
    incidents = write_incidents(tmp_path / "incidents", {"INC-0001.md": make_incident(1)})
    custom = tmp_path / "templates" / "report"
    custom.mkdir(parents=True)
    (custom / "index.html.j2").write_text("<p>ours: {{ site.incidents | length }}</p>\n", encoding="utf-8")
    build_report(incidents, tmp_path / "site", workspace=tmp_path)
    assert (tmp_path / "site" / "index.html").read_text(encoding="utf-8") == "<p>ours: 1</p>\n"


def test_a_long_history_is_built_by_worker_processes_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: dict[str, str | bytes] = {f"INC-{n:04d}.md": make_incident(n) for n in range(1, 8)}
    files["INC-0008.md"] = b"---\n[broken\n---\n"
    incidents = write_incidents(tmp_path / "incidents", files)
    serial = build_report(incidents, tmp_path / "serial")
    monkeypatch.setattr(report_flow, "PARALLEL_FROM", 2)
    monkeypatch.setattr(report_flow, "CHUNK", 3)
    monkeypatch.setattr(report_flow.os, "cpu_count", lambda: 2)
    parallel = build_report(incidents, tmp_path / "parallel")
    assert (parallel.incidents, parallel.malformed) == (serial.incidents, serial.malformed)
    for page in sorted((tmp_path / "serial").rglob("*.html")):
        twin = tmp_path / "parallel" / page.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == page.read_bytes(), page.name
