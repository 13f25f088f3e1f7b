"""`incidentops doctor`: every check passing on a set-up repository, and each one failing when the emulated
GitHub, Cloudflare or the repository is broken the way a person would break it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from incidentops.core.doctor import FAIL, OK, WARN
from incidentops.sandbox import world

from .conftest import Setup

ZONE = world.ZONE_ID


def status(checks: dict, cid: str) -> str:
    assert cid in checks, f"no check {cid}; have {sorted(checks)}"
    return checks[cid].status


def test_a_set_up_repository_has_no_failing_check(setup: Setup) -> None:
    checks = setup.doctor()
    failing = {c.id: c.detail for c in checks.values() if c.status == FAIL}
    assert failing == {}
    for cid in (
        "repo.config",
        "repo.runbook",
        "repo.form",
        "repo.ledger.production",
        "github.access",
        "github.workflow-permissions",
        "github.actions-create-prs",
        "github.branch-pushes",
        "github.required-checks",
        "github.labels",
        "secrets",
        "cloudflare.token",
        "cloudflare.account",
        "cloudflare.services.production",
        "cloudflare.zone.production",
        "repo.hosts.production",
        "cloudflare.permission.zone-waf-write",
    ):
        assert status(checks, cid) == OK, checks[cid]


def test_doctor_reads_only(setup: Setup) -> None:
    before = len(setup.control("GET", "/requests"))
    setup.doctor()
    setup.control("PATCH", "/adoption/cloudflare-token", {"permissions": ["Workers Scripts Read", "Zone Read"]})
    setup.doctor()  # without "API Tokens Read" it probes the reads instead
    sent = [r for r in setup.control("GET", "/requests")[before:] if not r["path"].startswith("/_sandbox")]
    assert len(sent) > 20
    writes = [f"{r['method']} {r['path']}" for r in sent if r["method"] != "GET"]
    # The analytics probe is a GraphQL query: POST, but it reads.
    assert writes and set(writes) == {"POST /client/v4/graphql"}


def test_workflow_permissions_write_by_default_is_a_warning(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/github", {"default_workflow_permissions": "write"})
    check = setup.doctor()["github.workflow-permissions"]
    assert check.status == WARN and "write" in check.detail and "Workflow permissions" in check.fix


def test_actions_may_not_open_pull_requests(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/github", {"can_approve_pull_request_reviews": False})
    check = setup.doctor()["github.actions-create-prs"]
    assert check.status == FAIL and "Allow GitHub Actions to create and approve pull requests" in check.fix
    # …and the emulated GitHub refuses the bot's pull request the way GitHub does.
    refused = setup.github(
        "POST", "/pulls", token=setup.info["actions_token"], body={"title": "t", "head": "main", "base": "main"}
    )
    assert refused.status_code == 403 and "not permitted to create" in refused.json()["message"]


def test_the_actions_token_cannot_read_admin_settings_and_says_so(setup: Setup) -> None:
    setup.github_token = setup.info["actions_token"]
    checks = setup.doctor(SMOKE_TENANT_A_TOKEN="a", SMOKE_TENANT_B_TOKEN="b")
    assert status(checks, "github.workflow-permissions") == WARN
    assert (
        "cannot" in checks["github.workflow-permissions"].detail
        or "may not" in checks["github.workflow-permissions"].detail
    )
    # Secret names are unreadable with GITHUB_TOKEN; present in the env counts, absent is a warning.
    assert status(checks, "secrets") == OK
    assert status(setup.doctor(SMOKE_TENANT_B_TOKEN=""), "secrets") == WARN


def test_a_pull_request_rule_on_main_blocks_the_bots_pushes(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/github", {"branch_rules": {"main": [{"type": "pull_request"}]}})
    check = setup.doctor()["github.branch-pushes"]
    assert check.status == FAIL and "pull_request" in check.detail and "bypass" in check.fix


def test_required_status_checks_warn_about_rollback_prs(setup: Setup) -> None:
    rule = {
        "type": "required_status_checks",
        "parameters": {
            "required_status_checks": [{"context": "make test"}],
            "strict_required_status_checks_policy": False,
        },
    }
    setup.control("PATCH", "/adoption/github", {"branch_rules": {"main": [rule]}})
    checks = setup.doctor()
    assert status(checks, "github.required-checks") == WARN and "make test" in checks["github.required-checks"].detail
    assert status(checks, "github.branch-pushes") == OK


def test_a_missing_label_fails(setup: Setup) -> None:
    assert setup.github("DELETE", "/labels/incident-followup").status_code == 204
    check = setup.doctor()["github.labels"]
    assert check.status == FAIL and "incident-followup" in check.detail and "incidentops init" in check.fix


@pytest.mark.parametrize(
    ("pages", "expected", "words"),
    [
        (None, FAIL, "not enabled"),
        ({"build_type": "legacy", "public": False}, FAIL, "legacy"),
        ({"build_type": "workflow", "public": True}, WARN, "public"),
        ({"build_type": "workflow", "public": False}, OK, "private"),
    ],
)
def test_pages_source_and_visibility(setup: Setup, pages: dict | None, expected: str, words: str) -> None:
    setup.control("PATCH", "/adoption/github", {"pages": pages})
    check = setup.doctor()["github.pages"]
    assert check.status == expected and words in check.detail


def test_a_secret_the_runbook_uses_is_missing(setup: Setup) -> None:
    setup.control(
        "PATCH",
        "/adoption/github",
        {"environments": {"production": {"secrets": ["CLOUDFLARE_API_TOKEN", "SMOKE_TENANT_A_TOKEN"]}}},
    )
    check = setup.doctor()["secrets"]
    assert check.status == FAIL and check.detail == "not set: SMOKE_TENANT_B_TOKEN"
    # An organization secret shared with the repository is set as far as the workflows can tell.
    setup.control("PATCH", "/adoption/github", {"org_secrets": ["SMOKE_TENANT_B_TOKEN"]})
    assert setup.doctor()["secrets"].status == OK


def test_a_revoked_cloudflare_token_fails_and_is_named(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/cloudflare-token", {"revoked": True})
    checks = setup.doctor()
    assert status(checks, "cloudflare.token") == FAIL
    assert "CLOUDFLARE_API_TOKEN" in checks["cloudflare.token"].detail
    assert "Invalid API Token" in checks["cloudflare.token"].detail


def test_a_missing_permission_group_fails_that_need_only(setup: Setup) -> None:
    from incidentops.sandbox.adoption import ALL_PERMISSIONS

    setup.control(
        "PATCH", "/adoption/cloudflare-token", {"permissions": [p for p in ALL_PERMISSIONS if p != "Zone WAF Write"]}
    )
    checks = setup.doctor()
    assert status(checks, "cloudflare.permission.zone-waf-write") == FAIL
    assert "Zone WAF Write" in checks["cloudflare.permission.zone-waf-write"].fix
    assert status(checks, "cloudflare.permission.zone-waf-read") == OK


def test_without_api_tokens_read_reads_are_probed_and_writes_unchecked(setup: Setup) -> None:
    setup.control(
        "PATCH",
        "/adoption/cloudflare-token",
        {"permissions": ["Workers Scripts Read", "Zone Read", "Zone WAF Read", "Account Analytics Read"]},
    )
    checks = setup.doctor()
    assert status(checks, "cloudflare.permission.workers-scripts-read") == OK
    assert status(checks, "cloudflare.permission.pages-read") == FAIL  # the probe was refused with 403
    assert status(checks, "cloudflare.permission.workers-scripts-write") == WARN
    assert "not checked" in checks["cloudflare.permission.workers-scripts-write"].detail


def test_cloudflare_account_id_must_agree(setup: Setup) -> None:
    checks = setup.doctor(CLOUDFLARE_ACCOUNT_ID="0" * 32)
    assert status(checks, "cloudflare.account") == FAIL and "0" * 32 in checks["cloudflare.account"].detail


def test_a_configured_service_that_does_not_exist(setup: Setup) -> None:
    config = setup.workspace / "incidentops.yaml"
    config.write_text(config.read_text().replace("cloudflare_name: ingest-worker", "cloudflare_name: ingest-wrker"))
    check = setup.doctor()["cloudflare.services.production"]
    assert check.status == FAIL and "ingest-wrker" in check.detail


def test_a_service_answering_a_base_urls_host_without_hosts_is_named(setup: Setup) -> None:
    # A config written before `init` named hosts: the Worker (by its zone route) and the Pages project (by its
    # domain) answer base URLs' hosts, and their exit criteria would read invocation errors instead.
    config = setup.workspace / "incidentops.yaml"
    text = config.read_text()
    config.write_text(
        text.replace("api-worker, hosts: [api]", "api-worker").replace("admin-pages, hosts: [admin]", "admin-pages")
    )
    check = setup.doctor()["repo.hosts.production"]
    assert check.status == WARN, check
    assert "api-worker answers https://api.example.com (hosts: [api])" in check.detail
    assert "admin-pages answers https://admin.example.com (hosts: [admin])" in check.detail
    assert "ingest-worker" not in check.detail and "queue-consumer" not in check.detail
    # A token that cannot list Worker routes: the Pages project is still named, and the detail says what was not read.
    from incidentops.sandbox.adoption import ALL_PERMISSIONS

    setup.control(
        "PATCH",
        "/adoption/cloudflare-token",
        {"permissions": [p for p in ALL_PERMISSIONS if p != "Workers Routes Read"]},
    )
    check = setup.doctor()["repo.hosts.production"]
    assert check.status == WARN and "admin-pages answers" in check.detail and "api-worker" not in check.detail
    assert "Worker routes not read" in check.detail


def test_zone_plan_and_free_rule_slots(setup: Setup) -> None:
    setup.control("PUT", f"/cloudflare/zones/{ZONE}/plan", {"plan": "free"})
    check = setup.doctor()["cloudflare.zone.production"]
    assert check.status == OK and "free plan" in check.detail and "block page" in check.detail
    setup.control("PUT", f"/cloudflare/zones/{ZONE}/plan", {"plan": "pro"})
    rules = [
        {"action": "block", "expression": f'http.request.uri.path eq "/x{i}"', "description": f"r{i}"}
        for i in range(20)
    ]
    put = httpx.put(
        f"{setup.info['cloudflare_api_base_url']}/zones/{ZONE}/rulesets/phases/http_request_firewall_custom/entrypoint",
        json={"rules": rules},
        headers={"Authorization": f"Bearer {setup.info['cloudflare_api_token']}"},
    )
    assert put.status_code == 200, put.text
    check = setup.doctor()["cloudflare.zone.production"]
    assert check.status == FAIL and "all 20" in check.detail


def test_broken_config_runbook_and_form(setup: Setup) -> None:
    runbook = setup.workspace / "docs/runbooks/environment-deploy-runbook.md"
    runbook.write_text(runbook.read_text().replace("service: api-worker", "service: no-such-worker", 1))
    form = setup.workspace / ".github/ISSUE_TEMPLATE/incident.yml"
    form.write_text(form.read_text().replace("Tenant isolation is at risk", "Tenants at risk"))
    checks = setup.doctor()
    assert status(checks, "repo.runbook") == FAIL and "no-such-worker" in checks["repo.runbook"].detail
    assert status(checks, "repo.form") == FAIL and "Tenant isolation is at risk" in checks["repo.form"].detail
    (setup.workspace / "incidentops.yaml").write_text("version: 1\nservices: [")
    checks = setup.doctor()
    assert status(checks, "repo.config") == FAIL
    assert "repo.runbook" not in checks  # needs the config's services


def test_the_ledger_says_where_it_differs_from_live(setup: Setup) -> None:
    ledger = setup.workspace / "deployments/production.yaml"
    text = ledger.read_text()
    live = setup.sandbox.cloudflare.live_version("api-worker")
    ledger.write_text(text.replace(live, "00000000-0000-4000-8000-000000000000"))
    check = setup.doctor()["repo.ledger.production"]
    assert check.status == WARN and "api-worker: pinned 00000000-0000-4000-8000-000000000000" in check.detail


def _cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CLOUDFLARE_"))}
    env.update(setup.env())
    return subprocess.run(
        [sys.executable, "-m", "incidentops", "doctor", *args],
        cwd=setup.workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_exits_0_when_nothing_fails_and_1_naming_a_revoked_token(setup: Setup) -> None:
    ok = _cli(setup)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✅ CLOUDFLARE_API_TOKEN" in ok.stdout and "❌" not in ok.stdout
    setup.control("PATCH", "/adoption/cloudflare-token", {"revoked": True})
    bad = _cli(setup, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    failing = [c for c in report["checks"] if c["status"] == FAIL]
    assert [c["id"] for c in failing] == ["cloudflare.token"]
    assert "CLOUDFLARE_API_TOKEN" in failing[0]["detail"]
    assert setup.info["cloudflare_api_token"] not in bad.stdout
