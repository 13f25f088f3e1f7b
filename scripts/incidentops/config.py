"""Load and validate `incidentops.yaml`; every error names the file, the key, what was found and what is expected."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from incidentops.errors import ConfigError

CONFIG_FILE = "incidentops.yaml"

# GitHub repository roles, weakest first; "none" is an outsider.
ROLES = ("none", "read", "triage", "write", "maintain", "admin")
ACTIONS = (
    "declare",  # a severity label on a new incident issue
    "escalate",  # a severity relabel of an existing incident
    "contain",  # /contain <route>: temporary deny response on production
    "lift",  # /lift <route>
    "rollback_plan",  # /rollback: open the rollback PR
    "rollback_apply",  # merging the rollback PR (or `incidentops rollback apply`)
    "rollback_override",  # merging a rollback PR whose pins differ from the bot's plan (recorded)
    "resolve",  # /resolve, and closing the incident issue
    "followup",  # /followup
    "note",  # /note, /status
    "assign",  # /ic, /comms
    "decision",  # /decision
    "evidence",  # /evidence, /security-impact, /risk
    "smoke",  # /smoke
    "public",  # /public: draft a customer-facing update (the comms owner may, whatever their role)
    "publish",  # /publish: approve a draft for the status page (the comms owner may, whatever their role)
    "notification",  # /notification authority|tenant: the breach-notification checklist (the comms owner may too)
    "notification_waive",  # /notification waive <reason>: close without completing the checklist
)
SERVICE_KINDS = ("worker", "pages")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Service:
    name: str
    kind: str  # "worker" | "pages"
    cloudflare_name: str
    # The environments' base URL names whose host this service answers (e.g. ("api",)): its error rate and
    # latency are read from those hosts' HTTP requests. Empty for a service with no HTTP traffic of its own.
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    name: str
    account_id: str
    zone_id: str
    base_urls: dict[str, str]


@dataclass(frozen=True)
class Config:
    severities: dict[str, str]  # label -> severity, e.g. "sev-1" -> "SEV-1"
    incident_label: str
    default_branch: str
    incidents_dir: str
    services: tuple[Service, ...]
    environments: tuple[Environment, ...]
    permissions: dict[str, str]  # action -> minimum role
    source: str = CONFIG_FILE
    extra: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    @property
    def report_is_private(self) -> bool:
        """Whether the report site may show tenant IDs, request IDs and security notes (`report.private`)."""
        return bool((self.extra.get("report") or {}).get("private", False))

    @property
    def status_page(self) -> dict[str, Any]:
        """The validated `status_page` section (name, url, groups), or its defaults."""
        return dict(self.extra.get("status_page") or {"name": "Status", "url": "", "groups": []})

    def comms_minutes(self, key: str, default: float) -> float:
        """A `comms` reminder threshold in minutes (first_update_minutes, update_every_minutes)."""
        return float((self.extra.get("comms") or {}).get(key, default))

    def severity_rank(self, severity: str) -> int:
        """Lower is more severe: SEV-1 ranks 1."""
        digits = re.sub(r"\D", "", severity)
        return int(digits) if digits else 99

    def allows(self, action: str, role: str) -> bool:
        """Whether a repository `role` meets the configured minimum for `action`."""
        needed = self.permissions.get(action, "admin")
        return _role_rank(role) >= _role_rank(needed)


def _role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else 0


class _Checker:
    """Collects precise validation errors while walking the raw document."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def error(self, key: str, found: Any, expected: str) -> None:
        self.errors.append(f"{self.source}: {key}: found {found!r}, expected {expected}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            self.error(key, value, "a mapping")
            return {}
        for name in value:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                self.error(where, "an unknown key", f"one of {', '.join(allowed)}")
        for name in required:
            if name not in value:
                where = f"{key}.{name}" if key else name
                self.error(where, "nothing", "this required key")
        return value

    def string(self, value: Any, key: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value:
            self.error(key, value, "a non-empty string")
            return ""
        if pattern and not pattern.match(value):
            self.error(key, value, hint or f"a string matching {pattern.pattern}")
        return value


def parse_config(data: Any, source: str = CONFIG_FILE) -> Config:
    """Validate a loaded YAML document and build a `Config`, or raise `ConfigError` listing every problem."""
    check = _Checker(source)
    top_keys = (
        "version",
        "severities",
        "incident_label",
        "default_branch",
        "incidents_dir",
        "services",
        "environments",
        "permissions",
        "exit_criteria",
        "containment",
        "report",
        "github_environment",
        "status_page",
        "comms",
    )
    doc = check.mapping(data, "", top_keys, ("version", "severities", "services", "environments", "permissions"))
    if doc.get("version", 1) != 1:
        check.error("version", doc.get("version"), "1")

    severities: dict[str, str] = {}
    raw_sev = doc.get("severities", {})
    if isinstance(raw_sev, dict) and raw_sev:
        for label, severity in raw_sev.items():
            label_s = check.string(label, f"severities.{label}")
            sev_s = check.string(severity, f"severities.{label}", re.compile(r"^SEV-\d$"), "a severity like SEV-1")
            severities[label_s] = sev_s
    else:
        check.error("severities", raw_sev, "a mapping of label to severity, e.g. sev-1: SEV-1")

    services: list[Service] = []
    raw_services = doc.get("services", [])
    if not isinstance(raw_services, list) or not raw_services:
        check.error("services", raw_services, "a non-empty list of services")
        raw_services = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_services):
        key = f"services[{i}]"
        item = check.mapping(raw, key, ("name", "kind", "cloudflare_name", "hosts"), ("name", "kind"))
        name = check.string(item.get("name"), f"{key}.name", _NAME, "a lower-case name like api-worker")
        kind = item.get("kind")
        if kind not in SERVICE_KINDS:
            check.error(f"{key}.kind", kind, f"one of {', '.join(SERVICE_KINDS)}")
        cf_name = check.string(item.get("cloudflare_name", name), f"{key}.cloudflare_name")
        if name in seen:
            check.error(f"{key}.name", name, "a name not used by another service")
        seen.add(name)
        raw_hosts = item.get("hosts", [])
        if not isinstance(raw_hosts, list):
            check.error(f"{key}.hosts", raw_hosts, "a list of base URL names, e.g. [api]")
            raw_hosts = []
        hosts = tuple(
            check.string(h, f"{key}.hosts[{j}]", _NAME, "a base URL name like api") for j, h in enumerate(raw_hosts)
        )
        services.append(Service(name=name, kind=str(kind), cloudflare_name=cf_name, hosts=hosts))

    environments: list[Environment] = []
    raw_envs = doc.get("environments", [])
    if not isinstance(raw_envs, list) or not raw_envs:
        check.error("environments", raw_envs, "a non-empty list of environments")
        raw_envs = []
    hex32 = re.compile(r"^[0-9a-f]{32}$")
    for i, raw in enumerate(raw_envs):
        key = f"environments[{i}]"
        item = check.mapping(
            raw, key, ("name", "account_id", "zone_id", "base_urls"), ("name", "account_id", "zone_id")
        )
        name = check.string(item.get("name"), f"{key}.name", _NAME, "a lower-case name like production")
        account = check.string(item.get("account_id"), f"{key}.account_id", hex32, "a 32-character hex id")
        zone = check.string(item.get("zone_id"), f"{key}.zone_id", hex32, "a 32-character hex id")
        urls = item.get("base_urls", {})
        base_urls: dict[str, str] = {}
        if not isinstance(urls, dict):
            check.error(f"{key}.base_urls", urls, "a mapping of name to URL")
        else:
            for url_name, url in urls.items():
                base_urls[str(url_name)] = check.string(
                    url, f"{key}.base_urls.{url_name}", re.compile(r"^https?://"), "an http(s) URL"
                )
        environments.append(Environment(name=name, account_id=account, zone_id=zone, base_urls=base_urls))

    permissions: dict[str, str] = {}
    raw_perms = check.mapping(doc.get("permissions", {}), "permissions", ACTIONS, ())
    for action in ACTIONS:
        role = raw_perms.get(action, "admin")
        if role not in ROLES[1:]:
            check.error(f"permissions.{action}", role, f"one of {', '.join(ROLES[1:])}")
        permissions[action] = str(role)

    extra: dict[str, Any] = {}
    numbers: dict[str, dict[str, type]] = {
        "exit_criteria": {
            "recent_minutes": int,
            "baseline_minutes": int,
            "baseline_lag_minutes": int,
            "error_rate_tolerance": float,
            "latency_tolerance": float,
        },
        "containment": {"expiry_hours": float, "verify_seconds": float},
        # Reminders for the communications owner: no public update this long after a SEV-1 was declared, and
        # none for this long while an incident is public and active (core.reminders).
        "comms": {"first_update_minutes": float, "update_every_minutes": float},
    }
    for section, keys in numbers.items():
        if section not in doc:
            continue
        raw = check.mapping(doc[section], section, tuple(keys), ())
        values: dict[str, Any] = {}
        for key, kind in keys.items():
            if key not in raw:
                continue
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                check.error(f"{section}.{key}", value, "a non-negative number")
                continue
            values[key] = kind(value)
        extra[section] = values

    if "report" in doc:
        # The published site is public (GitHub Pages is, even for a private repository, except private Pages on
        # Enterprise Cloud): tenant IDs, request IDs and security notes stay out of it unless this says otherwise.
        raw_report = check.mapping(doc["report"], "report", ("private",), ())
        if "private" in raw_report and not isinstance(raw_report["private"], bool):
            check.error("report.private", raw_report["private"], "true or false")
        else:
            extra["report"] = {"private": bool(raw_report.get("private", False))}

    if "github_environment" in doc:
        # `incidentops doctor` fails unless the secrets' environment asks a person to approve each run.
        raw_env = check.mapping(doc["github_environment"], "github_environment", ("required_reviewers",), ())
        wanted = raw_env.get("required_reviewers", False)
        if not isinstance(wanted, bool):
            check.error("github_environment.required_reviewers", wanted, "true or false")
        else:
            extra["github_environment"] = {"required_reviewers": wanted}

    if "status_page" in doc:
        extra["status_page"] = _status_page(check, doc["status_page"], {s.name for s in services})

    if check.errors:
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(check.errors),
            hint=f"Fix {source} and run again.",
        )
    return Config(
        severities=severities,
        incident_label=str(doc.get("incident_label", "incident")),
        default_branch=str(doc.get("default_branch", "main")),
        incidents_dir=str(doc.get("incidents_dir", "incidents")),
        services=tuple(services),
        environments=tuple(environments),
        permissions=permissions,
        source=source,
        extra=extra,
    )


def _status_page(check: _Checker, raw: Any, services: set[str]) -> dict[str, Any]:
    """`status_page`: the public page's name and URL, and the services as customers see them (groups of named
    components). A service in no group is shown under "Other services"; one named twice is an error."""
    page = check.mapping(raw, "status_page", ("name", "url", "groups"), ())
    out: dict[str, Any] = {"name": "Status", "url": "", "groups": []}
    if "name" in page:
        out["name"] = check.string(page["name"], "status_page.name")
    if "url" in page:
        out["url"] = check.string(page["url"], "status_page.url", re.compile(r"^https://\S+$"), "an https URL")
    groups = page.get("groups", [])
    if not isinstance(groups, list):
        check.error("status_page.groups", groups, "a list of {name, components: {service: shown name}}")
        return out
    seen: set[str] = set()
    for i, group in enumerate(groups):
        key = f"status_page.groups[{i}]"
        item = check.mapping(group, key, ("name", "components"), ("name", "components"))
        name = check.string(item.get("name"), f"{key}.name")
        members = item.get("components", {})
        if not isinstance(members, dict) or not members:
            check.error(f"{key}.components", members, "a mapping of service name to the name customers see")
            continue
        shown: dict[str, str] = {}
        for service, label in members.items():
            if service not in services:
                check.error(f"{key}.components.{service}", service, "a service listed under services")
            elif service in seen:
                check.error(f"{key}.components.{service}", service, "a service in only one group")
            seen.add(str(service))
            shown[str(service)] = check.string(label, f"{key}.components.{service}")
        out["groups"].append({"name": name, "components": shown})
    return out


def yaml_problem(name: str, text: str, exc: YAMLError) -> str:
    """`file:line:column: problem`, then the offending line and a caret, as compilers print them (not ruamel's dump)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).split("\n", 1)[0]
    if mark is None:
        return f"{name}: not valid YAML: {problem}"
    lines = text.split("\n")
    shown = lines[mark.line] if 0 <= mark.line < len(lines) else ""
    return f"{name}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}\n    {shown}\n    {' ' * mark.column}^"


def load_config(workspace: Path) -> Config:
    """Read `incidentops.yaml` from the workspace root."""
    path = workspace / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"{CONFIG_FILE} not found in {workspace.name or workspace}",
            hint="Run from the ops repository root (the workflow checks it out) or create the file.",
        )
    try:
        text = path.read_text(encoding="utf-8")
        data = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise ConfigError(yaml_problem(CONFIG_FILE, text, exc), hint="Fix the syntax and run again.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{CONFIG_FILE} is not UTF-8 text: {exc}") from exc
    return parse_config(data, CONFIG_FILE)
