"""The only module that talks to Cloudflare: Workers versions and deployments, Pages, zones, WAF rulesets,
and GraphQL Analytics (zone HTTP requests by status; Workers and Pages Functions invocations).

An `httpx.AsyncClient` underneath, so the rollback of several services can run concurrently.
Every response is unwrapped from Cloudflare's envelope into typed dataclasses; a failure becomes an
`ApiError` carrying Cloudflare's first error code and message. Reads (and replace-style writes) are
retried on 429, 5xx, timeouts and dropped connections with exponential back-off and full jitter,
under a total deadline; other 4xx answers are never retried. Writes that create something
(a Worker deployment, a Pages rollback, a new WAF rule) are not retried when the outcome is unknown:
see `create_worker_deployment`. Every attempt is kept in `calls` for the incident timeline.
The API token never appears in `calls`, in error messages or in `repr`. GraphQL answers 200 even when
the query failed; `errors` in the body is checked on every answer and becomes an `ApiError`.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode

from incidentops.errors import ApiError, IncidentOpsError

if TYPE_CHECKING:  # httpx is imported when a client is built: a run that touches no Cloudflare never loads it
    import httpx

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
WAF_PHASE = "http_request_firewall_custom"
SERVICE = "Cloudflare"

CODE_AUTH = 10000
CODE_MISSING_AUTH = 9106
CODE_SCRIPT_NOT_FOUND = 10007
CODE_RATE_LIMITED = 971
CODE_SECRETS_CHANGED = 10220
_ROUTE_CODES = {7000, 7003}

_HINTS = {
    CODE_AUTH: "Check that CLOUDFLARE_API_TOKEN is valid and allowed to make this call.",
    CODE_MISSING_AUTH: "Set CLOUDFLARE_API_TOKEN.",
    CODE_SCRIPT_NOT_FOUND: "Check the Worker name and CLOUDFLARE_ACCOUNT_ID.",
    CODE_SECRETS_CHANGED: (
        "A secret changed since that version was live. Check the version works with today's secrets, "
        "then repeat the rollback with force."
    ),
    CODE_RATE_LIMITED: "Cloudflare rate-limits the whole token for up to five minutes; try again later.",
}
_SECRET_PARAMS = ("token", "key", "secret", "signature", "password")


# -- results -----------------------------------------------------------------------------------------


def prepare() -> None:
    """Load what building a client needs (httpx, its transport, the TLS context) ahead of the first one."""
    from incidentops.adapters import aio_transport  # imports httpx and httpcore

    aio_transport.tls_context()


@dataclass(frozen=True)
class ApiCall:
    """One HTTP attempt, as the timeline shows it."""

    method: str
    path: str  # relative to the API base, query included (secret-looking parameters masked)
    status: int | None  # None when no answer arrived
    duration_ms: float
    attempt: int
    error: str | None = None  # the transport failure, when there was one

    def describe(self) -> str:
        """Render the call as one line, e.g. `POST /accounts/…/deployments -> 200 (31 ms)`."""
        outcome = str(self.status) if self.status is not None else (self.error or "no response")
        return f"{self.method} {self.path} -> {outcome} ({self.duration_ms:.0f} ms)"


@dataclass(frozen=True)
class WorkerVersion:
    id: str
    number: int | None
    created_on: str
    author_email: str | None
    source: str | None
    message: str | None
    tag: str | None
    triggered_by: str | None
    # Only filled by `get_worker_version` (the list does not carry resources).
    binding_names: tuple[str, ...] = ()
    compatibility_date: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> WorkerVersion:
        """Build from a versions list item or a version detail."""
        meta = data.get("metadata") or {}
        notes = data.get("annotations") or {}
        resources = data.get("resources") or {}
        bindings = resources.get("bindings") or []
        runtime = resources.get("script_runtime") or {}
        number = data.get("number")
        return cls(
            id=str(data["id"]),
            number=int(number) if isinstance(number, int | float) else None,
            created_on=str(meta.get("created_on", "")),
            author_email=meta.get("author_email"),
            source=meta.get("source"),
            message=notes.get("workers/message"),
            tag=notes.get("workers/tag"),
            triggered_by=notes.get("workers/triggered_by"),
            binding_names=tuple(str(b.get("name")) for b in bindings if isinstance(b, Mapping)),
            compatibility_date=runtime.get("compatibility_date"),
        )


@dataclass(frozen=True)
class TrafficSplit:
    version_id: str
    percentage: float


@dataclass(frozen=True)
class WorkerDeployment:
    id: str
    created_on: str
    source: str | None
    strategy: str
    author_email: str | None
    message: str | None
    triggered_by: str | None
    versions: tuple[TrafficSplit, ...]

    @property
    def full_version_id(self) -> str | None:
        """Return the version serving 100% of traffic, or None for a split deployment."""
        for split in self.versions:
            if split.percentage >= 100:
                return split.version_id
        return None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> WorkerDeployment:
        """Build from a deployments list item or a single deployment."""
        notes = data.get("annotations") or {}
        return cls(
            id=str(data["id"]),
            created_on=str(data.get("created_on", "")),
            source=data.get("source"),
            strategy=str(data.get("strategy", "percentage")),
            author_email=data.get("author_email"),
            message=notes.get("workers/message"),
            triggered_by=notes.get("workers/triggered_by"),
            versions=tuple(
                TrafficSplit(str(v["version_id"]), float(v["percentage"])) for v in data.get("versions") or []
            ),
        )


@dataclass(frozen=True)
class PagesDeployment:
    id: str
    short_id: str | None
    project_name: str | None
    environment: str
    url: str | None
    created_on: str
    stage_name: str | None
    stage_status: str | None
    branch: str | None
    commit_hash: str | None
    commit_message: str | None
    aliases: tuple[str, ...] = ()
    is_skipped: bool = False

    @property
    def is_rollback_target(self) -> bool:
        """A production build that really deployed: not skipped, its latest stage a successful `deploy`.

        Cloudflare rolls back only to successful production builds ("Rollback the production deployment to a
        previous deployment. You can only rollback to successful builds on production"); a skipped build never
        deployed, and a build whose latest stage is not `deploy` never finished (wrangler filters the same way).
        """
        return (
            self.environment == "production"
            and not self.is_skipped
            and self.stage_name == "deploy"
            and self.stage_status == "success"
        )

    @property
    def target_status(self) -> str:
        """ "success" for a rollback target, else what it is instead: "skipped", "build failure", …"""
        if self.is_rollback_target:
            return "success"
        if self.is_skipped:
            return "skipped"
        return f"{self.stage_name or 'unknown stage'} {self.stage_status or 'unknown'}"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PagesDeployment:
        """Build from a Pages deployment object."""
        stage = data.get("latest_stage") or {}
        trigger = (data.get("deployment_trigger") or {}).get("metadata") or {}
        return cls(
            id=str(data["id"]),
            short_id=data.get("short_id"),
            project_name=data.get("project_name"),
            environment=str(data.get("environment", "")),
            url=data.get("url"),
            created_on=str(data.get("created_on", "")),
            stage_name=stage.get("name"),
            stage_status=stage.get("status"),
            branch=trigger.get("branch"),
            commit_hash=trigger.get("commit_hash"),
            commit_message=trigger.get("commit_message"),
            aliases=tuple(data.get("aliases") or ()),
            is_skipped=data.get("is_skipped") is True,
        )


@dataclass(frozen=True)
class PagesProject:
    id: str
    name: str
    canonical_deployment: PagesDeployment | None
    latest_deployment: PagesDeployment | None
    # Pages Functions analytics are keyed by this internal script name, not by the project name.
    production_script_name: str | None = None
    uses_functions: bool = False
    domains: tuple[str, ...] = ()  # the hosts it answers: <name>.pages.dev and any custom domain

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PagesProject:
        """Build from a Pages project object."""
        canonical, latest = data.get("canonical_deployment"), data.get("latest_deployment")
        script = data.get("production_script_name")
        return cls(
            id=str(data.get("id", "")),
            name=str(data["name"]),
            canonical_deployment=PagesDeployment.from_api(canonical) if canonical else None,
            latest_deployment=PagesDeployment.from_api(latest) if latest else None,
            production_script_name=str(script) if script else None,
            uses_functions=data.get("uses_functions") is True,
            domains=tuple(str(d) for d in data.get("domains") or ()),
        )


@dataclass(frozen=True)
class Rule:
    id: str
    ref: str | None
    description: str
    expression: str
    action: str
    enabled: bool
    version: str | None
    action_parameters: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Rule:
        """Build from a rule inside a ruleset."""
        return cls(
            id=str(data["id"]),
            ref=data.get("ref"),
            description=str(data.get("description") or ""),
            expression=str(data.get("expression", "")),
            action=str(data.get("action", "")),
            enabled=bool(data.get("enabled", True)),
            version=data.get("version"),
            action_parameters=dict(data.get("action_parameters") or {}),
        )


@dataclass(frozen=True)
class Ruleset:
    id: str
    name: str
    kind: str
    phase: str
    version: str
    rules: tuple[Rule, ...]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Ruleset:
        """Build from a ruleset object."""
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            phase=str(data.get("phase", "")),
            version=str(data.get("version", "")),
            rules=tuple(Rule.from_api(r) for r in data.get("rules") or []),
        )

    def find(self, ref: str) -> Rule | None:
        """Return the rule with this `ref` (how our own rules are tagged), if any."""
        return next((rule for rule in self.rules if rule.ref == ref), None)


def block_rule(
    expression: str,
    *,
    description: str,
    ref: str | None = None,
    status: int = 403,
    content: str = '{"error":"temporarily disabled"}',
    content_type: str = "application/json",
    enabled: bool = True,
    custom_response: bool = True,
) -> dict[str, Any]:
    """Return the body of a WAF custom rule that answers matching requests with `status`.

    Without `custom_response` (what a Free zone allows) the edge answers Cloudflare's own 403 block page.
    """
    body: dict[str, Any] = {"description": description, "expression": expression, "action": "block", "enabled": enabled}
    if custom_response:
        body["action_parameters"] = {
            "response": {"status_code": status, "content": content, "content_type": content_type}
        }
    if ref:
        body["ref"] = ref
    return body


# Custom rules a zone may have, by plan (cloudflare-docs waf/custom-rules, availability table).
PLAN_RULE_LIMITS = {"free": 5, "pro": 20, "business": 100, "enterprise": 1000}


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    plan: str  # plan.legacy_id: free | pro | business | enterprise

    @property
    def paid(self) -> bool:
        """Custom block responses are a paid-plan feature (cloudflare-docs waf/custom-rules; docs issue #22900)."""
        return self.plan != "free"

    @property
    def rule_limit(self) -> int | None:
        """How many custom rules the plan allows, or None for a plan we do not know."""
        return PLAN_RULE_LIMITS.get(self.plan)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Zone:
        """Build from `GET /zones/{zone_id}`."""
        plan = data.get("plan") or {}
        return cls(id=str(data["id"]), name=str(data.get("name", "")), plan=str(plan.get("legacy_id") or "").lower())


@dataclass(frozen=True)
class InvocationStats:
    """Requests, errors and p99 wall time of one script over one window, summed over the returned rows."""

    script: str
    start: str
    end: str
    requests: int
    errors: int
    p99_ms: float | None  # request-weighted mean of the rows' wallTimeP99 (quantiles cannot be summed)
    rows: int

    @property
    def error_rate(self) -> float | None:
        """Return errors / requests, or None without traffic."""
        return self.errors / self.requests if self.requests else None

    @classmethod
    def from_rows(cls, script: str, start: str, end: str, rows: Sequence[Mapping[str, Any]]) -> InvocationStats:
        """Sum the groups the API returned (rows are split by every requested dimension)."""
        requests = errors = 0
        weighted = 0.0
        timed = False  # Pages Functions groups carry no quantiles: then there is no p99 to report
        for row in rows:
            sums = row.get("sum") or {}
            count = int(sums.get("requests") or 0)
            requests += count
            errors += int(sums.get("errors") or 0)
            quantiles = row.get("quantiles") or {}
            timed = timed or "wallTimeP99" in quantiles
            weighted += count * float(quantiles.get("wallTimeP99") or 0.0)
        p99 = round(weighted / requests / 1000, 1) if requests and timed else None  # microseconds -> ms
        return cls(script, start, end, requests, errors, p99, len(rows))


_INVOCATIONS_QUERY = """
query Invocations($accountTag: string, $script: string, $start: Time, $end: Time, $limit: uint64!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      DATASET(
        limit: $limit
        filter: {scriptName: $script, datetime_geq: $start, datetime_leq: $end}
        orderBy: [datetimeFiveMinutes_ASC]
      ) {
        dimensions { datetimeFiveMinutes scriptName }
        sum { requests errors }
        LATENCY
      }
    }
  }
}
"""
PAGES_PER_PAGE = 25  # the most the Pages deployments list gives per page
WORKERS_DATASET = "workersInvocationsAdaptive"
PAGES_DATASET = "pagesFunctionsInvocationsAdaptiveGroups"
# Pages Functions groups have no `quantiles` (cloudflare-docs and public clients show sum and dimensions only).
_LATENCY = {WORKERS_DATASET: "quantiles { wallTimeP99 }", PAGES_DATASET: ""}

# What customers got, by host and status code: the zone's HTTP request analytics (cloudflare-docs
# analytics/graphql-api: `httpRequestsAdaptiveGroups` reports `count`; dimensions `clientRequestHTTPHost`,
# `edgeResponseStatus`; `quantiles.edgeTimeToFirstByteMsP99`). Invocation `errors` count only thrown
# exceptions and exceeded limits, never a Worker that answers 500 (see docs/adrs/0004).
_HTTP_QUERY = """
query HttpRequests($zoneTag: string, $hosts: [string!], $start: Time, $end: Time, $limit: uint64!) {
  viewer {
    zones(filter: {zoneTag: $zoneTag}) {
      httpRequestsAdaptiveGroups(
        limit: $limit
        filter: {clientRequestHTTPHost_in: $hosts, datetime_geq: $start, datetime_lt: $end, requestSource: "eyeball"}
      ) {
        count
        dimensions { clientRequestHTTPHost edgeResponseStatus }
        quantiles { edgeTimeToFirstByteMsP99 }
      }
    }
  }
}
"""
ANALYTICS_PAGE = 10_000
_GRAPHQL_HINTS = (
    ("older than", "The window reaches further back than the dataset keeps; shorten the baseline window."),
    ("does not have access", "Give CLOUDFLARE_API_TOKEN the Account Analytics: Read permission for this account."),
    ("not authorized", "Give CLOUDFLARE_API_TOKEN the Account Analytics: Read permission for this account."),
)


# Requests on the wire right now: (what, since). A terminal's progress line reads it to say what a slow run waits on.
IN_FLIGHT: dict[int, tuple[str, float]] = {}


@dataclass(frozen=True)
class HttpStats:
    """Requests to some hosts of a zone over one window: how many, how many answered 5xx, and p99 time to first byte."""

    hosts: tuple[str, ...]
    start: str
    end: str
    requests: int
    errors: int  # answered with a 5xx status
    p99_ms: float | None  # request-weighted mean of the groups' edgeTimeToFirstByteMsP99
    by_status: Mapping[int, int] = field(default_factory=dict, hash=False)

    @property
    def error_rate(self) -> float | None:
        """Return 5xx answers / requests, or None without traffic."""
        return self.errors / self.requests if self.requests else None

    @classmethod
    def from_rows(cls, hosts: Sequence[str], start: str, end: str, rows: Sequence[Mapping[str, Any]]) -> HttpStats:
        """Sum the groups the API returned (split by host and status)."""
        by_status: dict[int, int] = {}
        weighted = 0.0
        for row in rows:
            count = int(row.get("count") or 0)
            status = int((row.get("dimensions") or {}).get("edgeResponseStatus") or 0)
            by_status[status] = by_status.get(status, 0) + count
            weighted += count * float((row.get("quantiles") or {}).get("edgeTimeToFirstByteMsP99") or 0.0)
        requests = sum(by_status.values())
        errors = sum(n for status, n in by_status.items() if 500 <= status <= 599)
        p99 = round(weighted / requests, 1) if requests else None
        return cls(tuple(hosts), start, end, requests, errors, p99, dict(sorted(by_status.items())))


class AmbiguousWriteError(ApiError):
    """A write may or may not have happened (timeout, 5xx, dropped connection): re-read before retrying."""


def resolve_account_id(configured: str | None, from_env: str | None) -> str:
    """The account to call: incidentops.yaml's, unless CLOUDFLARE_ACCOUNT_ID names another, which stops the run.

    wrangler treats CLOUDFLARE_ACCOUNT_ID as authoritative over its config file. A team that sets it expects it
    to count, and a silent call to the other account could roll back or deny the wrong services; so when both
    are set and differ, nothing is called and the error names both values (real-world-facts Cloudflare 11).
    """
    configured, from_env = (configured or "").strip(), (from_env or "").strip()
    if configured and from_env and configured.lower() != from_env.lower():
        raise IncidentOpsError(
            f"CLOUDFLARE_ACCOUNT_ID is {from_env} but incidentops.yaml names account {configured} for this "
            "environment; refusing to guess which account to change",
            hint="Make them agree: fix environments[].account_id in incidentops.yaml, or unset or correct "
            "CLOUDFLARE_ACCOUNT_ID in the workflow.",
        )
    return configured or from_env


# -- retry policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5  # seconds; the n-th back-off is drawn from [0, base * 2**(n-1)]
    max_delay: float = 20.0
    deadline: float = 60.0  # seconds for one call, all attempts and waits included
    timeout: float = 15.0  # seconds for one attempt


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a `Retry-After` header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


Safety = Literal["retry", "no-blind-retry"]


class CloudflareClient:
    """Async Cloudflare API client for one account; use as `async with CloudflareClient(...) as cf`."""

    def __init__(
        self,
        *,
        token: str,
        account_id: str,
        base_url: str = DEFAULT_BASE_URL,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:

        from incidentops.adapters import aio_transport

        if not token:
            raise IncidentOpsError("Cloudflare API token is empty.", hint="Set CLOUDFLARE_API_TOKEN.")
        self.account_id = account_id
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.calls: list[ApiCall] = []
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": "incidentops/0.1",
        }
        # Calls go straight to httpx's transport: this client follows no redirects, keeps no cookies and sends
        # its own auth header, so httpx.AsyncClient would only add its bookkeeping of those (a millisecond of CPU
        # per call, paid in every wave of a five-service rollback). Request headers and body leave in separate
        # writes; without TCP_NODELAY each POST waits for the peer's delayed ACK (~40 ms).
        self._transport: httpx.AsyncBaseTransport = transport or aio_transport.transport(
            aio_transport.tls_context(), socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )

    @classmethod
    def from_env(
        cls, account_id: str | None = None, env: Mapping[str, str] | None = None, **options: Any
    ) -> CloudflareClient:
        """Build a client from CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_BASE_URL."""
        env = os.environ if env is None else env
        token = env.get("CLOUDFLARE_API_TOKEN", "").strip()
        if not token:
            raise IncidentOpsError(
                "CLOUDFLARE_API_TOKEN is not set.",
                hint="Add it as a repository secret and pass it to the workflow step's env.",
            )
        account = resolve_account_id(account_id, env.get("CLOUDFLARE_ACCOUNT_ID", ""))
        if not account:
            raise IncidentOpsError(
                "CLOUDFLARE_ACCOUNT_ID is not set and incidentops.yaml names no Cloudflare account.",
                hint="Set environments[].account_id in incidentops.yaml or CLOUDFLARE_ACCOUNT_ID in the workflow.",
            )
        base_url = env.get("CLOUDFLARE_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
        return cls(token=token, account_id=account, base_url=base_url, **options)

    def __repr__(self) -> str:
        return f"CloudflareClient(base_url={self.base_url!r}, account_id={self.account_id!r})"

    async def __aenter__(self) -> CloudflareClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    # -- the token and the account (setup checks and discovery) ---------------------------------

    async def verify_token(self) -> dict[str, Any]:
        """`GET /user/tokens/verify`: the token's id and status (active, disabled, expired)."""
        result, _ = await self._call("GET", "/user/tokens/verify")
        return dict(result or {})

    async def token_details(self, token_id: str) -> dict[str, Any]:
        """`GET /user/tokens/{id}`: the token's policies; needs the token's own "API Tokens Read" permission."""
        result, _ = await self._call("GET", f"/user/tokens/{quote(token_id, safe='')}")
        return dict(result or {})

    async def list_worker_scripts(self) -> list[str]:
        """The names of the account's Workers."""
        result, _ = await self._call("GET", f"/accounts/{quote(self.account_id, safe='')}/workers/scripts")
        return [str(item.get("id")) for item in result or [] if isinstance(item, dict) and item.get("id")]

    async def list_pages_projects(self) -> list[dict[str, Any]]:
        """The account's Pages projects (name, domains, …), every page."""
        return await self._pages(f"/accounts/{quote(self.account_id, safe='')}/pages/projects", {})

    async def list_zones(self) -> list[dict[str, Any]]:
        """The zones of this account (id, name, plan), every page."""
        return await self._pages("/zones", {"account.id": self.account_id})

    async def list_worker_routes(self, zone_id: str) -> list[dict[str, Any]]:
        """A zone's Worker routes (`pattern` → `script`)."""
        result, _ = await self._call("GET", f"/zones/{quote(zone_id, safe='')}/workers/routes")
        return [dict(item) for item in result or [] if isinstance(item, dict)]

    async def _pages(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            result, info = await self._call("GET", path, params={**params, "page": str(page), "per_page": "50"})
            items = [dict(item) for item in result or [] if isinstance(item, dict)]
            found += items
            pages = (info or {}).get("total_pages")
            if not items or not isinstance(pages, int) or page >= pages or page >= 20:
                return found
            page += 1

    # -- Workers -------------------------------------------------------------------------------

    def _script(self, script: str) -> str:
        return f"/accounts/{quote(self.account_id, safe='')}/workers/scripts/{quote(script, safe='')}"

    async def list_worker_versions(self, script: str, *, deployable: bool = True) -> list[WorkerVersion]:
        """List a Worker's versions, newest first.

        With `deployable` (the default) Cloudflare returns only the versions a deployment may use,
        its newest 100, in one page; an older version is not in the list and cannot be deployed.
        """
        path = f"{self._script(script)}/versions"
        if deployable:
            result, _ = await self._call("GET", path, params={"deployable": "true"})
            return [WorkerVersion.from_api(item) for item in (result or {}).get("items", [])]
        versions: list[WorkerVersion] = []
        page = 1
        while True:
            result, info = await self._call("GET", path, params={"page": str(page), "per_page": "100"})
            items = (result or {}).get("items", [])
            versions += [WorkerVersion.from_api(item) for item in items]
            total = (info or {}).get("total_count")
            if not items or (isinstance(total, int) and len(versions) >= total) or total is None:
                return versions
            page += 1

    async def get_worker_version(self, script: str, version_id: str) -> WorkerVersion:
        """Fetch one version with its bindings and runtime settings."""
        result, _ = await self._call("GET", f"{self._script(script)}/versions/{quote(version_id, safe='')}")
        return WorkerVersion.from_api(result)

    async def list_worker_deployments(self, script: str) -> list[WorkerDeployment]:
        """List a Worker's deployments; the first is the one serving traffic now."""
        result, _ = await self._call("GET", f"{self._script(script)}/deployments")
        return [WorkerDeployment.from_api(item) for item in (result or {}).get("deployments", [])]

    async def get_worker_deployment(self, script: str, deployment_id: str) -> WorkerDeployment:
        """Fetch one deployment by id."""
        path = f"{self._script(script)}/deployments/{quote(deployment_id, safe='')}"
        result, _ = await self._call("GET", path)
        return WorkerDeployment.from_api(result)

    async def create_worker_deployment(
        self, script: str, version_id: str, *, message: str, force: bool = False
    ) -> WorkerDeployment:
        """Deploy one version to 100% of traffic (a rollback, when the version is older).

        Not idempotent, so not retried blindly: Cloudflare has no idempotency key, and a POST whose
        answer was lost may have deployed already, or someone may have deployed since. Only a 429
        (rejected before any work) or a connection that never opened is retried here. On a timeout,
        a 5xx or a dropped connection this raises `AmbiguousWriteError`; the caller should re-read
        `list_worker_deployments` and retry only if the first deployment is still the one it
        replaced. `force=True` overrides Cloudflare's "a secret changed since this version" block
        (code 10220) and must come from an explicit operator decision.
        """
        body = {
            "strategy": "percentage",
            "versions": [{"version_id": version_id, "percentage": 100}],
            "annotations": {"workers/message": message},
        }
        params = {"force": "true"} if force else None
        result, _ = await self._call(
            "POST", f"{self._script(script)}/deployments", params=params, json=body, safety="no-blind-retry"
        )
        return WorkerDeployment.from_api(result)

    # -- Pages -----------------------------------------------------------------------------------

    def _project(self, project: str) -> str:
        return f"/accounts/{quote(self.account_id, safe='')}/pages/projects/{quote(project, safe='')}"

    async def get_pages_project(self, project: str) -> PagesProject:
        """Fetch a Pages project with its canonical (live production) and latest deployments."""
        result, _ = await self._call("GET", self._project(project))
        return PagesProject.from_api(result)

    async def list_pages_deployments(
        self, project: str, *, env: Literal["production", "preview"] | None = None, max_items: int = 100
    ) -> list[PagesDeployment]:
        """List a project's deployments newest first, following pages up to `max_items`.

        Pages answers 400 (code 8000024) to a `per_page` above 25, so this reads 25 at a time; pass
        `env="production"` or preview builds crowd older production deployments out of the first pages.
        """
        found: list[PagesDeployment] = []
        page = 1
        while len(found) < max_items:
            params = {"page": str(page), "per_page": str(PAGES_PER_PAGE)}
            if env:
                params["env"] = env
            result, info = await self._call("GET", f"{self._project(project)}/deployments", params=params)
            items = result or []
            found += [PagesDeployment.from_api(item) for item in items]
            pages = (info or {}).get("total_pages")
            if not items or not isinstance(pages, int) or page >= pages:
                break
            page += 1
        return found[:max_items]

    async def get_pages_deployment(self, project: str, deployment_id: str) -> PagesDeployment:
        """Fetch one Pages deployment."""
        result, _ = await self._call("GET", f"{self._project(project)}/deployments/{quote(deployment_id, safe='')}")
        return PagesDeployment.from_api(result)

    async def rollback_pages_deployment(self, project: str, deployment_id: str) -> PagesDeployment:
        """Make a successful production deployment live again.

        Like `create_worker_deployment`, never retried blindly: on an unknown outcome this raises
        `AmbiguousWriteError` and the caller re-reads `get_pages_project` to see what is canonical.
        """
        path = f"{self._project(project)}/deployments/{quote(deployment_id, safe='')}/rollback"
        result, _ = await self._call("POST", path, safety="no-blind-retry")
        return PagesDeployment.from_api(result)

    # -- zones and WAF custom rules --------------------------------------------------------------

    async def get_zone(self, zone_id: str) -> Zone:
        """Fetch a zone with its plan (which decides the WAF features and the custom-rule limit)."""
        result, _ = await self._call("GET", f"/zones/{quote(zone_id, safe='')}")
        return Zone.from_api(result)

    def _rulesets(self, zone_id: str) -> str:
        return f"/zones/{quote(zone_id, safe='')}/rulesets"

    async def get_entrypoint_ruleset(self, zone_id: str, phase: str = WAF_PHASE) -> Ruleset | None:
        """Fetch the zone's entry-point ruleset of a phase, or None when the zone has none yet."""
        try:
            result, _ = await self._call("GET", f"{self._rulesets(zone_id)}/phases/{quote(phase, safe='')}/entrypoint")
        except ApiError as err:
            if err.status == 404 and err.code not in _ROUTE_CODES:
                return None
            raise
        return Ruleset.from_api(result)

    async def put_entrypoint_ruleset(
        self, zone_id: str, rules: Sequence[Mapping[str, Any]], phase: str = WAF_PHASE
    ) -> Ruleset:
        """Create or replace the entry-point ruleset; replaces every rule, so use only when there is none."""
        path = f"{self._rulesets(zone_id)}/phases/{quote(phase, safe='')}/entrypoint"
        result, _ = await self._call("PUT", path, json={"rules": [dict(r) for r in rules]})
        return Ruleset.from_api(result)

    async def add_rule(
        self, zone_id: str, ruleset_id: str, rule: Mapping[str, Any], *, position: Mapping[str, Any] | None = None
    ) -> Ruleset:
        """Add one rule (at the end, or at `position`); returns the whole updated ruleset.

        A repeated POST would add a second copy, so unknown outcomes raise `AmbiguousWriteError`:
        re-read the ruleset and look for the rule's `ref` before trying again.
        """
        body = dict(rule)
        if position is not None:
            body["position"] = dict(position)
        path = f"{self._rulesets(zone_id)}/{quote(ruleset_id, safe='')}/rules"
        result, _ = await self._call("POST", path, json=body, safety="no-blind-retry")
        return Ruleset.from_api(result)

    async def update_rule(self, zone_id: str, ruleset_id: str, rule_id: str, changes: Mapping[str, Any]) -> Ruleset:
        """Change fields of one rule (e.g. `{"enabled": False}`); returns the whole updated ruleset."""
        path = f"{self._rulesets(zone_id)}/{quote(ruleset_id, safe='')}/rules/{quote(rule_id, safe='')}"
        result, _ = await self._call("PATCH", path, json=dict(changes))
        return Ruleset.from_api(result)

    async def set_rule_enabled(self, zone_id: str, ruleset_id: str, rule: Rule, enabled: bool) -> Ruleset:
        """Turn one rule on or off, sending the whole rule (the API types a PATCH body by its `action`)."""
        body: dict[str, Any] = {
            "action": rule.action,
            "expression": rule.expression,
            "description": rule.description,
            "enabled": enabled,
        }
        if rule.ref:
            body["ref"] = rule.ref
        if rule.action_parameters:
            body["action_parameters"] = dict(rule.action_parameters)
        return await self.update_rule(zone_id, ruleset_id, rule.id, body)

    async def delete_rule(self, zone_id: str, ruleset_id: str, rule_id: str) -> Ruleset:
        """Remove one rule; returns the whole updated ruleset."""
        path = f"{self._rulesets(zone_id)}/{quote(ruleset_id, safe='')}/rules/{quote(rule_id, safe='')}"
        result, _ = await self._call("DELETE", path)
        return Ruleset.from_api(result)

    # -- GraphQL Analytics -----------------------------------------------------------------------

    async def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run a GraphQL Analytics query and return its `data`; errors inside a 200 answer raise `ApiError`."""
        body, _ = await self._call(
            "POST", "/graphql", json={"query": query, "variables": dict(variables or {})}, envelope=False
        )
        if not isinstance(body, dict):
            raise ApiError(SERVICE, "POST /graphql: the answer is not a GraphQL response object", status=200)
        errors = body.get("errors")
        if errors:
            messages = [str(e.get("message") if isinstance(e, dict) else e) for e in errors]
            text = "; ".join(messages)
            hint = next((h for needle, h in _GRAPHQL_HINTS if needle in text.lower()), None)
            raise ApiError(SERVICE, self._redact(f"GraphQL analytics query failed: {text}"), status=200, hint=hint)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(SERVICE, "GraphQL analytics query returned no data and no errors", status=200)
        return data

    async def worker_invocations(self, script: str, start: datetime, end: datetime) -> InvocationStats:
        """Requests, errors and p99 wall time of a Worker between `start` and `end` (UTC)."""
        return await self._invocations(WORKERS_DATASET, script, start, end)

    async def pages_functions_invocations(self, script_name: str, start: datetime, end: datetime) -> InvocationStats:
        """Requests and errors of a Pages project's Functions, by its `production_script_name` (no latency there)."""
        return await self._invocations(PAGES_DATASET, script_name, start, end)

    async def http_requests(self, zone_id: str, hosts: Sequence[str], start: datetime, end: datetime) -> HttpStats:
        """Requests, 5xx answers and p99 time to first byte of these hosts of a zone between `start` and `end`."""
        first, last = _rfc3339(start), _rfc3339(end)
        variables = {"zoneTag": zone_id, "hosts": list(hosts), "start": first, "end": last, "limit": ANALYTICS_PAGE}
        data = await self.graphql(_HTTP_QUERY, variables)
        zones = (data.get("viewer") or {}).get("zones") or []
        rows = (zones[0].get("httpRequestsAdaptiveGroups") if zones and isinstance(zones[0], dict) else None) or []
        return HttpStats.from_rows(hosts, first, last, rows)

    async def _invocations(self, dataset: str, script: str, start: datetime, end: datetime) -> InvocationStats:
        first, last = _rfc3339(start), _rfc3339(end)
        variables = {
            "accountTag": self.account_id,
            "script": script,
            "start": first,
            "end": last,
            "limit": ANALYTICS_PAGE,
        }
        query = _INVOCATIONS_QUERY.replace("DATASET", dataset).replace("LATENCY", _LATENCY[dataset])
        data = await self.graphql(query, variables)
        accounts = (data.get("viewer") or {}).get("accounts") or []
        rows = (accounts[0].get(dataset) if accounts and isinstance(accounts[0], dict) else None) or []
        return InvocationStats.from_rows(script, first, last, rows)

    # -- the one place requests are made ---------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        safety: Safety = "retry",
        envelope: bool = True,
    ) -> tuple[Any, dict[str, Any] | None]:
        """Make one logical call with retries; return (result, result_info) or raise `ApiError`.

        With `envelope=False` (GraphQL, which has no REST envelope) the whole decoded body is the result.
        """
        import httpx

        policy = self.retry
        shown = path + (f"?{urlencode(_masked(params))}" if params else "")
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            remaining = policy.deadline - (self._clock() - started)
            timeout = max(0.001, min(policy.timeout, remaining))
            before = self._clock()
            token = object()
            IN_FLIGHT[id(token)] = (f"{method} {self._redact(shown)}", time.monotonic())
            try:
                request = httpx.Request(
                    method,
                    self.base_url + "/" + path.lstrip("/"),
                    params=params,
                    json=json,
                    headers=self._headers,
                    extensions={"timeout": httpx.Timeout(timeout).as_dict()},
                )
                response = await self._transport.handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                IN_FLIGHT.pop(id(token), None)
                elapsed = (self._clock() - before) * 1000
                self.calls.append(ApiCall(method, shown, None, elapsed, attempt, type(exc).__name__))
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                what = self._redact(f"{method} {shown}: no answer from Cloudflare ({type(exc).__name__}: {exc})")
                if safety == "no-blind-retry" and not never_sent:
                    raise AmbiguousWriteError(
                        SERVICE,
                        what,
                        hint="The change may or may not have been made; read the current state before retrying.",
                    ) from exc
                failure = ApiError(SERVICE, what)
                wait = self._backoff(attempt)
            else:
                IN_FLIGHT.pop(id(token), None)
                elapsed = (self._clock() - before) * 1000
                self.calls.append(ApiCall(method, shown, response.status_code, elapsed, attempt))
                if response.status_code < 400:
                    return self._unwrap(method, shown, response, envelope)
                failure = self._failure(method, shown, response)
                if response.status_code == 429:
                    asked = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
                    wait = asked + self._rng() * policy.base_delay if asked is not None else self._backoff(attempt)
                elif response.status_code >= 500:
                    if safety == "no-blind-retry":
                        raise AmbiguousWriteError(
                            SERVICE,
                            failure.message.removeprefix(f"{SERVICE}: "),
                            status=failure.status,
                            code=failure.code,
                            hint="The change may or may not have been made; read the current state before retrying.",
                        )
                    wait = self._backoff(attempt)
                else:
                    raise failure
            if attempt >= policy.max_attempts:
                raise _gave_up(failure, f"gave up after {attempt} attempts")
            if self._clock() - started + wait > policy.deadline:
                raise _gave_up(
                    failure,
                    f"gave up after {attempt} attempt(s): the next try ({wait:.1f} s away) would pass "
                    f"the {policy.deadline:.0f} s deadline",
                )
            await self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads out the five concurrent rollbacks instead of retrying in lockstep.
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._rng() * ceiling

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _unwrap(
        self, method: str, shown: str, response: httpx.Response, envelope: bool = True
    ) -> tuple[Any, dict[str, Any] | None]:
        if response.status_code in (204, 205) or not response.content:
            return None, None
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(
                SERVICE, f"{method} {shown}: malformed (non-JSON) response", status=response.status_code
            ) from exc
        if not envelope:
            return body, None
        if not isinstance(body, dict) or body.get("success") is not True:
            raise self._failure(method, shown, response)
        info = body.get("result_info")
        return body.get("result"), info if isinstance(info, dict) else None

    def _failure(self, method: str, shown: str, response: httpx.Response) -> ApiError:
        code: int | None = None
        message = response.reason_phrase or "request failed"
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = first.get("code") if isinstance(first.get("code"), int) else None
            message = str(first.get("message") or message)
        elif isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        if response.status_code == 429 and code is None:
            code = CODE_RATE_LIMITED
        text = f"{method} {shown} failed: {message}" + (f" [code {code}]" if code else "")
        text += f" (HTTP {response.status_code})"
        hint = _HINTS.get(code) if code is not None else None
        return ApiError(SERVICE, self._redact(text), status=response.status_code, code=code, hint=hint)


def _gave_up(failure: ApiError, why: str) -> ApiError:
    message = f"{failure.message.removeprefix(f'{SERVICE}: ')}; {why}"
    error = ApiError(SERVICE, message, status=failure.status, code=failure.code, hint=failure.hint)
    error.__cause__ = failure
    return error


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _masked(params: Mapping[str, str]) -> dict[str, str]:
    return {k: ("***" if any(s in k.lower() for s in _SECRET_PARAMS) else v) for k, v in params.items()}
