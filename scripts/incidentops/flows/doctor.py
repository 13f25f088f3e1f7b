"""`incidentops doctor`: read everything the product needs from the repository, GitHub and Cloudflare, and say
what is ready. Read-only: it only ever sends GET requests (and the analytics query, which reads).

The checks run even when the configuration is broken: a check that cannot run for want of an earlier one is
skipped, never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ruamel.yaml import YAML

from incidentops.adapters.cloudflare import DEFAULT_BASE_URL, CloudflareClient, RetryPolicy
from incidentops.adapters.github import DEFAULT_API_URL, GitHubClient
from incidentops.config import CONFIG_FILE, Config, load_config
from incidentops.core import adopt, callers
from incidentops.core import doctor as core
from incidentops.core.doctor import FAIL, OK, WARN, Check, check
from incidentops.core.form import fields_from_template
from incidentops.core.ledger import load_ledger
from incidentops.core.rollback import pins_from_doc
from incidentops.core.runbook import RUNBOOK_PATH, parse_runbook
from incidentops.errors import ApiError, IncidentOpsError

FORM_PATH = ".github/ISSUE_TEMPLATE/incident.yml"
WORKFLOWS = ".github/workflows"
# Where GitHub looks for CODEOWNERS, first match wins (docs.github.com "About code owners").
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


def run_doctor(workspace: Path, env: Mapping[str, str]) -> list[Check]:
    checks: list[Check] = []
    config = _repository_checks(workspace, checks)
    checks += _github_checks(workspace, env, config)
    checks += asyncio.run(_cloudflare_checks(workspace, env, config))
    return checks


# -- this repository -------------------------------------------------------------------------------------------


def _repository_checks(workspace: Path, checks: list[Check]) -> Config | None:
    try:
        config = load_config(workspace)
    except IncidentOpsError as err:
        checks.append(
            check(
                "repo.config",
                "Repository",
                CONFIG_FILE,
                FAIL,
                err.message,
                err.hint or "run `incidentops init` to write one",
            )
        )
        return None
    checks.append(
        check(
            "repo.config",
            "Repository",
            CONFIG_FILE,
            OK,
            f"valid: {len(config.services)} service(s), environments {', '.join(e.name for e in config.environments)}",
        )
    )
    runbook = workspace / RUNBOOK_PATH
    if not runbook.is_file():
        checks.append(
            check(
                "repo.runbook",
                "Repository",
                RUNBOOK_PATH,
                FAIL,
                "missing: no smoke checks to run",
                "run `incidentops init` to write a skeleton",
            )
        )
    else:
        try:
            parsed = parse_runbook(runbook.read_text(encoding="utf-8"), [s.name for s in config.services])
        except IncidentOpsError as err:
            checks.append(
                check("repo.runbook", "Repository", RUNBOOK_PATH, FAIL, err.message, err.hint or "fix the smoke block")
            )
        else:
            per_env = ", ".join(f"{e}: {len(parsed.for_environment(e))}" for e in parsed.environments) or "none"
            checks.append(
                check(
                    "repo.runbook", "Repository", RUNBOOK_PATH, OK, f"parses; smoke checks per environment: {per_env}"
                )
            )
    found = next((workspace / p for p in CODEOWNERS_PATHS if (workspace / p).is_file()), None)
    checks.append(core.codeowners_check(found.read_text(encoding="utf-8", errors="replace") if found else None))
    form = workspace / FORM_PATH
    fields, problem = None, None
    if form.is_file():
        try:
            fields = fields_from_template(YAML(typ="safe", pure=True).load(form.read_text(encoding="utf-8")))
        except Exception as exc:  # any YAML error: the form is broken, say how
            problem = f"not valid YAML ({type(exc).__name__}: {str(exc)[:200]})"
    checks.append(
        core.form_check(fields, problem, [s.name for s in config.services], [e.name for e in config.environments])
    )
    return config


# -- GitHub ---------------------------------------------------------------------------------------------------


def _github_checks(workspace: Path, env: Mapping[str, str], config: Config | None) -> list[Check]:
    token, repository = env.get("GITHUB_TOKEN", ""), env.get("GITHUB_REPOSITORY", "")
    if not token or "/" not in repository:
        return [
            check(
                "github.access",
                "GitHub",
                "GitHub access",
                FAIL,
                "GITHUB_TOKEN or GITHUB_REPOSITORY (owner/name) is not set",
                "in Actions both are automatic; by hand, export GITHUB_TOKEN=$(gh auth token) and GITHUB_REPOSITORY",
            )
        ]
    gh = GitHubClient(
        token=token, repository=repository, api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL, retries=2
    )
    try:
        status, _ = gh.read("")
    except ApiError as err:
        return [
            check("github.access", "GitHub", "GitHub access", FAIL, str(err), "check GITHUB_API_URL and the network")
        ]
    if status != 200:
        return [
            check(
                "github.access",
                "GitHub",
                "GitHub access",
                FAIL,
                f"cannot read {repository} with this token (HTTP {status})",
                "check GITHUB_REPOSITORY and that the token can read the repository",
            )
        ]
    out = [check("github.access", "GitHub", "GitHub access", OK, f"{repository} readable")]
    out += core.workflow_settings_check(*gh.read("/actions/permissions/workflow"))
    branch = config.default_branch if config else "main"
    out += core.branch_checks(branch, *gh.read(f"/branches/{branch}"), *gh.read(f"/rules/branches/{branch}"))
    if config is not None:
        required = core.required_labels(config.severities, config.incident_label)
        out.append(core.labels_check(gh.labels(), required))
    workflows = _workflow_texts(workspace)
    docs = _workflow_docs(workflows)
    found = callers.calls(docs)
    out.append(callers.pin_check(found))
    uses_report = any("incidentops report" in text or "report --out" in text for text in workflows.values()) or any(
        call.called == "reusable-report.yml" for call in found
    )
    out.append(core.pages_check(uses_report, *(gh.read("/pages") if uses_report else (0, None))))
    runbook = workspace / RUNBOOK_PATH
    referenced = core.referenced_secrets(
        workflows.values(), runbook.read_text(encoding="utf-8") if runbook.is_file() else ""
    )
    called = sorted(
        {name for jobs in callers.called_secrets(found).values() for names in jobs.values() for name in names}
    )
    referenced = sorted({*referenced, *called})
    listed_status, listed = gh.read("/actions/secrets") if referenced else (0, None)
    outside: set[str] | None = None
    if listed_status == 200 and isinstance(listed, dict):
        # An organization secret shared with the repository counts as set.
        org_status, shared = gh.read("/actions/organization-secrets")
        if org_status == 200 and isinstance(shared, dict):
            listed = {"secrets": [*(listed.get("secrets") or []), *(shared.get("secrets") or [])]}
            outside = {str(s.get("name")) for s in listed["secrets"] if isinstance(s, dict)}
    by_environment = core.secret_environments(docs)
    # A caller passes the environment secrets on with `secrets: inherit`: its own text names none of them.
    for name, jobs in callers.called_secrets(found).items():
        by_environment.setdefault(name, {}).update(jobs)
    out += core.unscoped_secrets_check(by_environment.pop("", {}))
    want_reviewers = bool(config and config.extra.get("github_environment", {}).get("required_reviewers"))
    for name, jobs in sorted(by_environment.items()):
        path = f"/environments/{quote(name, safe='')}"
        environment = gh.read(path)
        custom = environment[0] == 200 and ((environment[1] or {}).get("deployment_branch_policy") or {}).get(
            "custom_branch_policies"
        )
        policies = gh.read(f"{path}/deployment-branch-policies") if custom else (0, None)
        env_secrets = gh.read(f"{path}/secrets") if environment[0] == 200 else (0, None)
        out += core.environment_checks(name, jobs, branch, environment, policies, env_secrets, outside, want_reviewers)
        if listed_status == 200 and isinstance(listed, dict) and env_secrets[0] == 200:
            # An environment secret counts as set for the jobs that declare that environment.
            listed = {"secrets": [*(listed.get("secrets") or []), *((env_secrets[1] or {}).get("secrets") or [])]}
    present = {name: bool(env.get(name)) for name in referenced}
    out.append(core.secrets_check(referenced, listed_status, listed, present))
    return out


def _workflow_docs(texts: Mapping[str, str]) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for name, text in texts.items():
        try:
            docs[name] = YAML(typ="safe", pure=True).load(text)
        except Exception:  # a broken workflow is lint's to report; its jobs read nothing here
            continue
    return docs


def _workflow_texts(workspace: Path) -> dict[str, str]:
    folder = workspace / WORKFLOWS
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.y*ml")) if p.is_file()}


# -- Cloudflare -----------------------------------------------------------------------------------------------


async def _cloudflare_checks(workspace: Path, env: Mapping[str, str], config: Config | None) -> list[Check]:
    token = env.get("CLOUDFLARE_API_TOKEN", "").strip()
    if not token:
        return [
            check(
                "cloudflare.token",
                "Cloudflare",
                "CLOUDFLARE_API_TOKEN",
                FAIL,
                "CLOUDFLARE_API_TOKEN is not set",
                "add the repository secret CLOUDFLARE_API_TOKEN and pass it to the step's env",
            )
        ]
    accounts = list(dict.fromkeys(e.account_id for e in config.environments)) if config else []
    env_account = env.get("CLOUDFLARE_ACCOUNT_ID", "").strip()
    account = accounts[0] if accounts else env_account
    client = CloudflareClient(
        token=token,
        account_id=account or "unknown",
        base_url=env.get("CLOUDFLARE_API_BASE_URL", "").strip() or DEFAULT_BASE_URL,
        retry=RetryPolicy(max_attempts=2, deadline=30),
    )
    out: list[Check] = []
    async with client:
        try:
            verified: dict[str, Any] | None = await client.verify_token()
            error = None
        except ApiError as err:
            verified, error = None, err.message
        out.append(core.token_check(verified, error))
        if out[-1].status == FAIL or verified is None:
            return out
        out += await _permissions(client, str(verified.get("id") or ""), config)
        if env_account and accounts and any(a != env_account for a in accounts):
            out.append(
                check(
                    "cloudflare.account",
                    "Cloudflare",
                    "account id",
                    FAIL,
                    f"CLOUDFLARE_ACCOUNT_ID is {env_account}, incidentops.yaml names {', '.join(accounts)}",
                    "make them agree (incidentops uses incidentops.yaml's; wrangler uses the variable)",
                )
            )
        else:
            out.append(
                check(
                    "cloudflare.account",
                    "Cloudflare",
                    "account id",
                    OK,
                    f"{', '.join(accounts) or env_account or 'none configured'}"
                    + ("" if env_account else " (CLOUDFLARE_ACCOUNT_ID not set; incidentops.yaml's is used)"),
                )
            )
        if config is not None:
            for environment in config.environments:
                if environment.account_id == client.account_id:
                    out += await _environment_checks(workspace, config, environment, client)
                    continue
                other = CloudflareClient(
                    token=token, account_id=environment.account_id, base_url=client.base_url, retry=client.retry
                )
                async with other:
                    out += await _environment_checks(workspace, config, environment, other)
    return out


async def _permissions(client: CloudflareClient, token_id: str, config: Config | None) -> list[Check]:
    try:
        details = await client.token_details(token_id)
    except ApiError:
        details = None
    if details is not None:
        granted = {
            str(group.get("name"))
            for policy in details.get("policies") or []
            if isinstance(policy, dict) and policy.get("effect") == "allow"
            for group in policy.get("permission_groups") or []
            if isinstance(group, dict)
        }
        return core.permission_checks(granted, {})
    probed: dict[str, bool] = {}

    async def probe(group: str, call: Any) -> None:
        try:
            await call
            probed[group] = True
        except ApiError as err:
            if err.status == 403:
                probed[group] = False
            # any other answer (a missing script, say) is reported by the resource checks

    worker = next((s for s in config.services if s.kind == "worker"), None) if config else None
    zone = config.environments[0].zone_id if config and config.environments else None
    await probe("Pages Read", client.list_pages_projects())
    if worker is not None:
        await probe("Workers Scripts Read", client.list_worker_deployments(worker.cloudflare_name))
        now = datetime.now(UTC)
        await probe(
            "Account Analytics Read", client.worker_invocations(worker.cloudflare_name, now - timedelta(minutes=5), now)
        )
    if zone is not None:
        await probe("Zone Read", client.get_zone(zone))
        await probe("Zone WAF Read", client.get_entrypoint_ruleset(zone))
    return core.permission_checks(None, probed)


async def _environment_checks(
    workspace: Path, config: Config, environment: Any, client: CloudflareClient
) -> list[Check]:
    live: dict[str, str | None] = {}
    answers: dict[str, tuple[str, ...]] = {}  # hosts each service answers, as Cloudflare shows them
    missing: list[str] = []
    for service in config.services:
        try:
            if service.kind == "worker":
                deployments = await client.list_worker_deployments(service.cloudflare_name)
                live[service.name] = deployments[0].full_version_id if deployments else None
            else:
                project = await client.get_pages_project(service.cloudflare_name)
                live[service.name] = project.canonical_deployment.id if project.canonical_deployment else None
                answers[service.name] = project.domains
        except ApiError as err:
            missing.append(
                f"{service.kind} {service.cloudflare_name} ({err.message.removeprefix('Cloudflare: ')[:120]})"
            )
    name = environment.name
    out = [
        check(
            f"cloudflare.services.{name}",
            "Cloudflare",
            f"services in {name}",
            FAIL,
            "not found or not readable: " + "; ".join(missing),
            "fix cloudflare_name/account_id in incidentops.yaml, or the token's account scope",
        )
        if missing
        else check(
            f"cloudflare.services.{name}", "Cloudflare", f"services in {name}", OK, f"all {len(config.services)} found"
        )
    ]
    plan: str | None = None
    used: int | None = None
    try:
        zone = await client.get_zone(environment.zone_id)
        plan = zone.plan or None
        ruleset = await client.get_entrypoint_ruleset(environment.zone_id)
        used = len(ruleset.rules) if ruleset else 0
    except ApiError:
        pass
    out.append(core.plan_check(name, environment.zone_id, plan, used))
    routes_read = True
    try:
        routes = adopt.worker_hosts(await client.list_worker_routes(environment.zone_id))
    except ApiError:  # needs Workers Routes Read, which the workflows' token may not have
        routes, routes_read = {}, False
    for service in config.services:
        if service.kind == "worker":
            answers[service.name] = tuple(routes.get(service.cloudflare_name, ()))
    out.append(core.hosts_check(name, config.services, environment.base_urls, answers, routes_read))
    ledger = workspace / f"deployments/{name}.yaml"
    pins: dict[str, str] | None = None
    if ledger.is_file():
        try:
            pins = {k: p.version for k, p in pins_from_doc(load_ledger(ledger.read_text(encoding="utf-8")), "").items()}
        except Exception:  # a broken ledger reads as an empty one here; lint reports the syntax
            pins = {}
    if not missing:
        out.append(core.ledger_check(name, pins, live))
    return out


__all__ = ["FAIL", "OK", "WARN", "run_doctor"]
