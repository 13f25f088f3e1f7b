"""Emulated GraphQL Analytics over real HTTP, read by the real client: bad while a bad build serves, baseline after."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from incidentops.adapters.cloudflare import CloudflareClient, InvocationStats, RetryPolicy
from incidentops.errors import ApiError
from incidentops.sandbox import world
from incidentops.sandbox.cloudflare import Served, serving

T = TypeVar("T")
INCIDENT = datetime(2026, 11, 27, 3, 12, 9, tzinfo=UTC)
WEEK = timedelta(days=7)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(INCIDENT + timedelta(minutes=10))


@pytest.fixture
def served(clock: Clock) -> Iterator[Served]:
    with serving(clock=clock) as s:
        yield s


def client(served: Served, token: str | None = None) -> CloudflareClient:
    return CloudflareClient(
        token=token or served.emulator.token,
        account_id=served.emulator.account_id,
        base_url=served.base_url,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, deadline=5, timeout=2),
    )


async def worker(served: Served, script: str, start: datetime, end: datetime) -> InvocationStats:
    async with client(served) as cf:
        return await cf.worker_invocations(script, start, end)


async def pages(served: Served, project: str, start: datetime, end: datetime) -> InvocationStats:
    async with client(served) as cf:
        return await cf.pages_functions_invocations(project, start, end)


def rate(stats: InvocationStats) -> float:
    assert stats.error_rate is not None
    return stats.error_rate


def test_worker_metrics_are_bad_while_the_bad_version_serves_and_baseline_after_a_rollback(
    served: Served, clock: Clock
) -> None:
    # A week earlier api-worker's good v2 served: the baseline.
    baseline = run(worker(served, "api-worker", INCIDENT - WEEK - timedelta(hours=1), INCIDENT - WEEK))
    assert baseline.rows == 13 and 5000 < baseline.requests / 12 < 7000  # 02:10 … 03:10, the ends cut
    assert rate(baseline) < 0.005 and baseline.p99_ms is not None and baseline.p99_ms < 250

    during = run(worker(served, "api-worker", INCIDENT - timedelta(minutes=15), INCIDENT))
    assert rate(during) > 0.05 and during.p99_ms is not None and during.p99_ms > 2000

    good = world.stable_id("api-worker", "version", "2")
    clock.now = INCIDENT + timedelta(minutes=20)

    async def rollback() -> None:
        async with client(served) as cf:
            await cf.create_worker_deployment("api-worker", good, message="Roll back INC-0007")

    run(rollback())
    clock.now = INCIDENT + timedelta(minutes=40)
    after = run(worker(served, "api-worker", clock.now - timedelta(minutes=15), clock.now))
    assert rate(after) < 0.005 and after.p99_ms is not None and after.p99_ms < 1.25 * baseline.p99_ms
    # The bucket the rollback fell in mixes both builds in proportion to the time each served.
    bucket = datetime(2026, 11, 27, 3, 30, tzinfo=UTC)  # the rollback landed at 03:32:09
    straddle = run(worker(served, "api-worker", bucket, bucket + timedelta(minutes=5)))
    assert 0.002 < rate(straddle) < 0.08


def test_pages_functions_follow_the_canonical_deployment(served: Served, clock: Clock) -> None:
    script = world.pages_script_name("user-portal")
    baseline = run(pages(served, script, INCIDENT - WEEK - timedelta(hours=1), INCIDENT - WEEK))
    during = run(pages(served, script, INCIDENT - timedelta(minutes=15), INCIDENT))
    assert rate(baseline) < 0.005 < 0.05 < rate(during)
    assert during.p99_ms is None  # Pages Functions groups have no quantiles
    # Keyed by the internal script name only: the project name finds nothing, and a static project has none.
    assert run(pages(served, "user-portal", INCIDENT - timedelta(minutes=15), INCIDENT)).requests == 0
    static = world.pages_script_name("admin-pages")
    assert run(pages(served, static, INCIDENT - timedelta(minutes=15), INCIDENT)).requests == 0
    target = world.seed().good_target("user-portal")
    clock.now = INCIDENT + timedelta(minutes=20)

    async def rollback() -> None:
        async with client(served) as cf:
            await cf.rollback_pages_deployment("user-portal", target)

    run(rollback())
    clock.now = INCIDENT + timedelta(minutes=45)
    after = run(pages(served, script, clock.now - timedelta(minutes=15), clock.now))
    assert rate(after) < 0.005 and after.requests > 0


def test_no_data_before_a_service_existed_or_after_now(served: Served, clock: Clock) -> None:
    future = run(worker(served, "api-worker", clock.now + timedelta(minutes=5), clock.now + timedelta(hours=1)))
    assert future.requests == 0 and future.error_rate is None and future.p99_ms is None
    unknown = run(worker(served, "no-such-worker", clock.now - timedelta(hours=1), clock.now))
    assert unknown.rows == 0


def test_an_error_inside_a_200_answer_becomes_a_clear_api_error(served: Served, clock: Clock) -> None:
    with pytest.raises(ApiError) as caught:
        run(worker(served, "api-worker", clock.now - timedelta(days=40), clock.now - timedelta(days=39)))
    err = caught.value
    assert err.status == 200
    assert "GraphQL analytics query failed" in str(err) and "cannot request data older than 2678400s" in str(err)
    assert err.hint and "baseline window" in err.hint

    async def other_account() -> None:
        cf = client(served)
        cf.account_id = "0" * 32
        async with cf:
            await cf.worker_invocations("api-worker", clock.now - timedelta(hours=1), clock.now)

    with pytest.raises(ApiError, match="does not have access") as caught:
        run(other_account())
    assert caught.value.hint and "Account Analytics: Read" in caught.value.hint


def test_the_endpoint_answers_200_with_errors_and_no_data(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.emulator.token}"}
    bad = httpx.post(f"{served.base_url}/graphql", json={"query": "{ viewer { "}, headers=headers)
    assert bad.status_code == 200
    body = bad.json()
    assert body["data"] is None and "Syntax Error" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["timestamp"].endswith("Z")
    unknown = httpx.post(f"{served.base_url}/graphql", json={"query": "{ viewer { budget } }"}, headers=headers)
    assert unknown.status_code == 200 and "Cannot query field 'budget'" in unknown.json()["errors"][0]["message"]
    # Same token rules as REST.
    denied = httpx.post(f"{served.base_url}/graphql", json={"query": "{ viewer { __typename } }"})
    assert denied.status_code == 400 and denied.json()["errors"][0]["code"] == 9106


def graphql(served: Served, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        async with client(served) as cf:
            return await cf.graphql(query, variables)

    return run(call())


def test_rows_are_grouped_by_the_requested_dimensions_and_typed_variables_of_either_spelling(
    served: Served,
) -> None:
    # `String!` variables (many clients) work as well as Cloudflare's `string`; status splits failures out.
    query = """
    query ($tag: String!, $start: String!, $end: String!) {
      viewer { accounts(filter: {accountTag: $tag}) {
        settings { workersInvocationsAdaptive { notOlderThan maxPageSize } }
        canary: workersInvocationsAdaptive(
          limit: 100, filter: {scriptName: "api-worker", datetime_geq: $start, datetime_leq: $end}
          orderBy: [datetimeFiveMinutes_DESC]
        ) { dimensions { datetimeFiveMinutes scriptVersion status } sum { requests errors } }
      } }
    }"""
    # 2026-11-21: v1.3.0 serves 10% as a canary next to v1.2.0.
    start = "2026-11-21T10:00:00Z"
    data = graphql(served, query, {"tag": served.emulator.account_id, "start": start, "end": "2026-11-21T10:10:00Z"})
    account = data["viewer"]["accounts"][0]
    assert account["settings"]["workersInvocationsAdaptive"] == {"notOlderThan": 2678400, "maxPageSize": 10000}
    rows = account["canary"]
    assert [r["dimensions"]["datetimeFiveMinutes"] for r in rows] == ["2026-11-21T10:05:00Z"] * 4 + [
        "2026-11-21T10:00:00Z"
    ] * 4
    versions = {r["dimensions"]["scriptVersion"] for r in rows}
    assert versions == {world.stable_id("api-worker", "version", n) for n in ("2", "3")}
    by_version: dict[str, list[int]] = {}
    for row in rows:
        assert (row["dimensions"]["status"] == "scriptThrewException") == (row["sum"]["errors"] > 0)
        by_version.setdefault(row["dimensions"]["scriptVersion"], []).append(row["sum"]["requests"])
    canary, stable = (sum(by_version[world.stable_id("api-worker", "version", n)]) for n in ("3", "2"))
    assert 0.08 < canary / (canary + stable) < 0.12


def test_limits_are_errors_too(served: Served) -> None:
    query = """query ($tag: string) { viewer { accounts(filter: {accountTag: $tag}) {
      workersInvocationsAdaptive(limit: 20000, filter: {datetime_geq: "2026-11-26T00:00:00Z",
        datetime_leq: "2026-11-26T01:00:00Z"}) { sum { requests } } } } }"""
    with pytest.raises(ApiError, match="limit must be between 1 and 10000"):
        graphql(served, query, {"tag": served.emulator.account_id})
    no_window = query.replace('datetime_leq: "2026-11-26T01:00:00Z"', "").replace("20000", "5")
    with pytest.raises(ApiError, match="a time range is required"):
        graphql(served, no_window, {"tag": served.emulator.account_id})
