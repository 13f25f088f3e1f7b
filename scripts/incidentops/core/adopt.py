"""What `incidentops init` decides (pure): which services and zone, the base URLs, and what to do with each file.

A file init would write is `create`d when missing, left `unchanged` when it already holds exactly that, and
`kept` when it holds something else (a person's edit, or an earlier discovery) unless `--force` says `overwrite`.
"""

from __future__ import annotations

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
