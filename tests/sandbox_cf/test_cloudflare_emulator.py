"""Contract tests of the emulated Cloudflare API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from incidentops.sandbox import world
from incidentops.sandbox.cloudflare import matches_expression, rate_limit_fault
from incidentops.sandbox.http import Request, Response
from tests.sandbox_cf.conftest import CloudflareApi

SEED = world.seed()
WAF = "rulesets/phases/http_request_firewall_custom/entrypoint"


def scripts(cf: CloudflareApi, name: str) -> str:
    return f"{cf.account}/workers/scripts/{name}"


def deploy(cf: CloudflareApi, name: str, body: dict, query: str = "") -> httpx.Response:
    return cf.send("POST", f"{scripts(cf, name)}/deployments{query}", json=body)


def full(version_id: str, message: str = "INC-1 rollback") -> dict:
    return {
        "strategy": "percentage",
        "versions": [{"version_id": version_id, "percentage": 100}],
        "annotations": {"workers/message": message},
    }


def error_codes(response: httpx.Response) -> list[int]:
    body = response.json()
    assert body["success"] is False and body["result"] is None
    return [e["code"] for e in body["errors"]]


def block(expression: str, status: int = 403, **extra: object) -> dict:
    response = {"status_code": status, "content_type": "application/json", "content": '{"error":"blocked"}'}
    return {"action": "block", "expression": expression, "action_parameters": {"response": response}, **extra}


# -- conventions ---------------------------------------------------------------------------------------


def test_success_envelope_and_rate_limit_headers(cf: CloudflareApi) -> None:
    response = cf.get(f"{scripts(cf, 'api-worker')}/deployments")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    assert isinstance(body["result"]["deployments"], list)
    assert response.headers["Ratelimit"] == '"default";r=50;t=30'
    assert response.headers["Ratelimit-Policy"] == '"burst";q=100;w=60'


def test_unknown_route_is_404_with_route_codes(cf: CloudflareApi) -> None:
    response = cf.get("/accounts/nope/whatever")
    assert response.status_code == 404
    assert error_codes(response) == [7003, 7000]
    wrong_account = cf.get("/accounts/0123456789abcdef0123456789abcdef/workers/scripts/api-worker/deployments")
    assert wrong_account.status_code == 404 and error_codes(wrong_account) == [7003, 7000]


def test_missing_credentials_are_400_9106(cf: CloudflareApi) -> None:
    response = httpx.get(f"{cf.served.base_url}{scripts(cf, 'api-worker')}/deployments")
    assert response.status_code == 400
    assert error_codes(response) == [9106]


def test_wrong_token_is_403_10000_and_verify_says_invalid(cf: CloudflareApi) -> None:
    headers = {"Authorization": "Bearer not-the-token"}
    response = httpx.get(f"{cf.served.base_url}{scripts(cf, 'api-worker')}/versions", headers=headers)
    assert response.status_code == 403 and error_codes(response) == [10000]
    verify = httpx.get(f"{cf.served.base_url}/user/tokens/verify", headers=headers)
    assert verify.status_code == 401 and error_codes(verify) == [1000]


def test_whoami_endpoints_wrangler_calls(cf: CloudflareApi) -> None:
    assert cf.get("/user/tokens/verify").json()["result"]["status"] == "active"
    assert cf.get("/user").json()["result"]["email"] == world.USER_EMAIL
    accounts = cf.get("/accounts", params={"page": 1}).json()
    assert [a["id"] for a in accounts["result"]] == [cf.emulator.account_id]
    assert accounts["result_info"]["total_count"] == 1
    memberships = cf.get("/memberships", params={"page": 1}).json()["result"]
    assert memberships[0]["account"]["id"] == cf.emulator.account_id


def test_injected_rate_limit_carries_code_971(cf: CloudflareApi) -> None:
    cf.served.hub.add_fault(rate_limit_fault("/deployments$", retry_after=7))
    limited = cf.get(f"{scripts(cf, 'api-worker')}/deployments")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert error_codes(limited) == [971]
    assert cf.get(f"{scripts(cf, 'api-worker')}/deployments").status_code == 200  # count=1


# -- Workers versions ----------------------------------------------------------------------------------


def test_versions_list_is_newest_first_with_items(cf: CloudflareApi) -> None:
    body = cf.get(f"{scripts(cf, 'api-worker')}/versions", params={"deployable": "true"}).json()
    items = body["result"]["items"]
    created = [item["metadata"]["created_on"] for item in items]
    assert created == sorted(created, reverse=True)
    assert [item["id"] for item in items] == [v.id for v in reversed(SEED.worker_versions["api-worker"])]
    assert items[0]["annotations"]["workers/tag"] == "v1.4.0"
    assert body["result_info"]["page"] == 1


def test_versions_list_paginates_without_deployable(cf: CloudflareApi) -> None:
    body = cf.get(f"{scripts(cf, 'api-worker')}/versions", params={"page": 2, "per_page": 3}).json()
    assert [i["number"] for i in body["result"]["items"]] == [1]
    assert body["result_info"] == {"page": 2, "per_page": 3, "count": 1, "total_count": 4, "total_pages": 2}


def test_version_detail_echoes_id_and_has_resources(cf: CloudflareApi) -> None:
    version = SEED.worker_versions["queue-consumer"][1]
    result = cf.get(f"{scripts(cf, 'queue-consumer')}/versions/{version.id}").json()["result"]
    assert result["id"] == version.id
    assert isinstance(result["resources"]["bindings"], list)
    assert "QUEUE_SIGNING_KEY" in [b["name"] for b in result["resources"]["bindings"]]
    assert result["resources"]["script_runtime"]["compatibility_date"] == "2026-10-01"
    assert result["resources"]["script"]["handlers"] == ["queue"]


def test_unknown_worker_and_version_are_404(cf: CloudflareApi) -> None:
    missing = cf.get(f"{scripts(cf, 'no-such-worker')}/deployments")
    assert missing.status_code == 404 and error_codes(missing) == [10007]
    version = cf.get(f"{scripts(cf, 'api-worker')}/versions/{uuid.uuid4()}")
    assert version.status_code == 404 and error_codes(version)


def test_only_the_newest_100_versions_are_deployable(cf: CloudflareApi) -> None:
    good = SEED.good_target("api-worker")
    cf.emulator.add_versions("api-worker", 100)
    listed = cf.get(f"{scripts(cf, 'api-worker')}/versions", params={"deployable": "true"}).json()["result"]
    assert len(listed["items"]) == 100
    assert good not in [item["id"] for item in listed["items"]]
    everything = cf.get(f"{scripts(cf, 'api-worker')}/versions", params={"per_page": 100}).json()
    assert everything["result_info"]["total_count"] == 104
    refused = deploy(cf, "api-worker", full(good))
    assert refused.status_code == 400
    assert "100 most recent" in refused.json()["errors"][0]["message"]
    assert cf.emulator.live_version("api-worker") != good


# -- Workers deployments -------------------------------------------------------------------------------


def test_deployments_newest_first_and_live_is_bad(cf: CloudflareApi) -> None:
    deployments = cf.get(f"{scripts(cf, 'api-worker')}/deployments").json()["result"]["deployments"]
    created = [d["created_on"] for d in deployments]
    assert created == sorted(created, reverse=True)
    assert deployments[0]["versions"] == [{"version_id": cf.emulator.live_version("api-worker"), "percentage": 100}]
    assert cf.emulator.is_good("api-worker") is False
    canary = deployments[1]
    assert sorted(v["percentage"] for v in canary["versions"]) == [10, 90]


def test_rollback_creates_a_deployment_that_becomes_live(cf: CloudflareApi) -> None:
    good = SEED.good_target("api-worker")
    body = full(good) | {"code_update_strategy": {"mode": "deferred", "max_delay": 300}}
    response = deploy(cf, "api-worker", body)
    assert response.status_code == 200
    created = response.json()["result"]
    assert created["versions"] == [{"version_id": good, "percentage": 100}]
    assert created["annotations"]["workers/message"] == "INC-1 rollback"
    assert created["annotations"]["workers/triggered_by"] == "rollback"
    listed = cf.get(f"{scripts(cf, 'api-worker')}/deployments").json()["result"]["deployments"]
    assert listed[0]["id"] == created["id"]
    assert cf.get(f"{scripts(cf, 'api-worker')}/deployments/{created['id']}").json()["result"] == created
    assert cf.emulator.live_version("api-worker") == good
    assert cf.emulator.is_good("api-worker") is True


def test_split_deployment_of_two_versions(cf: CloudflareApi) -> None:
    v = SEED.worker_versions["ingest-worker"]
    body = {"strategy": "percentage", "versions": [{"version_id": v[2].id, "percentage": 75},
                                                   {"version_id": v[3].id, "percentage": 25}]}  # fmt: skip
    assert deploy(cf, "ingest-worker", body).status_code == 200
    assert cf.emulator.live_version("ingest-worker") == v[2].id
    assert cf.emulator.is_good("ingest-worker") is False  # 25% still runs the bad version


@pytest.mark.parametrize(
    ("versions", "why"),
    [
        ([], "one or two"),
        ([("v1", 50), ("v2", 30), ("v3", 20)], "one or two"),
        ([("v2", 60), ("v3", 30)], "add up to 100"),
        ([("v2", 50), ("v2", 50)], "only once"),
        ([("v2", 0)], "between 0.01 and 100"),
    ],
)
def test_deployment_body_rules(cf: CloudflareApi, versions: list[tuple[str, float]], why: str) -> None:
    ids = {f"v{n}": v.id for n, v in enumerate(SEED.worker_versions["api-worker"], start=1)}
    body = {"strategy": "percentage", "versions": [{"version_id": ids[k], "percentage": p} for k, p in versions]}
    response = deploy(cf, "api-worker", body)
    assert response.status_code == 400
    assert why in response.json()["errors"][0]["message"]
    cf.emulator.violations.clear()  # some of these bodies also break the schema; that is checked below


def test_wrong_strategy_is_refused_and_recorded_as_a_request_violation(cf: CloudflareApi) -> None:
    body = full(SEED.good_target("api-worker")) | {"strategy": "immediate"}
    response = deploy(cf, "api-worker", body)
    assert response.status_code == 400
    assert "percentage" in response.json()["errors"][0]["message"]
    kinds = [(v["kind"], v["method"]) for v in cf.emulator.violations]
    assert kinds == [("request", "POST")]
    cf.emulator.violations.clear()


def test_unknown_version_cannot_be_deployed(cf: CloudflareApi) -> None:
    response = deploy(cf, "api-worker", full(str(uuid.uuid4())))
    assert response.status_code == 404
    assert cf.emulator.live_version("api-worker") == SEED.live("api-worker")


def test_message_is_truncated_to_1000_bytes(cf: CloudflareApi) -> None:
    message = "é" * 600  # 1200 bytes in UTF-8
    created = deploy(cf, "api-worker", full(SEED.good_target("api-worker"), message)).json()["result"]
    kept = created["annotations"]["workers/message"]
    assert len(kept.encode()) == 1000 and kept == "é" * 500


def test_secret_change_blocks_rollback_until_forced(cf: CloudflareApi) -> None:
    good = SEED.good_target("queue-consumer")
    blocked = deploy(cf, "queue-consumer", full(good))
    assert blocked.status_code == 400
    assert error_codes(blocked) == [10220]
    assert blocked.json()["errors"][0]["message"].endswith("The following secrets have changed: QUEUE_SIGNING_KEY")
    assert cf.emulator.live_version("queue-consumer") != good
    forced = deploy(cf, "queue-consumer", full(good), "?force=true")
    assert forced.status_code == 200
    assert cf.emulator.live_version("queue-consumer") == good


def test_the_live_deployment_cannot_be_deleted(cf: CloudflareApi) -> None:
    deployments = cf.get(f"{scripts(cf, 'ingest-worker')}/deployments").json()["result"]["deployments"]
    live, older = deployments[0]["id"], deployments[-1]["id"]
    assert cf.send("DELETE", f"{scripts(cf, 'ingest-worker')}/deployments/{live}").status_code == 400
    assert cf.send("DELETE", f"{scripts(cf, 'ingest-worker')}/deployments/{older}").json()["success"] is True
    assert cf.get(f"{scripts(cf, 'ingest-worker')}/deployments/{older}").status_code == 404


def test_concurrent_deployments_are_all_recorded(cf: CloudflareApi) -> None:
    v = SEED.worker_versions["ingest-worker"]
    url = f"{cf.served.base_url}{scripts(cf, 'ingest-worker')}/deployments"
    headers = {"Authorization": f"Bearer {cf.emulator.token}"}
    ids: list[str] = []

    def post(n: int) -> None:
        response = httpx.post(url, json=full(v[n % 4].id, f"run {n}"), headers=headers, timeout=10)
        ids.append(response.json()["result"]["id"])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 12
    # Every one was recorded; the list shows only the newest 10 of the 16 (each one fetched by id).
    for ident in ids:
        assert cf.get(f"{scripts(cf, 'ingest-worker')}/deployments/{ident}").status_code == 200
    assert len(cf.emulator.workers["ingest-worker"].deployments) == 4 + 12


# -- Pages ---------------------------------------------------------------------------------------------


def project(cf: CloudflareApi, name: str) -> str:
    return f"{cf.account}/pages/projects/{name}"


def test_pages_project_shows_canonical_and_latest(cf: CloudflareApi) -> None:
    result = cf.get(project(cf, "admin-pages")).json()["result"]
    assert result["name"] == "admin-pages"
    assert result["canonical_deployment"]["id"] == SEED.live("admin-pages")
    assert result["latest_deployment"]["id"] == SEED.pages_deployments["admin-pages"][-1].id
    assert cf.emulator.is_good("admin-pages") is False


def test_pages_deployments_list_is_an_array_with_page_info(cf: CloudflareApi) -> None:
    body = cf.get(f"{project(cf, 'user-portal')}/deployments").json()
    assert isinstance(body["result"], list) and len(body["result"]) == 5
    assert body["result_info"] == {"page": 1, "per_page": 25, "count": 5, "total_count": 5, "total_pages": 1}
    created = [d["created_on"] for d in body["result"]]
    assert created == sorted(created, reverse=True)
    production = cf.get(f"{project(cf, 'user-portal')}/deployments", params={"env": "production"}).json()["result"]
    assert {d["environment"] for d in production} == {"production"} and len(production) == 4
    statuses = {d["latest_stage"]["status"] for d in production}
    assert statuses == {"success", "failure"}
    second = cf.get(f"{project(cf, 'user-portal')}/deployments", params={"per_page": 2, "page": 3}).json()
    assert len(second["result"]) == 1 and second["result_info"]["total_pages"] == 3


def test_pages_rollback_only_to_successful_production(cf: CloudflareApi) -> None:
    pages = SEED.pages_deployments["admin-pages"]
    preview = next(d for d in pages if d.environment == "preview")
    failed = next(d for d in pages if d.status == "failure")
    for target in (preview, failed):
        refused = cf.send("POST", f"{project(cf, 'admin-pages')}/deployments/{target.id}/rollback")
        assert refused.status_code == 400
        assert "only rollback to successful builds on production" in refused.json()["errors"][0]["message"]
    good = SEED.good_target("admin-pages")
    done = cf.send("POST", f"{project(cf, 'admin-pages')}/deployments/{good}/rollback")
    assert done.status_code == 200 and done.json()["result"]["id"] == good
    assert cf.get(project(cf, "admin-pages")).json()["result"]["canonical_deployment"]["id"] == good
    assert cf.emulator.live_version("admin-pages") == good and cf.emulator.is_good("admin-pages")


def test_pages_unknown_project_and_deployment(cf: CloudflareApi) -> None:
    assert cf.get(project(cf, "nope")).status_code == 404
    assert cf.get(f"{project(cf, 'admin-pages')}/deployments/{uuid.uuid4()}").status_code == 404


# -- WAF rulesets --------------------------------------------------------------------------------------


def test_waf_rules_lifecycle(cf: CloudflareApi) -> None:
    missing = cf.get(f"{cf.zone}/{WAF}")
    assert missing.status_code == 404 and error_codes(missing)

    export = 'http.host eq "api.example.com" and starts_with(http.request.uri.path, "/v1/export")'
    created = cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [block(export, description="INC-1 deny")]})
    ruleset = created.json()["result"]
    assert ruleset["version"] == "1" and ruleset["phase"] == "http_request_firewall_custom"
    first = ruleset["rules"][0]
    assert first["ref"] == first["id"] and first["enabled"] is True
    assert cf.emulator.blocking_rule("api.example.com", "/v1/export/all")["id"] == first["id"]
    assert cf.emulator.blocking_rule("api.example.com", "/v1/reports") is None

    rules_url = f"{cf.zone}/rulesets/{ruleset['id']}/rules"
    reports = block('http.request.uri.path eq "/v1/reports"', ref="INC-2", description="INC-2 deny")
    added = cf.send("POST", rules_url, json=reports | {"position": {"before": ""}}).json()["result"]
    assert added["version"] == "2"
    assert [r["ref"] for r in added["rules"]] == ["INC-2", first["id"]]
    assert cf.emulator.blocking_rule("x.example.com", "/v1/reports")["ref"] == "INC-2"

    second_id = added["rules"][0]["id"]
    # The description types a PATCH body as a whole rule (one of 18 kinds, told apart by `action`).
    disabled = cf.send("PATCH", f"{rules_url}/{second_id}", json=reports | {"enabled": False}).json()["result"]
    assert disabled["version"] == "3" and disabled["rules"][0]["enabled"] is False
    assert disabled["rules"][0]["id"] == second_id and disabled["rules"][0]["ref"] == "INC-2"
    assert disabled["rules"][0]["version"] == "3" and disabled["rules"][1]["version"] == "1"
    assert cf.emulator.blocking_rule("x.example.com", "/v1/reports") is None
    assert [r["ref"] for r in cf.emulator.active_block_rules()] == [first["id"]]

    removed = cf.send("DELETE", f"{rules_url}/{first['id']}").json()["result"]
    assert removed["version"] == "4" and [r["id"] for r in removed["rules"]] == [second_id]
    assert cf.get(f"{cf.zone}/{WAF}").json()["result"] == removed
    assert cf.send("DELETE", f"{rules_url}/{first['id']}").status_code == 404


def test_put_replaces_every_rule(cf: CloudflareApi) -> None:
    one = cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [block('http.host eq "a"'), block('http.host eq "b"')]})
    assert len(one.json()["result"]["rules"]) == 2
    two = cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [block('http.host eq "c"')]}).json()["result"]
    assert two["version"] == "2" and [r["expression"] for r in two["rules"]] == ['http.host eq "c"']


def test_block_status_outside_4xx_is_refused(cf: CloudflareApi) -> None:
    refused = cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [block('http.host eq "a"', status=503)]})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["source"]["pointer"] == "/rules/0/action_parameters/response/status_code"
    assert cf.get(f"{cf.zone}/{WAF}").status_code == 404
    assert [v["kind"] for v in cf.emulator.violations] == ["request"]  # the description says 400-499 too
    cf.emulator.violations.clear()


def test_rules_on_an_unknown_ruleset_or_zone(cf: CloudflareApi) -> None:
    rule = block('http.host eq "a"')
    assert cf.send("POST", f"{cf.zone}/rulesets/{'0' * 32}/rules", json=rule).status_code == 404
    other_zone = cf.send("PUT", f"/zones/{'1' * 32}/{WAF}", json={"rules": [rule]})
    assert other_zone.status_code == 404 and error_codes(other_zone) == [7003, 7000]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('http.host eq "api.example.com"', True),
        ('http.host ne "api.example.com"', False),
        ('starts_with(http.request.uri.path, "/v1/")', True),
        ('ends_with(http.request.uri.path, ".csv")', False),
        ('http.request.uri.path contains "export" and not http.request.method eq "POST"', True),
        ('(http.host eq "x" or http.host eq "api.example.com") && http.request.method in {"GET" "HEAD"}', True),
        ('http.host == "x" || http.request.uri.path != "/v1/export/all"', False),
    ],
)
def test_rule_expressions(expression: str, expected: bool) -> None:
    fields = {"http.host": "api.example.com", "http.request.uri.path": "/v1/export/all", "http.request.method": "GET"}
    assert matches_expression(expression, fields) is expected


def test_unreadable_expressions_raise() -> None:
    with pytest.raises(ValueError):
        matches_expression('http.host ~ "x"', {"http.host": "x"})
    with pytest.raises(ValueError):
        matches_expression('url_decode(http.host) eq "x"', {"http.host": "x"})


def test_paths_compare_case_sensitively_unless_lowered() -> None:
    fields = {"http.request.uri.path": "/V1/Reports"}
    assert matches_expression('http.request.uri.path eq "/v1/reports"', fields) is False
    assert matches_expression('lower(http.request.uri.path) eq "/v1/reports"', fields) is True
    assert matches_expression('starts_with(lower(http.request.uri.path), "/v1/rep")', fields) is True


# -- the seeded world ----------------------------------------------------------------------------------


def test_world_is_deterministic_and_every_service_has_a_bad_live_and_a_verified_good() -> None:
    again = world.seed()
    for service in world.SERVICES:
        assert SEED.live(service) == again.live(service)
        assert SEED.quality(service, SEED.live(service)) == "bad"
        good = SEED.good_target(service)
        assert good != SEED.live(service) and SEED.quality(service, good) == "good"
    for name in world.PAGES:
        pages = SEED.pages_deployments[name]
        assert any(p.environment == "preview" for p in pages)
        assert any(p.status == "failure" for p in pages)
    assert len(world.ACCOUNT_ID) == 32 and len(world.ZONE_ID) == 32


def test_ledger_history_ends_with_the_live_unverified_pins() -> None:
    history = world.ledger_history()
    assert history == world.ledger_history()
    stamps = [stamp for _, _, stamp, _ in history]
    assert stamps == sorted(stamps)
    last = history[-1][3]
    assert last["environment"] == "production"
    assert set(last["services"]) == set(world.SERVICES)
    for name, pin in last["services"].items():
        assert pin["version"] == SEED.live(name) and pin["verified"] is False
        assert pin["kind"] == ("worker" if name in world.WORKERS else "pages")
    for name in world.SERVICES:
        verified = [doc["services"][name]["version"] for *_, doc in history if doc["services"][name]["verified"]]
        assert verified[-1] == SEED.good_target(name)


def test_a_response_that_breaks_the_description_is_recorded(cf: CloudflareApi) -> None:
    path = f"{scripts(cf, 'api-worker')}/deployments"
    request = Request("GET", path, "/client/v4" + path, {}, {}, b"")
    wrong = {"success": True, "errors": [], "messages": [], "result": {"deployments": [{"versions": "all"}]}}
    cf.emulator.validate(request, Response(200, wrong))
    assert [(v["kind"], v["path"]) for v in cf.emulator.violations] == [("response", path)]
    cf.emulator.violations.clear()


def test_a_method_the_api_does_not_have_is_405_and_a_request_violation(cf: CloudflareApi) -> None:
    response = cf.send("DELETE", f"{scripts(cf, 'api-worker')}/versions")
    assert response.status_code == 405 and error_codes(response) == [7001]
    assert [(v["kind"], v["method"]) for v in cf.emulator.violations] == [("request", "DELETE")]
    cf.emulator.violations.clear()


def test_a_deployment_without_a_body_is_refused(cf: CloudflareApi) -> None:
    response = cf.send("POST", f"{scripts(cf, 'api-worker')}/deployments")
    assert response.status_code == 400
    assert [v["errors"] for v in cf.emulator.violations] == [[f"POST {scripts(cf, 'api-worker')}/deployments: "
                                                              "request body is required"]]  # fmt: skip
    cf.emulator.violations.clear()
