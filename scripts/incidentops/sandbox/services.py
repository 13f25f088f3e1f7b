"""The five demo services on 127.0.0.1, behaving as whatever the emulated Cloudflare has live.

One small HTTP server per environment host (api, ingest, admin, portal). Before anything else each
request meets the emulated WAF: a matching `block` rule answers with its configured response, as the
edge would. Then the live build decides: a good build passes its smoke checks; a bad one fails them —
the bad api-worker shows tenant B's reports to tenant A and its health check answers 503. A rollback
on the emulated Cloudflare therefore changes what these servers answer on the very next request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from incidentops.sandbox.analytics import HostModel, RouteShare
from incidentops.sandbox.cloudflare import CloudflareEmulator
from incidentops.sandbox.http import App, HttpServer, Hub, Request, Response
from incidentops.sandbox.world import Quality

# Demo tenants and the bearer tokens the smoke checks use (put them in SMOKE_TENANT_A/B_TOKEN).
TENANT_A, TENANT_B = "t-100", "t-200"
TENANT_A_TOKEN = "smoke-a-" + hashlib.sha256(b"incidentops demo tenant a").hexdigest()[:24]
TENANT_B_TOKEN = "smoke-b-" + hashlib.sha256(b"incidentops demo tenant b").hexdigest()[:24]
TOKENS = {TENANT_A_TOKEN: TENANT_A, TENANT_B_TOKEN: TENANT_B}
SMOKE_ENV = {"SMOKE_TENANT_A_TOKEN": TENANT_A_TOKEN, "SMOKE_TENANT_B_TOKEN": TENANT_B_TOKEN}
REPORTS = {
    TENANT_A: [{"id": "rep-100-1", "tenant": TENANT_A, "title": "Q3 usage"}],
    TENANT_B: [{"id": "rep-200-1", "tenant": TENANT_B, "title": "Q3 usage"}],
}
# Which service answers on which host, and the hosts the sandbox serves when no config says otherwise.
HOST_SERVICES = {"api": "api-worker", "ingest": "ingest-worker", "admin": "admin-pages", "portal": "user-portal"}
# What clients ask each host for, as shares of its requests: the zone's HTTP analytics replay this mix through
# the host's own routes, so they show what these services answer (sandbox/analytics.py).
HOST_TRAFFIC: dict[str, tuple[RouteShare, ...]] = {
    "api": (
        RouteShare("GET", "/v1/reports", 0.6),
        RouteShare("GET", "/v1/reports/rep-100-1", 0.3),
        RouteShare("GET", "/healthz", 0.1),
    ),
    "ingest": (RouteShare("POST", "/v1/events", 0.9), RouteShare("GET", "/healthz", 0.1)),
    "admin": (RouteShare("GET", "/", 1.0),),
    "portal": (RouteShare("GET", "/", 0.7), RouteShare("GET", "/login", 0.3)),
}
# While the analytics replay a route, the build quality they ask about (instead of what is live now).
_REPLAYED: ContextVar[Quality | None] = ContextVar("replayed_quality", default=None)
DEFAULT_BASE_URLS = {key: f"https://{key}.example.com" for key in HOST_SERVICES}


def _tenant(request: Request) -> str | None:
    return TOKENS.get(request.bearer or "")


def _html(status: int, title: str, text: str) -> Response:
    page = f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
    return Response(status, page, {"Content-Type": "text/html; charset=utf-8"})


def edge_answer(rule: dict[str, Any]) -> Response:
    """What the edge answers for a request a custom rule ended: its custom response, or Cloudflare's own page.

    A block without a custom response answers 403 with Cloudflare's block page ("Sorry, you have been
    blocked", with a Ray ID; cloudflare-docs waf/custom-rules "default block status is 403"); a challenge
    answers 403 with `cf-mitigated: challenge` (what wrangler's cfetch recognises as a WAF challenge page).
    """
    ray = hashlib.sha256(str(rule.get("id", "")).encode()).hexdigest()[:16]
    if rule.get("action") != "block":
        page = _html(403, "Just a moment...", f"Checking your browser. Cloudflare Ray ID: {ray}")
        page.headers["cf-mitigated"] = "challenge"
        return page
    response = (rule.get("action_parameters") or {}).get("response") or {}
    if response:
        return Response(
            int(response.get("status_code", 403)),
            str(response.get("content", "")),
            {"Content-Type": str(response.get("content_type", "text/plain"))},
        )
    page = _html(
        403,
        "Attention Required! | Cloudflare",
        "Sorry, you have been blocked. You are unable to access this site. "
        f"Cloudflare Ray ID: {ray} · Performance &amp; security by Cloudflare",
    )
    page.headers["cf-ray"] = f"{ray}-SJC"
    return page


class _EdgeApp(App):
    """One host: the WAF first, then the service's own routes."""

    def __init__(self, cloudflare: CloudflareEmulator, host: str, service: str) -> None:
        super().__init__()
        self.cloudflare = cloudflare
        self.host = host
        self.service = service

    def good(self, service: str | None = None) -> bool:
        replayed = _REPLAYED.get()
        if replayed is not None and (service or self.service) == self.service:
            return replayed == "good"
        return self.cloudflare.is_good(service or self.service)

    def replay(self, method: str, path: str, quality: Quality) -> int:
        """The status this host's service answers `method path` from tenant A when a build of `quality` serves."""
        request = Request(
            method=method,
            path=path,
            raw_path=path,
            query={},
            headers={"authorization": f"Bearer {TENANT_A_TOKEN}", "content-type": "application/json"},
            body=b'{"event": "page_view"}' if method == "POST" else b"",
        )
        token = _REPLAYED.set(quality)
        try:
            return App.dispatch(self, request).status
        finally:
            _REPLAYED.reset(token)

    def dispatch(self, request: Request) -> Response:
        answer = self._answer(request)
        self.cloudflare.observe(self.host, request.method, request.path, answer.status)
        return answer

    def _answer(self, request: Request) -> Response:
        rule = self.cloudflare.edge_decision(self.host, request.path, request.method)
        if rule is not None:
            return edge_answer(rule)
        answer = super().dispatch(request)
        answer.headers.setdefault("x-served-version", self.cloudflare.live_version(self.service))
        return answer


def _api(app: _EdgeApp) -> None:
    @app.route("GET", "/healthz")
    def health(request: Request) -> Response:
        if not app.good():
            return Response(503, {"status": "degraded", "error": "report query builder failed"})
        return Response(200, {"status": "ok", "service": app.service})

    @app.route("GET", "/v1/reports")
    def reports(request: Request) -> Response:
        tenant = _tenant(request)
        if tenant is None:
            return Response(401, {"error": "unauthorized"})
        asked = request.arg("tenant") or tenant
        if not app.good():
            # The regression: the query builder drops the tenant filter.
            return Response(200, {"tenant": asked, "reports": [r for rows in REPORTS.values() for r in rows]})
        if asked != tenant:
            return Response(403, {"error": "forbidden"})
        return Response(200, {"tenant": tenant, "reports": REPORTS[tenant]})

    @app.route("GET", "/v1/reports/{report_id}")
    def report(request: Request) -> Response:
        tenant = _tenant(request)
        if tenant is None:
            return Response(401, {"error": "unauthorized"})
        found = next((r for rows in REPORTS.values() for r in rows if r["id"] == request.params["report_id"]), None)
        if found is None or (found["tenant"] != tenant and app.good()):
            return Response(404, {"error": "not found"})
        return Response(200, found)


def _ingest(app: _EdgeApp) -> None:
    @app.route("GET", "/healthz")
    def health(request: Request) -> Response:
        if not app.good():
            return Response(503, {"status": "degraded", "error": "queue producer unavailable"})
        return Response(200, {"status": "ok", "service": app.service})

    @app.route("POST", "/v1/events")
    def events(request: Request) -> Response:
        if _tenant(request) is None:
            return Response(401, {"error": "unauthorized"})
        request.json()
        if not app.good():
            return Response(500, {"error": "enqueue failed"})
        return Response(202, {"accepted": True})

    # queue-consumer has no HTTP route of its own; its health shows through the ingest host.
    @app.route("GET", "/v1/queue/health")
    def queue(request: Request) -> Response:
        if not app.good("queue-consumer"):
            return Response(503, {"status": "stalled", "backlog": 48211})
        return Response(200, {"status": "ok", "backlog": 0})


def _admin(app: _EdgeApp) -> None:
    @app.route("GET", "/")
    def home(request: Request) -> Response:
        if not app.good():
            return _html(500, "Application error", "a client-side exception has occurred")
        return _html(200, "Acme Admin", "Tenants, audit log")


def _portal(app: _EdgeApp) -> None:
    @app.route("GET", "/")
    def home(request: Request) -> Response:
        return _html(200, "Acme Portal", "Dashboard, invoices")

    @app.route("GET", "/login")
    def login(request: Request) -> Response:
        if not app.good():
            return _html(502, "Bad gateway", "SSO callback failed")
        return _html(200, "Sign in", "Sign in with your company account")


_ROUTES = {"api": _api, "ingest": _ingest, "admin": _admin, "portal": _portal}


@dataclass
class _Host:
    environment: str
    key: str
    server: HttpServer


class DemoServices:
    """HTTP servers for each environment's hosts; faults, latency and the request log are shared with `hub`."""

    def __init__(
        self,
        cloudflare: CloudflareEmulator,
        environments: Mapping[str, Mapping[str, str]],
        hub: Hub | None = None,
    ) -> None:
        self.hosts: list[_Host] = []
        for env_name, base_urls in environments.items():
            for key, url in base_urls.items():
                if key not in _ROUTES:
                    continue
                app = _EdgeApp(cloudflare, urlsplit(url).hostname or url, HOST_SERVICES[key])
                _ROUTES[key](app)
                cloudflare.register_host(HostModel(app.host, app.service, HOST_TRAFFIC[key], app.replay))
                own = Hub(latency_ms=hub.latency_ms if hub else 0)
                if hub is not None:
                    # One fault list for the whole sandbox: POST /_sandbox/faults reaches these hosts too.
                    own.faults, own.lock, own.log = hub.faults, hub.lock, hub.log
                own.mount("", app)
                self.hosts.append(_Host(env_name, key, HttpServer(own)))

    @property
    def base_urls(self) -> dict[str, dict[str, str]]:
        """{"production": {"api": "http://127.0.0.1:P", …}} — what INCIDENTOPS_BASE_URLS takes."""
        out: dict[str, dict[str, str]] = {}
        for host in self.hosts:
            out.setdefault(host.environment, {})[host.key] = host.server.url
        return out

    def start(self) -> DemoServices:
        for host in self.hosts:
            host.server.start()
        return self

    def stop(self) -> None:
        for host in self.hosts:
            host.server.stop()


def demo_environments(environments: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The environments to serve: those whose base URLs name demo hosts; production falls back to defaults."""
    out = {name: dict(urls) for name, urls in environments.items() if any(k in _ROUTES for k in urls)}
    return out or {"production": dict(DEFAULT_BASE_URLS)}
