"""Containment against the sandbox: a WAF deny rule added beside the zone's rules, recorded, checked and lifted."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from incidentops.adapters.cloudflare import Ruleset, block_rule
from incidentops.core import incidentfile as f
from incidentops.core.events import parse_event
from incidentops.flows.contain import contain_on_declare, contain_route, lift_route
from incidentops.flows.smoke import run_smoke
from incidentops.sandbox import world as seeded
from incidentops.sandbox.services import TENANT_A_TOKEN
from tests.flows.conftest import NOW, World
from tests.smoke.conftest import FAST, declared, smoke_env

A = {"Authorization": f"Bearer {TENANT_A_TOKEN}"}
CUSTOMER_RULE = block_rule('(http.request.uri.path eq "/wp-login.php")', description="the zone's own rule")


@pytest.fixture(autouse=True)
def _smoke_env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in smoke_env(world).items():
        monkeypatch.setenv(name, value)


def ruleset(world: World) -> Ruleset | None:
    async def get() -> Ruleset | None:
        async with world.cloudflare(seeded.ACCOUNT_ID) as cf:
            return await cf.get_entrypoint_ruleset(seeded.ZONE_ID)

    return asyncio.run(get())


def put_customer_rule(world: World) -> None:
    async def put() -> None:
        async with world.cloudflare(seeded.ACCOUNT_ID) as cf:
            await cf.put_entrypoint_ruleset(seeded.ZONE_ID, [CUSTOMER_RULE])

    asyncio.run(put())


def cf_requests(world: World, method: str) -> list[dict[str, Any]]:
    log = httpx.get(world.info["control_url"] + "/requests").json()
    return [r for r in log if r["method"] == method and "/rulesets" in r["path"]]


def reports(world: World) -> httpx.Response:
    return httpx.get(world.info["base_urls"]["production"]["api"] + "/v1/reports", headers=A)


def severity_event(world: World) -> Any:
    """The newest sev-1 label delivery (the bot's own `incident` label comes after it)."""
    deliveries = [e for e in world.events() if e["event"] == "issues" and e["action"] == "labeled"]
    latest = [e for e in deliveries if e["payload"]["label"]["name"] == "sev-1"][-1]
    return parse_event("issues", latest["payload"])


def incident(world: World, number: int) -> str:
    return world.bare_file(f"incidents/INC-{number:04d}.md")


def containment_rows(world: World, number: int) -> list[str]:
    section = incident(world, number).split("## Containment\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_contain_adds_one_rule_beside_the_zone_rules_records_it_and_the_route_is_denied(world: World) -> None:
    put_customer_rule(world)
    number = declared(world)
    inc = f"INC-{number:04d}"
    assert reports(world).status_code == 200  # the leak, before containment
    outcome = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.status == "contained", outcome.message
    assert outcome.details["verified"] is True and any(s.startswith("deny verified") for s in outcome.steps)

    rules = ruleset(world)
    # One rule for the incident, first in the list, the zone's own rule kept after it.
    assert rules is not None and rules.rules[1].description == "the zone's own rule"
    ours = rules.find(f"incidentops-{inc}")
    assert ours is not None and ours.action == "block" and len(rules.rules) == 2 and rules.rules[0].id == ours.id
    assert 'lower(http.request.uri.path) eq "/v1/reports"' in ours.expression
    assert outcome.details["plan"] == "pro" and outcome.details["response"] == "custom"  # Pro: custom JSON body
    assert [r["method"] for r in cf_requests(world, "PUT")] == ["PUT"]  # only the test's own PUT
    assert len(cf_requests(world, "POST")) == 1

    denied = reports(world)
    assert denied.status_code == 403 and denied.json()["incident"] == inc
    assert (
        httpx.get(world.info["base_urls"]["production"]["api"] + "/v1/reports/rep-200-1", headers=A).status_code == 403
    )
    assert httpx.get(world.info["base_urls"]["production"]["api"] + "/v1/reportsx", headers=A).status_code == 404
    assert httpx.get(world.info["base_urls"]["production"]["api"] + "/healthz").status_code == 503  # still served

    text = incident(world, number)
    fields = f.read_fields(text)
    (entry,) = fields["containment"]
    assert entry["route"] == "/v1/reports" and entry["rule_id"] == ours.id and entry["lifted"] is None
    assert (entry["since"], entry["expires"]) == ("2026-11-27T03:14:40Z", "2026-11-27T07:14:40Z")
    assert "api.example.com" in entry["hosts"] and fields["status"] == "contained"
    containment = text.split("## Containment\n", 1)[1].split("\n## ", 1)[0]
    assert f"| `/v1/reports` | `{ours.id}` | 2026-11-27T03:14:40Z | 2026-11-27T07:14:40Z | — |" in containment
    assert any(r[2].startswith("Contained /v1/reports: deny response 403") for r in f.timeline_rows(text))
    assert entry["response"] == "custom" and entry["verified"] == "2026-11-27T03:14:40Z"
    assert any("is contained" in c and ours.id in c for c in world.comments(number))


def test_asking_twice_adds_no_second_rule_and_writes_nothing(world: World) -> None:
    number = declared(world)
    first = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert [r["method"] for r in cf_requests(world, "PUT")] == ["PUT"]  # no entry point yet: PUT creates it
    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = contain_route(world.ports(), number, "/v1/reports/", "oncall-maintain", "comment-2")
    assert again.status == "unchanged" and "already contained" in again.message
    rules = ruleset(world)
    assert rules is not None and len(rules.rules) == 1 and rules.rules[0].id == first.details["rule_id"]
    assert len(cf_requests(world, "PUT")) == 1 and cf_requests(world, "POST") == []
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments


def test_a_lost_answer_to_the_rule_post_is_reread_not_reposted(world: World) -> None:
    put_customer_rule(world)
    number = declared(world)
    httpx.post(
        world.info["control_url"] + "/faults",
        json={"method": "POST", "path": "/rulesets/[0-9a-f]+/rules$", "drop_response": True, "count": 1},
    )
    outcome = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.status == "contained" and "confirmed by re-reading" in outcome.steps[0]
    rules = ruleset(world)
    assert rules is not None and len(rules.rules) == 2 and len(cf_requests(world, "POST")) == 1


def test_while_contained_smoke_proves_the_deny_and_lift_restores_the_route(world: World) -> None:
    number = declared(world)
    contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    outcome = run_smoke(world.ports(), "production", ["api-worker"], number, "comment-2", settings=FAST)
    results = {r.check: r for r in outcome.details["results"]}
    deny = [r for r in results.values() if r.service == "containment"]
    assert len(deny) == 4 and all(r.result == "passed" and r.status == 403 for r in deny)
    assert results["tenant A lists only its own reports"].result == "skipped"
    assert "is contained by INC-" in results["tenant A lists only its own reports"].reason
    assert results["api health"].result == "failed"  # the rest of the bad worker is still tested
    assert outcome.status == "failed"

    lifted = lift_route(world.ports(now=NOW + timedelta(hours=1)), number, "/v1/reports", "oncall-write", "comment-3")
    assert lifted.status == "lifted", lifted.message
    rules = ruleset(world)
    assert rules is not None and rules.rules == ()
    assert reports(world).status_code == 200  # the (still bad) worker answers again
    (entry,) = f.read_fields(incident(world, number))["containment"]
    assert entry["lifted"] == "2026-11-27T04:14:40Z" and entry["lifted_by"] == "oncall-write"
    # The lift updates the route's row: the table shows it once, lifted, not once active and once lifted.
    assert containment_rows(world, number) == [
        f"| `/v1/reports` | `{entry['rule_id']}` | 2026-11-27T03:14:40Z | 2026-11-27T07:14:40Z | 2026-11-27T04:14:40Z |"
    ]
    again = lift_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-4")
    assert again.status == "unchanged" and "not contained" in again.message


def test_an_expired_containment_is_reported_and_renewed_on_request(world: World) -> None:
    number = declared(world)
    contain_route(world.ports(), number, "api.example.com/v1/reports", "oncall-write", "comment-1")
    late = NOW + timedelta(hours=5)
    outcome = run_smoke(world.ports(now=late), "production", ["api-worker"], number, "comment-2", settings=FAST)
    assert any("expired at 2026-11-27T07:14:40Z and is still in place" in s for s in outcome.steps)
    assert ruleset(world) is not None  # reported, never lifted on its own
    renewed = contain_route(world.ports(now=late), number, "api.example.com/v1/reports", "oncall-write", "comment-3")
    assert renewed.status == "contained" and "renewed" in renewed.message
    (entry,) = f.read_fields(incident(world, number))["containment"]
    assert entry["expires"] == "2026-11-27T12:14:40Z" and entry["hosts"] == ["api.example.com"]
    assert containment_rows(world, number) == [
        f"| `api.example.com/v1/reports` | `{entry['rule_id']}` | 2026-11-27T03:14:40Z | 2026-11-27T12:14:40Z | — |"
    ]


def test_declaring_proposes_containment_and_a_contain_role_confirms_it(world: World) -> None:
    # Declaring with "tenant isolation at risk" proposes the form's routes; nothing is denied on the form's word.
    number = declared(world, tenant_risk=True)
    assert f.read_fields(incident(world, number))["containment"] == []
    assert reports(world).status_code == 200
    event = severity_event(world)
    proposed = contain_on_declare(event, world.ports(), number)  # a re-run posts no second proposal
    assert proposed.status == "proposed" and proposed.details["routes"] == ["/v1/reports"]
    assert sum("incidentops:contain-proposal" in c for c in world.comments(number)) == 1
    digest = proposed.details["digest"]
    world.repo("oncall-write").get_issue(number).create_comment(f"/contain confirm {digest}")
    delivery = world.next_event("issue_comment", "created")
    assert world.run(delivery).status == "contained"
    (entry,) = f.read_fields(incident(world, number))["containment"]
    assert entry["route"] == "/v1/reports" and not entry.get("lifted")
    assert reports(world).status_code == 403
    assert world.run(delivery).status == "unchanged"  # a re-delivered confirmation adds nothing


def test_a_rerun_of_the_confirmation_applies_it_once(world: World) -> None:
    """The confirm run reads ahead (the live issue while the command runs, the reply's comments while the edge
    takes the rule); a re-run of the same event still writes one rule, one record and one reply."""
    number = declared(world, tenant_risk=True)
    digest = contain_on_declare(severity_event(world), world.ports(), number).details["digest"]
    world.repo("oncall-write").get_issue(number).create_comment(f"/contain confirm {digest}")
    delivery = world.next_event("issue_comment", "created")
    first = world.run(delivery)
    assert first.status == "contained" and first.details["verified"], first.steps
    commits, comments = len(world.bare_log()), len(world.comments(number))
    again = world.run(delivery)
    assert again.status == "unchanged" and again.details["verified"], again.message
    assert not any("could not" in step for step in again.steps), again.steps
    assert len(world.bare_log()) == commits and len(world.comments(number)) == comments
    current = ruleset(world)
    assert current is not None and sum(r.ref == f"incidentops-INC-{number:04d}" for r in current.rules) == 1
    text = incident(world, number)
    assert len(f.read_fields(text)["containment"]) == 1 and len(containment_rows(world, number)) == 1
    assert sum(r[2].startswith("Contained /v1/reports") for r in f.timeline_rows(text)) == 1
    assert sum("incidentops:contain:" in c for c in world.comments(number)) == 1


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ('/v1/reports" or true or "', "is not a plain path"),
        ("evil.example.net/v1/reports", "is not a host of production"),
        ("", "/contain needs a route"),
    ],
)
def test_contain_comments_check_role_and_input(world: World, route: str, problem: str) -> None:
    number = declared(world)
    world.repo("triager").get_issue(number).create_comment("/contain /v1/reports")
    assert world.run(world.next_event("issue_comment", "created")).status == "refused"
    world.repo("oncall-write").get_issue(number).create_comment(f"/contain {route}")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "rejected" and problem in outcome.message
    assert ruleset(world) is None and problem in world.comments(number)[-1]


def test_contain_and_lift_comments(world: World) -> None:
    number = declared(world)
    world.repo("oncall-write").get_issue(number).create_comment("/contain /v1/reports")
    delivery = world.next_event("issue_comment", "created")
    assert world.run(delivery).status == "contained"
    assert world.run(delivery).status == "unchanged"  # a re-delivered comment
    world.repo("oncall-write").get_issue(number).create_comment("/lift /v1/reports")
    assert world.run(world.next_event("issue_comment", "created")).status == "lifted"
    assert reports(world).status_code == 200


# -- on real Cloudflare (issue #13): plans, rule order, one rule per incident, propagation -------------------


def control(world: World, path: str, body: dict[str, Any]) -> None:
    response = httpx.put(world.info["control_url"] + path, json=body)
    assert response.status_code == 200, response.text


def set_plan(world: World, plan: str) -> None:
    control(world, f"/cloudflare/zones/{seeded.ZONE_ID}/plan", {"plan": plan})


def api(world: World, path: str) -> httpx.Response:
    return httpx.get(world.info["base_urls"]["production"]["api"] + path, headers=A)


def test_containment_on_a_free_zone_is_a_plain_block_and_the_check_sees_cloudflares_block_page(world: World) -> None:
    set_plan(world, "free")
    number = declared(world)
    outcome = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.status == "contained" and outcome.details["verified"] is True, outcome.steps
    assert outcome.details["response"] == "block-page" and outcome.details["plan"] == "free"
    rules = ruleset(world)
    assert rules is not None and not rules.rules[0].action_parameters  # no custom response: Free refuses it
    denied = reports(world)
    assert denied.status_code == 403 and "Sorry, you have been blocked" in denied.text
    (entry,) = f.read_fields(incident(world, number))["containment"]
    assert entry["response"] == "block-page" and entry["verified"] == "2026-11-27T03:14:40Z"
    # The runbook's smoke run checks the same block page while the route is contained.
    smoke = run_smoke(world.ports(), "production", ["api-worker"], number, "comment-2", settings=FAST)
    deny = [r for r in smoke.details["results"] if r.service == "containment"]
    assert deny and all(r.result == "passed" for r in deny)


def test_a_skip_rule_already_in_the_zone_does_not_let_traffic_past_the_deny(world: World) -> None:
    partner = {
        "action": "skip",
        "expression": 'starts_with(http.request.uri.path, "/v1/")',
        "description": "partner integrations skip the remaining custom rules",
        "action_parameters": {"ruleset": "current"},
    }

    async def put() -> None:
        async with world.cloudflare(seeded.ACCOUNT_ID) as cf:
            await cf.put_entrypoint_ruleset(seeded.ZONE_ID, [partner])

    asyncio.run(put())
    number = declared(world)
    outcome = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.details["verified"] is True, outcome.steps
    rules = ruleset(world)
    assert rules is not None and [r.action for r in rules.rules] == ["block", "skip"]
    assert reports(world).status_code == 403


def test_paths_are_denied_in_any_case(world: World) -> None:
    number = declared(world)
    contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert api(world, "/V1/Reports").status_code == 403 and api(world, "/v1/REPORTS/rep-200-1").status_code == 403
    assert api(world, "/v1/reportsx").status_code == 404


def test_one_rule_per_incident_covers_every_route_and_lifting_edits_it(world: World) -> None:
    number = declared(world)
    inc = f"INC-{number:04d}"
    first = contain_route(world.ports(), number, "api.example.com/v1/reports", "oncall-write", "comment-1")
    second = contain_route(world.ports(), number, "ingest.example.com/v1/events", "oncall-write", "comment-2")
    rules = ruleset(world)
    assert rules is not None and len(rules.rules) == 1
    assert first.details["rule_id"] == second.details["rule_id"] == rules.rules[0].id
    assert rules.rules[0].ref == f"incidentops-{inc}" and "/v1/events" in rules.rules[0].expression
    ingest = world.info["base_urls"]["production"]["ingest"]
    assert httpx.post(ingest + "/v1/events", json={}, headers=A).status_code == 403
    later = world.ports(now=NOW + timedelta(minutes=30))
    assert lift_route(later, number, "api.example.com/v1/reports", "oncall-write", "comment-3").status == "lifted"
    rules = ruleset(world)
    assert rules is not None and len(rules.rules) == 1 and "/v1/reports" not in rules.rules[0].expression
    assert "no longer matches it" in world.comments(number)[-1]
    assert lift_route(later, number, "ingest.example.com/v1/events", "oncall-write", "comment-4").status == "lifted"
    rules = ruleset(world)
    assert rules is not None and rules.rules == ()
    entries = f.read_fields(incident(world, number))["containment"]
    assert [e["lifted"] for e in entries] == ["2026-11-27T03:44:40Z", "2026-11-27T03:44:40Z"]


def test_a_zone_without_room_for_the_rule_is_refused_with_a_clear_error(world: World) -> None:
    set_plan(world, "free")
    own = [
        block_rule(f'http.request.uri.path eq "/old-{n}"', description=f"own {n}", custom_response=False)
        for n in range(5)
    ]

    async def put() -> None:
        async with world.cloudflare(seeded.ACCOUNT_ID) as cf:
            await cf.put_entrypoint_ruleset(seeded.ZONE_ID, own)

    asyncio.run(put())
    number = declared(world)
    world.repo("oncall-write").get_issue(number).create_comment("/contain /v1/reports")
    outcome = world.run(world.next_event("issue_comment", "created"))
    assert outcome.status == "rejected"
    assert "already has 5 custom rules, the most its free plan allows (5)" in outcome.message
    assert "already has 5 custom rules" in world.comments(number)[-1]
    rules = ruleset(world)
    assert rules is not None and len(rules.rules) == 5 and cf_requests(world, "POST") == []
    assert f.read_fields(incident(world, number))["containment"] == []


def test_the_deny_is_verified_once_the_rule_has_propagated(world: World) -> None:
    control(world, "/cloudflare/propagation", {"min_seconds": 1.0, "max_seconds": 1.5})
    number = declared(world)
    outcome = contain_route(world.ports(), number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.details["verified"] is True, outcome.steps
    checks = [s for s in outcome.steps if s.startswith("deny verified")]
    looks = [int(m.group(1)) for s in checks if (m := re.search(r"; (\d+) check\(s\) in ", s))]
    assert len(looks) == len(checks) and min(looks) > 1  # the first look saw the old behaviour


def test_a_deny_not_seen_by_the_deadline_is_recorded_as_not_yet_verified(world: World) -> None:
    control(world, "/cloudflare/propagation", {"min_seconds": 30, "max_seconds": 30})
    ports = world.ports()
    ports.config = replace(ports.config, extra={**ports.config.extra, "containment": {"verify_seconds": 1.0}})
    number = declared(world)
    outcome = contain_route(ports, number, "/v1/reports", "oncall-write", "comment-1")
    assert outcome.status == "contained" and outcome.details["verified"] is False
    assert "not yet verified" in outcome.message and outcome.level == "warning"
    (entry,) = f.read_fields(incident(world, number))["containment"]
    assert entry["verified"] == "not yet verified"
    assert any("not yet verified" in r[2] for r in f.timeline_rows(incident(world, number)))
    assert "not yet verified" in world.comments(number)[-1]
