"""`incidentops doctor` checks the GitHub environment that holds the production secrets (issue #15.2): it exists,
only main deploys from it, the Cloudflare and smoke secrets are its own and not repository secrets, and whether a
person must approve its runs. Each check is broken through the sandbox's control API, as an admin would in
Settings → Environments, and mended again."""

from __future__ import annotations

from typing import Any

from incidentops.core.doctor import FAIL, OK, WARN

from .conftest import Setup

ENV = "github.environment.production"


def environment(setup: Setup, **change: Any) -> None:
    setup.control("PATCH", "/adoption/github", {"environments": {"production": change}})


def test_a_well_set_up_environment_passes_every_check(setup: Setup) -> None:
    checks = setup.doctor()
    for part in ("", ".branches", ".secrets", ".reviewers"):
        assert checks[ENV + part].status == OK, checks[ENV + part]
    assert checks[ENV + ".branches"].detail == "only main"
    assert "none" in checks[ENV + ".reviewers"].detail  # informational: incidentops.yaml does not ask for them
    assert "github.environment.none" not in checks
    # Every workflow job that reads the secrets is named, including rollback.yml's `vars.… || 'production'`.
    assert "rollback.yml:" in checks[ENV].detail and "incident.yml:" in checks[ENV].detail


def test_the_emulated_environments_api_answers_as_github_documents(setup: Setup) -> None:
    got = setup.github("GET", "/environments/production").json()
    assert got["deployment_branch_policy"] == {"protected_branches": False, "custom_branch_policies": True}
    assert [r["type"] for r in got["protection_rules"]] == ["branch_policy"]
    policies = setup.github("GET", "/environments/production/deployment-branch-policies").json()
    assert [(p["name"], p["type"]) for p in policies["branch_policies"]] == [("main", "branch")]
    assert setup.github("GET", "/environments/nope").status_code == 404
    # Secret names need admin: GITHUB_TOKEN is refused.
    assert setup.github("GET", "/environments/production/secrets", token=setup.info["actions_token"]).status_code == 403
    environment(setup, branch_policy=None)
    assert setup.github("GET", "/environments/production").json()["deployment_branch_policy"] is None


def test_a_missing_environment_fails(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/github", {"environments": {"production": None}})
    check = setup.doctor()[ENV]
    assert check.status == FAIL and "no environment 'production'" in check.detail and "New environment" in check.fix


def test_any_branch_may_deploy_fails(setup: Setup) -> None:
    environment(setup, branch_policy=None)
    check = setup.doctor()[ENV + ".branches"]
    assert check.status == FAIL and "any branch" in check.detail and "only 'main'" in check.fix
    environment(setup, branch_policy="protected")
    assert setup.doctor()[ENV + ".branches"].status == OK


def test_a_custom_policy_naming_more_than_main_fails(setup: Setup) -> None:
    environment(setup, branch_policies=[{"name": "main"}, {"name": "release/*"}])
    check = setup.doctor()[ENV + ".branches"]
    assert check.status == FAIL and "branch release/*" in check.detail
    environment(setup, branch_policies=[])
    assert "no branch may deploy" in setup.doctor()[ENV + ".branches"].detail
    environment(setup, branch_policies=[{"name": "main"}])
    assert setup.doctor()[ENV + ".branches"].status == OK


def test_secrets_left_at_repository_level_fail(setup: Setup) -> None:
    setup.control("PATCH", "/adoption/github", {"secrets": ["CLOUDFLARE_API_TOKEN"]})
    check = setup.doctor()[ENV + ".secrets"]
    assert check.status == FAIL and "CLOUDFLARE_API_TOKEN also exist as repository" in check.detail
    assert "delete the repository copies" in check.fix
    setup.control("PATCH", "/adoption/github", {"secrets": [], "org_secrets": ["SMOKE_TENANT_A_TOKEN"]})
    assert "SMOKE_TENANT_A_TOKEN" in setup.doctor()[ENV + ".secrets"].detail
    setup.control("PATCH", "/adoption/github", {"org_secrets": []})
    assert setup.doctor()[ENV + ".secrets"].status == OK


def test_secrets_only_at_repository_level_fail(setup: Setup) -> None:
    # The layout before #15.2: all three as repository secrets, none in the environment.
    setup.control("PATCH", "/adoption/github", {"secrets": ["CLOUDFLARE_API_TOKEN", "SMOKE_TENANT_B_TOKEN"]})
    environment(setup, secrets=["SMOKE_TENANT_A_TOKEN"])
    checks = setup.doctor()
    check = checks[ENV + ".secrets"]
    assert check.status == FAIL
    assert "not in the environment: CLOUDFLARE_API_TOKEN, SMOKE_TENANT_B_TOKEN" in check.detail
    assert checks["secrets"].status == OK  # set, just in the wrong place


def test_the_actions_token_cannot_list_them_and_says_so(setup: Setup) -> None:
    setup.github_token = setup.info["actions_token"]
    checks = setup.doctor(SMOKE_TENANT_A_TOKEN="a", SMOKE_TENANT_B_TOKEN="b")
    assert checks[ENV].status == OK and checks[ENV + ".branches"].status == OK  # read access suffices
    assert checks[ENV + ".secrets"].status == WARN and "needs admin" in checks[ENV + ".secrets"].detail


def test_required_reviewers_are_informational_unless_the_config_asks(setup: Setup) -> None:
    config = setup.workspace / "incidentops.yaml"
    config.write_text(config.read_text() + "\ngithub_environment:\n  required_reviewers: true\n")
    check = setup.doctor()[ENV + ".reviewers"]
    assert check.status == FAIL and "Required reviewers" in check.fix
    environment(setup, reviewers=["oncall-admin"])
    check = setup.doctor()[ENV + ".reviewers"]
    assert check.status == OK and check.detail == "oncall-admin"


def test_a_job_reading_secrets_outside_an_environment_fails(setup: Setup) -> None:
    # The job that reads the secrets is in the reusable workflow remind.yml calls.
    workflow = setup.workspace / ".github/workflows/reusable-remind.yml"
    text = workflow.read_text()
    assert "    environment: ${{ inputs.environment }}\n" in text
    workflow.write_text(text.replace("    environment: ${{ inputs.environment }}\n", "", 1))
    check = setup.doctor()["github.environment.none"]
    assert check.status == FAIL and "reusable-remind.yml:" in check.detail and "CLOUDFLARE_API_TOKEN" in check.detail
