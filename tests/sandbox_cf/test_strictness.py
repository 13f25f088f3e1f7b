"""The emulated Cloudflare is as strict as Cloudflare where the product relies on it (issue #13).

Zone plans and what they allow, rule order and `skip`, propagation delay, Pages script names, deployment
lists that show what the real ones show, and secret rotations. Each behaviour cites its source beside
the emulation in `sandbox/cloudflare.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from incidentops.sandbox import world
from incidentops.sandbox.cloudflare import CloudflareEmulator
from incidentops.sandbox.services import DEFAULT_BASE_URLS, DemoServices, edge_answer
from tests.sandbox_cf.conftest import CloudflareApi

WAF = "rulesets/phases/http_request_firewall_custom/entrypoint"
STAGING = f"/zones/{world.STAGING_ZONE_ID}"


def codes(response: httpx.Response) -> list[int]:
    return [e["code"] for e in response.json()["errors"]]


def block(expression: str, *, custom: bool = True) -> dict:
    rule: dict = {"action": "block", "expression": expression, "description": expression}
    if custom:
        response = {"status_code": 403, "content_type": "application/json", "content": '{"error":"denied"}'}
        rule["action_parameters"] = {"response": response}
    return rule


def skip(expression: str) -> dict:
    return {"action": "skip", "expression": expression, "action_parameters": {"ruleset": "current"}}


# -- zone plans ------------------------------------------------------------------------------------------


def test_each_zone_has_a_plan_the_control_api_can_change(cf: CloudflareApi) -> None:
    zone = cf.get(cf.zone).json()["result"]
    assert (zone["name"], zone["plan"]["legacy_id"], zone["plan"]["name"]) == ("example.com", "pro", "Pro Website")
    assert cf.get(STAGING).json()["result"]["plan"]["legacy_id"] == "free"
    cf.emulator.set_plan(cf.emulator.zone_id, "business")
    assert cf.get(cf.zone).json()["result"]["plan"]["legacy_id"] == "business"
    assert cf.get("/zones/0123456789abcdef0123456789abcdef").status_code == 404


def test_a_custom_block_response_is_refused_on_free_and_a_plain_block_is_not(cf: CloudflareApi) -> None:
    refused = cf.send("PUT", f"{STAGING}/{WAF}", json={"rules": [block('http.host eq "api.staging.example.com"')]})
    assert refused.status_code == 400 and refused.json()["result"] is None
    assert "paid plan" in refused.json()["errors"][0]["message"]
    assert refused.json()["errors"][0]["source"]["pointer"] == "/rules/0/action_parameters/response"
    plain = cf.send("PUT", f"{STAGING}/{WAF}", json={"rules": [block('http.host eq "x"', custom=False)]})
    assert plain.status_code == 200
    ruleset = plain.json()["result"]
    added = cf.send("POST", f"{STAGING}/rulesets/{ruleset['id']}/rules", json=block('http.host eq "y"'))
    assert added.status_code == 400  # the same on every write, not only on PUT
    cf.emulator.set_plan(world.STAGING_ZONE_ID, "pro")
    assert cf.send("POST", f"{STAGING}/rulesets/{ruleset['id']}/rules", json=block('http.host eq "y"')).is_success


def test_custom_rules_are_limited_per_plan(cf: CloudflareApi) -> None:
    five = [block(f'http.host eq "h{n}"', custom=False) for n in range(5)]
    ruleset = cf.send("PUT", f"{STAGING}/{WAF}", json={"rules": five}).json()["result"]
    sixth = cf.send("POST", f"{STAGING}/rulesets/{ruleset['id']}/rules", json=block('http.host eq "h5"', custom=False))
    assert sixth.status_code == 400 and "allows 5" in sixth.json()["errors"][0]["message"]
    assert len(cf.get(f"{STAGING}/{WAF}").json()["result"]["rules"]) == 5  # nothing half-written
    too_many = [block(f'http.host eq "h{n}"') for n in range(21)]
    assert cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": too_many}).status_code == 400  # Pro: 20
    assert cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": too_many[:20]}).status_code == 200


# -- the edge --------------------------------------------------------------------------------------------


def test_the_edge_runs_rules_in_order_and_a_skip_lets_traffic_past_later_rules(cf: CloudflareApi) -> None:
    partner = skip('http.request.uri.path eq "/v1/reports"')
    deny = block('starts_with(http.request.uri.path, "/v1/reports")')
    ruleset = cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [partner]}).json()["result"]
    cf.send("POST", f"{cf.zone}/rulesets/{ruleset['id']}/rules", json=deny)  # no position: appended last
    assert cf.emulator.edge_decision("api.example.com", "/v1/reports") is None  # skipped past the deny
    assert cf.emulator.edge_decision("api.example.com", "/v1/reports/rep-1")["action"] == "block"
    first = cf.send("POST", f"{cf.zone}/rulesets/{ruleset['id']}/rules", json={**deny, "position": {"before": ""}})
    assert first.json()["result"]["rules"][0]["action"] == "block"
    assert cf.emulator.edge_decision("api.example.com", "/v1/reports")["action"] == "block"
    assert cf.emulator.edge_decision("api.example.com", "/V1/Reports") is None  # paths compare case-sensitively


def test_a_skip_rule_must_say_what_it_skips(cf: CloudflareApi) -> None:
    bare = {"action": "skip", "expression": 'http.host eq "x"'}
    assert cf.send("PUT", f"{cf.zone}/{WAF}", json={"rules": [bare]}).status_code == 400


def test_rule_changes_reach_the_edge_after_the_propagation_delay(cf: CloudflareApi) -> None:
    now = [100.0]
    emulator = CloudflareEmulator(api_base_url=cf.served.base_url, propagation=(3.0, 3.0), monotonic=lambda: now[0])
    cf.served.hub.mounts = [("/client/v4", emulator.app)]
    put = cf.send("PUT", f"/zones/{emulator.zone_id}/{WAF}", json={"rules": [block('http.host eq "api.example.com"')]})
    assert put.status_code == 200
    assert emulator.edge_decision("api.example.com", "/") is None and not emulator.propagated()
    now[0] += 2.9
    assert emulator.edge_decision("api.example.com", "/") is None
    now[0] += 0.2
    assert emulator.edge_decision("api.example.com", "/")["action"] == "block" and emulator.propagated()
    rule_id = put.json()["result"]["rules"][0]["id"]
    ruleset_id = put.json()["result"]["id"]
    cf.send("DELETE", f"/zones/{emulator.zone_id}/rulesets/{ruleset_id}/rules/{rule_id}")
    assert emulator.edge_decision("api.example.com", "/") is not None  # a lift takes time too
    now[0] += 3.1
    assert emulator.edge_decision("api.example.com", "/") is None


def test_a_plain_block_answers_cloudflares_block_page_and_a_custom_one_its_response() -> None:
    page = edge_answer(block('http.host eq "x"', custom=False) | {"id": "abc"})
    assert page.status == 403 and "Sorry, you have been blocked" in str(page.body)
    assert "Cloudflare Ray ID" in str(page.body) and page.headers["Content-Type"].startswith("text/html")
    custom = edge_answer(block('http.host eq "x"') | {"id": "abc"})
    assert (custom.status, custom.body) == (403, '{"error":"denied"}')


# -- deployment lists ------------------------------------------------------------------------------------


def test_the_workers_deployments_list_shows_the_10_most_recent(cf: CloudflareApi) -> None:
    good = world.seed().worker_versions["api-worker"][1].id
    cf.emulator.deploy_versions("api-worker", [good] * 12)
    listed = cf.get(f"{cf.account}/workers/scripts/api-worker/deployments").json()["result"]["deployments"]
    assert len(listed) == 10
    everything = cf.emulator.workers["api-worker"].deployments
    assert [d["id"] for d in listed] == [d["id"] for d in reversed(everything)][:10]
    oldest = everything[0]["id"]
    assert cf.get(f"{cf.account}/workers/scripts/api-worker/deployments/{oldest}").status_code == 200


def test_pages_deployments_list_refuses_pages_above_25_and_filters_by_env(cf: CloudflareApi) -> None:
    url = f"{cf.account}/pages/projects/admin-pages/deployments"
    cf.emulator.add_pages_deployments("admin-pages", 30)
    too_big = cf.get(url, params={"per_page": 26})
    assert too_big.status_code == 400 and codes(too_big) == [8000024]
    first = cf.get(url, params={"per_page": 25})
    assert len(first.json()["result"]) == 25 and all(d["environment"] == "preview" for d in first.json()["result"])
    production = cf.get(url, params={"env": "production"}).json()
    assert {d["environment"] for d in production["result"]} == {"production"}
    assert production["result_info"]["total_count"] == 4


def test_skipped_builds_and_stage_names(cf: CloudflareApi) -> None:
    (skipped,) = cf.emulator.add_pages_deployments("admin-pages", environment="production", skipped=True)
    body = cf.get(f"{cf.account}/pages/projects/admin-pages/deployments/{skipped}").json()["result"]
    assert body["is_skipped"] is True and body["latest_stage"]["name"] == "queued"
    assert [s["name"] for s in body["stages"]] == ["queued", "initialize", "clone_repo", "build", "deploy"]
    refused = cf.send("POST", f"{cf.account}/pages/projects/admin-pages/deployments/{skipped}/rollback")
    assert refused.status_code == 400 and "skipped" in refused.json()["errors"][0]["message"]
    live = cf.get(f"{cf.account}/pages/projects/admin-pages").json()["result"]["canonical_deployment"]
    assert live["latest_stage"] | {"started_on": None, "ended_on": None} == {
        "name": "deploy",
        "status": "success",
        "started_on": None,
        "ended_on": None,
    }


def test_pages_projects_name_their_production_script_and_whether_they_have_functions(cf: CloudflareApi) -> None:
    portal = cf.get(f"{cf.account}/pages/projects/user-portal").json()["result"]
    admin = cf.get(f"{cf.account}/pages/projects/admin-pages").json()["result"]
    assert portal["production_script_name"].startswith("pages-worker--")
    assert portal["production_script_name"].endswith("-production") and portal["uses_functions"] is True
    assert admin["uses_functions"] is False and admin["production_script_name"] != portal["production_script_name"]


# -- secrets ---------------------------------------------------------------------------------------------


def test_a_secret_rotation_creates_an_annotated_version_and_deployment(cf: CloudflareApi) -> None:
    before = cf.emulator.live_version("ingest-worker")
    version_id, deployment_id = cf.emulator.rotate_secret("ingest-worker", ("DB_PASSWORD",))
    scripts = f"{cf.account}/workers/scripts/ingest-worker"
    newest = cf.get(f"{scripts}/deployments").json()["result"]["deployments"][0]
    assert newest["id"] == deployment_id and newest["annotations"]["workers/triggered_by"] == "secret"
    assert newest["versions"] == [{"version_id": version_id, "percentage": 100.0}]
    version = cf.get(f"{scripts}/versions/{version_id}").json()["result"]
    assert version["annotations"]["workers/triggered_by"] == "secret"
    assert cf.emulator.is_good("ingest-worker") is (cf.emulator.quality("ingest-worker", before) == "good")


# -- analytics -------------------------------------------------------------------------------------------

HTTP = """query($zone: string, $start: Time, $end: Time) { viewer { zones(filter: {zoneTag: $zone}) {
  httpRequestsAdaptiveGroups(limit: 100, filter: {datetime_geq: $start, datetime_lt: $end, requestSource: "eyeball"}) {
    count dimensions { clientRequestHTTPHost clientRequestPath edgeResponseStatus } } } } }"""
INVOCATIONS = """query($account: string, $script: string, $start: Time, $end: Time) { viewer {
  accounts(filter: {accountTag: $account}) {
    workersInvocationsAdaptive(limit: 100, filter: {scriptName: $script, datetime_geq: $start, datetime_leq: $end}) {
      sum { requests errors } } } } }"""
INCIDENT = datetime(2026, 11, 27, 3, 12, tzinfo=UTC)


def graphql(cf: CloudflareApi, query: str, **variables: object) -> dict:
    body = cf.send("POST", "/graphql", json={"query": query, "variables": variables}).json()
    assert body["errors"] is None, body["errors"]
    return body["data"]


def http_rows(cf: CloudflareApi, start: datetime, end: datetime) -> list[dict]:
    window = {"start": start.isoformat(), "end": end.isoformat()}
    data = graphql(cf, HTTP, zone=cf.emulator.zone_id, **window)
    return data["viewer"]["zones"][0]["httpRequestsAdaptiveGroups"]


def test_zone_http_analytics_show_what_the_demo_services_answer(cf: CloudflareApi) -> None:
    cf.emulator.set_clock(lambda: INCIDENT + timedelta(minutes=5))
    services = DemoServices(cf.emulator, {"production": dict(DEFAULT_BASE_URLS)})
    rows = http_rows(cf, INCIDENT - timedelta(minutes=15), INCIDENT)
    statuses = {(r["dimensions"]["clientRequestPath"], r["dimensions"]["edgeResponseStatus"]) for r in rows}
    # The bad ingest-worker answers 500 on /v1/events, the bad api-worker 503 on /healthz and 200 (a leak) on
    # the reports, exactly what those routes answer over HTTP.
    assert ("/v1/events", 500) in statuses and ("/healthz", 503) in statuses and ("/v1/reports", 200) in statuses
    # ...while ingest-worker's invocations report no errors: it answers 500, it does not throw.
    window = {"start": (INCIDENT - timedelta(minutes=15)).isoformat(), "end": INCIDENT.isoformat()}
    data = graphql(cf, INVOCATIONS, account=cf.emulator.account_id, script="ingest-worker", **window)
    (sums,) = [row["sum"] for row in data["viewer"]["accounts"][0]["workersInvocationsAdaptive"]][:1]
    assert sums["errors"] / sums["requests"] < 0.005
    # A week earlier the good builds served: no 5xx at all.
    week = timedelta(days=7)
    assert all(
        r["dimensions"]["edgeResponseStatus"] < 500
        for r in http_rows(cf, INCIDENT - week, INCIDENT - week + timedelta(hours=1))
    )
    # A request a demo service really answers is counted too.
    services.start()
    try:
        url = services.base_urls["production"]["admin"]
        assert httpx.get(url + "/no-such-page").status_code == 404
        cf.emulator.set_clock(lambda: INCIDENT + timedelta(minutes=6))
        later = http_rows(cf, INCIDENT, INCIDENT + timedelta(minutes=10))
        assert any(r["dimensions"]["clientRequestPath"] == "/no-such-page" and r["count"] == 1 for r in later)
    finally:
        services.stop()


def test_an_unverified_field_is_an_error_and_pages_analytics_need_the_script_name(cf: CloudflareApi) -> None:
    asked = """query($account: string) { viewer { accounts(filter: {accountTag: $account}) {
      pagesFunctionsInvocationsAdaptiveGroups(limit: 10, filter: {datetime_geq: "2026-11-27T03:00:00Z",
        datetime_leq: "2026-11-27T03:10:00Z"}) { quantiles { wallTimeP99 } } } } }"""
    body = cf.send("POST", "/graphql", json={"query": asked, "variables": {"account": cf.emulator.account_id}}).json()
    assert body["data"] is None and "Cannot query field 'quantiles'" in body["errors"][0]["message"]
    cf.emulator.set_clock(lambda: INCIDENT)
    query = """query($account: string, $script: string) { viewer { accounts(filter: {accountTag: $account}) {
      pagesFunctionsInvocationsAdaptiveGroups(limit: 10, filter: {scriptName: $script,
        datetime_geq: "2026-11-27T03:00:00Z", datetime_leq: "2026-11-27T03:10:00Z"}) { sum { requests } } } } }"""
    for script, expected in (
        ("user-portal", 0),  # the project name finds nothing
        (world.pages_script_name("admin-pages"), 0),  # a static project has no Functions analytics
        (world.pages_script_name("user-portal"), 1),
    ):
        data = graphql(cf, query, account=cf.emulator.account_id, script=script)
        rows = data["viewer"]["accounts"][0]["pagesFunctionsInvocationsAdaptiveGroups"]
        assert (len(rows) > 0) == bool(expected), script
