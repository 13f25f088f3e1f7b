"""The public status page (`incidentops report` writes it to <site>/status/): HTML, an Atom feed and Statuspage's
`api/v2/summary.json`, from the incident files' approved public updates only (core.statuspage decides what is
public). Built whatever `report.private` says: the status page is for customers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from incidentops.config import Config
from incidentops.core import public
from incidentops.core import statuspage as core
from incidentops.core.timefmt import format_ts
from incidentops.flows.report import _write, environment, incident_files
from incidentops.render import render_with

FEED = "history.atom"
SUMMARY = "api/v2/summary.json"


@dataclass(frozen=True)
class StatusOutcome:
    out: Path
    active: int
    history: int
    withheld: int

    @property
    def message(self) -> str:
        text = f"wrote the status page to {self.out} ({self.active} active, {self.history} past incident(s))"
        if self.withheld:
            text += f"; {self.withheld} published update(s) withheld: they name private data"
        return text


def layout(config: Config) -> core.Layout:
    """The page layout from incidentops.yaml, with the installation's internal names to keep out."""
    hosts = [
        h
        for env in config.environments
        if env.name != "production"
        for h in (urlsplit(u).hostname for u in env.base_urls.values())
        if h
    ]
    ids = [i for env in config.environments for i in (env.account_id, env.zone_id)]
    private = public.private_facts({}, hosts, ids)
    return core.layout_from(config.status_page, [s.name for s in config.services], private)


def build_status_page(
    incidents_dir: Path, out: Path, config: Config, now: datetime, *, workspace: Path | None = None
) -> StatusOutcome:
    """Write index.html, history.atom and api/v2/summary.json (plus the stylesheet) into `out`."""
    files = [(p.stem, p.read_text(encoding="utf-8", errors="replace")) for p in incident_files(incidents_dir)]
    page = core.build(files, layout(config), now)
    env = environment(str(workspace) if workspace else None)
    words = {"page": page, "status_text": core.STATUS_TEXT, "state_text": core.STATE_TEXT}
    _write(out / "index.html", render_with(env, "status/index.html.j2", feed=FEED, summary=SUMMARY, **words))
    slug = re.sub(r"[^a-z0-9]+", "-", page.layout.name.lower()).strip("-") or "status"
    feed_id = page.layout.url or f"urn:incidentops:status:{slug}"
    atom = render_with(env, "status/history.atom.j2", feed_id=feed_id, updated=format_ts(_updated(page)), **words)
    _write(out / FEED, atom)
    _write(out / SUMMARY, json.dumps(core.summary(page), indent=2, ensure_ascii=False) + "\n")
    source, _, _ = env.loader.get_source(env, "status/status.css")  # type: ignore[union-attr]
    _write(out / "status.css", source)
    return StatusOutcome(out, len(page.active), len(page.history), page.withheld)


def _updated(page: core.Page) -> datetime:
    times = [u.at for i in (*page.active, *page.history) for u in i.updates]
    return max(times, default=page.now)
