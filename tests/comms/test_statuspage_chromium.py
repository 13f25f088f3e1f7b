"""The status page in real Chromium (offline, in a loopback-only network namespace, as tests/report does): no
console messages, headings in order, text contrast at WCAG AA, no sideways scrolling on a phone, screenshots kept.

The audit runs in the browser on a copy of the page with one extra script (the page itself has none, and its CSP
allows none; the copy's CSP allows only that file): it reads the computed styles Chromium laid out.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from incidentops.config import load_config
from incidentops.flows.statuspage import build_status_page
from tests.chromium import console_lines, run_chromium

from .statusbuild import NOW, write_history

ROOT = Path(__file__).resolve().parents[2]
PHONE = "--window-size=390,844"

AUDIT_JS = r"""
(() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("script,style")) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push([el.tagName, el.className, el.textContent.trim().slice(0, 40), ratio.toFixed(2)]);
  }
  const headings = [...document.querySelectorAll("h1,h2,h3,h4,h5,h6")].map((h) => Number(h.tagName[1]));
  const out = document.createElement("pre");
  out.id = "audit";
  out.textContent = JSON.stringify({
    low, headings, scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth,
    landmarks: document.querySelectorAll("main").length, lang: document.documentElement.lang,
  });
  document.body.appendChild(out);
})();
"""


@pytest.fixture(scope="module")
def status(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("status-chromium")
    write_history(root / "incidents")
    out = root / "status"
    build_status_page(root / "incidents", out, load_config(ROOT), NOW)
    return out


@pytest.fixture(scope="session")
def artifacts() -> Path:
    base = Path(os.environ.get("INCIDENTOPS_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    path = base / "comms"
    path.mkdir(parents=True, exist_ok=True)
    return path


def audited(status: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "audit"
    shutil.copytree(status, copy)
    page = copy / "index.html"
    html = page.read_text()
    html = html.replace("default-src 'none';", "default-src 'none'; script-src 'self';", 1)
    page.write_text(html.replace("</body>", '<script src="audit.js"></script>\n</body>', 1))
    (copy / "audit.js").write_text(AUDIT_JS)
    return page


def audit(browser: str, page: Path, *flags: str) -> dict:
    dom, err = run_chromium(browser, page.as_uri(), *flags, "--dump-dom")
    assert console_lines(err) == [], console_lines(err)
    found = re.search(r'<pre id="audit">(.*?)</pre>', dom, re.S)
    assert found, "the audit script did not run"
    return json.loads(
        found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )


def test_the_page_loads_without_console_messages(browser: str, status: Path) -> None:
    dom, err = run_chromium(browser, (status / "index.html").as_uri(), "--dump-dom")
    assert console_lines(err) == []
    assert "<h1>Example status</h1>" in dom and 'class="banner critical"' in dom
    assert (
        len(re.findall(r'<span class="(?:operational|degraded_performance|partial_outage|major_outage)"', dom)) == 450
    )


def test_headings_contrast_and_a_phone_viewport(browser: str, status: Path, tmp_path: Path) -> None:
    page = audited(status, tmp_path)
    for flags in (("--window-size=1280,900",), (PHONE,)):
        result = audit(browser, page, *flags)
        assert result["low"] == [], result["low"]  # every text at 4.5:1 or better
        levels = result["headings"]
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels  # no skipped level
        assert result["landmarks"] == 1 and result["lang"] == "en"
        assert result["scrollWidth"] <= result["width"], result  # nothing scrolls sideways


def test_the_audit_catches_low_contrast(browser: str, status: Path, tmp_path: Path) -> None:
    page = audited(status, tmp_path)
    (page.parent / "status.css").write_text((page.parent / "status.css").read_text() + "\nh1 { color: #dddddd; }\n")
    assert any(row[0] == "H1" for row in audit(browser, page)["low"])


def test_screenshots_on_desktop_and_phone(browser: str, status: Path, artifacts: Path) -> None:
    for name, size in (("status-desktop.png", "--window-size=1280,1400"), ("status-phone.png", PHONE)):
        target = artifacts / name
        target.unlink(missing_ok=True)
        _, err = run_chromium(browser, (status / "index.html").as_uri(), size, f"--screenshot={target}")
        assert console_lines(err) == []
        data = target.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
