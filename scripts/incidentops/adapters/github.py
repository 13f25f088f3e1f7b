"""The only module that talks to the GitHub API (through PyGithub).

Reads are retried by PyGithub (5xx, rate limits with Retry-After). Writes are not blindly retried, since a
5xx can still have created the comment: each write looks up before it creates (comments carry a hidden
marker) and reads again before it retries.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from incidentops.core.events import is_own_login
from incidentops.errors import ApiError, IncidentOpsError

if TYPE_CHECKING:  # PyGithub (and requests under it) is imported at the first call, not before
    from github import Github, GithubException
    from github.Issue import Issue as GhIssue
    from github.IssueComment import IssueComment
    from github.Repository import Repository


class _OnFirstUse(types.ModuleType):
    """Stands in for a module until its first attribute is used, then imports the real one and hands that on.

    A package's stand-in also carries stand-ins for the `submodules` named (for `from package import submodule`);
    the first use of any of them drops the package's stand-in and imports the real package."""

    def __init__(self, name: str, submodules: Iterable[str] = ()) -> None:
        super().__init__(name)
        for sub in submodules:
            setattr(self, sub, _OnFirstUse(f"{name}.{sub}"))

    def __getattr__(self, name: str) -> Any:
        top = self.__name__.partition(".")[0]
        if isinstance(sys.modules.get(top), _OnFirstUse):
            del sys.modules[top]
        return getattr(importlib.import_module(self.__name__), name)


# Two libraries PyGithub imports when it loads, for features this product never uses (it authenticates with a token
# and writes no Actions secrets). Until something uses them, they are stand-ins that import the real library at
# their first attribute:
# - PyJWT, imported by PyGithub's Auth module for GitHub App authentication (AppAuth signs with `jwt.encode`); it
#   loads cryptography: about 0.1 s of CPU in every run;
# - PyNaCl, imported by PublicKey (`from nacl import encoding, public`) to encrypt secrets: about 30 ms.
for _library, _submodules in (("jwt", ()), ("nacl", ("encoding", "public"))):
    if _library not in sys.modules:
        sys.modules[_library] = _OnFirstUse(_library, _submodules)

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"
MAX_BODY = 60_000  # GitHub rejects bodies over 65 536 characters; keep a margin
# Longest wait for a rate limit to reset, well below the shortest job timeout (remind.yml: 10 minutes).
# PyGithub's GithubRetry otherwise sleeps until x-ratelimit-reset, up to an hour for a GITHUB_TOKEN
# (1,000 requests per hour per repository), and the job is killed mid-way.
MAX_RATE_LIMIT_WAIT = 120.0


class RateLimited(ApiError):
    """GitHub's rate limit for this token is used up for longer than a job may wait."""


@dataclass(frozen=True)
class CreatedIssue:
    number: int
    url: str
    created: bool  # False when an earlier run had already created it


@dataclass(frozen=True)
class LiveIssue:
    number: int
    state: str  # open | closed
    labels: tuple[str, ...]
    closed_by: str | None
    updated_at: str
    closed_at: str = ""


@dataclass(frozen=True)
class PostedComment:
    id: int
    url: str
    created: bool  # False when an earlier run had already posted it
    deferred: bool = False  # not posted: a flood beyond this run's bounded read may hide an earlier copy


# Comments one listing reads per run at most, in pages of 100 (#15.7: a flood must not cost a run more requests
# however many comments it adds); what lies beyond is read by the next run or the sweep, from a later checkpoint.
COMMENT_PAGES_PER_RUN = 10
PAGE_SIZE = 100  # the most GitHub serves per page


def truncate_body(body: str) -> str:
    """Keep a comment under GitHub's size limit, saying so when text was cut."""
    if len(body) <= MAX_BODY:
        return body
    return body[: MAX_BODY - 80] + "\n\n… (truncated: the full text is in the incident file)"


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds from a rate-limited answer's Retry-After header, if it had one."""
    from github import GithubException

    headers = getattr(exc, "headers", None) if isinstance(exc, GithubException) else None
    value = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


BASE_ROLES = ("admin", "maintain", "write", "triage", "read", "none")


def role_from_permission(data: dict[str, Any]) -> str:
    """The base role behind a collaborator-permission answer.

    `role_name` is a base role or the name of a custom role (e.g. `sre`); `permission` folds maintain into
    write and triage into read; `user.permissions` carries the booleans of the base role a custom role is
    built on (docs, "Get repository permissions for a user"). So a base `role_name` is taken as it is, and
    anything else is mapped through the booleans, strongest first, never read as "no access".
    """
    role_name = str(data.get("role_name") or "")
    if role_name in BASE_ROLES:
        return role_name
    user = data.get("user")
    flags = user.get("permissions") if isinstance(user, dict) else None
    if isinstance(flags, dict):
        for flag, role in (("admin", "admin"), ("maintain", "maintain"), ("push", "write"), ("triage", "triage")):
            if flags.get(flag) is True:
                return role
        if flags.get("pull") is True:
            return "read"
        return "none"
    legacy = str(data.get("permission") or "none")
    return legacy if legacy in BASE_ROLES else "none"


def _describe(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = data.get("message") or str(exc.data or "")
    return f"HTTP {exc.status}: {message}".strip()


@dataclass(frozen=True)
class Person:
    login: str
    name: str
    id: int

    @property
    def email(self) -> str:
        """GitHub's noreply address for the account: commits name the person without exposing their email."""
        return f"{self.id}+{self.login}@users.noreply.github.com"


class GitHubClient:
    """Operations on one repository, as the product needs them."""

    def __init__(
        self,
        token: str,
        repository: str,
        api_url: str = DEFAULT_API_URL,
        retries: int = 3,
        secondary_rate_wait: float = 60,
        sleep: Callable[[float], None] = time.sleep,
        max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
    ) -> None:
        if not token:
            raise IncidentOpsError(
                "GITHUB_TOKEN is not set",
                hint="Pass `GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` in the step's env.",
            )
        if "/" not in repository:
            raise IncidentOpsError(f"GITHUB_REPOSITORY {repository!r} is not owner/name")
        self._token, self._api_url = token, api_url.rstrip("/")
        self._retries, self._secondary_rate_wait = retries, secondary_rate_wait
        self._github: Github | None = None
        self._building = threading.Lock()  # one thread builds the client (and imports PyGithub); others wait
        # PyGithub's connection object holds the request being sent in attributes shared by every thread that uses
        # the client, so two requests at once can send one of them twice and the other never (PyGithub/PyGithub#2052):
        # one request at a time per client. Threads still overlap GitHub with git, Cloudflare and their own work.
        self._one_at_a_time = threading.RLock()
        self.repository = repository
        self.max_rate_limit_wait = max_rate_limit_wait
        self.sleep = sleep
        self.calls = 0
        self._repo: Repository | None = None
        # Each issue's comments, read once per run and extended with what this run posts: a run looks markers up
        # many times, and a flooded issue must not cost a full listing per look-up.
        self._listings: dict[tuple[int, datetime | None], tuple[list[IssueComment], bool]] = {}
        self._bounds: dict[int, tuple[datetime | None, frozenset[str]]] = {}
        self._cut: dict[int, bool] = {}
        self.deferred: list[str] = []  # markers not posted this run: the bounded read could not rule them out
        self._ahead: dict[int, Future[LiveIssue]] = {}  # issues read ahead (`read_ahead`), until taken

    @property
    def _gh(self) -> Github:
        """The PyGithub client, built (and PyGithub imported) when the first request needs it."""
        if self._github is not None:
            return self._github
        with self._building:
            if self._github is None:
                self._github = self._build()
            return self._github

    def ready(self) -> None:
        """Wait until the PyGithub client is built (by whichever thread started building it), or build it now."""
        self._gh  # noqa: B018 (the property builds it)

    def _build(self) -> Github:
        from github import Auth, Github
        from github.GithubRetry import GithubRetry

        retries, max_rate_limit_wait = self._retries, self.max_rate_limit_wait
        retry = (
            GithubRetry(
                total=retries,
                backoff_factor=0.5,
                secondary_rate_wait=self._secondary_rate_wait,
                max_rate_limit_wait=max_rate_limit_wait,
                # Never re-send POST/PATCH: a 5xx may still have created the object.
                allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE"}),
                status_forcelist=[*range(500, 600), 429],
            )
            if retries
            else None
        )
        return Github(
            auth=Auth.Token(self._token),
            base_url=self._api_url,
            retry=retry,
            timeout=20,
            seconds_between_requests=0,
            seconds_between_writes=0,
            lazy=True,
            # The most GitHub serves per page (default 30): a flooded issue costs a third of the requests.
            per_page=PAGE_SIZE,
        )

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        from github import GithubException, RateLimitExceededException
        from requests.exceptions import RequestException, RetryError

        try:
            with self._one_at_a_time:
                self.calls += 1
                return fn()
        except RateLimitExceededException as exc:
            headers = exc.headers or {}
            remaining = headers.get("x-ratelimit-remaining") or headers.get("X-RateLimit-Remaining")
            if _retry_after(exc) is not None or str(remaining) != "0":
                # A secondary limit (GitHub docs: a Retry-After to honour, or quota left): a short wait the
                # caller's retry handles, not the token's hourly quota running out.
                raise ApiError("GitHub", f"{what} failed: {_describe(exc)}", status=exc.status) from exc
            reset = headers.get("x-ratelimit-reset") or headers.get("X-RateLimit-Reset")
            when = time.strftime("%H:%M:%S UTC", time.gmtime(int(reset))) if reset and str(reset).isdigit() else "later"
            raise RateLimited(
                "GitHub",
                f"{what} failed: the token's rate limit is used up until {when} "
                f"(more than {self.max_rate_limit_wait:.0f} s away; a job cannot wait that long)",
                status=exc.status,
                hint="Nothing was lost: re-run the job after the reset. GITHUB_TOKEN allows 1,000 requests per hour "
                "per repository; a burst of incidents can use that up.",
            ) from exc
        except GithubException as exc:
            raise ApiError("GitHub", f"{what} failed: {_describe(exc)}", status=exc.status) from exc
        except RetryError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            raise ApiError(
                "GitHub",
                f"{what} failed: gave up after retries ({reason or exc})",
                hint="GitHub may be having an outage; re-running the job is safe.",
            ) from exc
        except RequestException as exc:
            raise ApiError(
                "GitHub",
                f"{what} failed: {type(exc).__name__}",
                hint="GitHub could not be reached; re-running the job is safe.",
            ) from exc

    @property
    def repo(self) -> Repository:
        if self._repo is None:
            self._repo = self._gh.get_repo(self.repository)
        return self._repo

    def issue(self, number: int) -> GhIssue:
        """A lazy issue object: PyGithub reads it when an attribute is first used, so read attributes
        through the methods below (or `_call`), never bare, or a 410/404 escapes as GithubException."""
        return self._call(f"reading issue #{number}", lambda: self.repo.get_issue(number))

    def live_issue(self, number: int, ahead: bool = False) -> LiveIssue:
        """The issue as it is now (one GET), for runs that repair what a cancelled run would have done.

        `ahead`: the read `read_ahead` started earlier in this run, if there is one (taken once; its error, if it
        failed, is raised here); otherwise a read now.
        """
        started = self._ahead.pop(number, None) if ahead else None
        if started is not None:
            return started.result()
        issue = self.issue(number)

        def read() -> LiveIssue:
            closed_by = issue.closed_by.login if issue.state == "closed" and issue.closed_by else None
            return LiveIssue(
                number=number,
                state=str(issue.state),
                labels=tuple(label.name for label in issue.labels),
                closed_by=closed_by,
                updated_at=issue.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ") if issue.updated_at else "",
                closed_at=issue.closed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if issue.closed_at else "",
            )

        return self._call(f"reading issue #{number}", read)

    def read_ahead(self, number: int) -> None:
        """Start reading issue `number` as it is now (`live_issue`) in a thread, for a later `live_issue(number,
        ahead=True)` of this run: the request goes out beside the run's other work instead of after it."""
        if number in self._ahead:
            return
        future: Future[LiveIssue] = Future()

        def read() -> None:
            try:
                future.set_result(self.live_issue(number))
            except BaseException as exc:  # handed to whoever takes the read
                future.set_exception(exc)

        self._ahead[number] = future
        # A daemon: a read nobody takes (the run failed first) does not hold the process open.
        threading.Thread(target=read, name=f"issue-{number}", daemon=True).start()

    def issue_state(self, number: int) -> str:
        """`open` or `closed`; ApiError with status 410 (deleted) or 301/404 (transferred elsewhere) otherwise."""
        issue = self.issue(number)
        return str(self._call(f"reading issue #{number}", lambda: issue.state))

    def whoami(self) -> Person:
        """The token's owner (`GET /user`): who is acting when a person runs incidentops by hand."""

        def fetch() -> Person:
            me = self._gh.get_user()
            return Person(me.login, me.name or me.login, me.id)

        try:
            return self._call("reading the token's owner (GET /user)", fetch)
        except ApiError as err:
            if err.status in (401, 403):
                raise IncidentOpsError(
                    "cannot tell who you are: GitHub would not say whose token GITHUB_TOKEN is "
                    f"(GET /user answered {err.status})",
                    hint="By hand, set GITHUB_TOKEN to your own token (e.g. `export GITHUB_TOKEN=$(gh auth token)`); "
                    "a workflow's token belongs to no person.",
                ) from err
            raise

    def role_of(self, login: str) -> str:
        """The actor's repository role: admin, maintain, write, triage, read or none."""

        def fetch() -> Any:
            # PyGithub's get_collaborator_permission returns only the legacy value (maintain shows as
            # write); the same response also carries the fine-grained role_name, which we need.
            _, data = self.repo._requester.requestJsonAndCheck(
                "GET", f"{self.repo.url}/collaborators/{login}/permission"
            )
            return data

        try:
            data = self._call(f"checking {login}'s permission", fetch)
        except ApiError as err:
            if err.status == 404:  # not a collaborator
                return "none"
            raise
        if not isinstance(data, dict):
            return "none"
        return role_from_permission(data)

    def add_labels(self, number: int, *labels: str) -> None:
        """Add labels (adding a label twice is harmless, so this write may be repeated)."""
        issue = self.issue(number)
        self._write(
            f"labelling #{number}",
            lambda: issue.add_to_labels(*labels),
            lambda: all(self.issue_has_label(number, label) for label in labels),
        )

    def issue_has_label(self, number: int, label: str) -> bool:
        issue = self.issue(number)
        return self._call(
            f"reading labels of #{number}", lambda: any(item.name == label for item in issue.get_labels())
        )

    def find_comment(
        self, number: int, marker: str, fresh: bool = False, since: datetime | None = None
    ) -> IssueComment | None:
        """The bot's comment carrying `marker`, if an earlier run already posted it (at or after `since`, when the
        marker belongs to an event of that time: nothing answers an event before it happened).

        Only comments by the workflow's own identity count: anyone who can comment can type a hidden marker.
        """
        for comment in self.comments(number, fresh=fresh, since=since):
            if marker in (comment.body or "") and is_own_login(comment.user.login):
                return comment
        return None

    def bound_comments(self, number: int, checkpoint: datetime | None, markers: Iterable[str]) -> None:
        """Read issue `number`'s comments from `checkpoint` on (updated at or after it), at most
        COMMENT_PAGES_PER_RUN pages per listing; `markers` are the bot's markers posted before the checkpoint
        (recorded in the incident file by the sweep that moved it), so a look-up never needs the older pages."""
        bound = (checkpoint, frozenset(markers))
        if self._bounds.get(number) == bound:
            return
        self._bounds[number] = bound
        for key in [k for k in self._listings if k[0] == number]:
            del self._listings[key]

    def comments_cut(self, number: int) -> bool:
        """Whether this run's last listing of the issue stopped at the per-run bound with more comments left."""
        return self._cut.get(number, False)

    def comments(self, number: int, fresh: bool = False, since: datetime | None = None) -> list[IssueComment]:
        """The issue's comments, oldest first, read once per run unless `fresh`: all of them, or, once the run
        bounded the issue (`bound_comments`), those since its checkpoint up to the per-run bound. `since` narrows
        the read further (GitHub's `since` filters on updated_at: docs.github.com/en/rest/issues/comments,
        "List issue comments"; one second earlier, as its timestamps have one-second resolution)."""
        bound = self._bounds.get(number)
        start = self._start(number, since)
        key = (number, start)
        if not fresh and key not in self._listings:
            # A complete listing from an earlier point already holds these: filter it instead of reading again.
            for (listed, earlier), (comments, cut) in self._listings.items():
                if listed == number and not cut and start is not None and (earlier is None or earlier <= start):
                    floor = start - timedelta(seconds=1)
                    return [c for c in comments if c.updated_at is None or c.updated_at >= floor]
        if fresh or key not in self._listings:
            issue = self.issue(number)

            def read() -> tuple[list[IssueComment], bool]:
                pages = issue.get_comments(since=start - timedelta(seconds=1)) if start else issue.get_comments()
                if bound is None:
                    return list(pages), False
                got: list[IssueComment] = []
                for index in range(COMMENT_PAGES_PER_RUN):  # page by page: never one request past the bound
                    page = pages.get_page(index)
                    got += page
                    if len(page) < PAGE_SIZE:
                        return got, False
                return got, True  # a full last page: there may be more

            got, cut = self._call(f"reading comments of #{number}", read)
            self._listings[key] = (got, cut)
            self._cut[number] = cut
        return list(self._listings[key][0])

    def _start(self, number: int, since: datetime | None) -> datetime | None:
        bound = self._bounds.get(number)
        start = bound[0] if bound else None
        return since if since is not None and (start is None or since > start) else start

    def _was_cut(self, number: int, since: datetime | None) -> bool:
        listed = self._listings.get((number, self._start(number, since)))
        return bool(listed and listed[1])  # a listing filtered from a complete one is complete

    def post_comment_once(
        self, number: int, marker: str, body: str, since: datetime | None = None, new: bool = False
    ) -> PostedComment:
        """Post `body` unless a comment with `marker` exists; safe to call again for the same event.

        Once the issue is bounded, a marker the sweep recorded counts as posted; and when the bounded read stopped
        short of the newest comments without finding the marker, nothing is posted (`deferred`): a second copy
        must never be the price of a flood. `new`: the caller knows no earlier copy can exist; no look-up.
        """
        bound = self._bounds.get(number)
        if bound and marker.removeprefix("<!-- ").removesuffix(" -->") in bound[1]:
            return PostedComment(0, "", created=False)
        existing = None if new else self.find_comment(number, marker, since=since)
        if existing is not None:
            return PostedComment(existing.id, existing.html_url, created=False)
        if bound and not new and self._was_cut(number, since):
            self.deferred.append(marker)
            return PostedComment(0, "", created=False, deferred=True)
        issue = self.issue(number)
        text = truncate_body(body if marker in body else f"{marker}\n{body}")
        created = self._write(
            f"commenting on #{number}",
            lambda: issue.create_comment(text),
            lambda: self.find_comment(number, marker, fresh=True, since=since) is not None,
        )
        if created is None:  # it landed on an earlier attempt whose answer was lost
            found = self.find_comment(number, marker, since=since)
            assert found is not None
            return PostedComment(found.id, found.html_url, created=True)
        for (listed, _), (comments, _cut) in self._listings.items():
            if listed == number:
                comments.append(created)
        return PostedComment(created.id, created.html_url, created=True)

    def find_issue(self, marker: str, label: str) -> GhIssue | None:
        """The issue (open or closed) labelled `label` that the bot opened with `marker` in its body, if one exists."""

        def scan() -> GhIssue | None:
            for issue in self.repo.get_issues(state="all", labels=[label]):
                if marker in (issue.body or "") and is_own_login(issue.user.login):
                    return issue
            return None

        return self._call(f"looking up {label} issues", scan)

    def create_issue_once(
        self, marker: str, title: str, body: str, labels: list[str], assignees: list[str]
    ) -> CreatedIssue:
        """Open an issue unless one labelled `labels[0]` carries `marker`; safe to call again for the same event."""
        existing = self.find_issue(marker, labels[0])
        if existing is not None:
            return CreatedIssue(existing.number, existing.html_url, created=False)
        text = truncate_body(body if marker in body else f"{marker}\n{body}")
        created = self._write(
            f"opening issue {title[:60]!r}",
            lambda: self.repo.create_issue(title=title[:256], body=text, labels=labels, assignees=assignees),
            lambda: self.find_issue(marker, labels[0]) is not None,
        )
        if created is None:  # it landed on an earlier attempt whose answer was lost
            found = self.find_issue(marker, labels[0])
            assert found is not None
            return CreatedIssue(found.number, found.html_url, created=True)
        return CreatedIssue(created.number, created.html_url, created=True)

    def open_pull_for_branch(self, branch: str) -> Any | None:
        """The open pull request whose head is `branch` in this repository, if any."""
        owner = self.repository.split("/")[0]
        pulls = self._call(
            f"looking up pull requests from {branch}",
            lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{branch}")),
        )
        return pulls[0] if pulls else None

    def create_pull(self, title: str, body: str, head: str, base: str) -> Any:
        """Open a pull request; a lost answer is resolved by looking the branch up again."""
        created = self._write(
            f"opening a pull request from {head}",
            lambda: self.repo.create_pull(title=title, body=truncate_body(body), head=head, base=base),
            lambda: self.open_pull_for_branch(head) is not None,
        )
        return created if created is not None else self.open_pull_for_branch(head)

    def pull(self, number: int) -> Any:
        return self._call(f"reading pull request #{number}", lambda: self.repo.get_pull(number))

    def read(self, path: str) -> tuple[int, Any]:
        """GET a path below the repository (`/pages`, `/actions/secrets`, …): (status, decoded body).

        A 4xx is an answer, not an error: setup checks need to tell "not set up" (404) from "this token may
        not look" (403). Transport failures and 5xx still raise.
        """
        import json

        from github import GithubException

        def fetch() -> tuple[int, Any]:
            try:
                status, _, text = self.repo._requester.requestJson("GET", f"{self.repo.url}{path}")
            except GithubException as exc:  # the retry layer raises some 4xx (a 403 may be a rate limit)
                if exc.status >= 500:
                    raise
                return exc.status, exc.data
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            return status, data

        status, data = self._call(f"reading {path}", fetch)
        if status >= 500:
            raise ApiError("GitHub", f"reading {path} failed: {status}", status=status)
        return status, data

    def labels(self) -> dict[str, tuple[str, str]]:
        """The repository's labels: name -> (colour, description)."""
        return self._call(
            "listing labels",
            lambda: {label.name: (label.color, label.description or "") for label in self.repo.get_labels()},
        )

    def create_label(self, name: str, color: str, description: str) -> bool:
        """Create a label unless one of that name exists (looked up first); True when created."""
        if name in self.labels():
            return False
        self._write(
            f"creating label {name!r}",
            lambda: self.repo.create_label(name, color, description),
            lambda: name in self.labels(),
        )
        return True

    def _write(self, what: str, do: Callable[[], T], landed: Callable[[], bool], attempts: int = 3) -> T | None:
        """Run a non-idempotent write; after an ambiguous failure, check whether it landed before retrying."""
        for attempt in range(1, attempts + 1):
            try:
                return self._call(what, do)
            except RateLimited:
                raise
            except ApiError as err:
                retryable = err.status is None or err.status >= 500 or err.status in (403, 429)
                if not retryable or attempt == attempts:
                    raise
                # A rate limit says how long to wait; waiting less only earns another refusal.
                self.sleep(max(min(2.0**attempt, 10.0), _retry_after(err.__cause__) or 0.0))
                if landed():
                    return None
        return None
