"""The status page built from incident files: what is public, summary.json in Statuspage's shape, the Atom feed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import feedparser
import jsonschema
import pytest

from incidentops.config import load_config
from incidentops.flows.statuspage import build_status_page

from .statusbuild import DRAFT_ONLY, INTERNAL_TITLE, NOW, write_history

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "statuspage-summary.schema.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("status")
    moments = write_history(root / "incidents")
    outcome = build_status_page(root / "incidents", root / "site" / "status", load_config(ROOT), NOW)
    assert (outcome.active, outcome.history, outcome.withheld) == (1, 1, 1)
    return root / "site" / "status", moments


def test_summary_json_has_the_statuspage_shape(built: tuple[Path, dict]) -> None:
    out, _ = built
    summary = json.loads((out / "api" / "v2" / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    assert summary["status"] == {"indicator": "critical", "description": "Major Service Outage"}
    [incident] = summary["incidents"]
    assert incident["id"] == "INC-0002" and incident["impact"] == "critical" and incident["status"] == "identified"
    assert incident["name"] == "Outage: Public API, Customer portal"
    assert [u["body"] for u in incident["incident_updates"]] == [
        "Reports may show wrong data; access to reports is paused."
    ]
    status = {c["name"]: c["status"] for c in summary["components"]}
    assert status["Public API"] == "major_outage" and status["Customer portal"] == "major_outage"
    assert status["Admin console"] == "operational"  # INC-0003 was never made public
    assert status["Event ingestion"] == "operational"  # INC-0004's only update was withheld
    groups = [c for c in summary["components"] if c["group"]]
    assert [(g["name"], g["status"]) for g in groups] == [("API", "major_outage"), ("Web apps", "major_outage")]
    by_id = {c["id"]: c for c in summary["components"]}
    assert all(by_id[child]["group_id"] == groups[0]["id"] for child in groups[0]["components"])


def test_a_mismatched_summary_fails_the_schema() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"page": {}, "components": [], "incidents": [], "scheduled_maintenances": []}, SCHEMA)


def test_nothing_private_reaches_any_published_file(built: tuple[Path, dict]) -> None:
    out, _ = built
    text = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    for secret in (
        "t-100",
        "t-200",
        "req-7f3a9c",
        "acme-9",
        DRAFT_ONLY,
        INTERNAL_TITLE,
        "Staging down",
        "carol",
        "dave",
    ):
        assert secret not in text, secret


def test_the_atom_feed_parses_and_lists_public_incidents(built: tuple[Path, dict]) -> None:
    out, _ = built
    feed = feedparser.parse((out / "history.atom").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Example status history"
    titles = [e.title for e in feed.entries]
    assert titles == ["Outage: Public API, Customer portal", "Partial outage: Public API"]
    assert "Reports may show wrong data" in feed.entries[0].content[0].value
    assert "API requests succeed again." in feed.entries[1].content[0].value
    assert feed.entries[1].updated_parsed[:5] == (NOW - timedelta(days=10, hours=1)).timetuple()[:5]


def test_uptime_bars_follow_start_and_resolution(built: tuple[Path, dict]) -> None:
    from incidentops.core import statuspage as core
    from incidentops.flows.statuspage import layout

    out, moments = built
    files = [(p.stem, p.read_text()) for p in sorted((out.parent.parent / "incidents").glob("INC-*.md"))]
    page = core.build(files, layout(load_config(ROOT)), NOW)
    api = next(s for s in page.components if s.component.id == "api-worker")
    assert len(api.days) == 90 and api.days[-1].day == NOW.date().isoformat()
    day1 = moments["inc1_start"].date().isoformat()
    bar = next(d for d in api.days if d.day == day1)
    assert bar.worst == "partial_outage" and bar.incidents == ("INC-0001",)
    assert bar.downtime == (moments["inc1_end"] - moments["inc1_start"]) * 0.3  # a partial outage weighs 30 %
    assert api.days[-1].worst == "major_outage" and api.days[-1].downtime == NOW - moments["inc2_start"]
    period = NOW - (NOW - timedelta(days=89)).replace(hour=0, minute=0, second=0)
    expected = 100 * (1 - (bar.downtime + api.days[-1].downtime) / period)
    assert api.uptime == round(expected, 2) and api.uptime < 100
    html = (out / "index.html").read_text()
    assert f"{api.uptime:.2f} % uptime" in html
    assert all(s.uptime == 100.0 for s in page.components if s.component.id in ("admin-pages", "queue-consumer"))


def test_hostile_update_text_is_escaped_everywhere(tmp_path: Path) -> None:
    from tests.report.builders import make_incident

    from .statusbuild import update

    hostile = "<script>alert(1)</script> ]]></content><entry> & {{ 7*7 }}"
    text = make_incident(
        7, fields={"public_updates": [update(1, "investigating", hostile, NOW - timedelta(minutes=5))]}
    )
    (tmp_path / "incidents").mkdir()
    (tmp_path / "incidents" / "INC-0007.md").write_text(text)
    out = tmp_path / "status"
    build_status_page(tmp_path / "incidents", out, load_config(ROOT), NOW)
    html = (out / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "{{ 7*7 }}" in html
    feed = feedparser.parse((out / "history.atom").read_bytes())
    assert not feed.bozo and len(feed.entries) == 1 and hostile in feed.entries[0].content[0].value
    summary = json.loads((out / "api" / "v2" / "summary.json").read_text())
    assert summary["incidents"][0]["incident_updates"][0]["body"] == hostile


def test_the_report_command_writes_the_status_page_next_to_the_history(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "incidentops.yaml").write_bytes((ROOT / "incidentops.yaml").read_bytes())
    write_history(tmp_path / "incidents")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "incidentops", "report", "--out", "site"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "scripts")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote the status page to site/status (1 active" in result.stdout
    assert "1 published update(s) withheld" in result.stdout
    jsonschema.validate(json.loads((tmp_path / "site/status/api/v2/summary.json").read_text()), SCHEMA)
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site/status/history.atom").is_file()
