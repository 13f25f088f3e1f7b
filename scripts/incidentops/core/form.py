"""Parse the issue body GitHub renders from the incident form into validated incident facts.

GitHub renders each form element as `### <label>`, a blank line, the value. Empty values are `_No response_`
(or `None`, or blank), checkboxes are `- [x] option` / `- [ ] option` (case of the x varies), multi-select
dropdowns join options with ", ", and users can edit the body afterwards, so nothing here is trusted: declaring
must never fail on content. Unreadable fields become unknown and are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentops.core.timefmt import format_ts

EMPTY_VALUES = {"_no response_", "none", ""}
MAX_ITEMS = 200  # more IDs than this is a paste accident, not evidence
MAX_ITEM_LEN = 200


@dataclass(frozen=True)
class FormField:
    id: str
    label: str
    type: str  # input | textarea | dropdown | checkboxes
    options: tuple[str, ...] = ()
    multiple: bool = False


# The fields of `.github/ISSUE_TEMPLATE/incident.yml`; used when a repository has no template file.
DEFAULT_FIELDS: tuple[FormField, ...] = (
    FormField("summary", "Summary", "textarea"),
    FormField("environment", "Environment", "dropdown", ("production", "staging")),
    FormField("started_at", "Start time (UTC)", "input"),
    FormField("routes", "Impacted routes", "textarea"),
    FormField("tenants", "Tenant IDs", "textarea"),
    FormField("request_ids", "Request IDs", "textarea"),
    FormField("request_volume", "Request volume", "input"),
    FormField(
        "services",
        "Affected services",
        "dropdown",
        ("api-worker", "ingest-worker", "queue-consumer", "admin-pages", "user-portal"),
        multiple=True,
    ),
    FormField(
        "risks",
        "Risk assessment",
        "checkboxes",
        ("Tenant isolation is at risk", "A deploy regression is suspected"),
    ),
)

TENANT_RISK_OPTION = "Tenant isolation is at risk"
DEPLOY_RISK_OPTION = "A deploy regression is suspected"


def fields_from_template(doc: Any) -> tuple[FormField, ...]:
    """Read the form elements of an issue-form YAML document; markdown elements are not submitted."""
    fields: list[FormField] = []
    for element in (doc or {}).get("body", []) or []:
        kind = element.get("type")
        if kind == "markdown" or "id" not in element:
            continue
        attrs = element.get("attributes", {}) or {}
        raw_options = attrs.get("options", []) or []
        options = tuple(o["label"] if isinstance(o, dict) else str(o) for o in raw_options)
        fields.append(
            FormField(
                id=str(element["id"]),
                label=str(attrs.get("label", element["id"])),
                type=str(kind),
                options=options,
                multiple=bool(attrs.get("multiple", False)),
            )
        )
    return tuple(fields)


# Linear-time line patterns: a lazy `(.*?)` followed by `\s*$` backtracks quadratically on a long line of spaces
# (seconds at GitHub's 65,536-character body limit); each pattern takes the rest of the line and str.strip() trims.
_HEADING = re.compile(r"###[ \t]+(.*)")
_CHECKBOX = re.compile(r"[ \t]*-[ \t]\[([ xX])\][ \t]+(.*)")


def _heading(line: str) -> str | None:
    """The label of a `### label` line, else None."""
    found = _HEADING.match(line)
    return found.group(1).strip() if found else None


def _checkbox(line: str) -> tuple[bool, str] | None:
    """(ticked, option) of a `- [x] option` line, else None."""
    found = _CHECKBOX.match(line)
    return (found.group(1) in "xX", found.group(2).strip()) if found else None


def split_sections(body: str, labels: set[str]) -> dict[str, str]:
    """Map each known `### label` heading to its raw text; unknown `###` lines stay with the field above."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        label = _heading(line)
        if label is not None and label in labels and label not in sections:
            current = label
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {label: "\n".join(lines).strip("\n") for label, lines in sections.items()}


def _strip_fence(text: str) -> str:
    lines = text.strip().split("\n")
    if len(lines) >= 2 and lines[0].startswith("```") and lines[-1].strip() == "```":
        return "\n".join(lines[1:-1])
    return text


def _is_empty(text: str) -> bool:
    return text.strip().lower() in EMPTY_VALUES


def parse_form_body(body: str, fields: tuple[FormField, ...] = DEFAULT_FIELDS) -> dict[str, Any]:
    """Return raw values per field id: str, list[str] (multi-select), dict[option, bool] (checkboxes), or None."""
    by_label = {f.label: f for f in fields}
    sections = split_sections(body or "", set(by_label))
    values: dict[str, Any] = {}
    for f in fields:
        raw = sections.get(f.label)
        if raw is None or _is_empty(raw):
            values[f.id] = None if f.type != "checkboxes" else dict.fromkeys(f.options, False)
            continue
        if f.type == "checkboxes":
            checked: dict[str, bool] = dict.fromkeys(f.options, False)
            for line in raw.split("\n"):
                box = _checkbox(line)
                if box is not None and box[1] in checked:
                    checked[box[1]] = box[0]
            values[f.id] = checked
        elif f.type == "dropdown" and f.multiple:
            values[f.id] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            values[f.id] = _strip_fence(raw).strip()
    return values


@dataclass
class Intake:
    """What the form told us, with every unknown field and every problem listed."""

    summary: str | None = None
    environment: str | None = None
    started_at: str | None = None
    routes: list[str] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    request_volume: str | None = None
    services: list[str] = field(default_factory=list)
    tenant_isolation_risk: bool = False
    deploy_regression_suspected: bool = False
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


FIELD_TITLES = {
    "summary": "Summary",
    "environment": "Environment",
    "started_at": "Start time (UTC)",
    "routes": "Impacted routes",
    "tenants": "Tenant IDs",
    "request_ids": "Request IDs",
    "request_volume": "Request volume",
    "services": "Affected services",
}


def _items(text: str | None) -> list[str]:
    if not text:
        return []
    items: list[str] = []
    for chunk in re.split(r"[\n,]", text):
        item = chunk.strip().strip("`").strip()
        item = re.sub(r"^[-*]\s+", "", item)
        if item and item not in items:
            items.append(item[:MAX_ITEM_LEN])
    return items[:MAX_ITEMS]


_TS_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z")


def parse_utc(text: str) -> datetime | None:
    """Parse a user-typed UTC timestamp (Z or offset; seconds optional); None if it is not one."""
    candidate = text.strip().replace("UTC", "Z").replace(" Z", "Z")
    candidate = re.sub(r"Z$", "+0000", candidate)
    if re.search(r"\d$", candidate) and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$", candidate):
        candidate += "+0000"  # the form asks for UTC; a bare time is read as UTC
    for fmt in _TS_FORMATS:
        try:
            parsed = datetime.strptime(candidate, fmt)
        except ValueError:
            continue
        return parsed.astimezone(UTC)
    return None


def read_intake(
    body: str,
    known_services: tuple[str, ...],
    known_environments: tuple[str, ...],
    fields: tuple[FormField, ...] = DEFAULT_FIELDS,
    now: datetime | None = None,
) -> Intake:
    """Turn a rendered form body into an `Intake`; never raises on content."""
    raw = parse_form_body(body, fields)
    intake = Intake()

    intake.summary = (raw.get("summary") or None) and str(raw["summary"])[:20_000]

    env = raw.get("environment")
    if env:
        env = str(env).strip()
        if env in known_environments:
            intake.environment = env
        else:
            intake.problems.append(
                f"Environment: {env[:80]!r} is not a configured environment "
                f"(expected one of {', '.join(known_environments)})"
            )

    started = raw.get("started_at")
    if started:
        parsed = parse_utc(str(started))
        if parsed is None:
            intake.problems.append(
                f"Start time (UTC): could not read {str(started)[:80]!r} as a time (expected e.g. 2026-11-27T03:12:09Z)"
            )
        elif now is not None and parsed > now:
            intake.problems.append(f"Start time (UTC): {format_ts(parsed)} is in the future")
        elif parsed.year < 2000:
            intake.problems.append(f"Start time (UTC): {format_ts(parsed)} is implausibly old")
        else:
            intake.started_at = format_ts(parsed)

    intake.routes = [r for r in _items(raw.get("routes")) if r]
    bad_routes = [r for r in intake.routes if not r.startswith("/")]
    if bad_routes:
        intake.problems.append(
            "Impacted routes: expected paths starting with '/', ignored " + ", ".join(repr(r) for r in bad_routes[:5])
        )
        intake.routes = [r for r in intake.routes if r.startswith("/")]
    intake.tenants = _items(raw.get("tenants"))
    intake.request_ids = _items(raw.get("request_ids"))
    volume = raw.get("request_volume")
    intake.request_volume = str(volume)[:200] if volume else None

    services = raw.get("services") or []
    for name in services:
        if name in known_services:
            if name not in intake.services:
                intake.services.append(name)
        else:
            intake.problems.append(
                f"Affected services: {name[:80]!r} is not a configured service "
                f"(expected one of {', '.join(known_services)})"
            )

    risks = raw.get("risks") or {}
    intake.tenant_isolation_risk = bool(risks.get(TENANT_RISK_OPTION))
    intake.deploy_regression_suspected = bool(risks.get(DEPLOY_RISK_OPTION))

    for key, title in FIELD_TITLES.items():
        value = getattr(intake, key)
        if value in (None, [], ""):
            intake.missing.append(title)
    return intake
