"""The Cloudflare client against the emulated API over real HTTP: results, errors, retries, call log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from incidentops.adapters.cloudflare import (
    DEFAULT_BASE_URL,
    AmbiguousWriteError,
    CloudflareClient,
    RetryPolicy,
    WorkerDeployment,
    block_rule,
    parse_retry_after,
)
from incidentops.errors import ApiError, IncidentOpsError
from incidentops.sandbox import world
from incidentops.sandbox.cloudflare import CloudflareEmulator, Served, envelope_error, rate_limit_fault, serving

T = TypeVar("T")
SEED = world.seed()
NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Waits:
    """An injected sleep that returns at once and a clock that moves by what was slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.slept = 0.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.slept += seconds

    def clock(self) -> float:
        return time.monotonic() + self.slept


@pytest.fixture(scope="module")
def _server() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def served(_server: Served) -> Served:
    """A freshly seeded emulator mounted on the module's server, with no faults left over."""
    # Rule changes reach the edge at once here; tests of propagation set their own delay.
    emulator = CloudflareEmulator(api_base_url=_server.base_url, propagation=(0.0, 0.0))
    with _server.hub.lock:
        _server.hub.faults.clear()
        _server.hub.log.clear()
    _server.hub.mounts = [("/client/v4", emulator.app)]
    return Served(emulator, _server.hub, _server.server)


@pytest.fixture
def waits() -> Waits:
    return Waits()


def client(
    served: Served, waits: Waits, *, token: str | None = None, rng: float = 0.0, **policy: Any
) -> CloudflareClient:
    settings = {"max_attempts": 4, "base_delay": 0.5, "max_delay": 8.0, "deadline": 30.0, "timeout": 5.0} | policy
    return CloudflareClient(
        token=token or served.emulator.token,
        account_id=served.emulator.account_id,
        base_url=served.base_url,
        retry=RetryPolicy(**settings),
        sleep=waits.sleep,
        clock=waits.clock,
        wall_clock=lambda: NOW,
        rng=lambda: rng,
    )


def posts(served: Served, suffix: str = "/deployments") -> int:
    return sum(1 for r in served.hub.log if r.method == "POST" and r.path.endswith(suffix))


# -- reading and writing -------------------------------------------------------------------------------


def test_versions_and_deployments_come_back_typed(served: Served, waits: Waits) -> None:
    async def scenario() -> None:
        async with client(served, waits) as cf:
            versions = await cf.list_worker_versions("api-worker")
            assert [v.id for v in versions] == [v.id for v in reversed(SEED.worker_versions["api-worker"])]
            assert versions[0].tag == "v1.4.0" and versions[0].author_email == "carol@acme.example"
            detail = await cf.get_worker_version("queue-consumer", SEED.good_target("queue-consumer"))
            assert "QUEUE_SIGNING_KEY" in detail.binding_names and detail.compatibility_date == "2026-10-01"
            deployments = await cf.list_worker_deployments("api-worker")
            assert all(isinstance(d, WorkerDeployment) for d in deployments)
            assert deployments[0].full_version_id == SEED.live("api-worker")
            assert deployments[1].full_version_id is None  # the 10/90 canary
            again = await cf.get_worker_deployment("api-worker", deployments[0].id)
            assert again == deployments[0]

    run(scenario())


def test_all_versions_follow_pages(served: Served, waits: Waits) -> None:
    served.emulator.add_versions("ingest-worker", 100)

    async def scenario() -> None:
        async with client(served, waits) as cf:
            deployable = await cf.list_worker_versions("ingest-worker")
            everything = await cf.list_worker_versions("ingest-worker", deployable=False)
            assert len(deployable) == 100 and len(everything) == 104
            assert SEED.good_target("ingest-worker") not in {v.id for v in deployable}
            assert [c.path.split("?")[1] for c in cf.calls[1:]] == ["page=1&per_page=100", "page=2&per_page=100"]

    run(scenario())


def test_rollback_deployment_is_recorded_with_the_exact_call(served: Served, waits: Waits) -> None:
    good = SEED.good_target("api-worker")

    async def scenario() -> WorkerDeployment:
        async with client(served, waits) as cf:
            created = await cf.create_worker_deployment("api-worker", good, message="INC-42 rollback")
            call = cf.calls[-1]
            assert (call.method, call.status, call.attempt) == ("POST", 200, 1)
            assert call.path == f"/accounts/{served.emulator.account_id}/workers/scripts/api-worker/deployments"
            assert call.describe().startswith(f"POST {call.path} -> 200 (")
            return created

    created = run(scenario())
    assert created.full_version_id == good and created.message == "INC-42 rollback"
    assert served.emulator.live_version("api-worker") == good


def test_secret_change_needs_explicit_force(served: Served, waits: Waits) -> None:
    good = SEED.good_target("queue-consumer")

    async def scenario() -> None:
        async with client(served, waits) as cf:
            with pytest.raises(ApiError) as caught:
                await cf.create_worker_deployment("queue-consumer", good, message="INC-1")
            assert caught.value.code == 10220 and caught.value.status == 400
            assert "QUEUE_SIGNING_KEY" in str(caught.value) and caught.value.hint
            assert served.emulator.live_version("queue-consumer") != good
            await cf.create_worker_deployment("queue-consumer", good, message="INC-1", force=True)
            assert cf.calls[-1].path.endswith("/deployments?force=true")

    run(scenario())
    assert served.emulator.live_version("queue-consumer") == good
    assert waits.waits == []


def test_pages_project_list_and_rollback(served: Served, waits: Waits) -> None:
    good = SEED.good_target("user-portal")
    preview = next(d for d in SEED.pages_deployments["user-portal"] if d.environment == "preview")

    async def scenario() -> None:
        async with client(served, waits) as cf:
            project = await cf.get_pages_project("user-portal")
            assert project.canonical_deployment and project.canonical_deployment.id == SEED.live("user-portal")
            production = await cf.list_pages_deployments("user-portal", env="production")
            assert {d.environment for d in production} == {"production"}
            targets = [d.id for d in production if d.is_rollback_target]
            assert targets[0] == SEED.live("user-portal") and good in targets
            with pytest.raises(ApiError) as caught:
                await cf.rollback_pages_deployment("user-portal", preview.id)
            assert caught.value.status == 400
            rolled = await cf.rollback_pages_deployment("user-portal", good)
            assert rolled.id == good
            assert (await cf.get_pages_deployment("user-portal", good)).commit_hash == rolled.commit_hash
            after = await cf.get_pages_project("user-portal")
            assert after.canonical_deployment and after.canonical_deployment.id == good

    run(scenario())
    assert served.emulator.is_good("user-portal")


def test_waf_rule_round_trip(served: Served, waits: Waits) -> None:
    zone = served.emulator.zone_id
    expression = 'http.host eq "api.example.com" and starts_with(http.request.uri.path, "/v1/reports")'

    async def scenario() -> None:
        async with client(served, waits) as cf:
            assert await cf.get_entrypoint_ruleset(zone) is None
            ruleset = await cf.put_entrypoint_ruleset(zone, [block_rule('http.host eq "old"', description="old")])
            ruleset = await cf.add_rule(zone, ruleset.id, block_rule(expression, description="INC-9", ref="INC-9"))
            rule = ruleset.find("INC-9")
            assert rule is not None and rule.enabled and ruleset.version == "2"
            assert served.emulator.blocking_rule("api.example.com", "/v1/reports/7")["ref"] == "INC-9"
            ruleset = await cf.set_rule_enabled(zone, ruleset.id, rule, False)
            assert ruleset.find("INC-9").enabled is False  # type: ignore[union-attr]
            assert served.emulator.blocking_rule("api.example.com", "/v1/reports/7") is None
            ruleset = await cf.delete_rule(zone, ruleset.id, rule.id)
            assert ruleset.find("INC-9") is None and len(ruleset.rules) == 1
            fetched = await cf.get_entrypoint_ruleset(zone)
            assert fetched == ruleset

    run(scenario())
    assert served.emulator.violations == []


def test_rollbacks_of_five_services_run_concurrently(served: Served, waits: Waits) -> None:
    async def scenario() -> None:
        async with client(served, waits) as cf:
            await asyncio.gather(
                *(cf.create_worker_deployment(n, SEED.good_target(n), message="INC-5", force=n == "queue-consumer")
                  for n in world.WORKERS),
                *(cf.rollback_pages_deployment(n, SEED.good_target(n)) for n in world.PAGES),
            )  # fmt: skip

    run(scenario())
    assert all(served.emulator.is_good(name) for name in world.SERVICES)
    assert served.emulator.violations == []


# -- retries -------------------------------------------------------------------------------------------


def test_429_honours_retry_after_seconds(served: Served, waits: Waits) -> None:
    served.hub.add_fault(rate_limit_fault("/deployments$", retry_after=3, count=2, method="GET"))

    async def scenario() -> None:
        async with client(served, waits) as cf:
            assert await cf.list_worker_deployments("api-worker")
            assert [c.status for c in cf.calls] == [429, 429, 200]
            assert [c.attempt for c in cf.calls] == [1, 2, 3]

    run(scenario())
    assert waits.waits == [3.0, 3.0]


def test_429_honours_retry_after_http_date(served: Served, waits: Waits) -> None:
    served.hub.add_fault(rate_limit_fault("/versions$", retry_after="Fri, 27 Nov 2026 10:00:05 GMT"))

    async def scenario() -> None:
        async with client(served, waits, rng=0.5) as cf:
            await cf.list_worker_versions("api-worker")

    run(scenario())
    assert waits.waits == [5.0 + 0.5 * 0.5]  # the date is 5 s after NOW, plus jitter of up to base_delay


def test_5xx_is_retried_with_backoff_then_given_up(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/deployments$", "status": 503, "count": None})

    async def scenario() -> None:
        async with client(served, waits, rng=1.0) as cf:
            with pytest.raises(ApiError) as caught:
                await cf.list_worker_deployments("api-worker")
            assert caught.value.status == 503
            assert "gave up after 4 attempts" in str(caught.value)
            assert str(caught.value).startswith("Cloudflare: GET /accounts/")
            assert len(cf.calls) == 4

    run(scenario())
    assert waits.waits == [0.5, 1.0, 2.0]  # full jitter at its ceiling: base * 2**(n-1)


def test_5xx_then_success(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/pages/projects/admin-pages$", "status": 502, "count": 1})

    async def scenario() -> None:
        async with client(served, waits, rng=0.25) as cf:
            project = await cf.get_pages_project("admin-pages")
            assert project.name == "admin-pages"

    run(scenario())
    assert waits.waits == [0.125]


def test_4xx_is_not_retried(served: Served, waits: Waits) -> None:
    async def scenario() -> None:
        async with client(served, waits) as cf:
            with pytest.raises(ApiError) as caught:
                await cf.list_worker_deployments("no-such-worker")
            assert (caught.value.status, caught.value.code) == (404, 10007)
            assert "This Worker does not exist on your account. [code 10007] (HTTP 404)" in str(caught.value)
            assert len(cf.calls) == 1

    run(scenario())
    assert waits.waits == []


def test_dropped_connection_is_retried_for_reads(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/deployments$", "method": "GET", "drop": True, "count": 1})

    async def scenario() -> None:
        async with client(served, waits, rng=0.5) as cf:
            deployments = await cf.list_worker_deployments("ingest-worker")
            assert deployments[0].full_version_id == SEED.live("ingest-worker")
            assert cf.calls[0].status is None and cf.calls[0].error
            assert cf.calls[1].status == 200

    run(scenario())
    assert waits.waits == [0.25]


def test_retry_after_beyond_the_deadline_fails_at_once(served: Served, waits: Waits) -> None:
    served.hub.add_fault(rate_limit_fault("/deployments$", retry_after=120, method="GET"))

    async def scenario() -> None:
        async with client(served, waits, deadline=30.0) as cf:
            with pytest.raises(ApiError) as caught:
                await cf.list_worker_deployments("api-worker")
            assert caught.value.code == 971 and caught.value.status == 429
            assert "30 s deadline" in str(caught.value)

    run(scenario())
    assert waits.waits == []


def test_backoff_stops_at_the_deadline(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/versions$", "status": 500, "count": None})

    async def scenario() -> None:
        async with client(served, waits, rng=1.0, max_attempts=50, base_delay=1.0, deadline=10.0) as cf:
            with pytest.raises(ApiError, match="deadline"):
                await cf.list_worker_versions("api-worker")

    run(scenario())
    assert waits.waits == [1.0, 2.0, 4.0]  # the next wait (8 s) would end after the 10 s deadline
    assert sum(waits.waits) <= 10.0


def test_slow_answer_times_out_and_is_retried_for_reads(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/deployments$", "method": "GET", "delay_ms": 800, "count": 1})

    async def scenario() -> None:
        async with client(served, waits, timeout=0.2) as cf:
            await cf.list_worker_deployments("api-worker")
            assert [c.error for c in cf.calls] == ["ReadTimeout", None]

    run(scenario())


# -- writes are not retried blindly -------------------------------------------------------------------


@pytest.mark.parametrize("fault", [{"status": 502}, {"drop": True}], ids=["5xx", "dropped"])
def test_deployment_post_is_not_retried_on_an_unknown_outcome(
    served: Served, waits: Waits, fault: dict[str, Any]
) -> None:
    injected = served.hub.add_fault({"path": "/deployments$", "method": "POST", "count": 5} | fault)
    good = SEED.good_target("api-worker")

    async def scenario() -> None:
        async with client(served, waits) as cf:
            with pytest.raises(AmbiguousWriteError) as caught:
                await cf.create_worker_deployment("api-worker", good, message="INC-3")
            assert "read the current state" in str(caught.value)
            assert [c.method for c in cf.calls] == ["POST"]

    run(scenario())
    assert injected.hits == 1 and waits.waits == []  # the server saw exactly one POST
    assert served.emulator.live_version("api-worker") == SEED.live("api-worker")


def test_timed_out_deployment_may_have_happened(served: Served, waits: Waits) -> None:
    # The answer comes too late, but Cloudflare still deploys: exactly why the POST must not be repeated.
    served.hub.add_fault({"path": "/deployments$", "method": "POST", "delay_ms": 600, "count": 1})
    good = SEED.good_target("ingest-worker")

    async def scenario() -> None:
        async with client(served, waits, timeout=0.2) as cf:
            with pytest.raises(AmbiguousWriteError):
                await cf.create_worker_deployment("ingest-worker", good, message="INC-4")
            for _ in range(50):
                current = (await cf.list_worker_deployments("ingest-worker"))[0]
                if current.full_version_id == good:
                    return
                await asyncio.sleep(0.05)
            pytest.fail("the late deployment never showed up")

    run(scenario())
    assert posts(served) == 1


def test_deployment_post_is_retried_after_a_429(served: Served, waits: Waits) -> None:
    served.hub.add_fault(rate_limit_fault("/deployments$", retry_after=2, method="POST"))
    good = SEED.good_target("api-worker")

    async def scenario() -> None:
        async with client(served, waits) as cf:
            await cf.create_worker_deployment("api-worker", good, message="INC-6")

    run(scenario())
    assert waits.waits == [2.0] and posts(served) == 2
    assert served.emulator.live_version("api-worker") == good
    deployments = served.emulator.workers["api-worker"].deployments
    assert len(deployments) == len(SEED.worker_deployments["api-worker"]) + 1


def test_pages_rollback_is_not_retried_on_5xx(served: Served, waits: Waits) -> None:
    served.hub.add_fault({"path": "/rollback$", "method": "POST", "status": 500, "count": 1})

    async def scenario() -> None:
        async with client(served, waits) as cf:
            with pytest.raises(AmbiguousWriteError) as caught:
                await cf.rollback_pages_deployment("admin-pages", SEED.good_target("admin-pages"))
            assert caught.value.status == 500

    run(scenario())
    assert posts(served, "/rollback") == 1


# -- secrets and configuration -------------------------------------------------------------------------


def test_token_never_appears_in_errors_or_calls(served: Served, waits: Waits) -> None:
    wrong = "wrong-token-0123456789abcdef"
    leaky = envelope_error(1234, f"token {served.emulator.token} is not allowed here")
    served.hub.add_fault({"path": "/pages/projects/admin-pages$", "status": 400, "body": leaky})

    async def scenario() -> None:
        async with client(served, waits, token=wrong) as cf:
            with pytest.raises(ApiError) as denied:
                await cf.list_worker_versions("api-worker")
            assert (denied.value.status, denied.value.code) == (403, 10000)
            assert wrong not in str(denied.value) and wrong not in repr(cf)
            assert all(wrong not in call.describe() for call in cf.calls)
        async with client(served, waits) as cf:
            with pytest.raises(ApiError) as echoed:
                await cf.get_pages_project("admin-pages")
            assert served.emulator.token not in str(echoed.value) and "***" in str(echoed.value)

    run(scenario())


def test_from_env_reads_the_wrangler_variables() -> None:
    env = {
        "CLOUDFLARE_API_TOKEN": "t0k",
        "CLOUDFLARE_ACCOUNT_ID": "acc",
        "CLOUDFLARE_API_BASE_URL": "http://127.0.0.1:9/client/v4",
    }
    cf = CloudflareClient.from_env(env=env)
    assert (cf.account_id, cf.base_url) == ("acc", "http://127.0.0.1:9/client/v4")
    assert CloudflareClient.from_env("from-config", env={"CLOUDFLARE_API_TOKEN": "t"}).base_url == DEFAULT_BASE_URL
    with pytest.raises(IncidentOpsError, match=r"CLOUDFLARE_ACCOUNT_ID is acc but incidentops\.yaml names"):
        CloudflareClient.from_env("from-config", env=env)  # never a silent call to the other account
    with pytest.raises(IncidentOpsError, match="CLOUDFLARE_API_TOKEN"):
        CloudflareClient.from_env(env={"CLOUDFLARE_ACCOUNT_ID": "acc"})
    with pytest.raises(IncidentOpsError, match="CLOUDFLARE_ACCOUNT_ID"):
        CloudflareClient.from_env(env={"CLOUDFLARE_API_TOKEN": "t"})


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 1.5 ", 1.5), ("Fri, 27 Nov 2026 10:01:00 GMT", 60.0), ("Fri, 27 Nov 2026 09:00:00 GMT", 0.0),
     ("soon", None), ("", None), (None, None)],
)  # fmt: skip
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_cloudflare_account_id_must_agree_with_the_configuration() -> None:
    env = {"CLOUDFLARE_API_TOKEN": "t" * 40, "CLOUDFLARE_ACCOUNT_ID": "b" * 32}
    with pytest.raises(IncidentOpsError) as err:
        CloudflareClient.from_env(account_id="a" * 32, env=env)
    assert "b" * 32 in str(err.value) and "a" * 32 in str(err.value) and "incidentops.yaml" in str(err.value)
    assert CloudflareClient.from_env(account_id="B" * 32, env=env).account_id == "B" * 32  # ids are hex: any case
    assert CloudflareClient.from_env(account_id=None, env=env).account_id == "b" * 32
    assert CloudflareClient.from_env(account_id="a" * 32, env={"CLOUDFLARE_API_TOKEN": "t" * 40}).account_id == "a" * 32
