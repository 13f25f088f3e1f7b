"""The incident history site's data: incidents, time to acknowledge and resolve, charts (pure; no I/O).

Every incident file is hostile input (people edit them by hand, and issue text lands in them), so reading
one never raises: a file that cannot be read becomes a `Malformed` entry with the reason, a field that
cannot be understood becomes `unknown` and a problem listed on the incident's page. Markdown is not
rendered to HTML here; it is split into plain blocks and inline runs of text, which the HTML templates
escape where they land.

Definitions (shown on the site, and in incidents/README.md terms):

- time to acknowledge (TTA) = `declared_at` − `started_at`: from the moment impact began, as reported, to
  the moment a person applied a severity label and the incident was declared;
- time to resolve (TTR) = `resolved_at` − `started_at`: from impact start to resolution;
- MTTA and MTTR are the arithmetic means of those per severity (the incident's current severity, after
  escalations), over the incidents where both timestamps are known and in order; the median and the
  number of incidents measured are shown beside them, since a few long incidents dominate a mean;
- incidents per month counts each incident in the UTC month of `declared_at` (written by the automation,
  so always present on a well-formed file), else of `started_at`.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentops.core import breach
from incidentops.core import incidentfile as f

SEVERITIES = ("SEV-1", "SEV-2", "SEV-3")
STATUSES = ("declared", "contained", "mitigated", "resolved", "closed")
OPEN_STATUSES = ("declared", "contained", "mitigated")
UNKNOWN = "unknown"
FILE_NAME = re.compile(r"^(INC-\d{1,9})\.md$")
# Sections drawn differently on the page: the timeline has its own chart and table, and the
# machine-owned Mermaid diagram only makes sense on GitHub.
SPECIAL_SECTIONS = ("Timeline", "Timeline diagram")


# --- inline text and markdown blocks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Inline:
    """A run of inline text: `text`, `code`, `strong`, `em`, or a `link` with a checked http(s) `href`."""

    kind: str
    text: str
    href: str = ""


@dataclass(frozen=True)
class Block:
    """A block of markdown: `para` and `quote` (lines), `list` (items), `table` (header, rows), `code`, `heading`."""

    kind: str
    lines: tuple[tuple[Inline, ...], ...] = ()
    header: tuple[tuple[Inline, ...], ...] = ()
    rows: tuple[tuple[tuple[Inline, ...], ...], ...] = ()
    text: str = ""  # code blocks: the raw text


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


_INLINE = re.compile(
    r"`(?P<code>[^`]+)`"
    r"|\[(?P<label>[^\]]*)\]\((?P<href>[^()\s]*)\)"
    r"|\*\*(?P<strong>.+?)\*\*"
    r"|(?<![\w\\])_(?P<em>[^_]+?)_(?!\w)"
)
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_SAFE_HREF = re.compile(r"^https?://[^\s<>\"']+$", re.I)


def _plain(text: str) -> str:
    """Markdown source text as the characters a reader sees: escapes and entities resolved."""
    return html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", text))


def inline(text: str) -> tuple[Inline, ...]:
    """Split one line of markdown into runs; links keep their target only when it is http(s)."""
    text = f.strip_comments(text)
    runs: list[Inline] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.start() > pos:
            runs.append(Inline("text", _plain(text[pos : match.start()])))
        if match.group("code") is not None:
            runs.append(Inline("code", match.group("code")))
        elif match.group("href") is not None:
            label, href = _plain(match.group("label")), html.unescape(match.group("href"))
            runs.append(Inline("link", label, href) if _SAFE_HREF.match(href) else Inline("text", label))
        elif match.group("strong") is not None:
            runs.append(Inline("strong", _plain(match.group("strong"))))
        else:
            runs.append(Inline("em", _plain(match.group("em"))))
        pos = match.end()
    if pos < len(text):
        runs.append(Inline("text", _plain(text[pos:])))
    return tuple(run for run in runs if run.text)


def plain_text(runs: Sequence[Inline]) -> str:
    """The text of some inline runs, without markup."""
    return "".join(run.text for run in runs)


def table_cells(line: str) -> list[str]:
    """The raw cells of one markdown table line (pipes escaped with a backslash stay in the cell)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?", line.strip()))


_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_CHECKBOX = re.compile(r"^\[([ xX])\]\s+(.*)$")


def blocks(markdown: str) -> tuple[Block, ...]:
    """Split a section's markdown into blocks; anything unrecognised is a paragraph of text."""
    lines = f.strip_comments(markdown.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```") or stripped.startswith("~~~"):
            fence = stripped[:3]
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
            out.append(Block("code", text="\n".join(lines[i + 1 : end])))
            i = end + 1
        elif stripped.startswith("|"):
            end = i
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            table = [ln for ln in lines[i:end] if not _is_separator(ln)]
            header = tuple(inline(c) for c in table_cells(table[0])) if table else ()
            rows = tuple(tuple(inline(c) for c in table_cells(ln)) for ln in table[1:])
            out.append(Block("table", header=header, rows=rows))
            i = end
        elif stripped.startswith(">"):
            quoted = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                quoted.append(inline(lines[i].strip()[1:].strip()))
                i += 1
            out.append(Block("quote", lines=tuple(quoted)))
        elif stripped.startswith("#"):
            out.append(Block("heading", lines=(inline(stripped.lstrip("#").strip()),)))
            i += 1
        elif _LIST_ITEM.match(line):
            items = []
            while i < len(lines) and (item := _LIST_ITEM.match(lines[i])):
                text = item.group(1)
                box = _CHECKBOX.match(text)
                if box:
                    text = ("☑ " if box.group(1) in "xX" else "☐ ") + box.group(2)
                items.append(inline(text))
                i += 1
                # A continuation line of the item above (indented, not a new item).
                while (
                    i < len(lines) and lines[i].startswith("  ") and lines[i].strip() and not _LIST_ITEM.match(lines[i])
                ):
                    items[-1] = items[-1] + (Inline("text", " "),) + inline(lines[i].strip())
                    i += 1
            out.append(Block("list", lines=tuple(items)))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                para.append(inline(lines[i].strip()))
                i += 1
            out.append(Block("para", lines=tuple(para)))
    return tuple(out)


def _starts_block(line: str) -> bool:
    s = line.strip()
    return s.startswith(("|", ">", "#", "```", "~~~")) or bool(_LIST_ITEM.match(line))


def sections(body: str) -> list[tuple[str, str]]:
    """The body's `## ` sections as (title, markdown), in file order; text before the first one is dropped."""
    found: list[tuple[str, list[str]]] = []
    fenced = False
    for line in body.split("\n"):
        if line.strip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            found.append((line[3:].strip(), []))
        elif found:
            found[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in found]


# --- the incident ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime | None
    at_text: str
    who: str
    what: tuple[Inline, ...]
    link: tuple[Inline, ...]


@dataclass(frozen=True)
class Fact:
    """One line of recorded state from the front matter, e.g. ("rollback.services.api-worker.status", "done")."""

    key: str
    value: str


@dataclass(frozen=True)
class Summary:
    """What the index and the statistics need of one incident."""

    id: str  # from the file name, so it is unique and safe as a page name
    source: str  # the file name, e.g. INC-0042.md
    title: str
    severity: str
    status: str
    environment: str
    services: tuple[str, ...]
    commander: str
    comms_owner: str
    issue: int | None
    started_at: datetime | None
    declared_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    tta: timedelta | None
    ttr: timedelta | None
    problems: tuple[str, ...]
    # Breach notification (core.breach): from becoming aware to notifying the supervisory authority, and how
    # many affected tenants were notified of how many. Counts and times only: the tenant IDs stay private.
    time_to_notify: timedelta | None = None
    notify_deadline: datetime | None = None
    tenants_notified: tuple[int, int] | None = None
    notification_waived: bool = False

    @property
    def page(self) -> str:
        """The incident's page, relative to the site root."""
        return f"incidents/{self.id}.html"

    @property
    def number(self) -> int:
        return int(self.id.split("-", 1)[1])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def month(self) -> str | None:
        moment = self.declared_at or self.started_at
        return moment.strftime("%Y-%m") if moment else None


@dataclass(frozen=True)
class Incident:
    """One incident file, read: its summary plus everything its own page shows."""

    summary: Summary
    timeline: tuple[TimelineEvent, ...]
    sections: tuple[Section, ...]
    verification: tuple[Fact, ...]
    state: tuple[Fact, ...]  # containment, rollback, escalations: what the automation recorded


@dataclass(frozen=True)
class Malformed:
    source: str
    reason: str


def parse_timestamp(value: Any) -> datetime | None:
    """A UTC timestamp from the file, or None when it is absent, `unknown` or unreadable."""
    if not isinstance(value, str) or not value.strip() or value.strip() == UNKNOWN:
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _text(value: Any, default: str = UNKNOWN, limit: int = 300) -> str:
    if value is None or value == "" or isinstance(value, dict | list):
        return default
    return f.clean_line(str(value), limit=limit) or default


def _texts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list):
        return ()
    items = (_text(v, default="", limit=100) for v in value if not isinstance(v, dict | list))
    return tuple(dict.fromkeys(v for v in items if v and v != UNKNOWN))


def facts(prefix: str, value: Any, limit: int = 200) -> list[Fact]:
    """Flatten a front matter value into key/value lines (bounded: a pasted blob must not flood the page)."""
    out: list[Fact] = []

    def walk(key: str, item: Any) -> None:
        if len(out) >= limit:
            return
        if isinstance(item, dict):
            for k, v in item.items():
                walk(f"{key}.{k}", v)
        elif isinstance(item, list):
            for n, v in enumerate(item, 1):
                walk(f"{key}[{n}]", v)
        elif item is not None:
            out.append(Fact(f.clean_line(key, limit=120), f.clean_line(str(item), limit=500)))

    walk(prefix, value)
    return out


def _duration(start: datetime | None, end: datetime | None, name: str, problems: list[str]) -> timedelta | None:
    if start is None or end is None:
        return None
    if end < start:
        problems.append(f"{name} is before started_at; left out of the averages")
        return None
    return end - start


def _timeline(text: str) -> tuple[TimelineEvent, ...]:
    events = []
    for cells in f.timeline_rows(text):
        cells = [*cells, "", "", "", ""][:4]
        at_text = _plain(cells[0])
        events.append(
            TimelineEvent(parse_timestamp(at_text), at_text, _plain(cells[1]), inline(cells[2]), inline(cells[3]))
        )
    return tuple(events)


WITHHELD = "[withheld]"
PUBLIC_EVIDENCE_NOTE = (
    "_Tenant IDs, request IDs and security notes are withheld from the published site; they are in the incident "
    "file in the repository._"
)
_PRIVATE_ROWS = ("Evidence tenant ids", "Evidence request ids", "Security impact")


def _private_values(fields: dict[str, Any]) -> list[str]:
    raw = fields.get("impact")
    impact: dict[str, Any] = raw if isinstance(raw, dict) else {}
    found: list[str] = []
    for key in ("tenants", "request_ids"):
        value = impact.get(key)
        items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        found += [str(v).strip() for v in items if str(v).strip() and str(v).strip() != UNKNOWN]
    # Longest first, so a value that contains another is withheld whole.
    return sorted(set(found), key=len, reverse=True)


def for_publication(text: str) -> str:
    """The incident file as a public site may show it: tenant IDs and request IDs withheld wherever they appear,
    the Evidence section (where they and security notes are recorded) replaced by a note, and timeline rows
    about them reduced to what happened. The file in the repository is not changed."""
    fields = f.read_fields(text)
    _, body = f.split(text)
    lines = body.split("\n")
    out: list[str] = []
    in_evidence = False
    for line in lines:
        if line.startswith("## "):
            in_evidence = line.strip() == "## Evidence"
            out.append(line)
            if in_evidence:
                out += ["", PUBLIC_EVIDENCE_NOTE, ""]
            continue
        if in_evidence:
            continue
        cells = line.split("|")
        if line.startswith("| ") and len(cells) > 4 and cells[3].strip().startswith(_PRIVATE_ROWS):
            what = cells[3].strip()
            cells[3] = " " + ("Security impact assessed" if what.startswith("Security") else "Evidence added") + " "
            cells[4] = f" {WITHHELD} "
            line = "|".join(cells)
        out.append(line)
    public = "\n".join(out)
    for value in _private_values(fields):
        public = public.replace(value, WITHHELD)
    return text[: len(text) - len(body)] + public


def parse_incident(name: str, data: bytes, private: bool = False) -> Incident | Malformed:
    """Read one incident file; never raises: what cannot be read is reported, not fatal. Unless the site is
    `private`, what it shows is the file `for_publication`."""
    match = FILE_NAME.match(name)
    if match is None:
        return Malformed(name, "the file name is not INC-<number>.md")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Malformed(name, f"not UTF-8 text (byte {exc.start})")
    try:
        return _parse(match.group(1), name, text if private else for_publication(text))
    except f.IncidentFileError as exc:
        return Malformed(name, f.clean_line(str(exc), limit=300))
    except (ValueError, TypeError, RecursionError) as exc:  # hostile YAML (huge or cyclic values, odd keys)
        return Malformed(name, f"front matter could not be read ({type(exc).__name__})")


def _parse(incident_id: str, name: str, text: str) -> Incident:
    fields = f.read_fields(text)
    _, body = f.split(text)
    problems: list[str] = []
    if fields.get("id") not in (None, incident_id):
        problems.append(f"front matter id {_text(fields.get('id'))!r} differs from the file name; using {incident_id}")
    severity = _text(fields.get("severity"), limit=40)
    if severity not in SEVERITIES:
        problems.append(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    status = _text(fields.get("status"), limit=40)
    if status not in STATUSES:
        problems.append(f"status {status!r} is not one of {', '.join(STATUSES)}")
    moments: dict[str, datetime | None] = {}
    for key in ("started_at", "declared_at", "resolved_at", "closed_at"):
        value = fields.get(key)
        moments[key] = parse_timestamp(value)
        if moments[key] is None and value not in (None, "", UNKNOWN):
            problems.append(f"{key} {_text(value)!r} is not a UTC timestamp")
    if moments["declared_at"] is None:
        problems.append("declared_at is missing")
    started, declared, resolved = moments["started_at"], moments["declared_at"], moments["resolved_at"]
    tta = _duration(started, declared, "declared_at", problems)
    ttr = _duration(started, resolved, "resolved_at", problems)
    issue = fields.get("issue")
    state = [
        *facts("containment", fields.get("containment")),
        *facts("rollback", fields.get("rollback")),
        *facts("escalations", fields.get("escalations")),
    ]
    summary = Summary(
        id=incident_id,
        source=name,
        title=_text(fields.get("title"), default="Untitled incident", limit=200),
        severity=severity,
        status=status,
        environment=_text(fields.get("environment"), limit=60),
        services=_texts(fields.get("services")),
        commander=_text(fields.get("commander"), limit=60),
        comms_owner=_text(fields.get("comms_owner"), default="unassigned", limit=60),
        issue=issue if isinstance(issue, int) and not isinstance(issue, bool) and issue > 0 else None,
        started_at=started,
        declared_at=declared,
        resolved_at=resolved,
        closed_at=moments["closed_at"],
        tta=tta,
        ttr=ttr,
        problems=tuple(problems),
        **_notification(fields),
    )
    return Incident(
        summary=summary,
        timeline=_timeline(text),
        sections=tuple(Section(t, blocks(md)) for t, md in sections(body) if t not in SPECIAL_SECTIONS),
        verification=tuple(facts("verification", fields.get("verification"))),
        state=tuple(state),
    )


def _notification(fields: dict[str, Any]) -> dict[str, Any]:
    clock = breach.block(fields)
    if clock is None:
        return {}
    notified = clock.get("notified") if isinstance(clock.get("notified"), dict) else {}
    assert isinstance(notified, dict)
    affected = breach.tenants(fields)
    return {
        "time_to_notify": breach.time_to_notify(fields),
        "notify_deadline": parse_timestamp(clock.get("deadline")),
        "tenants_notified": (sum(1 for t in affected if t in notified), len(affected)),
        "notification_waived": breach.waived(fields),
    }


REQUIRED_SECTIONS = ("Evidence", "Recovery verification", "Follow-ups")


def page_sections(incident: Incident) -> list[Section]:
    """The sections an incident page shows after its timeline: the file's own, in file order, with an empty
    Evidence, Recovery verification or Follow-ups section added where a person removed it (the page then
    says nothing was recorded, instead of silently leaving it out). The Summary is shown above the timeline."""
    found = [s for s in incident.sections if s.title != "Summary"]
    titles = {s.title for s in found}
    return found + [Section(title, ()) for title in REQUIRED_SECTIONS if title not in titles]


def summary_section(incident: Incident) -> Section | None:
    return next((s for s in incident.sections if s.title == "Summary"), None)


# --- numbers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """MTTA/MTTR for one severity; durations are None when no incident could be measured."""

    severity: str
    incidents: int
    open: int
    mtta: timedelta | None
    median_tta: timedelta | None
    tta_measured: int
    mttr: timedelta | None
    median_ttr: timedelta | None
    ttr_measured: int


def _mean(values: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=round(statistics.fmean(v.total_seconds() for v in values))) if values else None


def _median(values: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=round(statistics.median(v.total_seconds() for v in values))) if values else None


def stat(severity: str, incidents: Sequence[Summary]) -> Stat:
    ttas = [i.tta for i in incidents if i.tta is not None]
    ttrs = [i.ttr for i in incidents if i.ttr is not None]
    return Stat(
        severity=severity,
        incidents=len(incidents),
        open=sum(1 for i in incidents if i.is_open),
        mtta=_mean(ttas),
        median_tta=_median(ttas),
        tta_measured=len(ttas),
        mttr=_mean(ttrs),
        median_ttr=_median(ttrs),
        ttr_measured=len(ttrs),
    )


def severity_order(severities: Iterable[str]) -> list[str]:
    """The known severities first, in rank order, then any others seen in files, sorted."""
    seen = set(severities)
    return [s for s in SEVERITIES if s in seen] + sorted(seen - set(SEVERITIES))


def stats(incidents: Sequence[Summary]) -> list[Stat]:
    """One row per severity present, then one for all incidents."""
    by: dict[str, list[Summary]] = {}
    for incident in incidents:
        by.setdefault(incident.severity, []).append(incident)
    return [stat(s, by[s]) for s in severity_order(by)] + [stat("all", incidents)]


def format_duration(value: timedelta | None) -> str:
    """`3d 4h`, `2h 05m`, `4m 09s`, or an em dash when there is nothing to show."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


# --- charts (geometry only; the templates draw it) --------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    severity: str
    month: str
    count: int


@dataclass(frozen=True)
class Tick:
    at: float  # x or y in chart coordinates
    label: str


@dataclass(frozen=True)
class MonthChart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    plot_left: int
    plot_right: int
    bars: tuple[Bar, ...]
    x_labels: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    months: tuple[tuple[str, dict[str, int]], ...]  # the same numbers as a table
    severities: tuple[str, ...]
    undated: int


def months_between(first: str, last: str) -> list[str]:
    """Every `YYYY-MM` from first to last inclusive."""
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def nice_step(maximum: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10^n) that divides 0..maximum into about `ticks` intervals."""
    raw = max(maximum / ticks, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def month_chart(incidents: Sequence[Summary], width: int = 960, height: int = 260) -> MonthChart:
    """Incidents per month, stacked by severity; months with no incident are shown as empty."""
    counts: dict[str, Counter[str]] = {}
    undated = 0
    for incident in incidents:
        month = incident.month
        if month is None:
            undated += 1
            continue
        counts.setdefault(month, Counter())[incident.severity] += 1
    severities = tuple(severity_order(s for c in counts.values() for s in c))
    months = months_between(min(counts), max(counts)) if counts else []
    left, right, top, bottom = 44, width - 12, 12, height - 34
    peak = max((sum(c.values()) for c in counts.values()), default=0)
    step = nice_step(peak)
    top_value = max(step * -(-peak // step), step)
    slot = (right - left) / max(len(months), 1)
    bar_width = min(max(slot * 0.8, 1.0), 48.0)
    bars: list[Bar] = []
    for n, month in enumerate(months):
        y = float(bottom)
        for severity in severities:
            count = counts.get(month, Counter())[severity]
            if not count:
                continue
            h = (bottom - top) * count / top_value
            y -= h
            bars.append(
                Bar(
                    round(left + n * slot + (slot - bar_width) / 2, 2),
                    round(y, 2),
                    round(bar_width, 2),
                    round(h, 2),
                    severity,
                    month,
                    count,
                )
            )
    every = max(1, -(-len(months) // 12))
    x_labels = tuple(
        Tick(round(left + n * slot + slot / 2, 2), month) for n, month in enumerate(months) if n % every == 0
    )
    y_ticks = tuple(
        Tick(round(bottom - (bottom - top) * v / top_value, 2), str(v)) for v in range(0, top_value + 1, step)
    )
    table = tuple((m, {s: counts.get(m, Counter())[s] for s in severities}) for m in months)
    return MonthChart(
        width, height, top, bottom, left, right, tuple(bars), x_labels, y_ticks, table, severities, undated
    )


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    label: str
    at: str
    anchor: str  # "start" (label right of the dot) or "end"
    kind: str  # declared | resolved | closed | event


@dataclass(frozen=True)
class Band:
    x: float
    width: float
    label: str
    kind: str  # acknowledge | resolve


@dataclass(frozen=True)
class TimelineChart:
    width: int
    height: int
    left: int
    right: int
    axis_y: int
    points: tuple[ChartPoint, ...]
    ticks: tuple[Tick, ...]
    bands: tuple[Band, ...]
    undated: int


_TICK_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)


def _kind(what: str) -> str:
    lowered = what.lower()
    for kind in ("declared", "resolved", "closed", "contained", "rollback", "escalated"):
        if kind in lowered:
            return kind
    return "event"


def timeline_chart(incident: Incident, width: int = 960, row: int = 22) -> TimelineChart:
    """Each timeline row as a dot on one time axis (a row per event, so labels never overlap)."""
    dated = sorted(
        ((e.at, n, e) for n, e in enumerate(incident.timeline) if e.at is not None), key=lambda item: item[:2]
    )
    summary = incident.summary
    left, right, axis_y = 16, width - 16, 28
    moments = [at for at, _, _ in dated] + [
        m for m in (summary.started_at, summary.declared_at, summary.resolved_at) if m is not None
    ]
    height = axis_y + 16 + row * max(len(dated), 1)
    if not moments:
        return TimelineChart(width, height, left, right, axis_y, (), (), (), len(incident.timeline))
    first, last = min(moments), max(moments)
    span = max((last - first).total_seconds(), 1.0)

    def x_of(moment: datetime) -> float:
        return round(left + (right - left) * (moment - first).total_seconds() / span, 2)

    points = []
    for n, (at, _, event) in enumerate(dated):
        x = x_of(at)
        what = plain_text(event.what)
        label = f.clean_line(f"{at.strftime('%H:%M')} {event.who} — {what}", limit=90)
        anchor = "start" if x < left + (right - left) * 0.55 else "end"
        points.append(ChartPoint(x, axis_y + 16 + row * n + row / 2, label, event.at_text, anchor, _kind(what)))
    step = next((s for s in _TICK_STEPS if span / s <= 8), _TICK_STEPS[-1])
    start = datetime.fromtimestamp(-(-first.timestamp() // step) * step, UTC)
    fmt = "%H:%M" if first.date() == last.date() else "%m-%d %H:%M"
    ticks = []
    moment = start
    while moment <= last:
        ticks.append(Tick(x_of(moment), moment.strftime(fmt)))
        moment += timedelta(seconds=step)
    bands = []
    started, declared, resolved = summary.started_at, summary.declared_at, summary.resolved_at
    if started and declared and declared >= started:
        bands.append(
            Band(
                x_of(started),
                x_of(declared) - x_of(started),
                f"acknowledge {format_duration(summary.tta)}",
                "acknowledge",
            )
        )
    if started and resolved and resolved >= started:
        bands.append(
            Band(x_of(started), x_of(resolved) - x_of(started), f"resolve {format_duration(summary.ttr)}", "resolve")
        )
    return TimelineChart(
        width,
        height,
        left,
        right,
        axis_y,
        tuple(points),
        tuple(ticks),
        tuple(bands),
        len(incident.timeline) - len(dated),
    )


# --- the site -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Everything the index page shows."""

    incidents: tuple[Summary, ...]  # newest (highest number) first
    malformed: tuple[Malformed, ...]
    stats: tuple[Stat, ...]
    months: MonthChart
    severities: tuple[str, ...]
    statuses: tuple[str, ...]
    services: tuple[str, ...]
    with_problems: int


def build_site(incidents: Iterable[Summary], malformed: Iterable[Malformed] = ()) -> Site:
    """The index's data from every incident read and every file that could not be."""
    ordered = sorted(incidents, key=lambda i: i.number, reverse=True)
    statuses = {i.status for i in ordered}
    return Site(
        incidents=tuple(ordered),
        malformed=tuple(sorted(malformed, key=lambda m: m.source)),
        stats=tuple(stats(ordered)),
        months=month_chart(ordered),
        severities=tuple(severity_order(i.severity for i in ordered)),
        statuses=tuple([s for s in STATUSES if s in statuses] + sorted(statuses - set(STATUSES))),
        services=tuple(sorted({s for i in ordered for s in i.services})),
        with_problems=sum(1 for i in ordered if i.problems),
    )


def read_all(files: Iterable[tuple[str, bytes]]) -> tuple[list[Incident], list[Malformed]]:
    """Parse (file name, content) pairs into incidents and files that could not be read."""
    incidents: list[Incident] = []
    malformed: list[Malformed] = []
    for name, data in files:
        parsed = parse_incident(name, data)
        if isinstance(parsed, Malformed):
            malformed.append(parsed)
        else:
            incidents.append(parsed)
    return incidents, malformed
