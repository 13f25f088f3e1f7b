"""What `incidentops init` decides (pure): which services and zone, the base URLs, and what to do with each file.

A file init would write is `create`d when missing, left `unchanged` when it already holds exactly that, and
`kept` when it holds something else (a person's edit, or an earlier discovery) unless `--force` says `overwrite`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from incidentops.errors import UsageError

# The repository the caller workflows `uses:`; `--uses OWNER/REPO@SHA` names a fork or a mirror.
UPSTREAM = "incidentops/incidentops"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_HOST_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")
CALLERS = ("incident", "rollback", "remind", "lint", "doctor")


@dataclass(frozen=True)
class Discovered:
    """One Worker script or Pages project, with the hosts it answers on."""

    name: str
    kind: str  # worker | pages
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileAction:
    path: str
    action: str  # create | unchanged | kept | overwrite
    content: str = field(repr=False, default="")

    @property
    def writes(self) -> bool:
        return self.action in ("create", "overwrite")


def parse_uses(value: str) -> tuple[str, str]:
    """`OWNER/REPO@SHA` → (repo, sha); the pin must be a full commit SHA (a tag can be moved)."""
    repo, sep, sha = value.partition("@")
    if not sep or not _REPO.match(repo) or not _SHA.match(sha):
        raise UsageError(
            f"--uses {value!r} is not OWNER/REPO@SHA with a full 40-character commit SHA",
            hint="e.g. --uses incidentops/incidentops@<the release commit>; a tag or branch could be moved.",
        )
    return repo, sha


def select(names: Sequence[str] | None, available: Sequence[str], what: str) -> list[str]:
    """The requested names, each checked against what Cloudflare showed."""
    if names is None:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(
            f"{what} not found in the Cloudflare account: {', '.join(unknown)}",
            hint=f"Found: {', '.join(available) or 'none'}.",
        )
    return list(dict.fromkeys(names))


def hosts_in_zone(hosts: Iterable[str], zone_name: str) -> list[str]:
    return [h for h in hosts if h == zone_name or h.endswith("." + zone_name)]


def base_urls(services: Sequence[Discovered], zone_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """(base URL name → URL, service → base URL name) for the services reachable on a host of the zone.

    The name is the host's first label (`api` for api.example.com) unless two services share it; then the
    service name.
    """
    urls: dict[str, str] = {}
    keys: dict[str, str] = {}
    for service in services:
        hosts = hosts_in_zone(service.hosts, zone_name)
        if not hosts:
            continue
        host = hosts[0]
        label = host.split(".")[0] if host != zone_name else service.name
        key = label.lower() if _HOST_KEY.match(label.lower()) and label.lower() not in urls else service.name
        urls[key] = f"https://{host}"
        keys[service.name] = key
    return urls, keys


def worker_hosts(routes: Iterable[Mapping[str, object]]) -> dict[str, list[str]]:
    """Hosts per Worker script from a zone's route patterns (`api.example.com/*` → api.example.com)."""
    found: dict[str, list[str]] = {}
    for route in routes:
        script, pattern = str(route.get("script") or ""), str(route.get("pattern") or "")
        host = pattern.split("/", 1)[0].lstrip("*.")
        if script and host and "*" not in host and host not in found.get(script, []):
            found.setdefault(script, []).append(host)
    return found


def decide(path: str, wanted: str, existing: str | None, force: bool) -> FileAction:
    if existing is None:
        return FileAction(path, "create", wanted)
    if existing == wanted:
        return FileAction(path, "unchanged")
    return FileAction(path, "overwrite" if force else "kept", wanted if force else "")


# What incidentops trusts as configuration: a change to any of these must be reviewed by the code owners.
TRUSTED_PATHS = (
    "deployments/production.yaml",
    "docs/runbooks/environment-deploy-runbook.md",
    "incidentops.yaml",
    ".github/workflows/incident.yml",
)
_OWNER = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9._-]{1,100})?$")


def code_owners(given: Sequence[str]) -> list[str]:
    """`--owners` values: each @user or @org/team (GitHub ignores any other CODEOWNERS entry, silently)."""
    owners = [o.strip() for item in given for o in item.split(",") if o.strip()]
    owners = [o if o.startswith("@") else "@" + o for o in owners]
    bad = [o for o in owners if not _OWNER.match(o)]
    if bad or not owners:
        raise UsageError(
            f"not a GitHub user or team: {', '.join(bad) or '(none given)'}",
            hint="Pass --owners @user or --owners @org/team (comma-separated for several).",
        )
    return owners


def _pattern_matches(pattern: str, path: str) -> bool:
    """A CODEOWNERS pattern (gitignore syntax, docs.github.com "About code owners") against a repository path: a
    pattern with a slash is anchored at the root and owns everything below a directory it names; one without a
    slash matches a file or directory name at any depth."""
    parts = path.split("/")
    if "/" not in pattern.rstrip("/"):
        return any(fnmatch.fnmatchcase(part, pattern.rstrip("/") or "*") for part in parts)
    pattern = pattern.strip("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1))


def uncovered_paths(codeowners: str, paths: Sequence[str] = TRUSTED_PATHS) -> list[str]:
    """The paths no CODEOWNERS line with an owner covers (a line without owners removes ownership)."""
    owned: dict[str, bool] = dict.fromkeys(paths, False)
    for line in codeowners.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        for path in paths:
            if _pattern_matches(fields[0], path):
                owned[path] = len(fields) > 1  # the last matching line wins
    return [path for path, ok in owned.items() if not ok]


def covers_trusted_paths(codeowners: str) -> bool:
    return not uncovered_paths(codeowners)
