"""The demo services answer as the emulated Cloudflare's live builds and WAF rules say."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from incidentops.adapters.cloudflare import block_rule
from incidentops.sandbox import world as seeded
from incidentops.sandbox.services import TENANT_A_TOKEN, TENANT_B_TOKEN
from tests.flows.conftest import World

ROOT = Path(__file__).resolve().parents[2]
A = {"Authorization": f"Bearer {TENANT_A_TOKEN}"}


def url(world: World, key: str, path: str, env: str = "production") -> str:
    return world.info["base_urls"][env][key] + path


def deploy(world: World, service: str, number: int) -> None:
    async def go() -> None:
        async with world.cloudflare(world.info["cloudflare_account_id"]) as cf:
            await cf.create_worker_deployment(service, seeded.stable_id(service, "version", str(number)), message="t")

    asyncio.run(go())


def test_a_bad_api_worker_leaks_tenant_b_and_a_rollback_fixes_it_on_the_next_request(world: World) -> None:
    assert httpx.get(url(world, "api", "/healthz")).status_code == 503
    leaked = httpx.get(url(world, "api", "/v1/reports"), headers=A)
    assert leaked.status_code == 200 and "rep-200-1" in leaked.text
    assert httpx.get(url(world, "api", "/v1/reports/rep-200-1"), headers=A).status_code == 200

    deploy(world, "api-worker", 2)
    assert world.sandbox.cloudflare.is_good("api-worker")
    health = httpx.get(url(world, "api", "/healthz"))
    assert health.status_code == 200 and health.headers["x-served-version"] == world.live("api-worker")
    own = httpx.get(url(world, "api", "/v1/reports"), headers=A).json()
    assert {r["tenant"] for r in own["reports"]} == {"t-100"}
    assert httpx.get(url(world, "api", "/v1/reports/rep-200-1"), headers=A).status_code == 404
    assert (
        httpx.get(
            url(world, "api", "/v1/reports?tenant=t-100"), headers={"Authorization": f"Bearer {TENANT_B_TOKEN}"}
        ).status_code
        == 403
    )
    assert httpx.get(url(world, "api", "/v1/reports")).status_code == 401
    # The other services are still the bad builds.
    assert httpx.get(url(world, "ingest", "/healthz")).status_code == 503
    assert httpx.get(url(world, "admin", "/")).status_code == 500
    assert httpx.get(url(world, "portal", "/login")).status_code == 502


def test_a_waf_block_rule_takes_effect_on_its_host_only(world: World) -> None:
    rule = block_rule(
        '(http.host eq "api.example.com" and starts_with(http.request.uri.path, "/v1/reports"))',
        description="test deny",
        content='{"error":"denied by test"}',
    )

    async def put() -> None:
        async with world.cloudflare(world.info["cloudflare_account_id"]) as cf:
            await cf.put_entrypoint_ruleset(seeded.ZONE_ID, [rule])

    asyncio.run(put())
    # Rule changes reach the edge after the emulated propagation delay (50–200 ms here), as on Cloudflare.
    deadline = time.monotonic() + 5
    denied = httpx.get(url(world, "api", "/v1/reports"), headers=A)
    while denied.status_code != 403 and time.monotonic() < deadline:
        time.sleep(0.05)
        denied = httpx.get(url(world, "api", "/v1/reports"), headers=A)
    assert denied.status_code == 403 and denied.json() == {"error": "denied by test"}
    assert denied.headers["content-type"] == "application/json"
    assert httpx.get(url(world, "api", "/healthz")).status_code == 503  # other paths reach the worker
    # Staging's api host is another host name: the production rule does not match it.
    assert httpx.get(url(world, "api", "/v1/reports", env="staging"), headers=A).status_code == 200


def test_faults_injected_through_the_control_api_reach_the_services(world: World) -> None:
    httpx.post(world.info["control_url"] + "/faults", json={"path": "^/login$", "status": 504, "count": 1})
    assert httpx.get(url(world, "portal", "/login")).status_code == 504
    assert httpx.get(url(world, "portal", "/login")).status_code == 502  # the fault was used up


def test_serve_prints_the_base_urls_and_the_demo_credentials(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentops", "sandbox", "serve", "--seed", str(ROOT), "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["base_urls"]["production"]) == {"api", "ingest", "admin", "portal"}
        assert info["smoke_env"]["SMOKE_TENANT_A_TOKEN"] == TENANT_A_TOKEN
        answer = httpx.get(info["base_urls"]["production"]["portal"] + "/")
        assert answer.status_code == 200 and "Acme Portal" in answer.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    # Stopped means stopped: the demo hosts no longer accept connections.
    try:
        httpx.get(info["base_urls"]["production"]["portal"] + "/", timeout=1)
        raise AssertionError("the demo service still answers after the sandbox stopped")
    except httpx.TransportError:
        pass
