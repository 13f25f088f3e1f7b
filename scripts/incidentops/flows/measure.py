"""What customers got from a service, read from the Cloudflare analytics that have it (docs/adrs/0004).

A service that answers a host (incidentops.yaml `services[].hosts`) is measured by that host's HTTP requests in
the zone's analytics: the error rate is the share of 5xx answers, the latency the p99 time to first byte. That
is what customers see, for Workers and for Pages alike, with or without Functions; a Worker's invocation
`errors` count only thrown exceptions, never a 500 it answers. A Worker without a host (a queue consumer) is
measured by its invocations, and a Pages project without a host by its Functions under the project's
`production_script_name`. A static Pages project without a host has no analytics at all; the caller says so
and lets the smoke checks carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from incidentops.adapters.cloudflare import CloudflareClient
from incidentops.config import Environment, Service
from incidentops.core import exit_criteria as crit

SourceKind = Literal["http", "worker", "pages-functions", "none"]


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    label: str  # where the numbers come from, as the incident file records it
    zone: str = ""
    hosts: tuple[str, ...] = ()
    script: str = ""


def service_hosts(env: Environment, service: Service) -> tuple[str, ...]:
    """Real host names of the service in this environment, from incidentops.yaml (never an override URL)."""
    names = [urlsplit(env.base_urls[key]).hostname or "" for key in service.hosts if key in env.base_urls]
    return tuple(h for h in dict.fromkeys(names) if h)


async def source_for(cf: CloudflareClient, env: Environment, service: Service) -> Source:
    """Pick the analytics that measure what this service's customers get."""
    hosts = service_hosts(env, service)
    if hosts:
        label = f"HTTP requests to {', '.join(hosts)} (zone analytics: 5xx share, p99 time to first byte)"
        return Source("http", label, zone=env.zone_id, hosts=hosts)
    if service.kind == "worker":
        label = f"invocations of Worker {service.cloudflare_name} (no host in incidentops.yaml)"
        return Source("worker", label, script=service.cloudflare_name)
    project = await cf.get_pages_project(service.cloudflare_name)
    if project.uses_functions and project.production_script_name:
        label = f"Pages Functions invocations of {project.production_script_name} (no host in incidentops.yaml)"
        return Source("pages-functions", label, script=project.production_script_name)
    why = (
        f"Cloudflare has no analytics for {service.name}: a Pages project without Functions, "
        "and incidentops.yaml names no host for it"
    )
    return Source("none", why)


async def read_window(cf: CloudflareClient, source: Source, start: datetime, end: datetime) -> crit.Window:
    """Requests, errors and p99 latency (None where the source has none) of one window."""
    if source.kind == "http":
        http = await cf.http_requests(source.zone, source.hosts, start, end)
        return crit.Window(http.requests, http.errors, http.p99_ms)
    if source.kind == "worker":
        stats = await cf.worker_invocations(source.script, start, end)
    else:
        stats = await cf.pages_functions_invocations(source.script, start, end)
    return crit.Window(stats.requests, stats.errors, stats.p99_ms)
