"""Emulated Cloudflare GraphQL Analytics: Workers and Pages Functions invocations from the seeded world.

Queries are parsed, validated and executed by graphql-core against a schema for the subset the product
uses (`viewer.accounts.workersInvocationsAdaptive` and `pagesFunctionsInvocationsAdaptiveGroups`, plus the
datasets' `settings`). Numbers are derived, never stored: each five-minute bucket's traffic is split between
the builds that were serving during it (from the emulator's deployment history), and a bad build has a high
error rate and a high p99 while a good build sits at the baseline. So metrics go bad when a bad version
goes live and return to the baseline after a rollback, on the emulator's clock.

As on the real API, every answer is HTTP 200, and a problem (a syntax error, a window older than the
dataset allows, a limit over the page size, another account) arrives as `{"data": null, "errors": [...]}`.
Every dataset and field in `SDL` was checked against Cloudflare's documentation or queries that run against the
real API; where each comes from is written beside it. A field that is not there is an error, as on the real API.

Zone HTTP request analytics (`viewer.zones.httpRequestsAdaptiveGroups`) come from the same traffic the demo
services answer: each host's requests are split over its routes, and each route's status is what the demo
service answers for the build that served (`Probe`), plus every request the demo services really answered.
So a Worker that answers 500 shows up there even when its invocations report no errors.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import VariablesInAllowedPositionRule

from incidentops.sandbox.world import Quality

BUCKET = timedelta(minutes=5)
NOT_OLDER_THAN = 2_678_400  # seconds (31 days) a dataset keeps
MAX_DURATION = 259_200  # seconds (3 days) one query may span
MAX_PAGE_SIZE = 10_000

# Requests per five minutes at the baseline; api-worker matches the seeded incident's "1200/min".
VOLUME = {"api-worker": 6000, "ingest-worker": 3000, "queue-consumer": 900, "admin-pages": 400, "user-portal": 2500}
DEFAULT_VOLUME = 1000


@dataclass(frozen=True)
class Profile:
    error_rate: float
    cpu_p50_us: float
    cpu_p99_us: float
    wall_p50_us: float
    wall_p99_us: float


PROFILES: dict[Quality, Profile] = {
    "good": Profile(0.002, 1_800, 9_000, 24_000, 180_000),
    "bad": Profile(0.08, 5_500, 46_000, 310_000, 2_400_000),
}
# A bad build that fails by answering errors rather than throwing: its invocations succeed (no `errors`,
# ordinary latency), only the HTTP status shows it (real-world-facts Cloudflare 2). ingest-worker's bad
# build answers 500 "enqueue failed" quickly.
HANDLED_FAILURES = {"ingest-worker"}


def profile(script: str, quality: Quality) -> Profile:
    """The invocation profile of one build of one script."""
    return PROFILES["good"] if script in HANDLED_FAILURES else PROFILES[quality]


# Edge time to first byte at the 50th/99th percentile (ms) of a zone's requests, by build quality.
TTFB_MS: dict[Quality, tuple[float, float]] = {"good": (28.0, 190.0), "bad": (340.0, 2_600.0)}

# Where each piece of the schema was checked:
# - `viewer.accounts(filter: {accountTag})`, `workersInvocationsAdaptive` with `sum {requests errors subrequests}`,
#   `quantiles {cpuTimeP50 cpuTimeP99 wallTimeP50 wallTimeP99 …}`, `dimensions {datetimeFiveMinutes scriptName
#   scriptVersion status}` and the `scriptName`/`datetime_*` filters: cloudflare-docs
#   analytics/graphql-api/tutorials/querying-workers-metrics.
# - `pagesFunctionsInvocationsAdaptiveGroups`: `sum {requests errors duration wallTime subrequests
#   responseBodySize}` and `dimensions {scriptName status}`, keyed by the project's `production_script_name`
#   (e.g. `pages-worker--12090723-production`), as public clients query it against the real API. No
#   `quantiles` object was found anywhere, so this schema has none: asking for one is an error.
# - `viewer.zones(filter: {zoneTag})` → `httpRequestsAdaptiveGroups` with `count`, `avg {sampleInterval}`,
#   `sum {visits edgeResponseBytes}` and filter `requestSource`: cloudflare-docs analytics/graphql-api/
#   migration-guides/graphql-api-analytics ("the httpRequestsAdaptiveGroups node reports count"). Dimensions
#   `clientRequestHTTPHost`, `clientRequestPath`, `edgeResponseStatus`, `datetimeMinute`, `coloCode` and the
#   filters `clientRequestHTTPHost`, `clientRequestPath_like`, `edgeResponseStatus_geq/_lt`: the same docs
#   (IBM CIS mirror "Querying HTTP events by hostname with GraphQL") and public ingesters (last9/iox-registry
#   modules/cloudflare/cdn.hcl). `quantiles {edgeTimeToFirstByteMsP50/P95/P99 originResponseDurationMsP50/P95/P99}`
#   and `avg {edgeTimeToFirstByteMs originResponseDurationMs}`: queried by several public dashboards against the
#   real API (found by searching public code for `edgeTimeToFirstByteMsP99`).
# - Scalars (`string`, `Time`, `uint64`) as Cloudflare declares them in its tutorials.
SDL = """
scalar string
scalar Time
scalar Date
scalar uint64
scalar uint16
scalar float64

type Query { viewer: Viewer }
type Viewer {
  accounts(filter: AccountFilter!): [Account!]!
  zones(filter: ZoneFilter!): [Zone!]!
}
input AccountFilter { accountTag: string, accountTag_in: [string!] }
input ZoneFilter { zoneTag: string, zoneTag_in: [string!] }

type Account {
  settings: AccountSettings
  workersInvocationsAdaptive(
    limit: uint64!, filter: WorkersFilter, orderBy: [InvocationsOrderBy!]
  ): [WorkersInvocationsAdaptive!]!
  pagesFunctionsInvocationsAdaptiveGroups(
    limit: uint64!, filter: PagesFilter, orderBy: [InvocationsOrderBy!]
  ): [PagesFunctionsInvocationsAdaptiveGroups!]!
}

type AccountSettings {
  workersInvocationsAdaptive: DatasetSettings
  pagesFunctionsInvocationsAdaptiveGroups: DatasetSettings
}
type DatasetSettings { enabled: Boolean, maxDuration: uint64, notOlderThan: uint64, maxPageSize: uint64 }

input WorkersFilter {
  AND: [WorkersFilter!]
  scriptName: string, scriptName_in: [string!], scriptName_neq: string
  scriptVersion: string, scriptVersion_in: [string!]
  status: string, status_in: [string!]
  datetime_geq: Time, datetime_gt: Time, datetime_leq: Time, datetime_lt: Time
  datetimeFiveMinutes_geq: Time, datetimeFiveMinutes_leq: Time
}
input PagesFilter {
  AND: [PagesFilter!]
  scriptName: string, scriptName_in: [string!]
  datetime_geq: Time, datetime_gt: Time, datetime_leq: Time, datetime_lt: Time
  datetimeFiveMinutes_geq: Time, datetimeFiveMinutes_leq: Time
}
enum InvocationsOrderBy {
  datetimeFiveMinutes_ASC, datetimeFiveMinutes_DESC, datetimeHour_ASC, datetimeHour_DESC, date_ASC, date_DESC
  sum_requests_ASC, sum_requests_DESC, sum_errors_ASC, sum_errors_DESC
}

type WorkersInvocationsAdaptive {
  count: uint64
  dimensions: WorkersDimensions
  sum: WorkersSum
  quantiles: InvocationQuantiles
  avg: InvocationAvg
}
type WorkersDimensions {
  datetimeFiveMinutes: Time, datetimeHour: Time, date: Date, scriptName: string, scriptVersion: string, status: string
}
type WorkersSum {
  requests: uint64, errors: uint64, subrequests: uint64, cpuTimeUs: uint64, wallTime: uint64, duration: float64
  clientDisconnects: uint64
}
type InvocationQuantiles {
  cpuTimeP50: float64, cpuTimeP99: float64, wallTimeP50: float64, wallTimeP99: float64
  durationP50: float64, durationP99: float64
}
type InvocationAvg { sampleInterval: float64 }

type PagesFunctionsInvocationsAdaptiveGroups {
  dimensions: PagesDimensions
  sum: PagesSum
}
type PagesDimensions { datetimeFiveMinutes: Time, datetimeHour: Time, date: Date, scriptName: string, status: string }
type PagesSum {
  requests: uint64, errors: uint64, subrequests: uint64, duration: float64, wallTime: uint64, responseBodySize: uint64
}

type Zone {
  httpRequestsAdaptiveGroups(
    limit: uint64!, filter: HttpRequestsFilter, orderBy: [HttpRequestsOrderBy!]
  ): [HttpRequestsAdaptiveGroups!]!
}
input HttpRequestsFilter {
  AND: [HttpRequestsFilter!]
  OR: [HttpRequestsFilter!]
  datetime_geq: Time, datetime_gt: Time, datetime_leq: Time, datetime_lt: Time
  clientRequestHTTPHost: string, clientRequestHTTPHost_in: [string!], clientRequestHTTPHost_neq: string
  clientRequestPath: string, clientRequestPath_like: string, clientRequestPath_in: [string!]
  edgeResponseStatus: uint16, edgeResponseStatus_geq: uint16, edgeResponseStatus_gt: uint16
  edgeResponseStatus_lt: uint16, edgeResponseStatus_leq: uint16, edgeResponseStatus_in: [uint16!]
  requestSource: string
}
enum HttpRequestsOrderBy {
  count_ASC, count_DESC, datetimeMinute_ASC, datetimeMinute_DESC, datetimeFiveMinutes_ASC, datetimeFiveMinutes_DESC
  datetimeHour_ASC, datetimeHour_DESC, edgeResponseStatus_ASC, edgeResponseStatus_DESC
}
type HttpRequestsAdaptiveGroups {
  count: uint64
  dimensions: HttpRequestsDimensions
  sum: HttpRequestsSum
  avg: HttpRequestsAvg
  quantiles: HttpRequestsQuantiles
}
type HttpRequestsDimensions {
  datetimeMinute: Time, datetimeFiveMinutes: Time, datetimeHour: Time, date: Date
  clientRequestHTTPHost: string, clientRequestPath: string, clientRequestHTTPMethodName: string
  edgeResponseStatus: uint16, coloCode: string
}
type HttpRequestsSum { visits: uint64, edgeResponseBytes: uint64 }
type HttpRequestsAvg { sampleInterval: float64, edgeTimeToFirstByteMs: float64, originResponseDurationMs: float64 }
type HttpRequestsQuantiles {
  edgeTimeToFirstByteMsP50: float64, edgeTimeToFirstByteMsP95: float64, edgeTimeToFirstByteMsP99: float64
  originResponseDurationMsP50: float64, originResponseDurationMsP95: float64, originResponseDurationMsP99: float64
}
"""

# One serving state: from `at` on, these (build id, percentage) splits serve the service.
History = list[tuple[datetime, Sequence[tuple[str, float]]]]


class QueryError(Exception):
    """A problem the API reports inside a 200 answer."""


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """Read an RFC 3339 time the way the API accepts it (`2026-11-27T03:00:00Z`, offsets, fractions)."""
    if not isinstance(value, str):
        raise QueryError(f"expected a time string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"cannot parse time {value!r}: expected RFC 3339, e.g. 2026-11-27T03:00:00Z") from exc
    if moment.tzinfo is None:
        raise QueryError(f"time {value!r} has no time zone")
    return moment.astimezone(UTC)


def build() -> GraphQLSchema:
    """The analytics schema, with the scalars Cloudflare's queries declare (`string`, `Time`, …)."""
    schema = build_schema(SDL)
    time = schema.type_map["Time"]
    assert isinstance(time, GraphQLScalarType)

    def time_value(value: Any) -> str:
        try:
            parse_time(value)
        except QueryError as err:
            raise GraphQLError(str(err)) from err
        return str(value)

    # The other scalars keep graphql-core's pass-through coercion; a Time variable is checked on the way in.
    time.parse_value = time_value  # type: ignore[method-assign]
    return schema


SCHEMA = build()
# Cloudflare accepts `String!` where the schema says `string` (its tutorial and many clients differ), so
# variable types are not matched against argument types; values are checked when the resolver reads them.
RULES = [rule for rule in specified_rules if rule is not VariablesInAllowedPositionRule]


@dataclass(frozen=True)
class Atom:
    """Traffic of one build of one service in one five-minute bucket (the finest grain we derive)."""

    bucket: datetime
    script: str
    version: str
    quality: Quality
    requests: int
    errors: int
    jitter: float


@dataclass(frozen=True)
class RouteShare:
    """One slice of a host's traffic: this share of its requests asks for `method path`."""

    method: str
    path: str
    share: float


@dataclass(frozen=True)
class HostModel:
    """A host the demo services answer: which service's builds answer it, its traffic, and what a route answers."""

    host: str
    service: str
    routes: tuple[RouteShare, ...]
    probe: Callable[[str, str, Quality], int]  # (method, path, build quality) -> the status the service answers


@dataclass(frozen=True)
class Observed:
    """A request the demo services really answered."""

    at: datetime
    host: str
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class HttpAtom:
    """Requests of one route of one host in one five-minute bucket, all answered with one status."""

    bucket: datetime
    host: str
    method: str
    path: str
    status: int
    count: int
    quality: Quality  # of the build that answered: decides the latency
    jitter: float


class Analytics:
    """Answer GraphQL analytics requests for one account from serving histories and a clock."""

    def __init__(
        self,
        account_id: str,
        *,
        workers: Callable[[], dict[str, History]],
        pages: Callable[[], dict[str, History]],
        quality: Callable[[str, str], Quality],
        now: Callable[[], datetime],
        services: Callable[[], dict[str, History]] | None = None,
        hosts: Callable[[str], list[HostModel]] | None = None,
        observed: Callable[[], list[Observed]] | None = None,
        zones: Callable[[], set[str]] | None = None,
    ) -> None:
        self.account_id = account_id
        self._workers = workers
        self._pages = pages
        self._quality = quality
        self._now = now
        self._services = services or (lambda: {})
        self._hosts = hosts or (lambda zone: [])
        self._observed = observed or (lambda: [])
        self._zones = zones or (lambda: set())
        self._statuses: dict[tuple[str, str, str, Quality], int] = {}

    # -- HTTP body in, HTTP body out ---------------------------------------------------------------

    def answer(self, body: Any) -> dict[str, Any]:
        """Run one request body (`{query, variables, operationName}`); always a GraphQL response object."""
        now = self._now()
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _errors(now, "the request body must be a JSON object with a query string")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return _errors(now, "variables must be a JSON object")
        try:
            document = parse(body["query"])
        except GraphQLError as err:
            return _errors(now, err.message, locations=err.locations)
        problems = validate(SCHEMA, document, RULES)
        if problems:
            return {"data": None, "errors": [_error(now, e.message, path=e.path) for e in problems]}
        result = execute_sync(
            SCHEMA,
            document,
            root_value={"viewer": lambda info: {"accounts": self._accounts, "zones": self._zone_list}},
            variable_values=variables,
            operation_name=body.get("operationName"),
        )
        if result.errors:
            # Cloudflare drops the partial data when any part of the query failed.
            return {"data": None, "errors": [_error(now, e.message, path=e.path) for e in result.errors]}
        return {"data": result.data, "errors": None}

    # -- resolvers ---------------------------------------------------------------------------------

    def _accounts(self, info: Any, filter: dict[str, Any]) -> list[dict[str, Any]]:
        tags = [filter["accountTag"]] if filter.get("accountTag") else list(filter.get("accountTag_in") or [])
        if len(tags) != 1:
            raise GraphQLError("accounts: exactly one account per query: filter on one accountTag")
        if tags[0] != self.account_id:
            raise GraphQLError(f"does not have access to the path: account {tags[0]} is not visible to this token")
        settings = {"enabled": True, "maxDuration": MAX_DURATION, "notOlderThan": NOT_OLDER_THAN}
        settings["maxPageSize"] = MAX_PAGE_SIZE
        return [
            {
                "settings": {
                    "workersInvocationsAdaptive": settings,
                    "pagesFunctionsInvocationsAdaptiveGroups": settings,
                },
                "workersInvocationsAdaptive": lambda info, **args: self._dataset(info, args, self._workers()),
                "pagesFunctionsInvocationsAdaptiveGroups": lambda info, **args: self._dataset(
                    info, args, self._pages()
                ),
            }
        ]

    def _zone_list(self, info: Any, filter: dict[str, Any]) -> list[dict[str, Any]]:
        tags = [filter["zoneTag"]] if filter.get("zoneTag") else list(filter.get("zoneTag_in") or [])
        if not tags:
            raise GraphQLError("zones: filter on a zoneTag")
        unknown = [t for t in tags if t not in self._zones()]
        if unknown:
            raise GraphQLError(f"does not have access to the path: zone {unknown[0]} is not visible to this token")
        return [
            {"httpRequestsAdaptiveGroups": lambda info, _zone=tag, **args: self._http(info, args, _zone)}
            for tag in tags
        ]

    def _http(self, info: Any, args: dict[str, Any], zone: str) -> list[dict[str, Any]]:
        try:
            limit = int(args["limit"])
            if limit < 1 or limit > MAX_PAGE_SIZE:
                raise QueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
            flt = args.get("filter") or {}
            start, end = self._window(flt)
            # Derive only the hosts the filter can keep: a zone has many, a query usually names one.
            named = (
                [flt["clientRequestHTTPHost"]]
                if flt.get("clientRequestHTTPHost")
                else flt.get("clientRequestHTTPHost_in")
            )
            only = set(named) if named is not None else None
            atoms = [a for a in self._http_atoms(zone, start, end, only) if _keep_http(a, flt)]
        except QueryError as err:
            raise GraphQLError(f"httpRequestsAdaptiveGroups: {err}") from err
        dims = _selected(info.field_nodes[0].selection_set, "dimensions")
        rows = _group_http(atoms, dims)
        for key in reversed(args.get("orderBy") or []):
            field, _, direction = key.rpartition("_")
            rows.sort(key=functools.partial(_order_value, field=field), reverse=direction == "DESC")
        return rows[:limit]

    def _status(self, model: HostModel, route: RouteShare, quality: Quality) -> int:
        key = (model.host, route.method, route.path, quality)
        if key not in self._statuses:
            self._statuses[key] = model.probe(route.method, route.path, quality)
        return self._statuses[key]

    def _http_atoms(self, zone: str, start: datetime, end: datetime, only: set[str] | None = None) -> list[HttpAtom]:
        atoms: list[HttpAtom] = []
        histories = self._services()
        models = [m for m in self._hosts(zone) if only is None or m.host in only]
        for model in sorted(models, key=lambda m: m.host):
            history = histories.get(model.service)
            if not history:
                continue
            bucket = _floor(start)
            while bucket < end:
                inside = (min(bucket + BUCKET, end) - max(bucket, start)) / BUCKET
                noise = 0.95 + 0.1 * _unit(model.host, _ts(bucket))
                volume = VOLUME.get(model.service, DEFAULT_VOLUME) * noise * inside
                for version, share in _shares(history, bucket, bucket + BUCKET).items():
                    quality = self._quality(model.service, version)
                    latency: Quality = "good" if model.service in HANDLED_FAILURES else quality
                    for route in model.routes:
                        count = round(volume * share * route.share)
                        if count <= 0:
                            continue
                        status = self._status(model, route, quality)
                        jitter = _unit(model.host, route.path, version, _ts(bucket))
                        atoms.append(
                            HttpAtom(bucket, model.host, route.method, route.path, status, count, latency, jitter)
                        )
                bucket += BUCKET
        served = {m.host for m in self._hosts(zone)}
        for seen in self._observed():
            if seen.host not in served or not start <= seen.at < end:
                continue
            atoms.append(HttpAtom(_floor(seen.at), seen.host, seen.method, seen.path, seen.status, 1, "good", 0.5))
        return atoms

    def _dataset(self, info: Any, args: dict[str, Any], histories: dict[str, History]) -> list[dict[str, Any]]:
        name = info.field_name
        try:
            limit = int(args["limit"])
            if limit < 1 or limit > MAX_PAGE_SIZE:
                raise QueryError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
            flt = args.get("filter") or {}
            start, end = self._window(flt)
            atoms = [a for a in self._atoms(histories, start, end) if _keep(a, flt)]
        except QueryError as err:
            raise GraphQLError(f"{name}: {err}") from err
        dims = _selected(info.field_nodes[0].selection_set, "dimensions")
        rows = _group(atoms, dims)
        for key in reversed(args.get("orderBy") or ["datetimeFiveMinutes_ASC"]):
            field, _, direction = key.rpartition("_")
            rows.sort(key=functools.partial(_order_value, field=field), reverse=direction == "DESC")
        return rows[:limit]

    def _window(self, flt: dict[str, Any]) -> tuple[datetime, datetime]:
        starts = [parse_time(flt[k]) for k in ("datetime_geq", "datetimeFiveMinutes_geq") if flt.get(k)]
        starts += [parse_time(flt["datetime_gt"]) + timedelta(seconds=1)] if flt.get("datetime_gt") else []
        ends = [parse_time(flt[k]) for k in ("datetime_leq", "datetimeFiveMinutes_leq") if flt.get(k)]
        ends += [parse_time(flt["datetime_lt"]) - timedelta(seconds=1)] if flt.get("datetime_lt") else []
        for part in flt.get("AND") or []:
            try:
                inner = self._window(part)
            except QueryError:
                continue
            starts.append(inner[0])
            ends.append(inner[1])
        if not starts or not ends:
            raise QueryError("a time range is required: filter on datetime_geq (or _gt) and datetime_leq (or _lt)")
        start, end = max(starts), min(ends)
        now = self._now()
        if start < now - timedelta(seconds=NOT_OLDER_THAN):
            raise QueryError(f"cannot request data older than {NOT_OLDER_THAN}s")
        if (end - start).total_seconds() > MAX_DURATION:
            raise QueryError(f"number of seconds between datetime_geq and datetime_leq cannot exceed {MAX_DURATION}s")
        return start, min(end, now)

    def _atoms(self, histories: dict[str, History], start: datetime, end: datetime) -> list[Atom]:
        atoms: list[Atom] = []
        first = _floor(start)
        for script, history in sorted(histories.items()):
            bucket = first
            while bucket < end:
                # The time filter applies to invocations, so a bucket cut by the window counts only its part.
                inside = (min(bucket + BUCKET, end) - max(bucket, start)) / BUCKET
                volume = VOLUME.get(script, DEFAULT_VOLUME) * (0.95 + 0.1 * _unit(script, _ts(bucket))) * inside
                for version, share in _shares(history, bucket, bucket + BUCKET).items():
                    quality = self._quality(script, version)
                    requests = round(volume * share)
                    if requests <= 0:
                        continue
                    jitter = _unit(script, version, _ts(bucket))
                    rate = profile(script, quality).error_rate * (0.9 + 0.2 * jitter)
                    shown: Quality = "good" if script in HANDLED_FAILURES else quality
                    atoms.append(Atom(bucket, script, version, shown, requests, round(requests * rate), jitter))
                bucket += BUCKET
        return atoms


def _floor(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) for these names: the world's noise, the same on every run."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _shares(history: History, start: datetime, end: datetime) -> dict[str, float]:
    """Fraction of the bucket's traffic each build served, from the serving states that overlap it."""
    shares: dict[str, float] = {}
    span = (end - start).total_seconds()
    for i, (since, splits) in enumerate(history):
        until = history[i + 1][0] if i + 1 < len(history) else end
        overlap = (min(until, end) - max(since, start)).total_seconds()
        if overlap <= 0:
            continue
        for version, percentage in splits:
            shares[version] = shares.get(version, 0.0) + overlap / span * percentage / 100
    return shares


def _keep(atom: Atom, flt: dict[str, Any]) -> bool:
    checks = [
        ("scriptName", atom.script),
        ("scriptVersion", atom.version),
    ]
    for key, value in checks:
        if flt.get(key) is not None and flt[key] != value:
            return False
        if flt.get(f"{key}_in") is not None and value not in flt[f"{key}_in"]:
            return False
    if flt.get("scriptName_neq") is not None and flt["scriptName_neq"] == atom.script:
        return False
    return all(_keep(atom, part) for part in flt.get("AND") or [])


def _selected(selection: SelectionSetNode | None, name: str) -> set[str]:
    """Names of the fields picked under `name` (fragments followed one level), e.g. the dimensions asked for."""
    found: set[str] = set()
    for node in _fields(selection):
        if node.name.value == name:
            found |= {child.name.value for child in _fields(node.selection_set)}
    return found


def _fields(selection: SelectionSetNode | None) -> Iterable[FieldNode]:
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set)


STATUS_FAILED = "scriptThrewException"


def _group(atoms: list[Atom], dims: set[str]) -> list[dict[str, Any]]:
    """Group the atoms by the requested dimensions, as the API does, summing and weighting quantiles."""
    pieces: list[tuple[dict[str, Any], Atom, int, int]] = []  # (dimensions, atom, requests, errors)
    for atom in atoms:
        base: dict[str, Any] = {
            "datetimeFiveMinutes": _ts(atom.bucket),
            "datetimeHour": _ts(atom.bucket.replace(minute=0)),
            "date": atom.bucket.date().isoformat(),
            "scriptName": atom.script,
            "scriptVersion": atom.version,
        }
        if "status" in dims:
            # Failed invocations are their own rows; `errors` counts them there.
            if atom.requests - atom.errors:
                pieces.append(({**base, "status": "success"}, atom, atom.requests - atom.errors, 0))
            if atom.errors:
                pieces.append(({**base, "status": STATUS_FAILED}, atom, atom.errors, atom.errors))
        else:
            pieces.append((base, atom, atom.requests, atom.errors))
    groups: dict[tuple[Any, ...], list[tuple[dict[str, Any], Atom, int, int]]] = {}
    for piece in pieces:
        key = tuple(piece[0].get(d) for d in sorted(dims))
        groups.setdefault(key, []).append(piece)
    return [_row(members, dims) for members in groups.values()]


def _row(members: list[tuple[dict[str, Any], Atom, int, int]], dims: set[str]) -> dict[str, Any]:
    requests = sum(m[2] for m in members)
    errors = sum(m[3] for m in members)

    def weighted(pick: Callable[[Profile], float]) -> float:
        # Quantiles of a group cannot be summed; a request-weighted mean is close enough for the emulator.
        total = sum(m[2] * pick(PROFILES[m[1].quality]) * (0.97 + 0.06 * m[1].jitter) for m in members)
        return round(total / requests, 1) if requests else 0.0

    wall_p50 = weighted(lambda p: p.wall_p50_us)
    cpu_p50 = weighted(lambda p: p.cpu_p50_us)
    return {
        "count": requests,
        "dimensions": {d: members[0][0].get(d) for d in dims},
        "sum": {
            "requests": requests,
            "errors": errors,
            "subrequests": requests * 2,
            "cpuTimeUs": round(requests * cpu_p50),
            "wallTime": round(requests * wall_p50),
            "duration": round(requests * wall_p50 / 1e6 * 0.128, 6),  # GB-s at 128 MB
            "clientDisconnects": 0,
        },
        "quantiles": {
            "cpuTimeP50": cpu_p50,
            "cpuTimeP99": weighted(lambda p: p.cpu_p99_us),
            "wallTimeP50": wall_p50,
            "wallTimeP99": weighted(lambda p: p.wall_p99_us),
            "durationP50": round(wall_p50 / 1e6 * 0.128, 6),
            "durationP99": round(weighted(lambda p: p.wall_p99_us) / 1e6 * 0.128, 6),
        },
        "avg": {"sampleInterval": 1.0},
        "_all": members[0][0],  # every dimension of the group, for orderBy on one that was not selected
    }


def _order_value(row: dict[str, Any], field: str) -> Any:
    if field == "count":
        return row["count"]
    if field.startswith("sum_"):
        return row["sum"].get(field[4:], 0)
    return row["_all"].get(field) or ""


def _like(value: str, pattern: str) -> bool:
    """SQL LIKE as the `_like` filters use it: `%` any run of characters, `_` one character."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _keep_http(atom: HttpAtom, flt: dict[str, Any]) -> bool:
    if flt.get("requestSource") not in (None, "eyeball"):
        return False  # every request the demo services answer comes from an eyeball (a client), none is internal
    checks: list[tuple[str, Any]] = [
        ("clientRequestHTTPHost", atom.host),
        ("clientRequestPath", atom.path),
        ("edgeResponseStatus", atom.status),
    ]
    for key, value in checks:
        if flt.get(key) is not None and flt[key] != value:
            return False
        if flt.get(f"{key}_in") is not None and value not in flt[f"{key}_in"]:
            return False
        if flt.get(f"{key}_neq") is not None and flt[f"{key}_neq"] == value:
            return False
    if flt.get("clientRequestPath_like") is not None and not _like(atom.path, str(flt["clientRequestPath_like"])):
        return False
    bounds = {
        "_geq": lambda a, b: a >= b,
        "_gt": lambda a, b: a > b,
        "_lt": lambda a, b: a < b,
        "_leq": lambda a, b: a <= b,
    }
    for suffix, compare in bounds.items():
        limit = flt.get(f"edgeResponseStatus{suffix}")
        if limit is not None and not compare(atom.status, int(limit)):
            return False
    if not all(_keep_http(atom, part) for part in flt.get("AND") or []):
        return False
    alternatives = flt.get("OR") or []
    return not alternatives or any(_keep_http(atom, part) for part in alternatives)


def _group_http(atoms: list[HttpAtom], dims: set[str]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[tuple[dict[str, Any], HttpAtom]]] = {}
    for atom in atoms:
        base: dict[str, Any] = {
            "datetimeMinute": _ts(atom.bucket),
            "datetimeFiveMinutes": _ts(atom.bucket),
            "datetimeHour": _ts(atom.bucket.replace(minute=0)),
            "date": atom.bucket.date().isoformat(),
            "clientRequestHTTPHost": atom.host,
            "clientRequestPath": atom.path,
            "clientRequestHTTPMethodName": atom.method,
            "edgeResponseStatus": atom.status,
            "coloCode": "SJC",
        }
        key = tuple(base.get(d) for d in sorted(dims))
        groups.setdefault(key, []).append((base, atom))
    rows = []
    for members in groups.values():
        count = sum(a.count for _, a in members)

        def weighted(index: int, members: list[tuple[dict[str, Any], HttpAtom]] = members, count: int = count) -> float:
            total = sum(a.count * TTFB_MS[a.quality][index] * (0.97 + 0.06 * a.jitter) for _, a in members)
            return round(total / count, 1) if count else 0.0

        p50, p99 = weighted(0), weighted(1)
        rows.append(
            {
                "count": count,
                "dimensions": {d: members[0][0].get(d) for d in dims},
                "sum": {"visits": count // 4, "edgeResponseBytes": count * 1_400},
                "avg": {
                    "sampleInterval": 1.0,
                    "edgeTimeToFirstByteMs": p50,
                    "originResponseDurationMs": round(p50 * 0.8, 1),
                },
                "quantiles": {
                    "edgeTimeToFirstByteMsP50": p50,
                    "edgeTimeToFirstByteMsP95": round(p50 + (p99 - p50) * 0.6, 1),
                    "edgeTimeToFirstByteMsP99": p99,
                    "originResponseDurationMsP50": round(p50 * 0.8, 1),
                    "originResponseDurationMsP95": round((p50 + (p99 - p50) * 0.6) * 0.85, 1),
                    "originResponseDurationMsP99": round(p99 * 0.9, 1),
                },
                "_all": members[0][0],
            }
        )
    return rows


def _error(now: datetime, message: str, *, path: Any = None, locations: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "path": list(path) if path else None}
    error["extensions"] = {"timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if locations:
        error["locations"] = [{"line": loc.line, "column": loc.column} for loc in locations]
    return error


def _errors(now: datetime, message: str, *, locations: Any = None) -> dict[str, Any]:
    return {"data": None, "errors": [_error(now, message, locations=locations)]}
