"""The site in a real browser: Debian's headless Chromium loads the pages from file://, offline (tests/chromium.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from incidentops.flows.report import build_report
from tests.chromium import console_lines, run_chromium

from .builders import make_incident, resolved
from .conftest import remember


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chromium-site")
    incidents = root / "incidents"
    incidents.mkdir()
    files = {
        1: resolved(1, "SEV-2", tta_minutes=12, ttr_minutes=95, month=8),
        2: resolved(2, "SEV-3", tta_minutes=40, ttr_minutes=300, month=9),
        3: resolved(3, "SEV-1", tta_minutes=4, ttr_minutes=70, month=9),
        4: resolved(4, "SEV-3", tta_minutes=25, ttr_minutes=180, month=10),
        5: make_incident(
            5,
            title="<script>alert(1)</script> reports leak",
            services=("api-worker", "user-portal"),
            rows=(
                (timedelta(minutes=3), "bob", "Contained /v1/reports (WAF rule 1a2b)"),
                (timedelta(minutes=21), "carol", "Rollback api-worker: done — deployed at 100%"),
                (timedelta(minutes=48), "alice", "Resolved"),
            ),
            fields={"status": "resolved", "resolved_at": "2026-11-27T04:03:00Z"},
        ),
        6: make_incident(6, severity="SEV-2", services=("ingest-worker",)),
    }
    for number, text in files.items():
        (incidents / f"INC-{number:04d}.md").write_text(text, encoding="utf-8")
    (incidents / "INC-0007.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    out = root / "site"
    outcome = build_report(incidents, out)
    assert outcome.incidents == 6 and len(outcome.malformed) == 1
    return out


def test_console_capture_is_not_vacuous(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>t</title><script>console.error('deliberate')</script>", encoding="utf-8")
    _, err = run_chromium(browser, page.as_uri(), "--dump-dom")
    assert any("deliberate" in line for line in console_lines(err)), err[-2000:]


def test_index_loads_without_console_messages_and_draws_the_chart(browser: str, site: Path) -> None:
    dom, err = run_chromium(browser, (site / "index.html").as_uri(), "--dump-dom")
    assert console_lines(err) == []
    assert re.search(r'<svg id="month-chart"[^>]*>', dom)
    assert len(re.findall(r'<rect class="bar sev-\d"', dom)) >= 4
    assert '<form id="filters" class="filters">' in dom  # the script ran and showed the filters
    assert re.search(r'<output id="shown"[^>]*>6</output>', dom)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "INC-0007.md" in dom  # the broken file is listed


def test_filters_hide_the_rows_that_do_not_match(browser: str, site: Path) -> None:
    url = (site / "index.html").as_uri() + "#severity=SEV-3&status=resolved"
    dom, err = run_chromium(browser, url, "--dump-dom")
    assert console_lines(err) == []
    assert re.search(r'<output id="shown"[^>]*>2</output>', dom)
    rows = re.findall(r"<tr data-severity=\"([^\"]+)\"[^>]*?( hidden=\"\")?>", dom)
    assert sorted(sev for sev, hidden in rows if not hidden) == ["SEV-3", "SEV-3"]
    service = run_chromium(browser, (site / "index.html").as_uri() + "#service=user-portal", "--dump-dom")[0]
    assert re.search(r'<output id="shown"[^>]*>1</output>', service)


def test_incident_page_loads_without_console_messages_and_draws_its_timeline(browser: str, site: Path) -> None:
    dom, err = run_chromium(browser, (site / "incidents" / "INC-0005.html").as_uri(), "--dump-dom")
    assert console_lines(err) == []
    assert re.search(r'<svg id="timeline-chart"[^>]*>', dom)
    assert len(re.findall(r'<circle class="point', dom)) >= 5
    for heading in ("Evidence", "Recovery verification", "Follow-ups"):
        assert f"<h2>{heading}</h2>" in dom


def test_screenshot_of_the_index(browser: str, site: Path, artifacts_dir: Path) -> None:
    target = artifacts_dir / "index.png"
    target.unlink(missing_ok=True)
    _, err = run_chromium(browser, (site / "index.html").as_uri(), "--window-size=1280,1400", f"--screenshot={target}")
    assert console_lines(err) == []
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    remember(target)
