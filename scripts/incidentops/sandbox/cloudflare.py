"""The emulated Cloudflare API: Workers versions and deployments, Pages, zone WAF rulesets.

Shapes and error codes follow the project's Cloudflare reference (the API description, the SDK and
what the real wrangler CLI was seen to send and need). Codes marked [guess] are not documented
anywhere we could read; everything else is. Every JSON body in and out is checked against the
OpenAPI subset shipped in `specs/`, and mismatches are kept in `violations` for the tests to assert on.

`live_version`, `is_good` and `blocking_rule` let the demo services follow what is live; `serving_history`
feeds the GraphQL analytics (`sandbox/analytics.py`, served at `/graphql`) on the emulator's clock.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incidentops.sandbox import world as seed_world
from incidentops.sandbox.adoption import TokenState, check_token
from incidentops.sandbox.analytics import Analytics, History, HostModel, Observed
from incidentops.sandbox.http import App, HttpError, HttpServer, Hub, Request, Response
from incidentops.sandbox.openapi import OpenApiSpec
from incidentops.sandbox.world import Quality, World, iso

SPEC_PATH = Path(__file__).parent / "specs" / "cloudflare-openapi-subset.json"

# Error codes. Documented or widely seen ones first; the rest are our own choice.
CODE_ROUTE = 7003
CODE_NO_ROUTE = 7000
CODE_METHOD = 7001  # [guess]
CODE_MISSING_AUTH = 9106
CODE_INVALID_JSON = 9207  # [guess]
CODE_AUTH = 10000
CODE_INVALID_TOKEN = 1000  # /user/tokens/verify with a bad token
CODE_SCRIPT_NOT_FOUND = 10007
CODE_RATE_LIMITED = 971
CODE_SECRETS_CHANGED = 10220
CODE_BAD_DEPLOYMENT = 10021  # [guess]
CODE_VERSION_NOT_FOUND = 10223  # [guess]
CODE_NOT_DEPLOYABLE = 10224  # [guess]
CODE_DEPLOYMENT_NOT_FOUND = 10225  # [guess]
CODE_DELETE_LIVE = 10226  # [guess]
CODE_PAGES_PROJECT_NOT_FOUND = 8000007  # [guess]
CODE_PAGES_DEPLOYMENT_NOT_FOUND = 8000009  # [guess]
CODE_PAGES_ROLLBACK = 8000019  # [guess]
CODE_RULESET_NOT_FOUND = 10003  # [guess]
CODE_RULESET_INVALID = 20021  # [guess]
CODE_NOT_ENTITLED = 20120  # [guess] the code; that Free zones are refused is documented (see PLAN_RULE_LIMITS)
CODE_RULE_QUOTA = 20121  # [guess] the code; the per-plan quota itself is documented (see PLAN_RULE_LIMITS)
# Seen from the real API by several public projects (e.g. SignalLayerLabs/Marginal#67, Aureliolo/synthorg#305):
# "Invalid list options provided. Review the `page` or `per_page` parameter." for per_page above 25.
CODE_PAGES_LIST_OPTIONS = 8000024

DEPLOYABLE_WINDOW = 100  # only the newest 100 versions of a Worker can be deployed
VERSIONS_PER_PAGE = 20  # [guess] default page size of the versions list
PAGES_PER_PAGE = 25  # default and maximum page size of the Pages deployments list (CODE_PAGES_LIST_OPTIONS)
# wrangler: "Displays the 10 most recent deployments for a worker" (workers-sdk `wrangler deployments list`,
# cloudflare-docs "Retrieve details for the 10 most recent deployments"); older history is in the versions list.
WORKER_DEPLOYMENTS_LISTED = 10
# Custom rules per zone by plan: 5 / 20 / 100 / 1,000 (cloudflare-docs waf/custom-rules, availability table).
PLAN_RULE_LIMITS = {"free": 5, "pro": 20, "business": 100, "enterprise": 1000}
# `GET /zones/{id}` → plan.name / plan.legacy_id, as the dashboard and API show them.
PLAN_NAMES = {
    "free": "Free Website",
    "pro": "Pro Website",
    "business": "Business Website",
    "enterprise": "Enterprise Website",
}
# Rule changes reach the edge in seconds, not at once (real-world-facts Cloudflare 7): each write takes effect
# after a delay drawn from these bounds (seconds). Tests set them small through `propagation=`.
DEFAULT_PROPAGATION = (2.0, 5.0)
MESSAGE_LIMIT_BYTES = 1000
WAF_PHASE = "http_request_firewall_custom"
RULE_ACTIONS = {
    "block",
    "challenge",
    "compress_response",
    "execute",
    "js_challenge",
    "log",
    "managed_challenge",
    "redirect",
    "rewrite",
    "route",
    "score",
    "serve_error",
    "set_config",
    "skip",
    "set_cache_settings",
    "log_custom_field",
    "ddos_dynamic",
    "force_connection_close",
}

RATELIMIT_HEADERS = {"Ratelimit": '"default";r=50;t=30', "Ratelimit-Policy": '"burst";q=100;w=60'}


def envelope_error(code: int, message: str) -> dict[str, Any]:
    """Return a failure envelope, e.g. for a `body` of an injected fault."""
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}


def rate_limit_fault(
    path: str = ".*", *, retry_after: str | int = 1, count: int | None = 1, method: str | None = None
) -> dict[str, Any]:
    """Return a `Hub.add_fault` spec for a Cloudflare-shaped 429 (code 971, `Retry-After`)."""
    return {
        "path": path,
        "method": method,
        "status": 429,
        "retry_after": str(retry_after),
        "count": count,
        "body": envelope_error(CODE_RATE_LIMITED, "Please wait and consider throttling your request speed"),
    }


def _fail(status: int, code: int, message: str, *more: tuple[int, str]) -> HttpError:
    body = envelope_error(code, message)
    body["errors"] += [{"code": c, "message": m} for c, m in more]
    return HttpError(status, body)


def _ok(result: Any, result_info: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return Response(200, body)


def _page_info(page: int, per_page: int, count: int, total: int) -> dict[str, Any]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total,
        "total_pages": max(1, math.ceil(total / per_page)),
    }


def _int_arg(request: Request, name: str, default: int, *, low: int = 1, high: int = 1000) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise _fail(400, CODE_BAD_DEPLOYMENT, f"{name} must be an integer") from exc
    return min(max(value, low), high)


def _truncate_bytes(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", "ignore")


# -- the spec, with the errata a faithful emulator has to work around -------------------------------


def _deref(document: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node, seen = target, seen + 1
    return node


def _read_only(document: dict[str, Any], prop: Any) -> bool:
    prop = _deref(document, prop)
    if not isinstance(prop, dict):
        return False
    if prop.get("readOnly") is True:
        return True
    return any(_read_only(document, part) for part in prop.get("allOf", []))


def _fix_failures(node: Any) -> Any:
    # The description's 4XX bodies are allOf(success body, failure body): the success half pins
    # `success: true`, the failure half `success: false`, so no body could match. Keep the failure half.
    if isinstance(node, list):
        return [_fix_failures(item) for item in node]
    if not isinstance(node, dict):
        return node
    parts = node.get("allOf")
    if isinstance(parts, list):
        failure = [p for p in parts if isinstance(p, dict) and str(p.get("$ref", "")).endswith("common-failure")]
        if failure and len(parts) > 1:
            return dict(failure[0])
    return {key: _fix_failures(value) for key, value in node.items()}


def _strip_read_only_required(document: dict[str, Any], node: Any) -> Any:
    # OpenAPI: a required readOnly property is required in responses only; jsonschema does not know that.
    if isinstance(node, list):
        return [_strip_read_only_required(document, item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strip_read_only_required(document, value) for key, value in node.items()}
    props = node.get("properties")
    if isinstance(node.get("required"), list) and isinstance(props, dict):
        out["required"] = [n for n in node["required"] if not (n in props and _read_only(document, props[n]))]
        if not out["required"]:
            del out["required"]
    return out


def _patched_document(for_requests: bool) -> dict[str, Any]:
    document = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    base = document["components"]["schemas"]["workers_deployments-base"]["properties"]["annotations"]
    # The 2024 description says 50 characters; the current API truncates messages to 1000 bytes.
    base["properties"]["workers/message"]["maxLength"] = MESSAGE_LIMIT_BYTES
    # Each rule position branch ({before}, {after}, {index}) requires nothing, so every position object
    # matched all three and failed `oneOf`; a branch is meant to carry its own key.
    position = document["components"]["requestBodies"]["rulesets_Rule"]["content"]["application/json"]["schema"]
    for branch in position["allOf"][1]["properties"]["position"]["oneOf"]:
        own = branch["allOf"][1]
        own["required"] = list(own["properties"])
    document["paths"] = _fix_failures(document["paths"])
    if for_requests:
        document["components"] = _strip_read_only_required(document, document["components"])
    return document


_specs: dict[bool, OpenApiSpec] = {}
_specs_lock = threading.Lock()


def _spec(for_requests: bool) -> OpenApiSpec:
    with _specs_lock:
        if for_requests not in _specs:
            _specs[for_requests] = OpenApiSpec(_patched_document(for_requests))
        return _specs[for_requests]


# -- a tiny reader of Cloudflare's rules language, enough for "is this request blocked?" -------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>==|!=|&&|\|\||[(){},!])|(?P<word>[\w.]+))')


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    expression = expression.strip()
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read {expression[pos:]!r}")
        out.append(match.group(0).strip())
        pos = match.end()
    return out


def matches_expression(expression: str, fields: dict[str, str]) -> bool:
    """Evaluate a rules-language expression (eq/ne/contains/in, starts_with/ends_with, lower/upper, and/or/not).

    Comparisons are case-sensitive, as on the edge: `http.request.uri.path eq "/v1/reports"` does not match
    `/V1/Reports`; `lower(http.request.uri.path)` does (cloudflare-docs rules-language, `lower()`).
    """
    tokens = _tokens(expression)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'} in {expression!r}")
        pos += 1
        return token

    def value() -> str:
        token = take()
        if token.startswith('"'):
            return str(json.loads(token))
        if token in ("lower", "upper") and peek() == "(":
            # Rules language transformation functions (cloudflare-docs ruleset-engine/rules-language/functions).
            take("(")
            inner = value()
            take(")")
            return inner.lower() if token == "lower" else inner.upper()
        if token in fields:
            return fields[token]
        raise ValueError(f"unknown field or value {token!r}")

    def atom() -> bool:
        token = peek()
        if token == "(":
            take("(")
            result = disjunction()
            take(")")
            return result
        if token in ("starts_with", "ends_with"):
            name = take()
            take("(")
            left = value()
            take(",")
            right = value()
            take(")")
            return left.startswith(right) if name == "starts_with" else left.endswith(right)
        left = value()
        op = take()
        if op in ("eq", "=="):
            return left == value()
        if op in ("ne", "!="):
            return left != value()
        if op == "contains":
            return value() in left
        if op == "in":
            take("{")
            options = []
            while peek() != "}":
                options.append(value())
            take("}")
            return left in options
        raise ValueError(f"unsupported operator {op!r}")

    def negation() -> bool:
        if peek() in ("not", "!"):
            take()
            return not negation()
        return atom()

    def conjunction() -> bool:
        result = negation()
        while peek() in ("and", "&&"):
            take()
            right = negation()
            result = result and right
        return result

    def disjunction() -> bool:
        result = conjunction()
        while peek() in ("or", "||"):
            take()
            right = conjunction()
            result = result or right
        return result

    result = disjunction()
    if peek() is not None:
        raise ValueError(f"unexpected {peek()!r} in {expression!r}")
    return result


# -- state -------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    versions: list[seed_world.WorkerVersion]  # oldest first
    deployments: list[dict[str, Any]]  # API shape, oldest first
    secret_changes: list[seed_world.SecretChange] = field(default_factory=list)
    next_deployment: int = 1


@dataclass
class _Pages:
    name: str
    id: str
    created_on: datetime
    deployments: list[seed_world.PagesDeployment]  # oldest first
    canonical: str
    history: list[tuple[datetime, str]] = field(default_factory=list)  # (since, canonical id), oldest first
    functions: bool = False  # whether the project has Pages Functions (then it has a production script)

    @property
    def script_name(self) -> str:
        return seed_world.pages_script_name(self.name)


class _CloudflareApp(App):
    """Routes plus Cloudflare's cross-cutting rules: auth, envelopes, rate-limit headers, validation."""

    def __init__(self, emulator: CloudflareEmulator) -> None:
        super().__init__()
        self.emulator = emulator

    def not_found(self, request: Request) -> Response:
        where = request.path
        return _fail(
            404,
            CODE_ROUTE,
            f"Could not route to {where}, perhaps your object identifier is invalid?",
            (CODE_NO_ROUTE, "No route for that URI"),
        ).response

    def method_not_allowed(self, request: Request) -> Response:
        return _fail(405, CODE_METHOD, f"Method {request.method} not allowed for {request.path}").response

    def dispatch(self, request: Request) -> Response:
        emulator = self.emulator
        denied = emulator.check_auth(request)
        if denied is not None:
            response = denied
        else:
            with emulator.lock:
                response = super().dispatch(request)
        response.headers = {**RATELIMIT_HEADERS, **response.headers}
        # Checked against the description once sent, off the response time; reading `violations` waits for it.
        response.after = emulator.check_later(request, response)
        return response


class CloudflareEmulator:
    """A stateful, thread-safe Cloudflare API for one account and one zone, seeded from `world`."""

    def __init__(
        self,
        api_base_url: str,
        *,
        world: World | None = None,
        clock: Callable[[], datetime] | None = None,
        propagation: tuple[float, float] = DEFAULT_PROPAGATION,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.account_id = seed_world.ACCOUNT_ID
        self.zone_id = seed_world.ZONE_ID
        self.zone_name = seed_world.ZONE_NAME
        # zone id -> {"name", "plan"}; the plan decides what rules the zone may have.
        self.zones: dict[str, dict[str, str]] = {
            zone: {"name": seed_world.ZONE_NAMES[zone], "plan": plan} for zone, plan in seed_world.ZONE_PLANS.items()
        }
        self.propagation = propagation
        self._monotonic = monotonic
        self._rng = random.Random(7)
        # What the edge enforces, per zone: (monotonic time it takes effect, rules) for every ruleset write.
        self._edge: dict[str, list[tuple[float, list[dict[str, Any]]]]] = {}
        self.token = seed_world.API_TOKEN
        # The token's permission groups and whether it was revoked (sandbox/adoption.py), set by the server.
        self.token_state: TokenState | None = None
        self._violations: list[dict[str, Any]] = []
        # Exchanges answered but not yet checked against the description (`check_later`), by sequence number.
        self._unchecked: dict[int, tuple[Request, Response]] = {}
        self._unchecked_seq = 0
        self._unchecked_lock = threading.Lock()
        self._checking = threading.Lock()  # held while checks run, so `violations` waits for one under way
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_time = datetime(2026, 11, 1, tzinfo=UTC)
        self._ids = 0
        self._quality: dict[tuple[str, str], Quality] = {}
        self.workers: dict[str, _Worker] = {}
        self.pages: dict[str, _Pages] = {}
        self.rulesets: dict[str, dict[str, Any]] = {}  # id -> ruleset, API shape
        self._seed(world or seed_world.seed())
        self.hosts: dict[str, HostModel] = {}  # what the demo services answer, registered by them
        self._observed: list[Observed] = []
        self.analytics = Analytics(
            self.account_id,
            workers=lambda: self.serving_history("worker"),
            pages=self._pages_functions_history,
            quality=self._analytics_quality,
            now=self.current_time,
            services=lambda: {**self.serving_history("worker"), **self.serving_history("pages")},
            hosts=lambda zone: [m for m in list(self.hosts.values()) if self.zone_for_host(m.host) == zone],
            observed=lambda: list(self._observed),
            zones=lambda: set(self.zones),
        )
        self.app = _CloudflareApp(self)
        self._routes()

    # -- seeding and time ------------------------------------------------------------------------

    def _seed(self, world: World) -> None:
        moments: list[datetime] = []
        for name, versions in world.worker_versions.items():
            worker = _Worker(versions=list(versions), deployments=[])
            worker.secret_changes = [c for c in world.secret_changes if c.service == name]
            for version in versions:
                self._quality[(name, version.id)] = version.quality
                moments.append(version.created_on)
            for dep in world.worker_deployments[name]:
                worker.deployments.append(
                    self._deployment_body(
                        dep.id,
                        dep.created_on,
                        "wrangler",
                        seed_world.PEOPLE[dep.author],
                        [{"version_id": v, "percentage": p} for v, p in dep.versions],
                        dep.message,
                        dep.triggered_by,
                    )
                )
                moments.append(dep.created_on)
            worker.next_deployment = len(worker.deployments) + 1
            self.workers[name] = worker
        for name, deployments in world.pages_deployments.items():
            for page in deployments:
                self._quality[(name, page.id)] = page.quality
                moments.append(page.created_on)
            self.pages[name] = _Pages(
                name=name,
                id=seed_world.stable_id(name, "project"),
                created_on=deployments[0].created_on - timedelta(days=30),
                deployments=list(deployments),
                canonical=world.live(name),
                history=[(d.created_on, d.id) for d in deployments if d.rollback_target],
                functions=name in seed_world.PAGES_WITH_FUNCTIONS,
            )
        self._last_time = max(moments)

    def now(self) -> datetime:
        """Return the emulator's clock, never earlier than anything already recorded."""
        with self.lock:
            moment = max(self._clock(), self._last_time + timedelta(milliseconds=1))
            self._last_time = moment
            return moment

    def current_time(self) -> datetime:
        """Return the emulator's clock without reserving a moment (for reads such as analytics)."""
        with self.lock:
            return max(self._clock(), self._last_time)

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """Drive the emulated world from another clock (a test's or the demo's story time)."""
        with self.lock:
            self._clock = clock

    def _new_hex(self, kind: str) -> str:
        with self.lock:
            self._ids += 1
            return uuid.uuid5(uuid.NAMESPACE_URL, f"incidentops-sandbox/{kind}/{self._ids}").hex

    # -- questions the rest of the sandbox asks --------------------------------------------------

    def live_version(self, service: str) -> str:
        """Return the Worker version serving most traffic, or the canonical Pages deployment id."""
        with self.lock:
            if service in self.workers:
                splits = self.workers[service].deployments[-1]["versions"]
                return str(max(splits, key=lambda s: s["percentage"])["version_id"])
            return self.pages[service].canonical

    def is_good(self, service: str) -> bool:
        """Tell whether everything serving traffic for `service` is a good build."""
        with self.lock:
            if service in self.workers:
                splits = self.workers[service].deployments[-1]["versions"]
                return all(self._quality[(service, s["version_id"])] == "good" for s in splits)
            return self._quality[(service, self.pages[service].canonical)] == "good"

    def serving_history(self, kind: str) -> dict[str, History]:
        """Return, per Worker (kind "worker") or Pages project ("pages"), which builds served since when."""
        with self.lock:
            if kind == "worker":
                return {
                    name: [
                        (
                            _parse_iso(dep["created_on"]),
                            [(s["version_id"], float(s["percentage"])) for s in dep["versions"]],
                        )
                        for dep in worker.deployments
                    ]
                    for name, worker in self.workers.items()
                }
            return {name: [(at, [(ident, 100.0)]) for at, ident in p.history] for name, p in self.pages.items()}

    def _pages_functions_history(self) -> dict[str, History]:
        """Pages Functions invocations exist only under the production script name, and only with Functions."""
        by_project = self.serving_history("pages")
        return {p.script_name: by_project[name] for name, p in self.pages.items() if p.functions}

    def _analytics_quality(self, name: str, ident: str) -> Quality:
        scripts = {p.script_name: name for name, p in self.pages.items()}
        return self.quality(scripts.get(name, name), ident)

    def register_host(self, model: HostModel) -> None:
        """A demo service answers this host: its traffic feeds the zone's HTTP request analytics."""
        with self.lock:
            self.hosts[model.host] = model

    def observe(self, host: str, method: str, path: str, status: int) -> None:
        """Record a request a demo service really answered (zone HTTP analytics count it)."""
        with self.lock:
            if host in self.hosts:
                self._observed.append(Observed(self.current_time(), host, method, path, status))

    def quality(self, service: str, ident: str) -> Quality:
        """Return the seeded quality of a Worker version or Pages deployment."""
        with self.lock:
            return self._quality[(service, ident)]

    # -- zones, plans and the edge -------------------------------------------------------------------

    def set_plan(self, zone_id: str, plan: str) -> None:
        """Put a zone on a plan (free, pro, business, enterprise); what the control API's plan endpoint does."""
        if plan not in PLAN_RULE_LIMITS:
            raise ValueError(f"unknown plan {plan!r}: expected one of {', '.join(PLAN_RULE_LIMITS)}")
        with self.lock:
            if zone_id not in self.zones:
                raise KeyError(zone_id)
            self.zones[zone_id]["plan"] = plan

    def set_propagation(self, low: float, high: float) -> None:
        """Rule changes take effect at the edge after a delay drawn from [low, high] seconds."""
        if not 0 <= low <= high:
            raise ValueError("propagation bounds must satisfy 0 <= low <= high")
        with self.lock:
            self.propagation = (low, high)

    def zone_for_host(self, host: str) -> str | None:
        """The zone a host name belongs to: the longest zone name it ends with."""
        host = host.lower().rstrip(".")
        with self.lock:
            found = [
                (len(z["name"]), zid)
                for zid, z in self.zones.items()
                if host == z["name"] or host.endswith("." + z["name"])
            ]
        return max(found)[1] if found else None

    def _publish(self, zone: str) -> None:
        """Record the zone's rules as the edge will enforce them once the propagation delay has passed."""
        low, high = self.propagation
        ruleset = self._entrypoint(zone, WAF_PHASE)
        rules = copy.deepcopy(ruleset["rules"]) if ruleset else []
        self._edge.setdefault(zone, []).append((self._monotonic() + self._rng.uniform(low, high), rules))

    def edge_rules(self, zone: str) -> list[dict[str, Any]]:
        """The custom rules the edge enforces right now: the newest write whose delay has passed."""
        with self.lock:
            now = self._monotonic()
            for at, rules in reversed(self._edge.get(zone, [])):
                if at <= now:
                    return copy.deepcopy(rules)
            return []

    def propagated(self, zone: str | None = None) -> bool:
        """Whether every rule change of the zone has reached the edge (for tests that need to wait)."""
        with self.lock:
            now = self._monotonic()
            return all(at <= now for at, _ in self._edge.get(zone or self.zone_id, []))

    def edge_decision(self, host: str, path: str, method: str = "GET") -> dict[str, Any] | None:
        """The rule that ends a request at the edge (block or a challenge), or None when it reaches the service.

        Custom rules run in list order and a terminating action stops evaluation; a matching `skip` rule with
        `ruleset: current` lets the request past every later custom rule (cloudflare-docs waf/custom-rules:
        "Custom rules are evaluated in order, and some actions like Block will stop the evaluation of other
        rules"; waf/custom-rules/skip: "Skip the remaining custom rules (current ruleset)"). Unreadable rules
        never match.
        """
        zone = self.zone_for_host(host)
        if zone is None:
            return None
        fields = {
            "http.host": host,
            "http.request.uri.path": path,
            "http.request.method": method.upper(),
            "http.request.full_uri": f"https://{host}{path}",
        }
        for rule in self.edge_rules(zone):
            if not rule.get("enabled", True):
                continue
            try:
                matched = matches_expression(str(rule.get("expression", "")), fields)
            except ValueError:
                continue
            if not matched:
                continue
            action = rule.get("action")
            if action == "skip" and (rule.get("action_parameters") or {}).get("ruleset") == "current":
                return None
            if action in ("block", "challenge", "js_challenge", "managed_challenge"):
                return rule
        return None

    def active_block_rules(self) -> list[dict[str, Any]]:
        """Return copies of the enabled `block` rules of the zone's custom WAF phase, in order."""
        with self.lock:
            ruleset = self._entrypoint(self.zone_id, WAF_PHASE)
            rules = ruleset["rules"] if ruleset else []
            return [copy.deepcopy(r) for r in rules if r.get("enabled", True) and r.get("action") == "block"]

    def blocking_rule(self, host: str, path: str, method: str = "GET") -> dict[str, Any] | None:
        """Return the block rule the edge applies to a request now (in rule order, after propagation), or None."""
        rule = self.edge_decision(host, path, method)
        return rule if rule is not None and rule.get("action") == "block" else None

    def add_versions(self, service: str, count: int = 1, *, quality: Quality = "good") -> list[str]:
        """Upload `count` new versions of a Worker (not deployed); return their ids, oldest first."""
        with self.lock:
            worker = self.workers[service]
            ids = []
            for _ in range(count):
                last = worker.versions[-1]
                number = last.number + 1
                version = replace(
                    last,
                    id=seed_world.stable_id(service, "version", str(number)),
                    number=number,
                    created_on=self.now(),
                    quality=quality,
                    message=f"Upload {number}",
                    tag=f"v1.{number}.0",
                    triggered_by="upload",
                )
                worker.versions.append(version)
                self._quality[(service, version.id)] = quality
                ids.append(version.id)
            return ids

    def add_pages_deployments(
        self,
        project: str,
        count: int = 1,
        *,
        environment: str = "preview",
        status: str = "success",
        skipped: bool = False,
        quality: Quality = "good",
    ) -> list[str]:
        """Add builds to a Pages project (never made canonical); return their ids, oldest first."""
        with self.lock:
            pages = self.pages[project]
            ids = []
            for _ in range(count):
                n = len(pages.deployments) + 1
                ident = seed_world.stable_id(project, "deployment", str(n))
                branch = "main" if environment == "production" else f"feat/preview-{n}"
                pages.deployments.append(
                    seed_world.PagesDeployment(
                        project=project,
                        id=ident,
                        short_id=ident[:8],
                        created_on=self.now(),
                        author="dave",
                        environment=environment,  # type: ignore[arg-type]
                        branch=branch,
                        commit_hash=uuid.uuid5(uuid.NAMESPACE_URL, f"{project}/{n}").hex[:40],
                        commit_message=f"Build {n}",
                        status=status,  # type: ignore[arg-type]
                        quality=quality,
                        skipped=skipped,
                    )
                )
                self._quality[(project, ident)] = quality
                ids.append(ident)
            return ids

    def rotate_secret(self, service: str, names: tuple[str, ...] = ("API_KEY",)) -> tuple[str, str]:
        """Change a Worker secret as `wrangler secret put` does: a new version of the live code and its deployment.

        Both are annotated `workers/triggered_by: "secret"` (real-world-facts Cloudflare 10; wrangler labels the
        source of such a deployment "Secret Change"). Return (version id, deployment id).
        """
        with self.lock:
            worker = self.workers[service]
            live_id = self.live_version(service)
            live = next(v for v in worker.versions if v.id == live_id)
            at = self.now()
            number = worker.versions[-1].number + 1
            version = replace(
                live,
                id=seed_world.stable_id(service, "version", str(number)),
                number=number,
                created_on=at,
                message="Secret change",
                triggered_by="secret",
            )
            worker.versions.append(version)
            self._quality[(service, version.id)] = self._quality[(service, live_id)]
            worker.secret_changes.append(seed_world.SecretChange(service, at, names))
            deployment = self._deployment_body(
                seed_world.stable_id(service, "deployment", str(worker.next_deployment)),
                at,
                "api",
                seed_world.USER_EMAIL,
                [{"version_id": version.id, "percentage": 100.0}],
                "Secret Change",
                "secret",
            )
            worker.next_deployment += 1
            worker.deployments.append(deployment)
            return version.id, str(deployment["id"])

    def deploy_versions(self, service: str, version_ids: list[str]) -> None:
        """Deploy each version at 100% in turn, as uploads (to build up a long deployment history)."""
        with self.lock:
            worker = self.workers[service]
            for vid in version_ids:
                worker.deployments.append(
                    self._deployment_body(
                        seed_world.stable_id(service, "deployment", str(worker.next_deployment)),
                        self.now(),
                        "wrangler",
                        seed_world.USER_EMAIL,
                        [{"version_id": vid, "percentage": 100.0}],
                        None,
                        "upload",
                    )
                )
                worker.next_deployment += 1

    # -- cross-cutting ---------------------------------------------------------------------------

    def check_auth(self, request: Request) -> Response | None:
        """Answer 400/9106 without credentials and 403/10000 (401/1000 on verify) for a wrong token."""
        token = request.bearer
        if token is None and not request.headers.get("x-auth-key"):
            return _fail(400, CODE_MISSING_AUTH, "Missing X-Auth-Key, X-Auth-Email or Authorization headers").response
        token_state = self.token_state
        if token == self.token and not (token_state is not None and token_state.revoked):
            if token_state is not None and (refused := check_token(token_state, request)) is not None:
                return refused.response
            return None
        if request.path.rstrip("/") == "/user/tokens/verify":
            return _fail(401, CODE_INVALID_TOKEN, "Invalid API Token").response
        return _fail(403, CODE_AUTH, "Authentication error").response

    @property
    def violations(self) -> list[dict[str, Any]]:
        """Every mismatch with the API description so far: runs the checks of answers not checked yet first."""
        with self._checking:
            with self._unchecked_lock:
                pending = list(self._unchecked.values())
                self._unchecked.clear()
            for request, response in pending:
                self._check_sent(request, response, response.encode())
        return self._violations

    def check_later(self, request: Request, response: Response) -> Callable[[bytes], None]:
        """Queue the check of an answer; the returned hook runs it with the bytes sent (the server calls it once
        they are sent). Whichever comes first, the hook or a read of `violations`, runs the check, once."""
        with self._unchecked_lock:
            self._unchecked_seq += 1
            key = self._unchecked_seq
            self._unchecked[key] = (request, response)

        def check(payload: bytes) -> None:
            with self._checking:
                with self._unchecked_lock:
                    job = self._unchecked.pop(key, None)
                if job is not None:
                    self._check_sent(request, response, payload)

        return check

    def _check_sent(self, request: Request, response: Response, payload: bytes) -> None:
        # The body as it went out: a handler's dict may share state that changes after the answer.
        try:
            body = json.loads(payload) if isinstance(response.body, dict) and payload else response.body
            self.validate(request, Response(response.status, body))
        except Exception as exc:  # a bug in the checker must show, not pass for a clean exchange
            self._record(request, "response", [f"the check itself failed: {type(exc).__name__}: {exc}"])

    def validate(self, request: Request, response: Response) -> None:
        """Check the request and response bodies against the API description; record mismatches."""
        path, method = request.path, request.method
        spec = _spec(False)
        if spec.match(method, path) is None:
            return  # routes outside the description (e.g. /user, /memberships) are not checked
        body: Any = None
        request_errors: list[str] = []
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                request_errors.append(f"{method} {path}: request body is not JSON")
        if not request_errors:
            request_errors = _spec(True).validate_request(method, path, body)
        self._record(request, "request", request_errors)
        # A method the description does not know is a request problem; there is no response schema to use.
        described = any(spec.documents_status(method, path, status) for status in (200, response.status))
        if described and isinstance(response.body, dict):
            self._record(request, "response", spec.validate_response(method, path, response.status, response.body))

    def _record(self, request: Request, kind: str, errors: list[str]) -> None:
        if errors:
            with self.lock:
                entry = {"method": request.method, "path": request.path, "kind": kind, "errors": errors}
                self._violations.append(entry)

    # -- helpers shared by handlers ----------------------------------------------------------------

    def _account(self, request: Request) -> None:
        if request.params.get("account_id") != self.account_id:
            raise _fail(
                404,
                CODE_ROUTE,
                f"Could not route to {request.path}, perhaps your object identifier is invalid?",
                (CODE_NO_ROUTE, "No route for that URI"),
            )

    def _zone(self, request: Request) -> str:
        zone = request.params.get("zone_id", "")
        if zone not in self.zones:
            raise _fail(
                404,
                CODE_ROUTE,
                f"Could not route to {request.path}, perhaps your object identifier is invalid?",
                (CODE_NO_ROUTE, "No route for that URI"),
            )
        return zone

    def _worker(self, request: Request) -> tuple[str, _Worker]:
        self._account(request)
        name = request.params["script"]
        worker = self.workers.get(name)
        if worker is None:
            raise _fail(404, CODE_SCRIPT_NOT_FOUND, "This Worker does not exist on your account.")
        return name, worker

    def _project(self, request: Request) -> _Pages:
        self._account(request)
        project = self.pages.get(request.params["project"])
        if project is None:
            raise _fail(
                404,
                CODE_PAGES_PROJECT_NOT_FOUND,
                "Project not found. The specified project name does not match any of your existing projects.",
            )
        return project

    @staticmethod
    def _json(request: Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise _fail(400, CODE_INVALID_JSON, "Request body is invalid JSON") from exc

    # -- Workers -----------------------------------------------------------------------------------

    def _version_item(self, service: str, version: seed_world.WorkerVersion) -> dict[str, Any]:
        email = seed_world.PEOPLE.get(version.author, seed_world.USER_EMAIL)
        annotations = {"workers/triggered_by": version.triggered_by, "workers/tag": version.tag}
        if version.triggered_by == "upload":
            annotations["workers/message"] = version.message
        return {
            "id": version.id,
            "number": version.number,
            "metadata": {
                "author_email": email,
                "author_id": uuid.uuid5(uuid.NAMESPACE_DNS, email).hex,
                "created_on": iso(version.created_on),
                "modified_on": iso(version.created_on),
                "source": "wrangler",
                "hasPreview": False,
            },
            "annotations": annotations,
        }

    def _version_detail(self, service: str, version: seed_world.WorkerVersion) -> dict[str, Any]:
        bindings: list[dict[str, Any]] = [{"type": "plain_text", "name": "ENVIRONMENT", "text": "production"}]
        worker = self.workers[service]
        for change in worker.secret_changes:
            bindings += [{"type": "secret_text", "name": name} for name in change.names]
        if service == "queue-consumer":
            bindings.append({"type": "queue", "name": "EVENTS", "queue_name": "tenant-events"})
        item = self._version_item(service, version)
        item["resources"] = {
            "bindings": bindings,
            "script": {
                "etag": uuid.uuid5(uuid.NAMESPACE_URL, f"etag/{version.id}").hex * 2,
                "handlers": list(version.handlers),
                "last_deployed_from": "wrangler",
            },
            "script_runtime": {
                "compatibility_date": "2026-10-01",
                "compatibility_flags": ["nodejs_compat"],
                "usage_model": "standard",
                "limits": {"cpu_ms": 50},
            },
        }
        item["startup_time_ms"] = 12
        return item

    @staticmethod
    def _deployment_body(
        ident: str,
        created: datetime,
        source: str,
        email: str,
        versions: list[dict[str, Any]],
        message: str | None,
        triggered_by: str,
    ) -> dict[str, Any]:
        annotations = {"workers/triggered_by": triggered_by}
        if message:
            annotations["workers/message"] = message
        return {
            "id": ident,
            "created_on": iso(created),
            "source": source,
            "strategy": "percentage",
            "author_email": email,
            "annotations": annotations,
            "versions": versions,
        }

    def _find_version(self, service: str, worker: _Worker, version_id: str) -> seed_world.WorkerVersion:
        for version in worker.versions:
            if version.id == version_id:
                return version
        raise _fail(404, CODE_VERSION_NOT_FOUND, f"Version {version_id} of {service} was not found.")

    def _create_deployment(self, request: Request) -> Response:
        service, worker = self._worker(request)
        body = self._json(request)
        if not isinstance(body, dict):
            raise _fail(400, CODE_BAD_DEPLOYMENT, "The request body must be a JSON object.")
        if body.get("strategy") != "percentage":
            raise _fail(400, CODE_BAD_DEPLOYMENT, "strategy must be 'percentage'.")
        splits = body.get("versions")
        if not isinstance(splits, list) or not 1 <= len(splits) <= 2:
            raise _fail(400, CODE_BAD_DEPLOYMENT, "A deployment must have one or two versions.")
        clean: list[dict[str, Any]] = []
        for split in splits:
            pct = split.get("percentage") if isinstance(split, dict) else None
            vid = split.get("version_id") if isinstance(split, dict) else None
            if not isinstance(vid, str) or isinstance(pct, bool) or not isinstance(pct, int | float):
                raise _fail(400, CODE_BAD_DEPLOYMENT, "Each version needs a version_id and a percentage.")
            if not 0.01 <= pct <= 100:
                raise _fail(400, CODE_BAD_DEPLOYMENT, "percentage must be between 0.01 and 100.")
            clean.append({"version_id": vid, "percentage": pct})
        if len({s["version_id"] for s in clean}) != len(clean):
            raise _fail(400, CODE_BAD_DEPLOYMENT, "A version may appear only once in a deployment.")
        if abs(sum(s["percentage"] for s in clean) - 100) > 1e-9:
            raise _fail(400, CODE_BAD_DEPLOYMENT, "Version percentages must add up to 100.")
        deployable = {v.id for v in worker.versions[-DEPLOYABLE_WINDOW:]}
        targets = [self._find_version(service, worker, s["version_id"]) for s in clean]
        for target in targets:
            if target.id not in deployable:
                raise _fail(
                    400,
                    CODE_NOT_DEPLOYABLE,
                    f"Version {target.id} is not deployable: only the "
                    f"{DEPLOYABLE_WINDOW} most recent versions can be deployed.",
                )
        force = (request.arg("force") or "").lower() == "true"
        live_ids = {s["version_id"] for s in worker.deployments[-1]["versions"]}
        if not force and worker.secret_changes:
            last_change = worker.secret_changes[-1]
            stale = [t for t in targets if t.id not in live_ids and t.created_on < last_change.at]
            if stale:
                raise _fail(
                    400,
                    CODE_SECRETS_CHANGED,
                    "A secret has changed since the version you are "
                    "deploying was active. Add ?force=true to deploy it anyway. The following secrets "
                    f"have changed: {', '.join(last_change.names)}",
                )
        annotations = body.get("annotations")
        message = annotations.get("workers/message") if isinstance(annotations, dict) else None
        message = _truncate_bytes(message, MESSAGE_LIMIT_BYTES) if isinstance(message, str) else None
        newest_live = max(self._find_version(service, worker, v).created_on for v in live_ids)
        rollback = all(t.created_on < newest_live for t in targets)
        agent = request.headers.get("user-agent", "")
        deployment = self._deployment_body(
            seed_world.stable_id(service, "deployment", str(worker.next_deployment)),
            self.now(),
            "wrangler" if agent.startswith("wrangler") else "api",
            seed_world.USER_EMAIL,
            clean,
            message,
            "rollback" if rollback else "promotion",
        )
        worker.next_deployment += 1
        worker.deployments.append(deployment)
        return _ok(copy.deepcopy(deployment))

    # -- Pages -------------------------------------------------------------------------------------

    def _pages_body(self, project: _Pages, dep: seed_world.PagesDeployment) -> dict[str, Any]:
        started = dep.created_on
        ended = started + timedelta(minutes=2)
        # Stage names and statuses follow the Pages deployment object (cloudflare-typescript
        # `pages/projects/deployments`: name queued|initialize|clone_repo|build|deploy, status
        # success|idle|active|failure|canceled). A skipped build never leaves the queue [guess: its exact stages].
        names = ["queued", "initialize", "clone_repo", "build", "deploy"]
        stages = []
        failed = dep.status == "failure"
        for i, name in enumerate(names):
            if (failed and name == "deploy") or (dep.skipped and name != "queued"):
                stages.append({"name": name, "started_on": None, "ended_on": None, "status": "idle"})
                continue
            status = "failure" if failed and name == "build" else "success"
            at = started + timedelta(seconds=20 * i)
            stages.append(
                {
                    "name": name,
                    "started_on": iso(at),
                    "ended_on": iso(at + timedelta(seconds=20)),
                    "status": status,
                }
            )
        latest = stages[0] if dep.skipped else stages[3] if failed else stages[4]
        base = f"{project.name}.pages.dev"
        if dep.environment == "production":
            aliases = [f"https://{base}"] if dep.id == project.canonical else None
        else:
            aliases = [f"https://{re.sub(r'[^a-z0-9]+', '-', dep.branch.lower())}.{base}"]
        return {
            "id": dep.id,
            "short_id": dep.short_id,
            "project_id": project.id,
            "project_name": project.name,
            "environment": dep.environment,
            "url": f"https://{dep.short_id}.{base}",
            "created_on": iso(dep.created_on),
            "modified_on": iso(ended),
            "aliases": aliases,
            "latest_stage": latest,
            "stages": stages,
            "deployment_trigger": {
                "type": "github:push",
                "metadata": {
                    "branch": dep.branch,
                    "commit_hash": dep.commit_hash,
                    "commit_message": dep.commit_message,
                    "commit_dirty": False,
                },
            },
            "build_config": self._build_config(),
            "env_vars": {},
            "source": {
                "type": "github",
                "config": {"owner": "acme", "repo_name": project.name, "production_branch": "main"},
            },
            "is_skipped": dep.skipped,
            "uses_functions": project.functions,
        }

    @staticmethod
    def _build_config() -> dict[str, Any]:
        return {
            "build_caching": True,
            "build_command": "npm run build",
            "destination_dir": "dist",
            "root_dir": "",
            "web_analytics_tag": None,
            "web_analytics_token": None,
        }

    def _pages_deployment(self, project: _Pages, ident: str) -> seed_world.PagesDeployment:
        for dep in project.deployments:
            if dep.id == ident:
                return dep
        raise _fail(404, CODE_PAGES_DEPLOYMENT_NOT_FOUND, f"Deployment {ident} was not found.")

    # -- rulesets ----------------------------------------------------------------------------------

    def _entrypoint(self, zone: str, phase: str) -> dict[str, Any] | None:
        for ruleset in self.rulesets.values():
            if ruleset["_zone"] == zone and ruleset["phase"] == phase and ruleset["kind"] == "zone":
                return ruleset
        return None

    @staticmethod
    def _public(ruleset: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in ruleset.items() if not k.startswith("_")}

    def _rule(
        self, raw: Any, pointer: str, version: str, now: str, old: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _ruleset_error(f"{pointer}: a rule must be an object", pointer)
        merged = {
            **(old or {}),
            **{k: v for k, v in raw.items() if k not in ("id", "version", "last_updated", "position", "categories")},
        }
        action, expression = merged.get("action"), merged.get("expression")
        if action not in RULE_ACTIONS:
            raise _ruleset_error(f"unknown action {action!r}", f"{pointer}/action")
        if not isinstance(expression, str) or not expression.strip():
            raise _ruleset_error("a rule needs a non-empty expression", f"{pointer}/expression")
        if action == "skip" and not merged.get("action_parameters"):
            # A skip rule says what it skips: {"ruleset": "current"}, "phases" or "products" (waf/custom-rules/skip).
            raise _ruleset_error("a skip rule needs action_parameters", f"{pointer}/action_parameters")
        if action == "block" and "action_parameters" in merged:
            response = (merged.get("action_parameters") or {}).get("response")
            if response is not None:
                status = response.get("status_code") if isinstance(response, dict) else None
                if not isinstance(status, int) or not 400 <= status <= 499:
                    raise _ruleset_error(
                        "block response status_code must be between 400 and 499",
                        f"{pointer}/action_parameters/response/status_code",
                    )
                if not response.get("content") or not response.get("content_type"):
                    raise _ruleset_error(
                        "block response needs content and content_type",
                        f"{pointer}/action_parameters/response",
                    )
                if len(str(response["content"]).encode()) > 2048:
                    raise _ruleset_error(
                        "block response content is limited to 2 KB",
                        f"{pointer}/action_parameters/response/content",
                    )
        ident = old["id"] if old else self._new_hex("rule")
        rule = {
            "id": ident,
            "version": version,
            "action": action,
            "expression": expression,
            "description": merged.get("description", ""),
            "last_updated": now,
            "ref": merged.get("ref") or ident,
            "enabled": merged.get("enabled", True),
        }
        for extra in ("action_parameters", "logging"):
            if extra in merged:
                rule[extra] = merged[extra]
        return rule

    def _check_plan(self, zone: str, rules: list[dict[str, Any]]) -> None:
        """Refuse what the zone's plan does not allow: too many custom rules, or a custom block response on Free."""
        plan = self.zones[zone]["plan"]
        limit = PLAN_RULE_LIMITS[plan]
        if len(rules) > limit:
            raise _fail(
                400,
                CODE_RULE_QUOTA,
                f"exceeded the maximum number of rules in phase {WAF_PHASE}: {len(rules)} rules, "
                f"the {PLAN_NAMES[plan]} plan allows {limit}",
            )
        if plan != "free":
            return
        # "Custom block responses are only available on paid plans" (cloudflare-docs waf/custom-rules,
        # cloudflare-docs issue #22900 and PR #22902); on Free a block answers Cloudflare's own block page.
        for i, rule in enumerate(rules):
            if rule.get("action") == "block" and (rule.get("action_parameters") or {}).get("response"):
                raise _ruleset_error(
                    "not entitled: a custom response for the block action requires a paid plan "
                    f"(this zone is on {PLAN_NAMES[plan]})",
                    f"/rules/{i}/action_parameters/response",
                )

    def _bump(self, ruleset: dict[str, Any]) -> tuple[str, str]:
        version = str(int(ruleset["version"]) + 1)
        now = iso(self.now())
        ruleset["version"], ruleset["last_updated"] = version, now
        return version, now

    def _ruleset(self, request: Request) -> dict[str, Any]:
        zone = self._zone(request)
        ruleset = self.rulesets.get(request.params["ruleset_id"])
        if ruleset is None or ruleset["_zone"] != zone:
            raise _fail(404, CODE_RULESET_NOT_FOUND, "could not find ruleset")
        return ruleset

    @staticmethod
    def _place(rules: list[dict[str, Any]], rule: dict[str, Any], position: Any) -> None:
        if position is None:
            rules.append(rule)
            return
        if not isinstance(position, dict) or len(position) != 1:
            raise _ruleset_error("position must have exactly one of before, after or index", "/position")
        ((key, value),) = position.items()
        ids = [r["id"] for r in rules]
        if key == "index" and isinstance(value, int) and value >= 1:
            rules.insert(min(value - 1, len(rules)), rule)
        elif key in ("before", "after") and value == "":
            rules.insert(0 if key == "before" else len(rules), rule)
        elif key in ("before", "after") and value in ids:
            at = ids.index(value)
            rules.insert(at if key == "before" else at + 1, rule)
        else:
            raise _ruleset_error(f"invalid position {position!r}", "/position")

    # -- routes ------------------------------------------------------------------------------------

    def _routes(self) -> None:
        app = self.app
        prefix = "/accounts/{account_id}/workers/scripts/{script}"

        @app.route("GET", "/user/tokens/verify")
        def verify_token(request: Request) -> Response:
            return _ok({"id": seed_world.TOKEN_ID, "status": "active"})

        @app.route("GET", "/user")
        def user(request: Request) -> Response:
            return _ok(
                {
                    "id": seed_world.USER_ID,
                    "email": seed_world.USER_EMAIL,
                    "username": "deploy-bot",
                    "first_name": None,
                    "last_name": None,
                    "two_factor_authentication_enabled": True,
                    "suspended": False,
                }
            )

        def account() -> dict[str, Any]:
            return {
                "id": self.account_id,
                "name": seed_world.ACCOUNT_NAME,
                "type": "standard",
                "settings": {"enforce_twofactor": False},
                "created_on": "2025-01-01T00:00:00.000000Z",
            }

        @app.route("GET", "/accounts")
        def accounts(request: Request) -> Response:
            return _ok([account()], _page_info(1, 20, 1, 1))

        @app.route("GET", "/memberships")
        def memberships(request: Request) -> Response:
            member = {
                "id": seed_world.stable_id("membership"),
                "status": "accepted",
                "account": account(),
                "roles": ["Administrator"],
            }
            return _ok([member], _page_info(1, 20, 1, 1))

        @app.route("GET", f"{prefix}/versions")
        def list_versions(request: Request) -> Response:
            service, worker = self._worker(request)
            newest_first = list(reversed(worker.versions))
            if (request.arg("deployable") or "").lower() == "true":
                # Deployable versions ignore pagination: the window itself is the page.
                window = newest_first[:DEPLOYABLE_WINDOW]
                items = [self._version_item(service, v) for v in window]
                return _ok({"items": items}, _page_info(1, DEPLOYABLE_WINDOW, len(items), len(items)))
            page = _int_arg(request, "page", 1)
            per_page = _int_arg(request, "per_page", VERSIONS_PER_PAGE, high=100)
            chunk = newest_first[(page - 1) * per_page : page * per_page]
            items = [self._version_item(service, v) for v in chunk]
            return _ok({"items": items}, _page_info(page, per_page, len(items), len(newest_first)))

        @app.route("GET", f"{prefix}/versions/{{version_id}}")
        def get_version(request: Request) -> Response:
            service, worker = self._worker(request)
            version = self._find_version(service, worker, request.params["version_id"])
            return _ok(self._version_detail(service, version))

        @app.route("GET", f"{prefix}/deployments")
        def list_deployments(request: Request) -> Response:
            _, worker = self._worker(request)
            newest = list(reversed(worker.deployments))[:WORKER_DEPLOYMENTS_LISTED]
            return _ok({"deployments": copy.deepcopy(newest)})

        @app.route("POST", f"{prefix}/deployments")
        def create_deployment(request: Request) -> Response:
            return self._create_deployment(request)

        @app.route("GET", f"{prefix}/deployments/{{deployment_id}}")
        def get_deployment(request: Request) -> Response:
            _, worker = self._worker(request)
            for dep in worker.deployments:
                if dep["id"] == request.params["deployment_id"]:
                    return _ok(copy.deepcopy(dep))
            raise _fail(404, CODE_DEPLOYMENT_NOT_FOUND, "Deployment not found.")

        @app.route("DELETE", f"{prefix}/deployments/{{deployment_id}}")
        def delete_deployment(request: Request) -> Response:
            _, worker = self._worker(request)
            ids = [dep["id"] for dep in worker.deployments]
            wanted = request.params["deployment_id"]
            if wanted not in ids:
                raise _fail(404, CODE_DEPLOYMENT_NOT_FOUND, "Deployment not found.")
            if wanted == ids[-1]:
                raise _fail(
                    400,
                    CODE_DELETE_LIVE,
                    "The latest deployment, which is actively serving traffic, cannot be deleted.",
                )
            worker.deployments.pop(ids.index(wanted))
            return Response(200, {"success": True, "errors": [], "messages": []})

        @app.route("GET", "/accounts/{account_id}/workers/services/{script}")
        def get_service(request: Request) -> Response:
            name, _ = self._worker(request)
            tag = uuid.uuid5(uuid.NAMESPACE_URL, f"script/{name}").hex
            return _ok(
                {
                    "id": name,
                    "default_environment": {"environment": "production", "script": {"id": name, "tag": tag}},
                }
            )

        pages = "/accounts/{account_id}/pages/projects/{project}"

        @app.route("GET", pages)
        def get_project(request: Request) -> Response:
            project = self._project(request)
            canonical = self._pages_deployment(project, project.canonical)
            latest = project.deployments[-1]
            return _ok(
                {
                    "id": project.id,
                    "name": project.name,
                    "subdomain": f"{project.name}.pages.dev",
                    # Custom domains too, as in the list (API "Get project": the project's domains).
                    "domains": [*seed_world.PAGES_DOMAINS.get(project.name, ()), f"{project.name}.pages.dev"],
                    "production_branch": "main",
                    "created_on": iso(project.created_on),
                    "build_config": self._build_config(),
                    "source": {
                        "type": "github",
                        "config": {"owner": "acme", "repo_name": project.name, "production_branch": "main"},
                    },
                    "canonical_deployment": self._pages_body(project, canonical),
                    "latest_deployment": self._pages_body(project, latest),
                    # Pages Functions analytics are keyed by these internal script names, not the project name
                    # (cloudflare-typescript Project.production_script_name / preview_script_name / uses_functions).
                    "production_script_name": project.script_name,
                    "preview_script_name": project.script_name.replace("-production", "-preview"),
                    "uses_functions": project.functions,
                }
            )

        @app.route("GET", f"{pages}/deployments")
        def list_pages_deployments(request: Request) -> Response:
            project = self._project(request)
            env = request.arg("env")
            if env not in (None, "", "production", "preview"):
                raise _fail(400, CODE_PAGES_ROLLBACK, "env must be production or preview.")
            chosen = [d for d in reversed(project.deployments) if not env or d.environment == env]
            page = _int_arg(request, "page", 1, high=10**6)
            per_page = _int_arg(request, "per_page", PAGES_PER_PAGE, low=0, high=10**6)
            if not 1 <= per_page <= PAGES_PER_PAGE:
                raise _fail(
                    400,
                    CODE_PAGES_LIST_OPTIONS,
                    "Invalid list options provided. Review the `page` or `per_page` parameter.",
                )
            chunk = chosen[(page - 1) * per_page : page * per_page]
            return _ok(
                [self._pages_body(project, d) for d in chunk],
                _page_info(page, per_page, len(chunk), len(chosen)),
            )

        @app.route("GET", f"{pages}/deployments/{{deployment_id}}")
        def get_pages_deployment(request: Request) -> Response:
            project = self._project(request)
            return _ok(self._pages_body(project, self._pages_deployment(project, request.params["deployment_id"])))

        @app.route("POST", f"{pages}/deployments/{{deployment_id}}/rollback")
        def rollback_pages(request: Request) -> Response:
            project = self._project(request)
            target = self._pages_deployment(project, request.params["deployment_id"])
            if not target.rollback_target:
                why = (
                    "a preview deployment"
                    if target.environment != "production"
                    else "a skipped build"
                    if target.skipped
                    else "a failed build"
                )
                raise _fail(
                    400,
                    CODE_PAGES_ROLLBACK,
                    f"Deployment {target.id} is {why}. You can only rollback to successful builds on production.",
                )
            project.canonical = target.id
            project.history.append((self.now(), target.id))
            return _ok(self._pages_body(project, target))

        @app.route("POST", "/graphql")
        def graphql(request: Request) -> Response:
            # GraphQL answers 200 whatever happened; problems are in the body's `errors`.
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                body = None
            return Response(200, self.analytics.answer(body))

        @app.route("GET", "/zones/{zone_id}")
        def get_zone(request: Request) -> Response:
            # Zone details: `plan` decides the WAF features (real-world-facts Cloudflare 3: "The zone's plan is
            # in GET /zones/{zone_id} → plan"); plan.legacy_id is free | pro | business | enterprise.
            zone_id = self._zone(request)
            zone = self.zones[zone_id]
            return _ok(
                {
                    "id": zone_id,
                    "name": zone["name"],
                    "status": "active",
                    "paused": False,
                    "type": "full",
                    "account": {"id": self.account_id, "name": seed_world.ACCOUNT_NAME},
                    "plan": {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"plan/{zone['plan']}").hex,
                        "name": PLAN_NAMES[zone["plan"]],
                        "legacy_id": zone["plan"],
                        "is_subscribed": True,
                        "can_subscribe": False,
                    },
                }
            )

        zone = "/zones/{zone_id}/rulesets"

        @app.route("GET", zone)
        def list_rulesets(request: Request) -> Response:
            zone_id = self._zone(request)
            items = [
                {k: v for k, v in self._public(r).items() if k != "rules"}
                for r in self.rulesets.values()
                if r["_zone"] == zone_id
            ]
            return _ok(items)

        @app.route("GET", f"{zone}/phases/{{phase}}/entrypoint")
        def get_entrypoint(request: Request) -> Response:
            ruleset = self._entrypoint(self._zone(request), request.params["phase"])
            if ruleset is None:
                raise _fail(
                    404,
                    CODE_RULESET_NOT_FOUND,
                    f"could not find entrypoint ruleset in the '{request.params['phase']}' phase",
                )
            return _ok(self._public(ruleset))

        @app.route("PUT", f"{zone}/phases/{{phase}}/entrypoint")
        def put_entrypoint(request: Request) -> Response:
            zone_id, phase = self._zone(request), request.params["phase"]
            body = self._json(request)
            if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
                raise _ruleset_error("the body needs a rules list", "/rules")
            ruleset = self._entrypoint(zone_id, phase)
            if ruleset is None:
                ruleset = {
                    "id": self._new_hex("ruleset"),
                    "name": "default",
                    "description": "",
                    "kind": "zone",
                    "phase": phase,
                    "version": "0",
                    "last_updated": "",
                    "rules": [],
                    "_zone": zone_id,
                }
            version = str(int(ruleset["version"]) + 1)
            now = iso(self.now())
            # PUT replaces the whole list; rules keep their id only when the body names it.
            old = {r["id"]: r for r in ruleset["rules"]}
            rules = [
                self._rule(
                    raw,
                    f"/rules/{i}",
                    version,
                    now,
                    old.get(raw.get("id")) if isinstance(raw, dict) else None,
                )
                for i, raw in enumerate(body["rules"])
            ]
            self._check_plan(zone_id, rules)
            ruleset.update(rules=rules, version=version, last_updated=now)
            for key in ("name", "description"):
                if isinstance(body.get(key), str) and body[key]:
                    ruleset[key] = body[key]
            self.rulesets[ruleset["id"]] = ruleset
            self._publish(zone_id)
            return _ok(self._public(ruleset))

        @app.route("GET", f"{zone}/{{ruleset_id}}")
        def get_ruleset(request: Request) -> Response:
            return _ok(self._public(self._ruleset(request)))

        @app.route("POST", f"{zone}/{{ruleset_id}}/rules")
        def add_rule(request: Request) -> Response:
            ruleset = self._ruleset(request)
            body = self._json(request)
            version = str(int(ruleset["version"]) + 1)
            now = iso(self.now())
            rule = self._rule(body, "", version, now)
            rules = list(ruleset["rules"])
            self._place(rules, rule, body.get("position"))
            self._check_plan(ruleset["_zone"], rules)
            ruleset.update(rules=rules, version=version, last_updated=now)
            self._publish(ruleset["_zone"])
            return _ok(self._public(ruleset))

        @app.route("PATCH", f"{zone}/{{ruleset_id}}/rules/{{rule_id}}")
        def update_rule(request: Request) -> Response:
            ruleset = self._ruleset(request)
            rules = list(ruleset["rules"])
            index = _rule_index(rules, request.params["rule_id"])
            body = self._json(request)
            if not isinstance(body, dict):
                raise _ruleset_error("the body must be a rule object", "")
            version = str(int(ruleset["version"]) + 1)
            now = iso(self.now())
            rule = self._rule(body, "", version, now, old=rules.pop(index))
            if "position" in body:
                self._place(rules, rule, body["position"])
            else:
                rules.insert(index, rule)
            self._check_plan(ruleset["_zone"], rules)
            ruleset.update(rules=rules, version=version, last_updated=now)
            self._publish(ruleset["_zone"])
            return _ok(self._public(ruleset))

        @app.route("DELETE", f"{zone}/{{ruleset_id}}/rules/{{rule_id}}")
        def delete_rule(request: Request) -> Response:
            ruleset = self._ruleset(request)
            rules = list(ruleset["rules"])
            rules.pop(_rule_index(rules, request.params["rule_id"]))
            self._bump(ruleset)
            ruleset["rules"] = rules
            self._publish(ruleset["_zone"])
            return _ok(self._public(ruleset))


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _rule_index(rules: list[dict[str, Any]], rule_id: str) -> int:
    for i, rule in enumerate(rules):
        if rule["id"] == rule_id:
            return i
    raise _fail(404, CODE_RULESET_NOT_FOUND, f"could not find rule {rule_id}")


def _ruleset_error(message: str, pointer: str) -> HttpError:
    body = envelope_error(CODE_RULESET_INVALID, message)
    if pointer:
        body["errors"][0]["source"] = {"pointer": pointer}
    return HttpError(400, body)


@dataclass
class Served:
    """A running emulator on its own 127.0.0.1 port (for tests and the wrangler runner)."""

    emulator: CloudflareEmulator
    hub: Hub
    server: HttpServer

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/client/v4"


@contextmanager
def serving(latency_ms: int = 0, **options: Any) -> Iterator[Served]:
    """Serve only the emulated Cloudflare API at `/client/v4` on a free port until the block ends."""
    hub = Hub(latency_ms=latency_ms)
    server = HttpServer(hub)
    emulator = CloudflareEmulator(api_base_url=f"{server.url}/client/v4", **options)
    hub.mount("/client/v4", emulator.app)
    server.start()
    try:
        yield Served(emulator, hub, server)
    finally:
        server.stop()
