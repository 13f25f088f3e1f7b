"""`incidentops report`: read incidents/*.md, write the static incident history site.

The core computes every number and chart; this module only reads files, renders the HTML templates in
templates/report/ and writes the pages. Each incident page is written as soon as its file is read (by
one worker process per core for a long history), so memory holds only the index's summaries, whatever
the size of the history. A file that cannot be read is listed on the index and reported, and never stops
the build.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import jinja2

from incidentops.core import report as core
from incidentops.errors import IncidentOpsError
from incidentops.render import render_with, template_environment

ASSETS = ("report.css", "filter.js")
PARALLEL_FROM = 400  # below this, starting worker processes costs more than it saves
CHUNK = 200  # templates/report/assets/<name> -> <site>/assets/<name>
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$")


@dataclass(frozen=True)
class ReportOutcome:
    out: Path
    incidents: int
    malformed: tuple[core.Malformed, ...]
    with_problems: int

    @property
    def message(self) -> str:
        text = f"wrote {self.incidents} incident page(s) and the index to {self.out}"
        if self.malformed:
            text += f"; {len(self.malformed)} file(s) could not be read and are listed on the index"
        if self.with_problems:
            text += f"; {self.with_problems} incident(s) have fields that could not be understood"
        return text


def _timestamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _severity_class(severity: str) -> str:
    # Class names come from a fixed set, never from file text.
    return {"SEV-1": "sev-1", "SEV-2": "sev-2", "SEV-3": "sev-3"}.get(severity, "sev-other")


@lru_cache(maxsize=8)
def environment(workspace: str | None) -> jinja2.Environment:
    """The HTML environment: autoescape on for every template, since all incident text is untrusted."""
    env = template_environment(workspace, autoescape=True)
    env.filters["duration"] = core.format_duration
    env.filters["timestamp"] = _timestamp
    env.filters["sev_class"] = _severity_class
    return env


def render_incident(env: jinja2.Environment, incident: core.Incident, repo_url: str | None) -> str:
    """The HTML page of one incident."""
    return render_with(
        env,
        "report/incident.html.j2",
        root="../",
        incident=incident,
        summary=incident.summary,
        summary_section=core.summary_section(incident),
        sections=core.page_sections(incident),
        chart=core.timeline_chart(incident),
        repo_url=repo_url,
    )


def render_index(env: jinja2.Environment, site: core.Site, repo_url: str | None) -> str:
    """The HTML index: statistics, the monthly chart, the filterable list, the unreadable files."""
    return render_with(env, "report/index.html.j2", root="", site=site, chart=site.months, repo_url=repo_url)


def incident_files(directory: Path) -> list[Path]:
    """Every INC-*.md in the directory, in name order."""
    return sorted(path for path in directory.glob("INC-*.md") if path.is_file())


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _pages(
    paths: list[Path], out: Path, workspace: str | None, repo_url: str | None, private: bool = False
) -> tuple[list[core.Summary], list[core.Malformed]]:
    """Read, render and write the pages of some incident files; return what the index needs of them."""
    env = environment(workspace)
    summaries: list[core.Summary] = []
    malformed: list[core.Malformed] = []
    for path in paths:
        parsed = core.parse_incident(path.name, path.read_bytes(), private=private)
        if isinstance(parsed, core.Malformed):
            malformed.append(parsed)
            continue
        _write(out / parsed.summary.page, render_incident(env, parsed, repo_url))
        summaries.append(parsed.summary)
    return summaries, malformed


def build_report(
    incidents_dir: Path,
    out: Path,
    *,
    workspace: Path | None = None,
    repo_url: str | None = None,
    private: bool = False,
) -> ReportOutcome:
    """Write the site for every incident file in `incidents_dir` into `out`; tenant IDs, request IDs and security
    notes are withheld unless the site is `private` (`report.private` in incidentops.yaml)."""
    if not incidents_dir.is_dir():
        raise IncidentOpsError(f"{incidents_dir} is not a directory", hint="Run from the ops repository's root.")
    if repo_url is not None and not _SAFE_URL.match(repo_url):
        repo_url = None
    where = str(workspace) if workspace else None
    env = environment(where)
    # Render templates once up front, so a broken template fails before any worker starts.
    env.get_template("report/incident.html.j2")
    paths = incident_files(incidents_dir)
    workers = min(os.cpu_count() or 1, 8)
    if len(paths) < PARALLEL_FROM or workers < 2:
        results = [_pages(paths, out, where, repo_url, private)]
    else:
        # Parsing YAML and rendering pages are CPU-bound pure Python: one process per core, pages written
        # by the workers, only the summaries sent back. Each file is still read exactly once: linear work.
        batches = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
        from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only for many files

        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_pages, batch, out, where, repo_url, private) for batch in batches]
            results = [job.result() for job in jobs]
    summaries = [s for found, _ in results for s in found]
    malformed = [m for _, bad in results for m in bad]
    site = core.build_site(summaries, malformed)
    for asset in ASSETS:
        source, _, _ = env.loader.get_source(env, f"report/assets/{asset}")  # type: ignore[union-attr]
        _write(out / "assets" / asset, source)
    _write(out / "index.html", render_index(env, site, repo_url))
    # Pages of incident files that were deleted or became unreadable must not linger in the site.
    written = {f"{s.id}.html" for s in summaries}
    for stale in (out / "incidents").glob("*.html"):
        if stale.name not in written:
            stale.unlink()
    return ReportOutcome(out, len(summaries), site.malformed, site.with_problems)
