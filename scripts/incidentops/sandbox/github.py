"""The emulated GitHub REST API: issues, comments, labels, pull requests and contents over a real git repo.

State other than git (issues, comments, labels, milestones) lives in memory behind one lock; everything git
is read fresh from the bare repository, so clients may also `git push` to it directly. Every JSON request
and response is checked against GitHub's OpenAPI description, and every change is recorded as the webhook
GitHub would deliver.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from incidentops.sandbox import githooks
from incidentops.sandbox.gitstore import (
    ZERO_SHA,
    CommitInfo,
    GitError,
    GitStore,
    Identity,
    RefMoved,
    TreeEntry,
    iso,
)
from incidentops.sandbox.http import App, HttpError, Request, Response
from incidentops.sandbox.openapi import OpenApiSpec

SPECS = Path(__file__).resolve().parent / "specs"
DOCS = "https://docs.github.com/rest"
MAX_BODY = 65536
MAX_TITLE = 256
RATE_LIMIT = 5000  # a person's token, per hour
# GITHUB_TOKEN: 1,000 REST requests per hour per repository (docs, "Rate limits for the REST API").
ACTIONS_TOKEN_RATE_LIMIT = 1000
RATE_WINDOW = 3600

# What `user.permissions` says for each base role (docs, "Repository roles for an organization"): a custom
# role inherits the booleans of the base role it is built on.
ROLE_PERMISSIONS = {
    "admin": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    "maintain": {"admin": False, "maintain": True, "push": True, "triage": True, "pull": True},
    "write": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    "triage": {"admin": False, "maintain": False, "push": False, "triage": True, "pull": True},
    "read": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
    "none": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": False},
}

JSON = dict[str, Any]

# Repository roles, weakest first; a request needs at least the rank its route asks for.
ROLES = ("none", "read", "triage", "write", "maintain", "admin")
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
SEED_USERS = (
    ("oncall-admin", "admin", "On-call Admin"),
    ("oncall-maintain", "maintain", "On-call Maintainer"),
    ("oncall-write", "write", "On-call Writer"),
    ("triager", "triage", "Triager"),
    ("reader", "read", "Reader"),
    ("outsider", "none", "Outsider"),
)
SEED_LABELS = (
    ("sev-1", "b60205", "Severity 1: critical, customer-facing outage"),
    ("sev-2", "d93f0b", "Severity 2: major degradation"),
    ("sev-3", "fbca04", "Severity 3: minor impact"),
    ("incident", "5319e7", "An incident record"),
    ("rollback", "0e8a16", "A rollback pull request"),
    ("incident-followup", "1d76db", "Follow-up work from an incident"),
    ("architecture-significant", "c5def5", "A decision that gets an ADR"),
    ("bug", "d73a4a", "Something isn't working"),
)


def rank(role: str) -> int:
    """Order repository roles so they can be compared."""
    return ROLES.index(role)


def now_iso() -> str:
    """The current time as GitHub formats it."""
    return iso(datetime.now(UTC))


def node_id(kind: str, number: int) -> str:
    """Build a legacy-style global node id such as GitHub's `MDU6SXNzdWUx`."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def error(status: int, message: str, errors: list[JSON] | None = None) -> HttpError:
    """Build the error GitHub answers with: message, documentation_url and, for 422, errors."""
    body: JSON = {"message": message, "documentation_url": DOCS}
    if errors is not None or status == 422:
        body["errors"] = errors or []
    return HttpError(status, body)


def invalid(resource: str, field_name: str, code: str = "invalid", **extra: Any) -> HttpError:
    """A 422 "Validation Failed" naming the offending field."""
    return error(422, "Validation Failed", [{"resource": resource, "field": field_name, "code": code, **extra}])


@dataclass
class User:
    login: str
    id: int
    role: str
    name: str
    kind: str = "User"  # "User", "Bot" or "Organization"
    created_at: str = "2020-01-01T00:00:00Z"
    role_name: str | None = None  # a custom repository role built on `role` (e.g. "sre" on write)

    @property
    def email(self) -> str:
        return f"{self.id}+{self.login}@users.noreply.github.com"


@dataclass(frozen=True)
class Protection:
    """A rule on a branch that only pull requests may change: classic branch protection or a ruleset."""

    kind: str = "classic"  # "classic" (GH006) or "ruleset" (GH013)
    bypass: tuple[str, ...] = ()  # logins allowed to push directly (a ruleset's bypass list)
    required_status_checks: tuple[str, ...] = ()


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str | None
    default: bool = False


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: str
    created_at: str
    updated_at: str


@dataclass
class Milestone:
    id: int
    number: int
    title: str
    description: str | None
    state: str
    due_on: str | None
    creator: str
    created_at: str
    updated_at: str
    closed_at: str | None = None


@dataclass
class Pull:
    head: str
    base: str
    head_sha: str  # last seen head commit (kept when the branch is later deleted)
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = False
    merged: bool = False
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    stats: tuple[int, int, int, int] | None = None  # commits, additions, deletions, files once closed


@dataclass
class Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: str
    updated_at: str
    state: str = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    labels: list[str] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    milestone: int | None = None
    locked: bool = False
    pull: Pull | None = None


@dataclass
class Call:
    """One authenticated API call as a handler sees it."""

    request: Request
    user: User
    body: Any

    @property
    def params(self) -> dict[str, str]:
        return self.request.params

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default


Handler = Callable[[Call], Response]


class _GitHubApp(App):
    """Routes whose misses answer like GitHub, with a documentation link."""

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": "Not Found", "documentation_url": DOCS})


def personal_token(login: str) -> str:
    """The sandbox's personal access token for a seeded user (`ghp_` and 36 characters, as GitHub's look)."""
    return "ghp_" + (login.replace("-", "") + "0" * 36)[:36]


class GitHubEmulator:
    """A stateful, thread-safe emulation of the GitHub REST API for one repository."""

    ACTIONS_TOKEN: ClassVar[str] = "sandbox-actions-token"
    BOT_LOGIN: ClassVar[str] = "github-actions[bot]"

    def __init__(self, api_url: str, server_url: str, owner: str, repo: str, bare_repo: Path) -> None:
        self.api_url = api_url.rstrip("/")
        self.server_url = server_url.rstrip("/")
        self.owner = owner
        self.repo = repo
        self.git = GitStore(bare_repo)
        self.spec = OpenApiSpec.load(SPECS / "github-openapi-subset.json")
        self.events: list[JSON] = []
        self.violations: list[JSON] = []
        self.lock = threading.RLock()
        self._ids = itertools.count(1_000_001)
        self._numbers = itertools.count(1)
        self._started = now_iso()
        self._reset_at = int(time.time()) + RATE_WINDOW
        self._used: dict[str, int] = {}
        self.rate_limits: dict[str, int] = {self.BOT_LOGIN: ACTIONS_TOKEN_RATE_LIMIT}
        self.protection: dict[str, Protection] = {}  # branch -> rule that blocks direct pushes
        self.gone_issues: dict[int, str | None] = {}  # deleted (None) or transferred (new API URL) issues
        self.repo_id = 700_001
        self.default_branch = "main"
        self.users: dict[str, User] = {}
        for index, (login, role, name) in enumerate(SEED_USERS):
            self.users[login] = User(login, 5_000_001 + index, role, name)
        self.users[self.BOT_LOGIN] = User(self.BOT_LOGIN, 41898282, "write", "github-actions[bot]", "Bot")
        self.org = User(owner, 4_000_001, "none", owner, "Organization")
        self.tokens: dict[str, str] = {login: login for login in self.users}
        # Personal tokens shaped like GitHub's (`ghp_` + 36 characters), for people using the sandbox by hand: a
        # token that is not also the login keeps the login readable once the token is redacted.
        self.tokens.update({personal_token(login): login for login in self.users})
        self.tokens[self.ACTIONS_TOKEN] = self.BOT_LOGIN
        self.labels: dict[str, Label] = {}
        for name, color, description in SEED_LABELS:
            self._new_label(name, color, description, default=name == "bug")
        self.issues: dict[int, Issue] = {}
        self.comments: dict[int, Comment] = {}
        self.milestones: dict[int, Milestone] = {}
        # Repository settings (sandbox/adoption.py RepoSettings), attached by the sandbox server.
        self.repo_settings: Any = None
        self.app = _GitHubApp()
        self._routes()

    # -- plumbing: auth, validation, rate limits, events ---------------------------------------

    def route(self, method: str, pattern: str, need: str = "read", repo: bool = True) -> Callable[[Handler], Handler]:
        """Register `handler` for `method pattern`, wrapped with auth, permission and validation."""
        full = f"/repos/{{owner}}/{{repo}}{pattern}" if repo else pattern

        def register(handler: Handler) -> Handler:
            def serve(request: Request) -> Response:
                return self._serve(request, handler, need, repo)

            self.app.route(method, full)(serve)
            return handler

        return register

    def _serve(self, request: Request, handler: Handler, need: str, repo: bool) -> Response:
        login = self.tokens.get(request.bearer or "", "")
        headers = self._rate_headers(login)
        try:
            if login and int(headers["x-ratelimit-used"]) > int(headers["x-ratelimit-limit"]):
                raise self._rate_limited(login)
            response = self._answer(request, handler, need, repo)
        except HttpError as err:
            response = err.response
        self._check_response(request, response)
        response.headers.update(headers)
        return response

    def _rate_limited(self, login: str) -> HttpError:
        """The primary rate limit: 403 with x-ratelimit-remaining 0; do not retry before x-ratelimit-reset
        (docs, "Rate limits for the REST API", "Exceeding the rate limit")."""
        user = self.users[login]
        who = "installation ID 1" if user.kind == "Bot" else f"user ID {user.id}"
        return HttpError(
            403,
            {
                "message": f"API rate limit exceeded for {who}.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
        )

    def _answer(self, request: Request, handler: Handler, need: str, repo: bool) -> Response:
        user = self._authenticate(request)
        if repo:
            owner, name = request.params.get("owner", ""), request.params.get("repo", "")
            if (owner.lower(), name.lower()) != (self.owner.lower(), self.repo.lower()):
                raise error(404, "Not Found")
            # The repository is private: without read access it does not exist.
            if rank(user.role) < rank("read"):
                raise error(404, "Not Found")
            if rank(user.role) < rank(need):
                raise self._forbidden(user, need)
            self._check_gone(request)
        body = self._body(request)
        with self.lock:
            try:
                return handler(Call(request, user, body))
            except (GitError, ValueError) as exc:
                # Hostile names (NUL bytes, odd refs) make git refuse; GitHub answers those as bad input.
                if request.method == "GET":
                    raise error(404, "Not Found") from exc
                raise error(422, "Validation Failed", []) from exc

    def _authenticate(self, request: Request) -> User:
        token = request.bearer
        if token is None:
            raise error(401, "Requires authentication")
        login = self.tokens.get(token)
        if login is None:
            raise error(401, "Bad credentials")
        return self.users[login]

    def _check_gone(self, request: Request) -> None:
        """A deleted issue answers 410 Gone; a transferred one 301 to its new location (api.github.com
        OpenAPI, "Get an issue": 301, 410), for the issue and everything under it."""
        found = re.match(r"^/repos/[^/]+/[^/]+/issues/(\d+)(/.*)?$", request.path)
        if found is None or int(found.group(1)) not in self.gone_issues:
            return
        moved = self.gone_issues[int(found.group(1))]
        if moved is None:
            raise HttpError(
                410,
                {"message": "This issue was deleted", "documentation_url": f"{DOCS}/issues/issues#get-an-issue"},
            )
        location = moved + (found.group(2) or "")
        raise HttpError(
            301,
            {
                "message": "Moved Permanently",
                "url": location,
                "documentation_url": f"{DOCS}/issues/issues#get-an-issue",
            },
            {"Location": location},
        )

    def delete_issue(self, number: int) -> None:
        """What deleting an issue does (an admin, in the UI): it is gone, and answers 410 from then on."""
        with self.lock:
            self.issue(str(number))
            self.issues.pop(number)
            self.gone_issues[number] = None

    def transfer_issue(self, number: int, repository: str, new_number: int) -> str:
        """What transferring an issue to another repository does: 301 to its new API URL from then on."""
        with self.lock:
            self.issue(str(number))
            self.issues.pop(number)
            url = f"{self.api_url}/repos/{repository}/issues/{new_number}"
            self.gone_issues[number] = url
            return url

    def set_role(self, login: str, base_role: str, role_name: str | None = None) -> User:
        """Add or change a collaborator; `role_name` names a custom role built on `base_role`."""
        if base_role not in ROLES:
            raise ValueError(f"base role must be one of {', '.join(ROLES)}, not {base_role!r}")
        if role_name in ROLES and role_name != base_role:
            raise ValueError(f"a custom role cannot be named after the base role {role_name!r}")
        with self.lock:
            existing = self.users.get(login)
            ident = existing.id if existing else 5_100_001 + len(self.users)
            user = User(login, ident, base_role, login, role_name=role_name if role_name != base_role else None)
            self.users[login] = user
            self.tokens[login] = login
            return user

    def protect(self, branch: str, protection: Protection | None) -> None:
        with self.lock:
            if protection is None:
                self.protection.pop(branch, None)
            else:
                self.protection[branch] = protection
            githooks.set_flag(self.git.bare, githooks.PROTECTED_FLAG, bool(self.protection))

    def record_git_pushes(self, on: bool) -> None:
        """Record a `push` webhook for every `git push` (the Actions scheduler needs them; off by default so
        that pushes start no hook process: API-made pushes are always recorded)."""
        githooks.set_flag(self.git.bare, githooks.PUSH_EVENTS_FLAG, on)

    def receive(self, updates: list[tuple[str, str, str]], pusher: str | None) -> tuple[bool, list[str]]:
        """The pre-receive decision for a `git push` (old, new, ref): (accept?, lines for the pusher's stderr).

        A protected branch takes changes only through pull requests, so a direct push is declined with
        GitHub's own words: `GH006: Protected branch update failed` for classic protection, `GH013: Repository
        rule violations found` for a ruleset (henne49/dbus-opendtu#235, mastra-ai/mastra#20609 show it for a
        workflow's push). Logins on the bypass list may push.
        """
        messages: list[str] = []
        with self.lock:
            for _old, _new, ref in updates:
                branch = ref.removeprefix("refs/heads/")
                rule = self.protection.get(branch) if ref.startswith("refs/heads/") else None
                if rule is None or (pusher is not None and pusher in rule.bypass):
                    continue
                if rule.kind == "ruleset":
                    messages += [
                        f"error: GH013: Repository rule violations found for {ref}.",
                        f"Review all repository rules at {self.repo_html}/rules?ref={quote(ref, safe='')}",
                        "",
                        "- Changes must be made through a pull request.",
                        "",
                    ]
                    for check in rule.required_status_checks:
                        messages += [f'- Required status check "{check}" is expected.', ""]
                else:
                    messages += [
                        f"error: GH006: Protected branch update failed for {ref}.",
                        "error: Changes must be made through a pull request.",
                    ]
        return not messages, messages

    def record_push(self, updates: list[tuple[str, str, str]], pusher: str | None) -> None:
        """The `push` webhook for each ref a `git push` (post-receive) or an API write moved."""
        sender = self.users.get(pusher or "") or self.users["oncall-admin"]
        for old, new, ref in updates:
            commits: list[JSON] = []
            if new != ZERO_SHA:
                span = f"{old}..{new}" if old != ZERO_SHA else new
                shas = self.git.git("rev-list", "--reverse", "--max-count=20", span).decode().split()
                for sha in shas:
                    info = self.git.commit_info(sha)
                    files = (
                        self.git.git("diff", "--name-status", info.parents[0], sha)
                        if info.parents
                        else self.git.git("diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
                    )
                    added: list[str] = []
                    removed: list[str] = []
                    modified: list[str] = []
                    for line in files.decode().splitlines():
                        status, _, path = line.partition("\t")
                        {"A": added, "D": removed}.get(status[:1], modified).append(path)
                    commits.append(
                        {
                            "id": sha,
                            "tree_id": info.tree,
                            "distinct": True,
                            "message": info.message,
                            "timestamp": iso(info.author_date),
                            "url": f"{self.repo_html}/commit/{sha}",
                            "author": {"name": info.author.name, "email": info.author.email},
                            "committer": {"name": info.committer.name, "email": info.committer.email},
                            "added": added,
                            "removed": removed,
                            "modified": modified,
                        }
                    )
            self.emit(
                "push",
                None,
                sender,
                ref=ref,
                before=old,
                after=new,
                created=old == ZERO_SHA,
                deleted=new == ZERO_SHA,
                forced=False,
                base_ref=None,
                compare=f"{self.repo_html}/compare/{old[:12]}...{new[:12]}",
                commits=commits,
                head_commit=commits[-1] if commits else None,
                pusher={"name": sender.login, "email": sender.email},
            )

    def _forbidden(self, user: User, need: str) -> HttpError:
        if user.kind == "Bot":
            return error(403, "Resource not accessible by integration")
        return error(403, f"Must have {need} access to repository")

    def require(self, call: Call, need: str) -> None:
        """Refuse the call unless its user has at least `need`."""
        if rank(call.user.role) < rank(need):
            raise self._forbidden(call.user, need)

    def _body(self, request: Request) -> Any:
        if request.method not in ("POST", "PUT", "PATCH") or not request.body.strip():
            return None
        try:
            body = request.json()
        except HttpError as exc:
            raise error(400, "Problems parsing JSON") from exc
        checked = body
        # PyGithub sends add/set labels as a bare array, which GitHub accepts; the spec only has the object.
        if isinstance(body, list) and request.path.rstrip("/").endswith("/labels"):
            checked = {"labels": body}
        errors = self.spec.validate_request(request.method, request.path, checked)
        if errors:
            self._violation(request, "request", errors)
            raise error(422, "Invalid request.\n\n" + "\n".join(errors))
        return body

    def _check_response(self, request: Request, response: Response) -> None:
        if isinstance(response.body, (bytes, str)):
            return
        # Undocumented error statuses (401, 403 on some routes) are still what GitHub sends.
        if response.status >= 400 and not self.spec.documents_status(request.method, request.path, response.status):
            return
        errors = self.spec.validate_response(request.method, request.path, response.status, response.body)
        if errors:
            self._violation(request, "response", errors)

    def _violation(self, request: Request, kind: str, errors: list[str]) -> None:
        with self.lock:
            self.violations.append({"method": request.method, "path": request.path, "kind": kind, "errors": errors})

    def _rate_headers(self, login: str) -> dict[str, str]:
        with self.lock:
            if time.time() >= self._reset_at:
                self._used.clear()
                self._reset_at = int(time.time()) + RATE_WINDOW
            used = self._used.get(login, 0) + 1
            self._used[login] = used
            limit = self.rate_limits.get(login, RATE_LIMIT)
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(self._reset_at),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": uuid.uuid4().hex[:20].upper(),
        }

    def emit(self, event: str, action: str | None, sender: User, **fields: Any) -> None:
        """Record the webhook delivery GitHub would send for a change (`push` has no action)."""
        payload: JSON = {
            **({"action": action} if action is not None else {}),
            **fields,
            "repository": self.repository_json(),
            "organization": self.organization_json(),
            "sender": self.user_json(sender),
        }
        self.events.append(
            {
                "seq": len(self.events) + 1,
                "event": event,
                "action": action,
                "delivery": str(uuid.uuid4()),
                "payload": payload,
            }
        )

    def organization_json(self) -> JSON:
        """The owning organization as webhook payloads carry it."""
        api = f"{self.api_url}/orgs/{self.owner}"
        return {
            "login": self.org.login,
            "id": self.org.id,
            "node_id": node_id("Organization", self.org.id),
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.server_url}/avatars/u/{self.org.id}?v=4",
            "description": "",
        }

    # -- URLs and JSON shapes ------------------------------------------------------------------

    @property
    def repo_api(self) -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.repo}"

    @property
    def repo_html(self) -> str:
        return f"{self.server_url}/{self.owner}/{self.repo}"

    def user_json(self, user: User) -> JSON:
        """A simple-user object (also valid as a webhook `user`)."""
        api = f"{self.api_url}/users/{quote(user.login)}"
        html = f"{self.server_url}/apps/github-actions" if user.kind == "Bot" else f"{self.server_url}/{user.login}"
        return {
            "login": user.login,
            "id": user.id,
            "node_id": node_id(user.kind, user.id),
            "avatar_url": f"{self.server_url}/avatars/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": user.kind,
            "site_admin": False,
        }

    def _user_or_none(self, login: str | None) -> JSON | None:
        user = self.users.get(login or "")
        return self.user_json(user) if user else None

    def _pushed_at(self) -> str:
        sha = self.git.branch_sha(self.default_branch)
        return iso(self.git.commit_info(sha).committer_date) if sha else self._started

    def repository_json(self) -> JSON:
        """The repository as webhooks and pull request heads carry it."""
        api, html = self.repo_api, self.repo_html
        open_count = sum(1 for i in self.issues.values() if i.state == "open")
        git_host = self.server_url.split("://", 1)[-1]
        return {
            "id": self.repo_id,
            "node_id": node_id("Repository", self.repo_id),
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "private": True,
            "owner": self.user_json(self.org),
            "html_url": html,
            "description": "Incident response for the acme services",
            "fork": False,
            "url": api,
            "forks_url": f"{api}/forks",
            "keys_url": f"{api}/keys{{/key_id}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "teams_url": f"{api}/teams",
            "hooks_url": f"{api}/hooks",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "events_url": f"{api}/events",
            "assignees_url": f"{api}/assignees{{/user}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "tags_url": f"{api}/tags",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "languages_url": f"{api}/languages",
            "stargazers_url": f"{api}/stargazers",
            "contributors_url": f"{api}/contributors",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "commits_url": f"{api}/commits{{/sha}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "comments_url": f"{api}/comments{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "merges_url": f"{api}/merges",
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{api}/downloads",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "labels_url": f"{api}/labels{{/name}}",
            "releases_url": f"{api}/releases{{/id}}",
            "deployments_url": f"{api}/deployments",
            "created_at": self._started,
            "updated_at": self._started,
            "pushed_at": self._pushed_at(),
            "git_url": f"git://{git_host}/{self.owner}/{self.repo}.git",
            "ssh_url": f"git@{git_host}:{self.owner}/{self.repo}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 1,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": "Python",
            "has_issues": True,
            "has_projects": False,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_count,
            "license": None,
            "allow_forking": False,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private",
            "custom_properties": {},
            "forks": 0,
            "open_issues": open_count,
            "watchers": 0,
            "default_branch": self.default_branch,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": False,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
        }

    def full_repository_json(self, user: User) -> JSON:
        """The repository as `GET /repos/{owner}/{repo}` returns it to `user`."""
        level = rank(user.role)
        return {
            **self.repository_json(),
            "permissions": {
                "admin": level >= rank("admin"),
                "maintain": level >= rank("maintain"),
                "push": level >= rank("write"),
                "triage": level >= rank("triage"),
                "pull": level >= rank("read"),
            },
            "network_count": 0,
            "subscribers_count": 0,
        }

    def label_json(self, label: Label) -> JSON:
        """A label object."""
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.repo_api}/labels/{quote(label.name, safe='')}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def _association(self, login: str) -> str:
        user = self.users.get(login)
        if user is None or user.kind == "Bot" or user.role == "none":
            return "NONE"
        return "MEMBER" if rank(user.role) >= rank("maintain") else "COLLABORATOR"

    def _reactions(self, url: str) -> JSON:
        counts = dict.fromkeys(("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0)
        return {"url": f"{url}/reactions", "total_count": 0, **counts}

    def milestone_json(self, milestone: Milestone) -> JSON:
        """A milestone object."""
        url = f"{self.repo_api}/milestones/{milestone.number}"
        in_it = [i for i in self.issues.values() if i.milestone == milestone.number]
        return {
            "url": url,
            "html_url": f"{self.repo_html}/milestone/{milestone.number}",
            "labels_url": f"{url}/labels",
            "id": milestone.id,
            "node_id": node_id("Milestone", milestone.id),
            "number": milestone.number,
            "title": milestone.title,
            "description": milestone.description,
            "creator": self._user_or_none(milestone.creator),
            "open_issues": sum(1 for i in in_it if i.state == "open"),
            "closed_issues": sum(1 for i in in_it if i.state == "closed"),
            "state": milestone.state,
            "created_at": milestone.created_at,
            "updated_at": milestone.updated_at,
            "due_on": milestone.due_on,
            "closed_at": milestone.closed_at,
        }

    def issue_json(self, issue: Issue, rest: bool = True) -> JSON:
        """An issue object; `rest=False` leaves out the fields webhook payloads may not carry."""
        url = f"{self.repo_api}/issues/{issue.number}"
        assignees = [self.user_json(self.users[a]) for a in issue.assignees if a in self.users]
        milestone = self.milestones.get(issue.milestone or 0)
        body: JSON = {
            "url": url,
            "repository_url": self.repo_api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.repo_html}/{'pull' if issue.pull else 'issues'}/{issue.number}",
            "id": issue.id,
            "node_id": node_id("PullRequest" if issue.pull else "Issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user_json(self.users[issue.user]),
            "labels": [self.label_json(self.labels[name]) for name in issue.labels if name in self.labels],
            "state": issue.state,
            "locked": issue.locked,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": self.milestone_json(milestone) if milestone else None,
            "comments": sum(1 for c in self.comments.values() if c.issue == issue.number),
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "author_association": self._association(issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "reactions": self._reactions(url),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason,
        }
        body["draft"] = issue.pull.draft if issue.pull else False
        if issue.pull:
            body["pull_request"] = {
                "url": f"{self.repo_api}/pulls/{issue.number}",
                "html_url": f"{self.repo_html}/pull/{issue.number}",
                "diff_url": f"{self.repo_html}/pull/{issue.number}.diff",
                "patch_url": f"{self.repo_html}/pull/{issue.number}.patch",
                "merged_at": issue.pull.merged_at,
            }
        if rest:
            body["closed_by"] = self._user_or_none(issue.closed_by)
        return body

    def comment_json(self, comment: Comment) -> JSON:
        """An issue comment object (also valid in webhooks)."""
        url = f"{self.repo_api}/issues/comments/{comment.id}"
        issue = self.issues[comment.issue]
        kind = "pull" if issue.pull else "issues"
        return {
            "url": url,
            "html_url": f"{self.repo_html}/{kind}/{comment.issue}#issuecomment-{comment.id}",
            "issue_url": f"{self.repo_api}/issues/{comment.issue}",
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "user": self.user_json(self.users[comment.user]),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": self._association(comment.user),
            "body": comment.body,
            "reactions": self._reactions(url),
            "performed_via_github_app": None,
        }

    def _branch_end(self, ref: str, sha: str) -> JSON:
        return {
            "label": f"{self.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user_json(self.org),
            "repo": self.repository_json(),
        }

    def _refresh(self, pull: Pull) -> None:
        """Follow the branches of an open pull request (they move whenever anyone pushes)."""
        pull.head_sha = self.git.branch_sha(pull.head) or pull.head_sha
        pull.base_sha = self.git.branch_sha(pull.base) or pull.base_sha

    def _pull_stats(self, pull: Pull) -> tuple[int, int, int, int]:
        if pull.stats is not None:
            return pull.stats
        additions, deletions, files = self.git.diff_stats(pull.base_sha, pull.head_sha)
        return self.git.count_commits(pull.base_sha, pull.head_sha), additions, deletions, files

    def pull_json(self, issue: Issue, simple: bool = False) -> JSON:
        """A pull request object; `simple` gives the lighter list shape."""
        pull = issue.pull
        assert pull is not None
        if issue.state == "open":
            self._refresh(pull)
        number = issue.number
        url = f"{self.repo_api}/pulls/{number}"
        html = f"{self.repo_html}/pull/{number}"
        issue_url = f"{self.repo_api}/issues/{number}"
        shared = self.issue_json(issue, rest=False)
        body: JSON = {
            "url": url,
            "id": issue.id,
            "node_id": node_id("PullRequest", issue.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "number": number,
            "state": issue.state,
            "locked": issue.locked,
            "title": issue.title,
            "user": shared["user"],
            "body": issue.body,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": shared["assignee"],
            "assignees": shared["assignees"],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": shared["labels"],
            "milestone": shared["milestone"],
            "draft": pull.draft,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.repo_api}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.repo_api}/statuses/{pull.head_sha}",
            "head": self._branch_end(pull.head, pull.head_sha),
            "base": self._branch_end(pull.base, pull.base_sha),
            "_links": {
                name: {"href": href}
                for name, href in (
                    ("self", url),
                    ("html", html),
                    ("issue", issue_url),
                    ("comments", f"{issue_url}/comments"),
                    ("review_comments", f"{url}/comments"),
                    ("review_comment", f"{self.repo_api}/pulls/comments{{/number}}"),
                    ("commits", f"{url}/commits"),
                    ("statuses", f"{self.repo_api}/statuses/{pull.head_sha}"),
                )
            },
            "author_association": shared["author_association"],
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if simple:
            return body
        commits, additions, deletions, files = self._pull_stats(pull)
        mergeable: bool | None = None
        state = "unknown"
        if issue.state == "open":
            mergeable = self.git.merge_tree(pull.base_sha, pull.head_sha) is not None
            state = ("draft" if pull.draft else "clean") if mergeable else "dirty"
        body.update(
            {
                "merged": pull.merged,
                "mergeable": mergeable,
                "rebaseable": mergeable,
                "mergeable_state": state,
                "merged_by": self._user_or_none(pull.merged_by),
                "comments": shared["comments"],
                "review_comments": 0,
                "maintainer_can_modify": pull.maintainer_can_modify,
                "commits": commits,
                "additions": additions,
                "deletions": deletions,
                "changed_files": files,
            }
        )
        return body

    def _verification(self) -> JSON:
        return {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        }

    def _git_commit_json(self, info: CommitInfo) -> JSON:
        return {
            "sha": info.sha,
            "node_id": node_id("Commit", int(info.sha[:7], 16)),
            "url": f"{self.repo_api}/git/commits/{info.sha}",
            "html_url": f"{self.repo_html}/commit/{info.sha}",
            "author": {"name": info.author.name, "email": info.author.email, "date": iso(info.author_date)},
            "committer": {
                "name": info.committer.name,
                "email": info.committer.email,
                "date": iso(info.committer_date),
            },
            "message": info.message,
            "tree": {"sha": info.tree, "url": f"{self.repo_api}/git/trees/{info.tree}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{self.repo_api}/git/commits/{p}",
                    "html_url": f"{self.repo_html}/commit/{p}",
                }
                for p in info.parents
            ],
            "verification": self._verification(),
        }

    def _user_by_email(self, email: str) -> JSON | None:
        user = next((u for u in self.users.values() if u.email == email), None)
        return self.user_json(user) if user else None

    def commit_json(self, info: CommitInfo) -> JSON:
        """A commit as `GET /commits/{ref}` returns it, with stats and files against the first parent."""
        url = f"{self.repo_api}/commits/{info.sha}"
        files = self._diff_entries(info)
        additions = sum(f["additions"] for f in files)
        deletions = sum(f["deletions"] for f in files)
        return {
            "url": url,
            "sha": info.sha,
            "node_id": node_id("Commit", int(info.sha[:7], 16)),
            "html_url": f"{self.repo_html}/commit/{info.sha}",
            "comments_url": f"{url}/comments",
            "commit": {
                "url": f"{self.repo_api}/git/commits/{info.sha}",
                "author": {
                    "name": info.author.name,
                    "email": info.author.email,
                    "date": iso(info.author_date),
                },
                "committer": {
                    "name": info.committer.name,
                    "email": info.committer.email,
                    "date": iso(info.committer_date),
                },
                "message": info.message,
                "comment_count": 0,
                "tree": {"sha": info.tree, "url": f"{self.repo_api}/git/trees/{info.tree}"},
                "verification": self._verification(),
            },
            "author": self._user_by_email(info.author.email),
            "committer": self._user_by_email(info.committer.email),
            "parents": [
                {"sha": p, "url": f"{self.repo_api}/commits/{p}", "html_url": f"{self.repo_html}/commit/{p}"}
                for p in info.parents
            ],
            "stats": {"additions": additions, "deletions": deletions, "total": additions + deletions},
            "files": files,
        }

    def _diff_entries(self, info: CommitInfo) -> list[JSON]:
        base = info.parents[0] if info.parents else None
        range_args = [base, info.sha] if base else ["--root", info.sha]
        raw = self.git.git("diff-tree", "-r", "--no-commit-id", "-z", "--raw", *range_args).decode("utf-8", "replace")
        numstat = self.git.git("diff-tree", "-r", "--no-commit-id", "-z", "--numstat", *range_args).decode(
            "utf-8", "replace"
        )
        counts: dict[str, tuple[int, int]] = {}
        for record in filter(None, numstat.split("\0")):
            plus, minus, name = record.split("\t", 2)
            counts[name] = (int(plus) if plus.isdigit() else 0, int(minus) if minus.isdigit() else 0)
        parts = raw.split("\0")
        statuses = {"A": "added", "D": "removed", "M": "modified", "T": "changed"}
        entries = []
        for meta, path in zip(parts[0::2], parts[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            _, _, old_sha, new_sha, status = meta[1:].split(" ", 4)
            added, removed = counts.get(path, (0, 0))
            sha = new_sha if status != "D" else old_sha
            quoted = quote(path)
            entries.append(
                {
                    "sha": sha,
                    "filename": path,
                    "status": statuses.get(status[:1], "modified"),
                    "additions": added,
                    "deletions": removed,
                    "changes": added + removed,
                    "blob_url": f"{self.repo_html}/blob/{info.sha}/{quoted}",
                    "raw_url": f"{self.repo_html}/raw/{info.sha}/{quoted}",
                    "contents_url": f"{self.repo_api}/contents/{quoted}?ref={info.sha}",
                }
            )
        return entries

    def _entry_json(self, entry: TreeEntry, ref: str, with_content: bytes | None = None) -> JSON:
        kind = {"tree": "dir", "commit": "submodule"}.get(entry.kind, "symlink" if entry.mode == "120000" else "file")
        quoted = quote(entry.path)
        url = f"{self.repo_api}/contents/{quoted}?ref={quote(ref, safe='')}"
        git_url = f"{self.repo_api}/git/{'trees' if entry.kind == 'tree' else 'blobs'}/{entry.sha}"
        html_url = f"{self.repo_html}/{'tree' if entry.kind == 'tree' else 'blob'}/{ref}/{quoted}"
        download = f"{self.repo_html}/raw/{ref}/{quoted}" if kind == "file" else None
        body: JSON = {
            "type": kind,
            "size": entry.size,
            "name": entry.name,
            "path": entry.path,
            "sha": entry.sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": download,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }
        if with_content is not None:
            encoded = base64.b64encode(with_content).decode()
            # GitHub wraps the base64 text at 60 characters per line.
            body["content"] = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
            body["encoding"] = "base64"
        return body

    def _ref_json(self, ref: str, sha: str) -> JSON:
        return {
            "ref": ref,
            "node_id": node_id("Ref", int(sha[:7], 16)),
            "url": f"{self.repo_api}/git/{quote(ref)}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.repo_api}/git/commits/{sha}"},
        }

    # -- helpers for handlers ------------------------------------------------------------------

    def _new_label(
        self, name: str, color: str = "ededed", description: str | None = None, default: bool = False
    ) -> Label:
        label = Label(next(self._ids), name, color, description, default)
        self.labels[name.lower()] = label
        return label

    def _label(self, name: str) -> Label | None:
        return self.labels.get(name.lower())

    def issue(self, number: str, pulls_only: bool = False) -> Issue:
        """Find an issue (or pull request) by its number, or answer 404."""
        found = self.issues.get(int(number)) if number.isdigit() else None
        if found is None or (pulls_only and found.pull is None):
            raise error(404, "Not Found")
        return found

    def _check_text(self, resource: str, title: Any = None, body: Any = None) -> None:
        if isinstance(title, str) and not title.strip():
            raise invalid(resource, "title", "missing_field")
        if resource == "IssueComment" and isinstance(body, str) and not body.strip():
            raise invalid(resource, "body", "missing_field")
        if isinstance(title, str) and len(title) > MAX_TITLE:
            raise error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": resource,
                        "code": "custom",
                        "field": "title",
                        "message": "title is too long (maximum is 256 characters)",
                    }
                ],
            )
        if isinstance(body, str) and len(body) > MAX_BODY:
            raise error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": resource,
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ],
            )

    @staticmethod
    def _label_names(values: Iterable[Any]) -> list[str]:
        names = [v.get("name", "") if isinstance(v, dict) else str(v) for v in values]
        return list(dict.fromkeys(n for n in names if n))

    def _emit_issue(self, action: str, issue: Issue, sender: User, **fields: Any) -> None:
        """Emit an `issues` event, or the `pull_request` event when the issue is a pull request."""
        if issue.pull:
            self.emit(
                "pull_request",
                action,
                sender,
                number=issue.number,
                pull_request=self.pull_json(issue),
                **fields,
            )
        else:
            self.emit("issues", action, sender, issue=self.issue_json(issue, rest=False), **fields)

    def _add_labels(self, issue: Issue, names: list[str], sender: User) -> None:
        for name in names:
            label = self._label(name) or self._new_label(name)
            if label.name.lower() in (n.lower() for n in issue.labels):
                continue
            issue.labels.append(label.name)
            issue.updated_at = now_iso()
            self._emit_issue("labeled", issue, sender, label=self.label_json(label))

    def _remove_label(self, issue: Issue, name: str, sender: User) -> None:
        current = next((n for n in issue.labels if n.lower() == name.lower()), None)
        if current is None:
            raise error(404, "Label does not exist")
        issue.labels.remove(current)
        issue.updated_at = now_iso()
        label = self._label(current)
        if label:
            self._emit_issue("unlabeled", issue, sender, label=self.label_json(label))

    def _set_labels(self, issue: Issue, names: list[str], sender: User) -> None:
        wanted = {n.lower() for n in names}
        for name in [n for n in issue.labels if n.lower() not in wanted]:
            self._remove_label(issue, name, sender)
        self._add_labels(issue, names, sender)

    def _assignable(self, logins: Iterable[Any], strict: bool) -> list[str]:
        valid = []
        for login in logins:
            user = self.users.get(str(login))
            if user is None or user.kind == "Bot" or rank(user.role) < rank("read"):
                if strict:
                    raise invalid("Issue", "assignees", value=login)
                continue
            valid.append(user.login)
        return list(dict.fromkeys(valid))

    def _set_assignees(self, issue: Issue, logins: list[str], sender: User) -> None:
        for login in [a for a in issue.assignees if a not in logins]:
            issue.assignees.remove(login)
            self._emit_issue("unassigned", issue, sender, assignee=self.user_json(self.users[login]))
        for login in logins:
            if login not in issue.assignees:
                issue.assignees.append(login)
                self._emit_issue("assigned", issue, sender, assignee=self.user_json(self.users[login]))

    def _close(self, issue: Issue, sender: User, reason: str | None) -> None:
        moment = now_iso()
        issue.state, issue.closed_at, issue.closed_by, issue.updated_at = (
            "closed",
            moment,
            sender.login,
            moment,
        )
        issue.state_reason = None if issue.pull else (reason or "completed")
        if issue.pull:
            self._freeze(issue.pull)
            self.emit("pull_request", "closed", sender, number=issue.number, pull_request=self.pull_json(issue))
        else:
            self.emit("issues", "closed", sender, issue=self.issue_json(issue, rest=False))

    def _reopen(self, issue: Issue, sender: User) -> None:
        if issue.pull and issue.pull.merged:
            raise error(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": "merged pull requests cannot be reopened",
                    }
                ],
            )
        issue.state, issue.closed_at, issue.closed_by, issue.updated_at = "open", None, None, now_iso()
        issue.state_reason = None if issue.pull else "reopened"
        if issue.pull:
            issue.pull.stats = None
        self._emit_issue("reopened", issue, sender)

    def _freeze(self, pull: Pull) -> None:
        """Keep a closed pull request's numbers stable, as GitHub does once it stops tracking branches."""
        self._refresh(pull)
        pull.stats = self._pull_stats(pull)

    def _paginate(self, request: Request, items: list[Any]) -> Response:
        try:
            per_page = min(max(int(request.arg("per_page", "30") or 30), 1), 100)
            page = max(int(request.arg("page", "1") or 1), 1)
        except ValueError:
            per_page, page = 30, 1
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max((len(items) + per_page - 1) // per_page, 1)
        headers: dict[str, str] = {}
        base_query = {k: v[0] for k, v in request.query.items() if k != "page" and v}
        links = []
        for rel, target in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if 1 <= target <= last and target != page:
                query = urlencode({**base_query, "page": target})
                links.append(f'<{self.api_url}{request.path}?{query}>; rel="{rel}"')
        if links:
            headers["Link"] = ", ".join(links)
        return Response(200, chunk, headers)

    def _identity(self, call: Call, key: str) -> Identity | None:
        person = call.field(key)
        if isinstance(person, dict) and person.get("name") and person.get("email"):
            return Identity(str(person["name"]), str(person["email"]))
        return None

    # -- routes --------------------------------------------------------------------------------

    def _routes(self) -> None:
        self._repo_routes()
        self._issue_routes()
        self._label_routes()
        self._pull_routes()
        self._git_routes()
        self._user_routes()

    def _repo_routes(self) -> None:
        @self.route("GET", "")
        def get_repo(call: Call) -> Response:
            return Response(200, self.full_repository_json(call.user))

        @self.route("GET", "/collaborators/{username}/permission")
        def permission(call: Call) -> Response:
            user = self.users.get(call.params["username"])
            if user is None:
                raise error(404, f"{call.params['username']} is not a user")
            # `permission` is the legacy level (maintain folds into write, triage into read); `role_name` may
            # name a custom role, whose `user.permissions` are its base role's (docs, "Get repository
            # permissions for a user"; api.github.com OpenAPI `repository-collaborator-permission`).
            role_name = user.role_name or user.role
            body = {**self.user_json(user), "role_name": role_name, "permissions": dict(ROLE_PERMISSIONS[user.role])}
            return Response(200, {"permission": LEGACY_PERMISSION[user.role], "role_name": role_name, "user": body})

        @self.route("GET", "/milestones")
        def list_milestones(call: Call) -> Response:
            state = call.request.arg("state", "open")
            found = [m for m in self.milestones.values() if state == "all" or m.state == state]
            return self._paginate(call.request, [self.milestone_json(m) for m in found])

        @self.route("POST", "/milestones", need="write")
        def create_milestone(call: Call) -> Response:
            title = call.field("title")
            if any(m.title == title for m in self.milestones.values()):
                raise invalid("Milestone", "title", "already_exists")
            moment = now_iso()
            number = len(self.milestones) + 1
            milestone = Milestone(
                id=next(self._ids),
                number=number,
                title=str(title),
                description=call.field("description"),
                state=call.field("state", "open"),
                due_on=call.field("due_on"),
                creator=call.user.login,
                created_at=moment,
                updated_at=moment,
            )
            self.milestones[number] = milestone
            return Response(201, self.milestone_json(milestone))

    def _issue_routes(self) -> None:
        @self.route("GET", "/issues")
        def list_issues(call: Call) -> Response:
            arg = call.request.arg
            state = arg("state", "open")
            wanted = [n.strip().lower() for n in (arg("labels") or "").split(",") if n.strip()]
            found = [
                i
                for i in self.issues.values()
                if (state == "all" or i.state == state)
                and all(w in (n.lower() for n in i.labels) for w in wanted)
                and (arg("creator") is None or i.user == arg("creator"))
                and (arg("assignee") in (None, "*") or arg("assignee") in i.assignees)
                and (arg("since") is None or i.updated_at >= (arg("since") or ""))
            ]
            key = "updated_at" if arg("sort") == "updated" else "created_at"
            found.sort(key=lambda i: (getattr(i, key), i.number), reverse=arg("direction", "desc") == "desc")
            return self._paginate(call.request, [self.issue_json(i) for i in found])

        @self.route("POST", "/issues")
        def create_issue(call: Call) -> Response:
            title, body = call.field("title"), call.field("body")
            self._check_text("Issue", title, body)
            # Without triage access GitHub silently drops labels, assignees and milestone.
            triage = rank(call.user.role) >= rank("triage")
            labels = self._label_names(call.field("labels") or []) if triage else []
            logins = call.field("assignees") or ([call.field("assignee")] if call.field("assignee") else [])
            assignees = self._assignable(logins, strict=True) if triage else []
            milestone = self._milestone_number(call.field("milestone")) if triage else None
            moment = now_iso()
            issue = Issue(next(self._numbers), next(self._ids), str(title), body, call.user.login, moment, moment)
            issue.milestone = milestone
            self.issues[issue.number] = issue
            self.emit("issues", "opened", call.user, issue=self.issue_json(issue, rest=False))
            self._add_labels(issue, labels, call.user)
            self._set_assignees(issue, assignees, call.user)
            return Response(201, self.issue_json(issue))

        @self.route("GET", "/issues/{number}")
        def get_issue(call: Call) -> Response:
            return Response(200, self.issue_json(self.issue(call.params["number"])))

        @self.route("PATCH", "/issues/{number}")
        def update_issue(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            return Response(200, self.issue_json(self._update_issue(call, issue)))

        @self.route("POST", "/issues/{number}/assignees", need="triage")
        def add_assignees(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            logins = self._assignable(call.field("assignees") or [], strict=False)
            self._set_assignees(issue, list(dict.fromkeys([*issue.assignees, *logins])), call.user)
            return Response(201, self.issue_json(issue))

        @self.route("GET", "/issues/{number}/comments")
        def list_comments(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            # "List issue comments" (docs.github.com/en/rest/issues/comments): `since` "only show results that were
            # last updated after the given time", an ISO 8601 timestamp YYYY-MM-DDTHH:MM:SSZ; ascending by id.
            # Strictly after here (the stricter reading: a caller must not count on the boundary second).
            since = call.request.arg("since") or ""
            if since and not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", since):
                raise invalid("IssueComment", "since")
            found = [
                c for c in self.comments.values() if c.issue == issue.number and (not since or c.updated_at > since)
            ]
            return self._paginate(call.request, [self.comment_json(c) for c in found])

        @self.route("POST", "/issues/{number}/comments")
        def create_comment(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            body = call.field("body")
            self._check_text("IssueComment", body=body)
            if issue.locked and rank(call.user.role) < rank("write"):
                raise error(403, "Unable to create comment because issue is locked.")
            moment = now_iso()
            comment = Comment(next(self._ids), issue.number, str(body), call.user.login, moment, moment)
            self.comments[comment.id] = comment
            issue.updated_at = moment
            self.emit(
                "issue_comment",
                "created",
                call.user,
                issue=self.issue_json(issue, rest=False),
                comment=self.comment_json(comment),
            )
            return Response(201, self.comment_json(comment))

        @self.route("GET", "/issues/comments/{comment_id}")
        def get_comment(call: Call) -> Response:
            return Response(200, self.comment_json(self._comment(call.params["comment_id"])))

        @self.route("PATCH", "/issues/comments/{comment_id}")
        def update_comment(call: Call) -> Response:
            comment = self._comment(call.params["comment_id"])
            if comment.user != call.user.login:
                self.require(call, "write")
            body = call.field("body")
            self._check_text("IssueComment", body=body)
            previous = comment.body
            comment.body, comment.updated_at = str(body), now_iso()
            if previous != comment.body:
                self.emit(
                    "issue_comment",
                    "edited",
                    call.user,
                    changes={"body": {"from": previous}},
                    issue=self.issue_json(self.issues[comment.issue], rest=False),
                    comment=self.comment_json(comment),
                )
            return Response(200, self.comment_json(comment))

    def _comment(self, comment_id: str) -> Comment:
        found = self.comments.get(int(comment_id)) if comment_id.isdigit() else None
        if found is None:
            raise error(404, "Not Found")
        return found

    def _update_issue(self, call: Call, issue: Issue) -> Issue:
        """Apply a PATCH to an issue or pull request, emitting the events GitHub would."""
        own = issue.user == call.user.login
        fields = call.body if isinstance(call.body, dict) else {}
        triage = rank(call.user.role) >= rank("triage")
        title, body = call.field("title"), call.field("body")
        self._check_text("PullRequest" if issue.pull else "Issue", title, body)
        changes: JSON = {}
        if "title" in fields and title is not None and str(title) != issue.title:
            changes["title"] = {"from": issue.title}
        if "body" in fields and body != issue.body:
            changes["body"] = {"from": issue.body or ""}
        state = call.field("state")
        state_change = state is not None and state != issue.state
        if (changes or state_change) and not own:
            self.require(call, "triage")
        if changes:
            if "title" in changes:
                issue.title = str(title)
            if "body" in changes:
                issue.body = body
            issue.updated_at = now_iso()
            self._emit_issue("edited", issue, call.user, changes=changes)
        # Labels, assignees and milestone need triage; GitHub ignores them otherwise.
        if triage and isinstance(call.field("labels"), list):
            self._set_labels(issue, self._label_names(call.field("labels")), call.user)
        if triage and ("assignees" in fields or "assignee" in fields):
            logins = call.field("assignees")
            if logins is None:
                logins = [call.field("assignee")] if call.field("assignee") else []
            self._set_assignees(issue, self._assignable(logins, strict=True), call.user)
        if triage and "milestone" in fields:
            issue.milestone = self._milestone_change(call, issue)
        if state_change and state == "closed":
            self._close(issue, call.user, call.field("state_reason"))
        elif state_change and state == "open":
            self._reopen(issue, call.user)
        return issue

    def _milestone_number(self, value: Any) -> int | None:
        """Check a milestone number from a request body (None clears it)."""
        if value is None:
            return None
        number = int(value) if str(value).isdigit() else 0
        if number not in self.milestones:
            raise invalid("Issue", "milestone", value=value)
        return number

    def _milestone_change(self, call: Call, issue: Issue) -> int | None:
        number = self._milestone_number(call.field("milestone"))
        if number != issue.milestone:
            old = self.milestones.get(issue.milestone or 0)
            issue.milestone = number
            new = self.milestones.get(number or 0)
            if new:
                self._emit_issue("milestoned", issue, call.user, milestone=self.milestone_json(new))
            elif old:
                self._emit_issue("demilestoned", issue, call.user, milestone=self.milestone_json(old))
        return number

    def _label_routes(self) -> None:
        @self.route("GET", "/labels")
        def list_labels(call: Call) -> Response:
            return self._paginate(call.request, [self.label_json(label) for label in self.labels.values()])

        @self.route("POST", "/labels", need="write")
        def create_label(call: Call) -> Response:
            name = str(call.field("name"))
            if self._label(name):
                raise invalid("Label", "name", "already_exists")
            color = str(call.field("color") or "ededed").lstrip("#")
            label = self._new_label(name, color, call.field("description"))
            return Response(201, self.label_json(label))

        @self.route("GET", "/issues/{number}/labels")
        def issue_labels(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            return self._paginate(call.request, self.issue_json(issue)["labels"])

        def requested(call: Call) -> list[str]:
            body = call.body
            values = body if isinstance(body, list) else (body or {}).get("labels") or []
            return self._label_names(values)

        @self.route("POST", "/issues/{number}/labels", need="triage")
        def add_labels(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            self._add_labels(issue, requested(call), call.user)
            return Response(200, self.issue_json(issue)["labels"])

        @self.route("PUT", "/issues/{number}/labels", need="triage")
        def set_labels(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            self._set_labels(issue, requested(call), call.user)
            return Response(200, self.issue_json(issue)["labels"])

        @self.route("DELETE", "/issues/{number}/labels/{name}", need="triage")
        def remove_label(call: Call) -> Response:
            issue = self.issue(call.params["number"])
            self._remove_label(issue, call.params["name"], call.user)
            return Response(200, self.issue_json(issue)["labels"])

    def _pull_routes(self) -> None:
        @self.route("GET", "/pulls")
        def list_pulls(call: Call) -> Response:
            arg = call.request.arg
            state = arg("state", "open")
            head = arg("head")
            head_ref = head.split(":", 1)[1] if head and ":" in head else head
            head_owner = head.split(":", 1)[0] if head and ":" in head else None
            found = [
                i
                for i in self.issues.values()
                if i.pull
                and (state == "all" or i.state == state)
                and (head_ref is None or i.pull.head == head_ref)
                and (head_owner is None or head_owner.lower() == self.owner.lower())
                and (arg("base") is None or i.pull.base == arg("base"))
            ]
            found.sort(key=lambda i: i.number, reverse=arg("direction", "desc") == "desc")
            return self._paginate(call.request, [self.pull_json(i, simple=True) for i in found])

        @self.route("POST", "/pulls")
        def create_pull(call: Call) -> Response:
            settings = self.repo_settings
            if call.user.kind == "Bot" and settings is not None and not settings.can_approve_pull_request_reviews:
                # The repository setting "Allow GitHub Actions to create and approve pull requests" is off
                # (docs, "Managing GitHub Actions settings for a repository"); GITHUB_TOKEN gets this 403.
                raise error(403, "GitHub Actions is not permitted to create or approve pull requests.")
            head = str(call.field("head"))
            head_owner, _, head_ref = head.rpartition(":")
            if head_owner and head_owner.lower() != self.owner.lower():
                raise invalid("PullRequest", "head")  # forks do not exist in the sandbox
            base = str(call.field("base"))
            head_sha, base_sha = self.git.branch_sha(head_ref), self.git.branch_sha(base)
            if base_sha is None:
                raise invalid("PullRequest", "base")
            if head_sha is None:
                raise invalid("PullRequest", "head")
            title, body = call.field("title"), call.field("body")
            if title is None:
                raise invalid("PullRequest", "title", "missing_field")
            self._check_text("PullRequest", title, body)
            for other in self.issues.values():
                if other.pull and other.state == "open" and (other.pull.head, other.pull.base) == (head_ref, base):
                    raise error(
                        422,
                        "Validation Failed",
                        [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {self.owner}:{head_ref}.",
                            }
                        ],
                    )
            if self.git.is_ancestor(head_sha, base_sha):
                raise error(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {head_ref}",
                        }
                    ],
                )
            moment = now_iso()
            pull = Pull(
                head_ref,
                base,
                head_sha,
                base_sha,
                bool(call.field("draft", False)),
                bool(call.field("maintainer_can_modify", False)),
            )
            issue = Issue(
                next(self._numbers),
                next(self._ids),
                str(title),
                body,
                call.user.login,
                moment,
                moment,
                pull=pull,
            )
            self.issues[issue.number] = issue
            self.emit("pull_request", "opened", call.user, number=issue.number, pull_request=self.pull_json(issue))
            return Response(201, self.pull_json(issue))

        @self.route("GET", "/pulls/{number}")
        def get_pull(call: Call) -> Response:
            return Response(200, self.pull_json(self.issue(call.params["number"], pulls_only=True)))

        @self.route("PATCH", "/pulls/{number}")
        def update_pull(call: Call) -> Response:
            issue = self.issue(call.params["number"], pulls_only=True)
            assert issue.pull is not None
            base = call.field("base")
            if base is not None and base != issue.pull.base:
                if issue.user != call.user.login:
                    self.require(call, "write")
                if self.git.branch_sha(str(base)) is None:
                    raise invalid("PullRequest", "base")
                issue.pull.base = str(base)
                self._refresh(issue.pull)
            fields = {k: v for k, v in (call.body or {}).items() if k in ("title", "body", "state")}
            self._update_issue(Call(call.request, call.user, fields), issue)
            return Response(200, self.pull_json(issue))

        @self.route("PUT", "/pulls/{number}/merge", need="write")
        def merge_pull(call: Call) -> Response:
            issue = self.issue(call.params["number"], pulls_only=True)
            return Response(200, self._merge(call, issue))

    def _merge(self, call: Call, issue: Issue) -> JSON:
        pull = issue.pull
        assert pull is not None
        if pull.merged or issue.state != "open":
            raise error(405, "Pull Request is not mergeable")
        self._refresh(pull)
        expected = call.field("sha")
        if expected and expected != pull.head_sha:
            raise error(409, "Head branch was modified. Review and try the merge again.")
        method = call.field("merge_method") or "merge"
        if method == "rebase":
            raise error(405, "Rebase merges are not allowed on this repository.")
        title = call.field("commit_title") or (
            issue.title if method == "squash" else f"Merge pull request #{issue.number} from {self.owner}/{pull.head}"
        )
        detail = call.field("commit_message") or (issue.title if method == "merge" else "")
        message = f"{title}\n\n{detail}".rstrip()
        author = Identity(call.user.name, call.user.email)
        committer = Identity("GitHub", "noreply@github.com")
        stats = self._pull_stats(pull)
        try:
            if method == "squash":
                info = self._squash(pull, message, author, committer)
            else:
                info = self.git.merge(pull.base, pull.head_sha, message, author, committer)
        except (LookupError, RefMoved) as exc:
            raise error(409, "Base branch was modified. Review and try the merge again.") from exc
        if info is None:
            raise error(405, "Pull Request is not mergeable")
        moment = now_iso()
        pull.merged, pull.merged_at, pull.merged_by, pull.merge_commit_sha = (
            True,
            moment,
            call.user.login,
            info.sha,
        )
        pull.stats = stats
        pull.base_sha = info.parents[0]
        issue.state, issue.closed_at, issue.closed_by, issue.updated_at = (
            "closed",
            moment,
            call.user.login,
            moment,
        )
        self.emit("pull_request", "closed", call.user, number=issue.number, pull_request=self.pull_json(issue))
        self.record_push([(info.parents[0], info.sha, f"refs/heads/{pull.base}")], call.user.login)
        return {"sha": info.sha, "merged": True, "message": "Pull Request successfully merged"}

    def _squash(self, pull: Pull, message: str, author: Identity, committer: Identity) -> CommitInfo | None:
        for _ in range(8):
            base = self.git.branch_sha(pull.base)
            if base is None:
                raise LookupError(pull.base)
            tree = self.git.merge_tree(base, pull.head_sha)
            if tree is None:
                return None
            commit = self.git.commit_tree(tree, [base], message, author, committer)
            try:
                self.git.update_ref(f"refs/heads/{pull.base}", commit, base)
            except RefMoved:
                continue
            return self.git.commit_info(commit)
        raise RefMoved(pull.base)

    def _git_routes(self) -> None:
        @self.route("GET", "/git/ref/{ref:path}")
        def get_ref(call: Call) -> Response:
            ref = f"refs/{call.params['ref']}"
            sha = self.git.ref_sha(ref)
            if sha is None:
                raise error(404, "Not Found")
            return Response(200, self._ref_json(ref, sha))

        @self.route("POST", "/git/refs", need="write")
        def create_ref(call: Call) -> Response:
            ref, sha = str(call.field("ref")), str(call.field("sha"))
            if not ref.startswith("refs/") or ref.count("/") < 2:
                raise error(422, "ref must start with 'refs' and have at least two slashes.")
            if not self.git.valid_ref_name(ref):
                raise error(422, f"{ref} is not a valid ref name.")
            if self.git.resolve(sha) is None or len(sha) != 40:
                raise error(422, "Object does not exist")
            try:
                self.git.update_ref(ref, sha, None)
            except RefMoved as exc:
                raise error(422, "Reference already exists") from exc
            return Response(201, self._ref_json(ref, sha))

        @self.route("GET", "/branches/{branch:path}")
        def get_branch(call: Call) -> Response:
            name = call.params["branch"]
            sha = self.git.branch_sha(name)
            if sha is None:
                raise error(404, "Branch not found")
            url = f"{self.repo_api}/branches/{quote(name)}"
            return Response(
                200,
                {
                    "name": name,
                    "commit": self.commit_json(self.git.commit_info(sha)),
                    "_links": {"self": url, "html": f"{self.repo_html}/tree/{quote(name)}"},
                    # Classic branch protection; a ruleset shows in "Get rules for a branch" instead.
                    "protected": name in self.protection and self.protection[name].kind == "classic",
                    "protection": {
                        "enabled": name in self.protection,
                        "required_status_checks": {
                            "enforcement_level": "non_admins" if name in self.protection else "off",
                            "contexts": list(self.protection[name].required_status_checks)
                            if name in self.protection
                            else [],
                            "checks": [],
                        },
                    },
                    "protection_url": f"{url}/protection",
                },
            )

        @self.route("GET", "/commits/{ref:path}")
        def get_commit(call: Call) -> Response:
            sha = self.git.resolve(call.params["ref"])
            if sha is None:
                raise error(422, f"No commit found for SHA: {call.params['ref']}")
            return Response(200, self.commit_json(self.git.commit_info(sha)))

        @self.route("GET", "/contents")
        def get_root(call: Call) -> Response:
            return self._get_contents(call, "")

        @self.route("GET", "/contents/{path:path}")
        def get_contents(call: Call) -> Response:
            return self._get_contents(call, call.params["path"])

        @self.route("PUT", "/contents/{path:path}", need="write")
        def put_contents(call: Call) -> Response:
            return self._put_contents(call, call.params["path"].strip("/"))

    def _get_contents(self, call: Call, path: str) -> Response:
        ref = call.request.arg("ref") or self.default_branch
        sha = self.git.resolve(ref)
        if sha is None:
            raise error(404, f"No commit found for the ref {ref}")
        entry = self.git.entry(sha, path)
        if entry is None:
            raise error(404, "Not Found")
        if entry.kind == "tree":
            listing = [self._entry_json(e, ref) for e in self.git.list_dir(sha, path)]
            return Response(200, listing)
        content = self.git.read_blob(entry.sha) if entry.kind == "blob" else b""
        if "raw" in call.request.headers.get("accept", ""):
            return Response(200, content, {"Content-Type": "application/vnd.github.raw"})
        return Response(200, self._entry_json(entry, ref, with_content=content))

    def _put_contents(self, call: Call, path: str) -> Response:
        if not path or any(part in ("", ".", "..", ".git") for part in path.split("/")):
            raise invalid("Content", "path")
        try:
            content = base64.b64decode("".join(str(call.field("content")).split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise error(422, "content is not valid Base64") from exc
        branch = str(call.field("branch") or self.default_branch)
        expected = call.field("sha")
        existed: list[bool] = []

        def guard(current: TreeEntry | None) -> None:
            existed[:] = [current is not None]
            if current is not None and current.kind != "blob":
                raise invalid("Content", "path")
            if current is not None and expected is None:
                raise error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if current is not None and expected != current.sha:
                raise error(409, f"{path} does not match {expected}")
            if current is None and expected:
                raise error(409, f"{path} does not match {expected}")

        author = self._identity(call, "author") or self._identity(call, "committer")
        committer = self._identity(call, "committer") or author
        default = Identity(call.user.name, call.user.email)
        try:
            info, blob = self.git.commit_file(
                branch,
                path,
                content,
                str(call.field("message")),
                author or default,
                committer or default,
                guard,
            )
        except LookupError as exc:
            raise error(404, f"Branch {branch} not found") from exc
        except RefMoved as exc:
            raise error(409, f"{path} does not match: the branch kept moving") from exc
        self.record_push(
            [(info.parents[0] if info.parents else ZERO_SHA, info.sha, f"refs/heads/{branch}")], call.user.login
        )
        entry = TreeEntry("100644", "blob", blob, len(content), path)
        file_json = self._entry_json(entry, branch)
        return Response(
            200 if existed and existed[0] else 201,
            {"content": file_json, "commit": self._git_commit_json(info)},
        )

    def _user_routes(self) -> None:
        @self.route("GET", "/user", repo=False)
        def current_user(call: Call) -> Response:
            if call.user.kind == "Bot":
                raise error(403, "Resource not accessible by integration")
            return Response(200, self._private_user_json(call.user))

        @self.route("GET", "/users/{username}", repo=False)
        def get_user(call: Call) -> Response:
            login = call.params["username"]
            user = self.users.get(login) or (self.org if login.lower() == self.owner.lower() else None)
            if user is None:
                raise error(404, "Not Found")
            return Response(200, self._public_user_json(user))

    def _public_user_json(self, user: User) -> JSON:
        return {
            **self.user_json(user),
            "name": user.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": user.created_at,
            "updated_at": user.created_at,
        }

    def _private_user_json(self, user: User) -> JSON:
        return {
            **self._public_user_json(user),
            "email": user.email,
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": True,
            "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
        }
