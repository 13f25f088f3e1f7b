"""Which routes a containment may deny: a host of the environment and a path deep enough to spare the rest.

A deny rule on `/`, on an empty path or on a top-level prefix takes a whole host (or most of it) down. That is an
outage, not a containment, whoever asked for it (form routes used to reach the WAF unchecked). So every route is a
path of at least `MIN_PATH_DEPTH` plain segments on configured hosts that the rule names one by one; anything else is
refused with what to write instead. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MIN_PATH_DEPTH = 2  # `/v1/reports` is the narrowest prefix the playbook names; `/v1` would be the whole API
MAX_PATH = 200
# One path segment: RFC 3986 unreserved characters only. No percent-encoding (`%2e%2e`, `%2f` would let the text a
# person reviews differ from the path the edge compares), no wildcards, no dot segments.
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


class RouteError(ValueError):
    """A route that must not be denied, with what to write instead."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Route:
    path: str
    hosts: tuple[str, ...]  # real host names the rule matches
    scoped: bool  # True when the person named one host; False: every host of the environment, each named

    @property
    def text(self) -> str:
        return f"{self.hosts[0]}{self.path}" if self.scoped else self.path

    @property
    def slug(self) -> str:
        raw = re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-") or "root"
        if len(raw) <= 48:
            return raw
        return raw[:40].rstrip("-") + "-" + hashlib.sha256(self.text.encode()).hexdigest()[:7]


def hosts_of(base_urls: Mapping[str, str]) -> list[str]:
    """Host names of an environment's base URLs, in config order."""
    return [h for h in dict.fromkeys(urlsplit(url).hostname or "" for url in base_urls.values()) if h]


def _shown(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned if len(cleaned) <= 80 else cleaned[:79] + "…"


def _split(raw: str) -> tuple[str, str]:
    """(host, path) as written: a URL, `host/path`, or a bare `/path` (no host)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", raw):
        parts = urlsplit(raw)
        if parts.scheme.lower() != "https" or parts.username or parts.password or parts.port or parts.query:
            raise RouteError(
                f"{_shown(raw)!r} is not a plain https URL",
                "Write the host and path only, e.g. api.example.com/v1/reports.",
            )
        return (parts.hostname or ""), parts.path
    if raw.startswith("/"):
        return "", raw
    host, slash, rest = raw.partition("/")
    return host.lower(), slash + rest


def check_path(path: str, raw: str) -> str:
    """The path if it is specific enough to deny; else RouteError."""
    example = "e.g. /v1/reports"
    if len(path) > MAX_PATH:
        raise RouteError(
            f"{_shown(raw)!r} is longer than {MAX_PATH} characters", f"Give the route's prefix, {example}."
        )
    if path in ("", "/") or set(path) == {"/"}:
        raise RouteError(
            f"{_shown(raw)!r} would deny every path of the host",
            f"Containment denies one route, never a whole host: give a path of at least {MIN_PATH_DEPTH} segments, "
            f"{example}.",
        )
    trimmed = path[:-1] if path.endswith("/") else path
    segments = trimmed.split("/")[1:]
    if not path.startswith("/") or any(not _SEGMENT.match(s) or s in (".", "..") for s in segments):
        raise RouteError(
            f"{_shown(raw)!r} is not a plain path",
            "Use segments of letters, digits and . _ ~ - separated by single slashes: no //, no ./.., no %-escapes, "
            f"no ?query or wildcard ({example}).",
        )
    if len(segments) < MIN_PATH_DEPTH:
        raise RouteError(
            f"{_shown(raw)!r} is too close to the root: it would deny everything under {trimmed}/",
            f"Give a path of at least {MIN_PATH_DEPTH} segments ({example}).",
        )
    return trimmed


def parse_route(text: str, env_name: str, hosts: Iterable[str]) -> Route:
    """Read `/v1/reports`, `api.example.com/v1/reports` or its https URL; refuse anything that could deny more.

    A named host must be one of the environment's hosts; a bare path means every host of the environment, each named
    in the rule (never a host-less rule that would also match hosts nobody configured).
    """
    raw = text.strip().strip("`")
    known = list(hosts)
    host, path = _split(raw)
    path = check_path(path, raw)
    if not host:
        if not known:
            raise RouteError(
                f"{_shown(raw)!r} names no host and environment {env_name} has no base URLs",
                "Add base_urls to the environment in incidentops.yaml, or name the host: api.example.com/v1/….",
            )
        return Route(path, tuple(known), scoped=False)
    if not _HOST.match(host) or host not in known:
        raise RouteError(
            f"{_shown(host)!r} is not a host of {env_name}",
            f"Known hosts: {', '.join(known) or 'none (add base_urls to the environment in incidentops.yaml)'}.",
        )
    return Route(path, (host,), scoped=True)


def proposal_digest(routes: Iterable[Route]) -> str:
    """A short fingerprint of exactly these routes, shown with a proposal and required to confirm it."""
    joined = "\n".join(sorted(r.text for r in routes))
    return hashlib.sha256(joined.encode()).hexdigest()[:8]
