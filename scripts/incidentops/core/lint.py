"""Validate one incident file: front matter schema and types, timestamps, timeline order, closed means complete.

Pure: text in, problems out, each with the file's path and a 1-based line number. Linear in the file's
size, so a repository of thousands of incidents lints in one pass.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from incidentops.core import breach
from incidentops.core.incidentfile import FENCE
from incidentops.core.timefmt import TS_FORMAT

STATUSES = ("declared", "contained", "mitigated", "resolved", "closed")
SEVERITIES: tuple[str, ...] = ("SEV-1", "SEV-2", "SEV-3")
REQUIRED = ("id", "title", "severity", "status", "declared_at", "issue")
RISK_KINDS = ("tenant-isolation", "authz", "data-integrity")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
FILE_NAME = re.compile(r"^INC-(\d{4,})\.md$")
UNKNOWN = "unknown"

_yaml = YAML(typ="safe", pure=True)  # what incidentfile reads and writes (libyaml rejects some of it)


# -- a fast reader for the front matter the machine writes -------------------------------------------
# Pure-Python YAML costs about 2 ms per file, most of a lint run over thousands of incidents. The
# automation writes each key as one line of flow-style YAML with plain or single-quoted scalars, so that
# shape is read directly; anything else (comments, block style, double quotes, a scalar YAML could type
# as a float, date or other bool) returns None and the file is read by ruamel as before. A
# property-based test checks that both readers agree wherever the fast one answers.

_PLAIN = re.compile(r"[A-Za-z0-9_./()+][^,\[\]{}#:'\"\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]*")
_ODD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_INT = re.compile(r"0|-?[1-9][0-9]*")
# Anything YAML might read as a number, date, time or special float goes to the full parser.
_NUMBERISH = re.compile(r"[-+]?[0-9._][0-9._eE+:-]*|[-+]?0[boxBOX].*|[-+]?\.[A-Za-z]+")
_RESERVED = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"}
_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*): (.*)")
_FLOW_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*): ")


class _NotFast(Exception):
    pass


def _scalar(text: str, i: int, in_flow: bool) -> tuple[Any, int]:
    if text.startswith("'", i):
        j, out = i + 1, []
        while True:
            k = text.find("'", j)
            if k == -1:
                raise _NotFast
            if _ODD.search(text, j, k):
                raise _NotFast  # YAML folds line-break-like characters; leave those to ruamel
            out.append(text[j:k])
            if text.startswith("''", k):
                out.append("'")
                j = k + 2
                continue
            return "".join(out), k + 1
    match = _PLAIN.match(text, i)
    if not match:
        raise _NotFast
    word = match.group(0)
    if in_flow:
        word = word.rstrip(" ")
    elif word != word.rstrip(" "):
        raise _NotFast
    end = i + len(word)
    if word in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[word], end
    if _INT.fullmatch(word):
        return int(word), end
    if word.lower() in _RESERVED or _NUMBERISH.fullmatch(word) or "  " in word:
        raise _NotFast
    return word, end


def _value(text: str, i: int, in_flow: bool) -> tuple[Any, int]:
    if text.startswith("[", i):
        items: list[Any] = []
        i += 1
        if text.startswith("]", i):
            return items, i + 1
        while True:
            item, i = _value(text, i, True)
            items.append(item)
            if text.startswith(", ", i):
                i += 2
            elif text.startswith("]", i):
                return items, i + 1
            else:
                raise _NotFast
    if text.startswith("{", i):
        mapping: dict[str, Any] = {}
        i += 1
        if text.startswith("}", i):
            return mapping, i + 1
        while True:
            key_match = _FLOW_KEY.match(text, i)
            if not key_match or key_match.group(1) in mapping:
                raise _NotFast
            item, i = _value(text, key_match.end(), True)
            mapping[key_match.group(1)] = item
            if text.startswith(", ", i):
                i += 2
            elif text.startswith("}", i):
                return mapping, i + 1
            else:
                raise _NotFast
    return _scalar(text, i, in_flow)


def fast_front_matter(front_lines: list[str]) -> dict[str, Any] | None:
    """The front matter as plain values when it has the shape the automation writes; else None."""
    data: dict[str, Any] = {}
    try:
        for line in front_lines:
            match = _KEY_LINE.fullmatch(line)
            if match is None or match.group(1) in data:
                return None
            value, end = _value(line, match.start(2), False)
            if end != len(line):
                return None
            data[match.group(1)] = value
    except _NotFast:
        return None
    return data


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _valid_ts(value: Any) -> bool:
    if not isinstance(value, str) or not TS.match(value):
        return False
    try:
        datetime.strptime(value, TS_FORMAT)
    except ValueError:
        return False
    return True


def _ts_problem(value: Any) -> str:
    return f"{value!r} is not a UTC timestamp with seconds like 2026-11-27T03:14:40Z"


def _key_lines(front_lines: list[str]) -> dict[str, int]:
    """Line number (in the file) of each top-level front matter key."""
    lines: dict[str, int] = {}
    for i, line in enumerate(front_lines):
        match = re.match(r"^([A-Za-z_][\w-]*):(\s|$)", line)
        if match and match.group(1) not in lines:
            lines[match.group(1)] = i + 2  # +1 for 1-based, +1 for the opening fence
    return lines


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def lint_text(path: str, text: str, severities: tuple[str, ...] = SEVERITIES) -> list[Problem]:
    """Every problem in one incident file (empty when it is valid)."""
    problems: list[Problem] = []

    def add(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    lines = text.split("\n")
    if not lines or lines[0] != FENCE:
        return [Problem(path, 1, "the file does not start with a '---' front matter line")]
    close = next((i for i in range(1, len(lines)) if lines[i] == FENCE), None)
    if close is None:
        return [Problem(path, 1, "the front matter has no closing '---' line")]
    front_lines = lines[1:close]
    try:
        fast = fast_front_matter(front_lines)
        data = fast if fast is not None else _yaml.load("\n".join(front_lines))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark is not None else 1
        return [Problem(path, line, f"the front matter is not valid YAML: {exc.problem or exc}")]
    except YAMLError as exc:
        return [Problem(path, 1, f"the front matter is not valid YAML: {exc}")]
    if not isinstance(data, dict):
        return [Problem(path, 1, "the front matter is not a mapping of keys to values")]
    at = _key_lines(front_lines)

    def line_of(key: str) -> int:
        return at.get(key, close + 1)

    for key in REQUIRED:
        if key not in data:
            add(close + 1, f"required key {key!r} is missing from the front matter")

    name = FILE_NAME.match(path.rsplit("/", 1)[-1])
    inc_id = data.get("id")
    if "id" in data:
        if not isinstance(inc_id, str) or not re.fullmatch(r"INC-\d{4,}", inc_id):
            add(line_of("id"), f"id {inc_id!r} is not like INC-0042")
        elif name and inc_id != f"INC-{name.group(1)}":
            add(line_of("id"), f"id {inc_id} does not match the file name")
    if "title" in data and (not isinstance(data["title"], str) or not data["title"].strip()):
        add(line_of("title"), "title must be a non-empty string")
    if "severity" in data and data["severity"] not in severities:
        add(line_of("severity"), f"severity {data['severity']!r} is not one of {', '.join(severities)}")
    status = data.get("status")
    if "status" in data and status not in STATUSES:
        add(line_of("status"), f"status {status!r} is not one of {', '.join(STATUSES)}")
    if "issue" in data and (not isinstance(data["issue"], int) or isinstance(data["issue"], bool) or data["issue"] < 1):
        add(line_of("issue"), f"issue {data['issue']!r} is not an issue number")
    elif name and isinstance(data.get("issue"), int) and data["issue"] != int(name.group(1)):
        add(line_of("issue"), f"issue {data['issue']} does not match the file name")

    _check_types(data, line_of, add)
    stamps = _check_timestamps(data, line_of, add)
    _check_timeline(path, lines, close, add)
    if status == "resolved" and not data.get("resolved_at"):
        add(line_of("resolved_at"), "a resolved incident needs resolved_at")
    if status == "closed":
        _check_closed(data, lines, close, line_of, add)
    order = [k for k in ("declared_at", "resolved_at", "closed_at") if k in stamps]
    for earlier, later in itertools.pairwise(order):
        if stamps[later] < stamps[earlier]:
            add(line_of(later), f"{later} {data[later]} is before {earlier} {data[earlier]}")
    return sorted(problems)


def _check_types(data: dict[str, Any], line_of: Callable[[str], int], add: Callable[[int, str], None]) -> None:
    for key in ("commander", "comms_owner", "environment"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            add(line_of(key), f"{key} must be a login or null, found {data[key]!r}")
    if "services" in data and not _is_str_list(data["services"]):
        add(line_of("services"), "services must be a list of service names")
    for key in ("tenant_isolation_risk", "deploy_regression_suspected"):
        if key in data and not isinstance(data[key], bool):
            add(line_of(key), f"{key} must be true or false, found {data[key]!r}")
    impacting = data.get("security_impacting")
    if impacting is not None and not isinstance(impacting, bool):
        add(line_of("security_impacting"), f"security_impacting must be true, false or null, found {impacting!r}")
    impact = data.get("impact")
    if "impact" in data:
        if not isinstance(impact, dict):
            add(line_of("impact"), "impact must be a mapping (routes, tenants, request_ids, request_volume)")
        else:
            for key in ("routes", "tenants", "request_ids"):
                value = impact.get(key, UNKNOWN)
                if value != UNKNOWN and not _is_str_list(value):
                    add(line_of("impact"), f"impact.{key} must be a list of strings or 'unknown', found {value!r}")
    risks = data.get("risks")
    if risks is not None and "risks" in data:
        if not isinstance(risks, dict):
            add(line_of("risks"), "risks must be a mapping of risk to open or cleared")
        else:
            for kind, state in risks.items():
                if kind not in RISK_KINDS:
                    add(line_of("risks"), f"risk {kind!r} is not one of {', '.join(RISK_KINDS)}")
                if state not in ("open", "cleared"):
                    add(line_of("risks"), f"risk {kind} is {state!r}, expected open or cleared")
    for key in ("containment", "escalations", "unknown_fields"):
        if key in data and not isinstance(data[key], list):
            add(line_of(key), f"{key} must be a list")
    if "notification" in data and not isinstance(data["notification"], dict):
        add(line_of("notification"), "notification must be a mapping (aware_at, deadline, tenants, …)")
    elif isinstance(data.get("notification"), dict):
        for key in ("aware_at", "deadline"):
            if not _valid_ts(data["notification"].get(key)):
                add(line_of("notification"), f"notification.{key}: {_ts_problem(data['notification'].get(key))}")
    if "public_updates" in data:
        for message in _public_update_problems(data["public_updates"]):
            add(line_of("public_updates"), message)


PUBLIC_STATES = ("investigating", "identified", "monitoring", "resolved")


def _public_update_problems(value: Any) -> list[str]:
    """`public_updates`: drafts {n, state, text, drafted_by, drafted_at}; published ones add approved_by and
    published_at (both or neither: half an approval must not pass for one)."""
    if not isinstance(value, list):
        return ["public_updates must be a list of updates"]
    problems: list[str] = []
    numbers: set[int] = set()
    for i, item in enumerate(value, 1):
        where = f"public_updates[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be a mapping")
            continue
        n = item.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n in numbers:
            problems.append(f"{where}.n must be a unique draft number, found {n!r}")
        else:
            numbers.add(n)
        if item.get("state") not in PUBLIC_STATES:
            problems.append(f"{where}.state {item.get('state')!r} is not one of {', '.join(PUBLIC_STATES)}")
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            problems.append(f"{where}.text must be non-empty text")
        if not isinstance(item.get("drafted_by"), str):
            problems.append(f"{where}.drafted_by must be a login")
        for key in ("drafted_at", "published_at"):
            if key in item and not _valid_ts(item[key]):
                problems.append(f"{where}.{key}: {_ts_problem(item[key])}")
        if ("approved_by" in item) != ("published_at" in item):
            problems.append(f"{where} needs both approved_by and published_at, or neither (a draft)")
    return problems


def _check_timestamps(
    data: dict[str, Any], line_of: Callable[[str], int], add: Callable[[int, str], None]
) -> dict[str, str]:
    stamps: dict[str, str] = {}
    for key in ("declared_at", "resolved_at", "closed_at", "last_status_at", "last_public_update_at", "started_at"):
        if key not in data or data[key] is None or (key == "started_at" and data[key] == UNKNOWN):
            continue
        if (
            key in ("resolved_at", "closed_at", "last_status_at", "last_public_update_at", "started_at")
            and data[key] == ""
        ):
            continue
        if _valid_ts(data[key]):
            stamps[key] = data[key]
        else:
            add(line_of(key), f"{key}: {_ts_problem(data[key])}")
    if "declared_at" in data and data["declared_at"] is None:
        add(line_of("declared_at"), "declared_at must be set")
    if "started_at" in stamps and "declared_at" in stamps and stamps["declared_at"] < stamps["started_at"]:
        add(line_of("declared_at"), f"declared_at {stamps['declared_at']} is before started_at {stamps['started_at']}")
    return stamps


def _section_rows(lines: list[str], start: int, title: str) -> list[tuple[int, list[str]]]:
    """(1-based line, cells) of the data rows of the first table under `## title`."""
    begin = next((i for i in range(start, len(lines)) if lines[i].strip() == f"## {title}"), None)
    if begin is None:
        return []
    rows: list[tuple[int, list[str]]] = []
    seen_header = False
    for i in range(begin + 1, len(lines)):
        line = lines[i]
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if (rows or seen_header) and line.strip():
                break
            continue
        if not seen_header:
            seen_header = True  # the header row
            continue
        if re.match(r"^\|[\s:|-]*$", line):
            continue  # the |---| separator
        rows.append((i + 1, [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]))
    return rows


def _check_timeline(path: str, lines: list[str], close: int, add: Callable[[int, str], None]) -> None:
    if not any(line.strip() == "## Timeline" for line in lines[close:]):
        add(close + 2, "the ## Timeline section is missing")
        return
    previous = ""
    for line_no, cells in _section_rows(lines, close, "Timeline"):
        if len(cells) < 4:
            add(line_no, f"timeline row has {len(cells)} cells, expected 4 (time, who, what, command / link)")
            continue
        stamp = cells[0]
        if not _valid_ts(stamp):
            add(line_no, f"timeline time {_ts_problem(stamp)}")
            continue
        if previous and stamp < previous:
            add(line_no, f"timeline row at {stamp} comes after a row at {previous}; rows must be in time order")
        previous = max(previous, stamp)


def _check_closed(
    data: dict[str, Any],
    lines: list[str],
    close: int,
    line_of: Callable[[str], int],
    add: Callable[[int, str], None],
) -> None:
    status_line = line_of("status")
    for key in ("resolved_at", "closed_at"):
        if not data.get(key):
            add(line_of(key) if key in data else status_line, f"a closed incident needs {key}")
    if not isinstance(data.get("security_impacting"), bool):
        add(
            line_of("security_impacting") if "security_impacting" in data else status_line,
            "a closed incident needs security_impacting: true or false (/security-impact yes|no <why>)",
        )
    if not _section_rows(lines, close, "Decision log"):
        add(status_line, "a closed incident needs at least one Decision log row (/decision <text>)")
    impact = data.get("impact") if isinstance(data.get("impact"), dict) else {}
    for key, command in (("routes", "route"), ("tenants", "tenant"), ("request_ids", "request-id")):
        value = impact.get(key, UNKNOWN) if isinstance(impact, dict) else UNKNOWN
        if not value or value == UNKNOWN:
            add(
                line_of("impact") if "impact" in data else status_line,
                f"a closed incident needs impact.{key} (/evidence {command} …)",
            )
    risks = data.get("risks") if isinstance(data.get("risks"), dict) else {}
    open_risks = [k for k, v in (risks or {}).items() if v == "open"]
    if open_risks:
        add(line_of("risks"), f"a closed incident has open risks: {', '.join(map(str, open_risks))}")
    notification_problem = breach.closing_problem(data)
    if notification_problem:
        add(line_of("notification"), "a closed incident has an open breach notification: " + notification_problem)
    if not data.get("verification"):
        add(
            line_of("verification") if "verification" in data else status_line,
            "a closed incident needs the recovery verification results",
        )
