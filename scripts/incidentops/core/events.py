"""Typed facts from a GitHub webhook payload, and the idempotency key of each event.

Re-runs replay the same payload, so every side effect is keyed on what the payload says (issue number,
label, the issue's `updated_at` at the moment of the change, comment id), never on the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from incidentops.errors import IncidentOpsError, UsageError

# The identity GITHUB_TOKEN acts as (comments, pushes, pull requests). Only what it wrote is trusted as ours:
# anyone who can comment can write a hidden `<!-- incidentops:… -->` marker (GitHub renders HTML comments invisibly).
BOT_LOGIN = "github-actions[bot]"


def is_own_login(login: str) -> bool:
    """Whether `login` is the workflow's own identity."""
    return login == BOT_LOGIN


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: str
    html_url: str
    labels: tuple[str, ...]
    assignees: tuple[str, ...]
    author: str
    updated_at: str
    is_pull_request: bool


@dataclass(frozen=True)
class Event:
    name: str  # GITHUB_EVENT_NAME: issues, issue_comment, pull_request, schedule, ...
    action: str
    sender: str
    sender_is_bot: bool
    label: str | None = None
    issue: Issue | None = None
    comment_id: int | None = None
    comment_body: str | None = None
    comment_url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """A key that is the same for a replay of this event and different for any other event."""
        number = self.issue.number if self.issue else 0
        if self.name == "issue_comment" and self.comment_id is not None:
            return f"comment-{self.comment_id}"
        updated = self.issue.updated_at if self.issue else ""
        label = f"-{self.label}" if self.label else ""
        return f"{self.name}-{self.action}-{number}{label}-{updated}"


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _issue(data: Any) -> Issue | None:
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        return None
    labels = tuple(_str(label.get("name")) for label in data.get("labels") or [] if isinstance(label, dict))
    assignees = tuple(_str(user.get("login")) for user in data.get("assignees") or [] if isinstance(user, dict))
    if not assignees and isinstance(data.get("assignee"), dict):
        assignees = (_str(data["assignee"].get("login")),)
    return Issue(
        number=data["number"],
        title=_str(data.get("title")),
        body=_str(data.get("body")),
        state=_str(data.get("state"), "open"),
        html_url=_str(data.get("html_url")),
        labels=labels,
        assignees=tuple(a for a in assignees if a),
        author=_str((data.get("user") or {}).get("login")),
        updated_at=_str(data.get("updated_at")),
        is_pull_request="pull_request" in data,
    )


def parse_event(name: str, payload: Any) -> Event:
    """Build an `Event` from GITHUB_EVENT_NAME and the decoded payload; tolerant of missing keys."""
    if not isinstance(payload, dict):
        raise IncidentOpsError(
            "the event payload is not a JSON object", hint="Check GITHUB_EVENT_PATH points at the event file."
        )
    sender = payload.get("sender") or {}
    login = _str(sender.get("login"))
    is_bot = sender.get("type") == "Bot" or login.endswith("[bot]")
    label = payload.get("label")
    comment = payload.get("comment") or {}
    issue_data = payload.get("issue")
    if issue_data is None and isinstance(payload.get("pull_request"), dict):
        issue_data = dict(payload["pull_request"], pull_request={})
    return Event(
        name=name,
        action=_str(payload.get("action")),
        sender=login,
        sender_is_bot=is_bot,
        label=_str(label.get("name")) if isinstance(label, dict) else None,
        issue=_issue(issue_data),
        comment_id=comment.get("id") if isinstance(comment.get("id"), int) else None,
        comment_body=_str(comment.get("body")) if comment else None,
        comment_url=_str(comment.get("html_url")) or None,
        raw=payload,
    )


# Every value GITHUB_EVENT_NAME can take (GitHub docs, "Events that trigger workflows"). A name outside this list
# is a typo in a hand-made run, not an event we may quietly skip.
GITHUB_EVENTS = frozenset(
    [
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "create",
        "delete",
        "deployment",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "gollum",
        "issue_comment",
        "issues",
        "label",
        "merge_group",
        "milestone",
        "page_build",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_target",
        "push",
        "registry_package",
        "release",
        "repository_dispatch",
        "schedule",
        "status",
        "watch",
        "workflow_call",
        "workflow_dispatch",
        "workflow_run",
    ]
)


def load_event(name: str | None, path: str | None) -> Event:
    """Read the event GitHub Actions hands to a job (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH)."""
    if not name or not path:
        raise UsageError(
            "GITHUB_EVENT_NAME and GITHUB_EVENT_PATH must be set",
            hint="This command runs inside a GitHub Actions job; to try it locally set both to an event file.",
        )
    if name not in GITHUB_EVENTS:
        raise UsageError(
            f"GITHUB_EVENT_NAME {name!r} is not a GitHub event",
            hint="Use the name GitHub gives the event, e.g. issues, issue_comment or pull_request.",
        )
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IncidentOpsError(f"event file {path} does not exist") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise IncidentOpsError(f"event file {path} is not valid JSON: {exc}") from exc
    return parse_event(name, payload)
