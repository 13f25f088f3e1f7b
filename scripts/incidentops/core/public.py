"""Customer-facing updates: `/public <state> <text>` drafts one, `/publish [n]` approves it (pure; no I/O).

A public update is recorded in the front matter key `public_updates`, a list of mappings in the order drafted:
`{n, state, text, drafted_by, drafted_at, event}`, plus `approved_by`, `published_at` and `approval_event` once
approved (`event` keys: a re-delivered comment finds what it did). Only entries with
both are public; the status page reads nothing else of the incident (no title, no notes, no evidence).

Every text is checked twice for what must never reach customers (when drafted, and again when published, since
the evidence may have grown in between): the incident's tenant IDs and request IDs, things shaped like request or
trace IDs, internal hosts (every non-production base URL of incidentops.yaml, *.workers.dev / *.pages.dev origins,
internal top-level domains, IP addresses) and the Cloudflare account and zone ids. The check reads the text as a
person or a browser would: Unicode compatibility forms folded, invisible characters dropped, HTML entities and
percent-escapes decoded, so `t&#45;100`, `t%2D100`, `ｔ-１００` or `t-1\u200b00` are caught like `t-100`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from incidentops.core import incidentfile as f
from incidentops.core.commands import CommandError as Problem  # a command that cannot run, and its usage
from incidentops.core.commands import Context

STATES = ("investigating", "identified", "monitoring", "resolved")
TEXT_LIMIT = 1000  # public text is refused, never silently cut, when longer
# Top-level domains that never name a customer-facing host (RFC 6762 .local, RFC 8375 home.arpa, ICANN's
# reserved .internal, and the usual private ones), and the Cloudflare origins behind the custom domains.
INTERNAL_SUFFIXES = (
    ".internal",
    ".local",
    ".localhost",
    ".lan",
    ".corp",
    ".intranet",
    ".home.arpa",
    ".svc",
    ".cluster.local",
    ".workers.dev",
    ".pages.dev",
)
_HOST = re.compile(r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62})(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.]*\d)")
# IPv6: a run of hex groups with a `::` or all eight groups (clock times like 03:05:00 are neither).
_IPV6 = re.compile(r"(?<![\w:])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){7})[0-9a-f:]{3,39}(?![\w:])")
_UUID = re.compile(r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])")
_LONG_HEX = re.compile(r"(?<![0-9a-z])[0-9a-f]{16,}(?![0-9a-z])")  # Cloudflare Ray IDs, trace ids, tokens
_REQUEST_ID = re.compile(r"(?<![0-9a-z])(?:req|request|trace|ray|cf-ray)[-_: ]?(?:id)?[-_: ]*[0-9a-f]{4,}(?![0-9a-z])")
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")


@dataclass(frozen=True)
class Draft:
    state: str
    text: str


@dataclass(frozen=True)
class Publish:
    number: int | None  # None: the newest draft not yet published


@dataclass(frozen=True)
class Private:
    """What this incident and this installation know must stay private."""

    tenants: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    internal_hosts: tuple[str, ...] = ()  # exact host names (non-production base URLs)
    ids: tuple[str, ...] = ()  # account and zone ids


def private_facts(fields: Mapping[str, Any], internal_hosts: Iterable[str] = (), ids: Iterable[str] = ()) -> Private:
    """The incident's own tenant and request IDs (front matter `impact`) plus the installation's internal names."""
    impact = fields.get("impact") if isinstance(fields.get("impact"), Mapping) else {}
    assert isinstance(impact, Mapping)

    def values(key: str) -> tuple[str, ...]:
        raw = impact.get(key)
        items = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
        found = (normalise(str(v)).strip() for v in items if v is not None)
        return tuple(sorted({v for v in found if v and v != "unknown"}, key=len, reverse=True))

    hosts = tuple(sorted({normalise(h) for h in internal_hosts if h}))
    return Private(values("tenants"), values("request_ids"), hosts, tuple(sorted({normalise(i) for i in ids if i})))


def normalise(text: str) -> str:
    """Text as a reader sees it: entities and %-escapes decoded, compatibility forms folded, invisibles gone."""
    for _ in range(3):  # doubly encoded text (`&amp;#45;`, `%252D`) decodes too
        decoded = unquote(html.unescape(text))
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") or c in "\n\t")
    return _DASHES.sub("-", text).casefold()


def _contains(haystack: str, needle: str) -> bool:
    """Whether `needle` occurs in `haystack` as a whole token (not inside a longer word or number)."""
    pattern = r"(?<![0-9a-z])" + re.escape(needle) + r"(?![0-9a-z])"
    return re.search(pattern, haystack) is not None


def _internal_host(host: str, known: tuple[str, ...]) -> bool:
    return host in known or host.endswith(INTERNAL_SUFFIXES) or host in ("localhost",)


def leaks(text: str, private: Private) -> list[str]:
    """Why `text` must not go public (empty when it may); each reason names the kind, never the value itself."""
    seen = normalise(text)
    found: list[str] = []
    if any(_contains(seen, t) for t in private.tenants):
        found.append("it names a tenant ID from this incident's evidence")
    if any(_contains(seen, r) for r in private.request_ids):
        found.append("it names a request ID from this incident's evidence")
    elif _REQUEST_ID.search(seen) or _UUID.search(seen) or _LONG_HEX.search(seen):
        found.append("it contains something shaped like a request, trace or Ray ID")
    if any(_contains(seen, i) for i in private.ids):
        found.append("it contains a Cloudflare account or zone id")
    hosts = {m.group(1).rstrip(".") for m in _HOST.finditer(seen)}
    for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s<>\"']+", seen):
        host = urlsplit(url).hostname
        if host:
            hosts.add(host)
    if any(_internal_host(h, private.internal_hosts) for h in hosts):
        found.append("it names an internal host")
    ips = [m for m in _IPV4.finditer(seen) if all(int(part) <= 255 for part in m.groups())]
    if ips or _IPV6.search(seen):
        found.append("it contains an IP address")
    return found


def parse(name: str, args: str) -> Draft | Publish | Problem:
    """Parse `/public <state> <text>` or `/publish [n]`."""
    if name == "publish":
        token = args.split("\n", 1)[0].strip().lstrip("#")
        if not token:
            return Publish(None)
        if not re.fullmatch(r"\d{1,4}", token):
            return Problem(name, f"found {token[:40]!r} where a draft number (or nothing) was expected")
        return Publish(int(token))
    head, rest = _split_state(args)
    state = head.lower()
    if state not in STATES:
        return Problem(name, f"found {head[:40]!r} where one of {', '.join(STATES)} was expected")
    raw = rest.strip()
    if not raw:
        return Problem(name, "the text for customers is empty")
    text = f.clean_line(raw, limit=10 * TEXT_LIMIT)
    if len(text) > TEXT_LIMIT:
        return Problem(name, f"the text has {len(text)} characters; a public update holds at most {TEXT_LIMIT}")
    return Draft(state, text)


def _split_state(args: str) -> tuple[str, str]:
    stripped = args.strip()
    match = re.match(r"(\S+)\s*(.*)", stripped, re.S)
    return (match.group(1), match.group(2)) if match else ("", "")


# -- the front matter ------------------------------------------------------------------------------------


def updates(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recorded public updates (drafts included), ignoring entries a person mangled."""
    raw = fields.get("public_updates")
    if not isinstance(raw, list):
        return []
    return [dict(u) for u in raw if isinstance(u, Mapping) and isinstance(u.get("n"), int)]


def is_published(update: Mapping[str, Any]) -> bool:
    return bool(update.get("approved_by")) and bool(update.get("published_at"))


def published(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The approved updates, oldest first."""
    return sorted((u for u in updates(fields) if is_published(u)), key=lambda u: str(u.get("published_at")))


def pending(fields: Mapping[str, Any], number: int | None) -> dict[str, Any] | str:
    """The draft `/publish number` means, or why there is none."""
    drafts = updates(fields)
    if number is None:
        waiting = [u for u in drafts if not is_published(u)]
        return waiting[-1] if waiting else "there is no draft waiting; write one with /public <state> <text>"
    match = next((u for u in drafts if u["n"] == number), None)
    if match is None:
        return f"there is no draft #{number}"
    if is_published(match):
        return f"draft #{number} was already published by @{match.get('approved_by')} at {match.get('published_at')}"
    return match


def by_event(fields: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The update a comment drafted or approved, found by the comment's event key."""
    return next((u for u in updates(fields) if key in (u.get("event"), u.get("approval_event"))), None)


def apply_draft(text: str, draft: Draft, ctx: Context) -> tuple[str, int] | None:
    """The file with the draft added (and its number), or None when this event is already recorded."""
    if f.has_event(text, ctx.key):
        return None
    fields = f.read_fields(text)
    recorded = updates(fields)
    number = max((u["n"] for u in recorded), default=0) + 1
    entry = {
        "n": number,
        "state": draft.state,
        "text": draft.text,
        "drafted_by": ctx.actor,
        "drafted_at": ctx.at,
        "event": ctx.key,
    }
    text = f.set_fields(text, {"public_updates": [*_raw(fields), entry]})
    what = f"Public update #{number} drafted ({draft.state}); waiting for approval (/publish {number})"
    return f.append_timeline(text, f.TimelineRow(ctx.at, ctx.actor, what, ctx.link, ctx.key)), number


def apply_publish(text: str, number: int, ctx: Context) -> str | None:
    """The file with draft `number` approved by the actor now, or None when this event is already recorded."""
    if f.has_event(text, ctx.key):
        return None
    fields = f.read_fields(text)
    raw = _raw(fields)
    entry: dict[str, Any] | None = None
    for item in raw:
        if isinstance(item, dict) and item.get("n") == number:
            item.update({"approved_by": ctx.actor, "published_at": ctx.at, "approval_event": ctx.key})
            entry = item
    if entry is None:
        return None
    text = f.set_fields(text, {"public_updates": raw, "last_public_update_at": ctx.at})
    what = f"Public update #{number} published ({entry.get('state')}), approved by @{ctx.actor}: {entry.get('text')}"
    return f.append_timeline(text, f.TimelineRow(ctx.at, ctx.actor, what, ctx.link, ctx.key))


def _raw(fields: Mapping[str, Any]) -> list[Any]:
    raw = fields.get("public_updates")
    return [dict(u) if isinstance(u, Mapping) else u for u in raw] if isinstance(raw, list) else []
