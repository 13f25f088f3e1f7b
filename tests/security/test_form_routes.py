"""#15 item 1: an issue form (or a /contain) must not be able to take every host down.

The attack: the form's "Impacted routes" says `/` (or `//`), tenant isolation is ticked, and a labeller with the
contain role adds `sev-1`. Before the fix, declaring denied every host of production at once.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from incidentops.config import load_config
from incidentops.core.routes import RouteError, parse_route
from incidentops.sandbox import world as seeded
from tests.flows.conftest import ROOT, World
from tests.smoke.conftest import FORM_NO_ROLLBACK, smoke_env

PRODUCTION = load_config(ROOT).environment("production")
assert PRODUCTION is not None
HOSTS = ("api.example.com", "ingest.example.com", "admin.example.com", "portal.example.com")


@pytest.mark.parametrize(
    "route",
    [
        "/",
        "//",
        "",
        "///",
        "/v1",
        "/v1/",
        "/v1//reports",
        "/v1/../admin",
        "/v1/./reports",
        "/%2e%2e/x/y",
        "/v1/%72eports",
        "/v1/*",
        "/v1/reports?x=1",
        "api.example.com",
        "api.example.com/",
        "api.example.com/v1",
        "http://api.example.com/v1/reports",
        "https://user@api.example.com/v1/reports",
        "https://api.example.com:8443/v1/reports",
        "evil.example/v1/reports",
        "api.example.com.evil.example/v1/reports",
        "API.example.com@evil.example/v1/reports",
    ],
)
def test_routes_that_reach_beyond_one_route_are_refused(route: str) -> None:
    with pytest.raises(RouteError) as caught:
        parse_route(route, "production", HOSTS)
    assert caught.value.hint  # says what to write instead


@pytest.mark.parametrize(
    ("route", "hosts", "path"),
    [
        ("/v1/reports", HOSTS, "/v1/reports"),
        ("api.example.com/v1/reports", ("api.example.com",), "/v1/reports"),
        ("https://api.example.com/v1/reports/", ("api.example.com",), "/v1/reports"),
        ("`/v1/reports/export`", HOSTS, "/v1/reports/export"),
    ],
)
def test_a_specific_route_names_its_hosts(route: str, hosts: tuple[str, ...], path: str) -> None:
    parsed = parse_route(route, "production", HOSTS)
    assert (parsed.hosts, parsed.path) == (hosts, path)


def _form(routes: str) -> str:
    return FORM_NO_ROLLBACK.replace("### Impacted routes\n\n/v1/reports", f"### Impacted routes\n\n{routes}")


def _rules(world: World) -> list[str]:
    async def get() -> list[str]:
        async with world.cloudflare(seeded.ACCOUNT_ID) as cf:
            ruleset = await cf.get_entrypoint_ruleset(seeded.ZONE_ID)
            return [r.expression for r in ruleset.rules] if ruleset else []

    return asyncio.run(get())


def _denied_hosts(world: World) -> list[str]:
    """Base-URL keys of production whose front page the edge now answers with a deny."""
    urls = world.info["base_urls"]["production"]
    return [key for key, url in urls.items() if httpx.get(url + "/").status_code == 403]


def _comment(world: World, number: int, login: str, body: str) -> str:
    world.repo(login).get_issue(number).create_comment(body)
    return world.run(world.next_event("issue_comment", "created")).status


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in smoke_env(world).items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("routes", ["/", "//", "/v1\n/"])
def test_a_form_route_of_root_denies_no_host(world: World, env: None, routes: str) -> None:
    number = world.open_incident(body=_form(routes), author="reader")
    world.label(number, "sev-1", "oncall-write")  # the write role may contain
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    assert _rules(world) == []
    assert _denied_hosts(world) == []
    proposal = next(c for c in world.comments(number) if "incidentops:contain-proposal" in c)
    assert "would deny every path of the host" in proposal or "too close to the root" in proposal


def test_declare_only_proposes_and_a_contain_role_confirms_the_routes_shown(world: World, env: None) -> None:
    number = world.open_incident(body=_form("/v1/reports"), author="reader")
    world.label(number, "sev-1", "triager")  # triage may declare, not contain
    outcome = world.run(world.next_event("issues", "labeled"))
    assert outcome.status == "declared" and _rules(world) == []
    proposal = next(c for c in world.comments(number) if "incidentops:contain-proposal" in c)
    # The exact expression of the rule, and the digest a person must repeat to apply it.
    assert 'eq "/v1/reports"' in proposal and "starts_with(" in proposal
    digest = re.search(r"/contain confirm ([0-9a-f]{8})", proposal)
    assert digest is not None

    # The author edits the routes after the proposal: the proposal (from the body at declaration) is what counts.
    world.repo("reader").get_issue(number).edit(body=_form("/"))
    assert _comment(world, number, "triager", f"/contain confirm {digest[1]}") == "refused"
    assert _comment(world, number, "oncall-write", "/contain confirm") == "rejected"
    assert _comment(world, number, "oncall-write", "/contain confirm deadbeef") == "rejected"
    assert _rules(world) == []
    assert _comment(world, number, "oncall-write", f"/contain confirm {digest[1]}") == "contained"
    rules = _rules(world)
    assert len(rules) == 1 and '"/v1/reports"' in rules[0] and all(f'"{h}"' in rules[0] for h in HOSTS)
    assert _denied_hosts(world) == []  # only the route, never the hosts' other paths
    applied = world.comments(number)[-1]
    assert "The rule matches exactly:" in applied and '"/v1/reports"' in applied


@pytest.mark.parametrize("route", ["/", "//", "/v1", "api.example.com/"])
def test_contain_command_refuses_a_whole_host_even_from_an_admin(world: World, env: None, route: str) -> None:
    number = world.open_incident(body=_form("/v1/reports"))
    world.label(number, "sev-2", "oncall-admin")
    assert world.run(world.next_event("issues", "labeled")).status == "declared"
    assert _comment(world, number, "oncall-admin", f"/contain {route}") == "rejected"
    assert _rules(world) == [] and _denied_hosts(world) == []
