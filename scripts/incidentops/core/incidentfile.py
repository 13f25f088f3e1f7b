"""The incident file: YAML front matter plus markdown sections, edited surgically.

The machine owns the front matter keys it writes and the rows it appends; everything else belongs to
people. Edits therefore work on text: setting a field rewrites only that key's line, appending a timeline
row inserts one line at the end of the Timeline table. A human's edits anywhere else survive byte for byte,
and every bot change is a one- or two-line diff in `git log -p`.
"""

from __future__ import annotations

import copy
import functools
import io
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from incidentops.core.timefmt import format_ts
from incidentops.errors import IncidentOpsError

FENCE = "---"
# Keys in the order a new file lists them (design.md "The incident file").
FIELD_ORDER = (
    "id",
    "title",
    "severity",
    "status",
    "environment",
    "started_at",
    "declared_at",
    "issue",
    "commander",
    "comms_owner",
    "services",
    "impact",
    "tenant_isolation_risk",
    "deploy_regression_suspected",
    "security_impacting",
    "risks",
    "containment",
    "rollback",
    "verification",
    "escalations",
    "unknown_fields",
    "resolved_at",
    "closed_at",
)


class IncidentFileError(IncidentOpsError):
    """An incident file cannot be read as front matter plus markdown."""


@dataclass(frozen=True)
class TimelineRow:
    at: str  # UTC timestamp
    who: str  # GitHub login, or "incidentops"
    what: str
    link: str = ""  # markdown link or command text
    key: str = ""  # idempotency key of the event that produced the row


_PER_THREAD = threading.local()  # ruamel's YAML objects are reusable, not shareable across threads


def _dumper() -> YAML:
    # One per thread, reused: building it costs as much as dumping a key, and a new file dumps twenty keys.
    yaml: YAML | None = getattr(_PER_THREAD, "dumper", None)
    if yaml is None:
        yaml = _PER_THREAD.dumper = YAML(typ="rt")
        yaml.default_flow_style = True
        yaml.width = 1_000_000_000  # one line per key, whatever its length
    return yaml


def _loader() -> YAML:
    yaml: YAML | None = getattr(_PER_THREAD, "loader", None)
    if yaml is None:
        # The pure parser: it reads what the round-trip dumper writes (YAML 1.2, e.g. a reply marker's ':' inside a
        # flow list), which libyaml's scanner (ruamel.yaml.clib, installed for the runbook's blocks) rejects.
        yaml = _PER_THREAD.loader = YAML(typ="safe", pure=True)
    return yaml


UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_line(text: str, limit: int = 500) -> str:
    """Make user text safe for a single-line field: no control or direction-override characters, bounded."""
    text = UNSAFE_CHARS.sub("", text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    text = re.sub(r" {2,}", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


_YAML_BREAKS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


def _quote_unsafe(value: Any) -> Any:
    # YAML folds NEL and the Unicode line separators into spaces in plain scalars; double quotes escape them.
    if isinstance(value, str) and _YAML_BREAKS.search(value):
        return DoubleQuotedScalarString(value)
    if isinstance(value, dict):
        return {k: _quote_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_unsafe(v) for v in value]
    return value


def dump_field(key: str, value: Any) -> str:
    """Render one front matter key as a single line of YAML (flow style), newline included."""
    buffer = io.StringIO()
    _dumper().dump({key: _quote_unsafe(value)}, buffer)
    line = buffer.getvalue()
    # The flow-style dumper wraps the whole mapping in braces: `{key: value}` -> `key: value`.
    if line.startswith("{") and line.rstrip("\n").endswith("}"):
        line = line.rstrip("\n")[1:-1] + "\n"
    return line


def _normalise(value: Any) -> Any:
    # A human may write an unquoted timestamp; the rest of the code compares strings.
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def split(text: str) -> tuple[str, str]:
    """Return (front matter text without fences, body) or raise `IncidentFileError`."""
    if not text.startswith(FENCE + "\n"):
        raise IncidentFileError("incident file does not start with a '---' front matter line")
    end = text.find("\n" + FENCE + "\n", len(FENCE))
    if end == -1:
        if text.endswith("\n" + FENCE):
            end = len(text) - len(FENCE) - 1
        else:
            raise IncidentFileError("incident file front matter has no closing '---' line")
    return text[len(FENCE) + 1 : end + 1], text[end + len(FENCE) + 2 :]


def read_fields(text: str) -> dict[str, Any]:
    """Parse the front matter into plain Python values (a fresh copy the caller may change)."""
    front, _ = split(text)
    return copy.deepcopy(_parse_front(front))


@functools.lru_cache(maxsize=16)
def _parse_front(front: str) -> dict[str, Any]:
    # A run reads the same file's fields many times (each flow step, each check); YAML parsing is the cost.
    try:
        data = _loader().load(front)
    except YAMLError as exc:
        raise IncidentFileError(f"incident front matter is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise IncidentFileError("incident front matter is not a mapping of keys to values")
    return _normalise(data)


def _key_spans(front: str) -> dict[str, tuple[int, int]]:
    """Line ranges [start, end) of each top-level key, continuation lines included."""
    lines = front.split("\n")
    spans: dict[str, tuple[int, int]] = {}
    current: str | None = None
    start = last = 0
    for i, line in enumerate(lines):
        match = re.match(r"^([A-Za-z_][\w-]*):(\s|$)", line)
        if match:
            if current is not None:
                spans[current] = (start, last + 1)
            current, start, last = match.group(1), i, i
        elif line[:1].isspace() and line.strip() and current is not None:
            last = i  # an indented continuation line belongs to the key above
        elif line and current is not None:
            # A top-level comment or anything else ends the key; humans' comments are never rewritten.
            spans[current] = (start, last + 1)
            current = None
    if current is not None:
        spans[current] = (start, last + 1)
    return spans


def set_fields(text: str, updates: dict[str, Any]) -> str:
    """Rewrite only the lines of the given front matter keys (adding missing keys before the closing fence)."""
    front, body = split(text)
    lines = front.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    trailing = "\n"
    for key, value in updates.items():
        spans = _key_spans("\n".join(lines) + trailing)
        new = dump_field(key, value).rstrip("\n").split("\n")
        if key in spans:
            start, end = spans[key]
            if lines[start:end] != new:
                lines[start:end] = new
        else:
            lines.extend(new)
    new_text = FENCE + "\n" + "\n".join(lines) + trailing + FENCE + "\n" + body
    read_fields(new_text)  # never write a file we could not read back
    return new_text


def render_front_matter(fields: dict[str, Any]) -> str:
    """Front matter for a new file, keys in the documented order."""
    ordered = [k for k in FIELD_ORDER if k in fields] + [k for k in fields if k not in FIELD_ORDER]
    return "".join(dump_field(key, fields[key]) for key in ordered)


def escape_cell(text: str) -> str:
    """Make text safe inside one markdown table cell: one line, no pipes, no raw HTML."""
    text = clean_line(text, limit=2000)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|")


def escape_inline(text: str, limit: int = 500) -> str:
    """One line of user text inside markdown prose or a table cell: no HTML, line breaks, headings, emphasis, code,
    links or images (`[`, `]` and `!` lose their meaning), and no cell breaks."""
    text = clean_line(text, limit=limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]#|~":
        text = text.replace(char, "\\" + char)
    return text


def event_marker(key: str) -> str:
    """The hidden marker that records which event produced a row."""
    return f"<!-- ev:{escape_cell(key).replace('--', '-')} -->"


def format_row(row: TimelineRow) -> str:
    """One timeline table line; the event key rides along as an invisible HTML comment."""
    who = escape_cell(row.who)
    if who and who != "incidentops" and not who.startswith("@"):
        who = "@" + who
    link = row.link  # already markdown built by our own code from trusted parts
    marker = f" {event_marker(row.key)}" if row.key else ""
    return f"| {escape_cell(row.at)} | {who} | {escape_cell(row.what)} | {link}{marker} |"


def has_event(text: str, key: str) -> bool:
    """Whether a row produced by this event is already in the file (re-runs replay events).

    Only the marker column of a Timeline row counts: user text lands verbatim in the front matter (YAML data) and
    as inline code in the Evidence section, so a `<!-- ev:… -->` typed into a form field or a command must not
    pass for a row we wrote (it would block the follow-ups, the blast radius or any command keyed like it).
    """
    marker = event_marker(key)
    if marker not in text:
        return False
    lines = text.split("\n")
    bounds = _section_bounds(lines, "Timeline")
    if bounds is None:
        return False
    return any(line.rstrip().endswith(f"{marker} |") for line in lines[bounds[0] + 1 : bounds[1]])


def _section_bounds(lines: list[str], title: str) -> tuple[int, int] | None:
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {title}"), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def append_table_row(text: str, section: str, row_line: str, header: str) -> str:
    """Append a row to the table of a `## section`, creating the section or table if a human removed it."""
    front, body = split(text)
    lines = body.split("\n")
    bounds = _section_bounds(lines, section)
    if bounds is None:
        if lines and lines[-1] == "":
            lines.pop()
        lines += ["", f"## {section}", "", header, "|" + "---|" * (header.count("|") - 1), row_line, ""]
    else:
        start, end = bounds
        table_rows = [i for i in range(start + 1, end) if lines[i].startswith("|")]
        if table_rows:
            # Insert after the last line of the first table in the section.
            first = table_rows[0]
            last = first
            while last + 1 < end and lines[last + 1].startswith("|"):
                last += 1
            lines.insert(last + 1, row_line)
        else:
            insert_at = end
            while insert_at > start + 1 and lines[insert_at - 1] == "":
                insert_at -= 1
            block = ["", header, "|" + "---|" * (header.count("|") - 1), row_line]
            lines[insert_at:insert_at] = block
    return FENCE + "\n" + front + FENCE + "\n" + "\n".join(lines)


def replace_table_row(text: str, section: str, old_line: str, new_line: str) -> str | None:
    """Replace one row of a `## section` table, exactly as written; None when no such row is there."""
    front, body = split(text)
    lines = body.split("\n")
    bounds = _section_bounds(lines, section)
    if bounds is None:
        return None
    start, end = bounds
    at = next((i for i in range(start + 1, end) if lines[i] == old_line), None)
    if at is None:
        return None
    lines[at] = new_line
    return FENCE + "\n" + front + FENCE + "\n" + "\n".join(lines)


TIMELINE_HEADER = "| time (UTC) | who | what | command / link |"


def append_timeline(text: str, row: TimelineRow) -> str:
    """Add one row to the Timeline table, in time order, and redraw the timeline diagram.

    Rows normally arrive in order; a run that waited (or raced another) may carry an earlier time, and the table
    must stay sorted for readers and `incidentops lint`. Rows with equal times keep their arrival order.
    """
    line = format_row(row)
    front, body = split(text)
    lines = body.split("\n")
    bounds = _section_bounds(lines, "Timeline")
    if bounds is not None:
        rows = [i for i in range(bounds[0] + 1, bounds[1]) if lines[i].startswith("|")]
        data = [i for i in rows if not lines[i].startswith("|---") and lines[i].strip() != TIMELINE_HEADER]
        later = [i for i in data if _row_time(lines[i]) > row.at]
        contiguous = rows and rows[-1] - rows[0] == len(rows) - 1
        if later and contiguous:
            lines.insert(later[0], line)
            return refresh_diagram(FENCE + "\n" + front + FENCE + "\n" + "\n".join(lines))
    return refresh_diagram(append_table_row(text, "Timeline", line, TIMELINE_HEADER))


def _row_time(line: str) -> str:
    cells = re.split(r"(?<!\\)\|", line.strip())
    return cells[1].strip() if len(cells) > 2 else ""


def timeline_rows(text: str) -> list[list[str]]:
    """The Timeline table's data rows as lists of raw cell texts (for lint, reports and diagrams)."""
    _, body = split(text)
    lines = body.split("\n")
    bounds = _section_bounds(lines, "Timeline")
    if bounds is None:
        return []
    rows = []
    for line in lines[bounds[0] + 1 : bounds[1]]:
        if not line.startswith("|") or line.startswith("|---") or line.strip() == TIMELINE_HEADER:
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return rows


def strip_comments(text: str) -> str:
    """Remove `<!-- … -->` HTML comments in one pass (a lazy regex rescans to the end after every unclosed `<!--`)."""
    out, pos = [], 0
    while (start := text.find("<!--", pos)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            break  # unclosed: no later `<!--` can close either
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


DIAGRAM_SECTION = "Timeline diagram"
DIAGRAM_MAX_ROWS = 60  # a picture of the last hour matters most; the table keeps everything


def _diagram_text(text: str, limit: int = 70) -> str:
    # Mermaid splits events on ':' and treats several characters as syntax; keep plain words only.
    text = text.replace("\\|", "/").replace("&lt;", "‹").replace("&gt;", "›").replace("&amp;", "&")
    text = strip_comments(text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown link -> its text
    text = re.sub(r"[^\w\s@./,'()+=→›‹&-]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mermaid_timeline(rows: list[list[str]], title: str) -> str:
    """A Mermaid `timeline` block (GitHub renders it in the file view) from the Timeline table rows."""
    lines = ["```mermaid", "timeline", f"    title {_diagram_text(title)} (UTC)"]
    current_day = None
    for cells in rows[-DIAGRAM_MAX_ROWS:]:
        if len(cells) < 3:
            continue
        stamp = cells[0]
        match = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})Z$", stamp)
        if not match:
            continue
        day, period = match.group(1), f"{match.group(2)}.{match.group(3)}.{match.group(4)}"
        if day != current_day:
            lines.append(f"    section {day}")
            current_day = day
        who = _diagram_text(cells[1], 30)
        what = _diagram_text(cells[2])
        lines.append(f"        {period} : {what}" + (f" ({who})" if who else ""))
    lines.append("```")
    return "\n".join(lines)


def refresh_diagram(text: str) -> str:
    """Regenerate the machine-owned `## Timeline diagram` section from the Timeline table."""
    front, body = split(text)
    fields = read_fields(text)
    title = str(fields.get("id") or "Incident")
    block = mermaid_timeline(timeline_rows(text), title)
    lines = body.split("\n")
    bounds = _section_bounds(lines, DIAGRAM_SECTION)
    section = [f"## {DIAGRAM_SECTION}", "", *block.split("\n"), ""]
    if bounds is None:
        timeline = _section_bounds(lines, "Timeline")
        at = timeline[1] if timeline else len(lines)
        lines[at:at] = section
    else:
        lines[bounds[0] : bounds[1]] = section
    return FENCE + "\n" + front + FENCE + "\n" + "\n".join(lines)
