"""UTC timestamps as the incident file writes them: ISO-8601 with seconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime

TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_ts(moment: datetime) -> str:
    """Format an aware datetime as `2026-11-27T03:14:40Z`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return moment.astimezone(UTC).strftime(TS_FORMAT)


def parse_ts(text: str) -> datetime:
    """Parse a timestamp written by `format_ts` (GitHub's API uses the same form)."""
    return datetime.strptime(text, TS_FORMAT).replace(tzinfo=UTC)


def utc_now() -> datetime:
    """The current time in UTC, truncated to seconds; only shells call this, the core takes `now` as an argument."""
    return datetime.now(UTC).replace(microsecond=0)
