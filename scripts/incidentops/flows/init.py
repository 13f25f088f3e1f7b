"""`incidentops init`: set an existing repository up from what Cloudflare shows.

Discover the account's Workers, Pages projects and zones; settle the services, environment and zone (flags, else
a prompt on a terminal); then write incidentops.yaml, the caller workflows, Dependabot, the issue form, a runbook
skeleton, the ledger pinned to what is live (unverified), CODEOWNERS over those, and ADR 0001 if there is none,
and create the labels.
Idempotent: what already holds exactly what init would write is left alone, and a file that holds anything else
is kept unless `--force`. Files are written, not committed: a person reviews and commits them.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from incidentops import __version__
from incidentops.adapters.cloudflare import DEFAULT_BASE_URL, CloudflareClient
from incidentops.adapters.github import DEFAULT_API_URL, GitHubClient
from incidentops.config import CONFIG_FILE, parse_config
from incidentops.core import adopt as core
from incidentops.core.doctor import required_labels
from incidentops.core.ledger import load_ledger, render_ledger
from incidentops.core.rollback import pins_from_doc
from incidentops.core.runbook import RUNBOOK_PATH, parse_runbook
from incidentops.errors import IncidentOpsError, UsageError
from incidentops.render import render

# ask(question, choices, multiple) -> the chosen items; None where nobody can answer (not a terminal).
Ask = Callable[[str, list[str], bool], list[str]]


@dataclass
class Answers:
    services: list[str] | None = None
    environment: str | None = None
    zone: str | None = None
    uses: str | None = None
    force: bool = False
    health_path: str = "/healthz"
    ask: Ask | None = None
    owners: list[str] | None = None  # @user or @org/team for CODEOWNERS; None: the token's owner


@dataclass
class InitResult:
    lines: list[str] = field(default_factory=list)
    changed: bool = False


def run_init(workspace: Path, env: Mapping[str, str], answers: Answers) -> InitResult:
    if not (workspace / ".git").exists():
        raise IncidentOpsError(
            f"{workspace} is not a git checkout", hint="Run init at the root of your ops repository's clone."
        )
    upstream, sha = core.parse_uses(answers.uses) if answers.uses else (core.UPSTREAM, _own_commit())
    owners = core.code_owners(answers.owners) if answers.owners is not None else None
    facts = asyncio.run(_discover(env, answers))
    result = InitResult()
    files = _files(workspace, facts, answers, upstream, sha)
    files.append(_codeowners(workspace, env, owners, answers.force))
    for action in files:
        if action.writes:
            target = workspace / action.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(action.content, encoding="utf-8")
            result.changed = True
        result.lines.append(_describe(action))
    result.lines += _labels(workspace, env, result)
    if not result.changed:
        result.lines.append("Nothing changed: this repository is already set up.")
    else:
        result.lines.append("Review the files, commit them, add the secrets, then run `incidentops doctor`.")
    return result


def _own_commit() -> str:
    """The commit this package runs from, when it runs from a git checkout: what the callers pin."""
    root = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if len(out) != 40:
        raise UsageError(
            "cannot tell which incidentops commit to pin the workflows to",
            hint="Pass --uses OWNER/REPO@SHA (the incidentops release commit).",
        )
    return out


# -- discovery ------------------------------------------------------------------------------------------------


@dataclass
class Facts:
    account_id: str
    environment: str
    zone_id: str
    zone_name: str
    services: list[core.Discovered]
    live: dict[str, str | None]


def _choose(given: list[str] | None, choices: list[str], what: str, ask: Ask | None, multiple: bool) -> list[str]:
    if given is not None:
        return core.select(given, choices, what)
    if not multiple and len(choices) == 1:
        return choices
    if ask is None:
        raise UsageError(
            f"which {what}? Found: {', '.join(choices) or 'none'}",
            hint=f"Pass --{what.split()[0].rstrip('s')}{'s' if multiple else ''} (init asks only on a terminal).",
        )
    return core.select(ask(f"Which {what}?", choices, multiple), choices, what)


async def _discover(env: Mapping[str, str], answers: Answers) -> Facts:
    token = env.get("CLOUDFLARE_API_TOKEN", "").strip()
    if not token:
        raise IncidentOpsError("CLOUDFLARE_API_TOKEN is not set", hint="Export a Cloudflare API token for init.")
    base = env.get("CLOUDFLARE_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
    account = env.get("CLOUDFLARE_ACCOUNT_ID", "").strip()
    if not account:
        raise IncidentOpsError(
            "CLOUDFLARE_ACCOUNT_ID is not set", hint="Export the account id (dashboard → Workers & Pages → Account ID)."
        )
    async with CloudflareClient(token=token, account_id=account, base_url=base) as cf:
        scripts, projects, zones = await asyncio.gather(
            cf.list_worker_scripts(), cf.list_pages_projects(), cf.list_zones()
        )
        by_name = {str(z.get("name")): str(z.get("id")) for z in zones}
        zone_choices = sorted(by_name)
        given_zone = answers.zone
        if given_zone is not None and given_zone not in by_name:
            given_zone = next((name for name, ident in by_name.items() if ident == given_zone), given_zone)
        zone_name = _choose([given_zone] if given_zone else None, zone_choices, "zone", answers.ask, False)[0]
        zone_id = by_name[zone_name]
        routes = core.worker_hosts(await cf.list_worker_routes(zone_id))
        discovered = [core.Discovered(name, "worker", tuple(routes.get(name, ()))) for name in sorted(scripts)]
        discovered += [
            core.Discovered(str(p["name"]), "pages", tuple(str(d) for d in p.get("domains") or []))
            for p in sorted(projects, key=lambda p: str(p.get("name")))
        ]
        names = [d.name for d in discovered]
        chosen = _choose(answers.services, names, "services", answers.ask, True)
        services = [d for d in discovered if d.name in chosen]
        environment = answers.environment
        if environment is None:
            if answers.ask is None:
                raise UsageError(
                    "which environment is this zone?", hint="Pass --environment production (or staging, …)."
                )
            environment = (answers.ask("Which environment is this (e.g. production)?", [], False) or [""])[0]
        live: dict[str, str | None] = {}
        for service in services:
            if service.kind == "worker":
                deployments = await cf.list_worker_deployments(service.name)
                live[service.name] = deployments[0].full_version_id if deployments else None
            else:
                project = await cf.get_pages_project(service.name)
                live[service.name] = project.canonical_deployment.id if project.canonical_deployment else None
    return Facts(account, environment, zone_id, zone_name, services, live)


# -- files ----------------------------------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _files(workspace: Path, facts: Facts, answers: Answers, upstream: str, sha: str) -> list[core.FileAction]:
    urls, keys = core.base_urls(facts.services, facts.zone_name)
    today = datetime.now(UTC).date().isoformat()
    config_text = render(
        "adopt/incidentops.yaml.j2",
        None,
        default_branch="main",
        # A service reachable on a host of the zone names it: exit criteria then read the zone's HTTP analytics for
        # it, what customers got (a Worker's invocation errors miss every 500 it answers; real-world-facts
        # Cloudflare 2).
        services=[
            {
                "name": s.name,
                "kind": s.kind,
                "cloudflare_name": s.name,
                "hosts": [keys[s.name]] if s.name in keys else [],
            }
            for s in facts.services
        ],
        environment=facts.environment,
        account_id=facts.account_id,
        zone_id=facts.zone_id,
        zone_name=facts.zone_name,
        base_urls=urls,
    )
    config = parse_config(_yaml_load(config_text))  # what init writes must be valid; a bug otherwise
    checks = [{"service": s.name, "key": keys[s.name]} for s in facts.services if s.name in keys]
    unreachable = [s.name for s in facts.services if s.name not in keys]
    runbook_text = render(
        "adopt/runbook.md.j2",
        None,
        environment=facts.environment,
        checks=checks,
        unreachable=unreachable,
        health_path=answers.health_path,
    )
    parse_runbook(runbook_text, [s.name for s in config.services])
    existing_runbook = _read(workspace / RUNBOOK_PATH)
    actions = [
        core.decide(CONFIG_FILE, config_text, _read(workspace / CONFIG_FILE), answers.force),
        core.decide(RUNBOOK_PATH, runbook_text, existing_runbook, answers.force),
    ]
    form = render("adopt/incident-form.yml.j2", None, environments=[facts.environment], services=facts.services)
    actions.append(
        core.decide(
            ".github/ISSUE_TEMPLATE/incident.yml",
            form,
            _read(workspace / ".github/ISSUE_TEMPLATE/incident.yml"),
            answers.force,
        )
    )
    for name in core.CALLERS:
        text = render(
            f"adopt/caller-{name}.yml.j2",
            None,
            upstream=upstream,
            sha=sha,
            # Dependabot rewrites a `# vX.Y.Z` comment after a SHA pin to the new release's tag.
            version=__version__,
            gh=_expression,
        )
        path = f".github/workflows/{name}.yml"
        actions.append(core.decide(path, text, _read(workspace / path), answers.force))
    dependabot = render("adopt/dependabot.yml.j2", None, upstream=upstream)
    actions.append(
        core.decide(".github/dependabot.yml", dependabot, _read(workspace / ".github/dependabot.yml"), answers.force)
    )
    actions.append(_ledger(workspace, facts, answers.force))
    adrs = workspace / "docs/adrs"
    if any(adrs.glob("0001-*.md")):
        actions.append(core.FileAction("docs/adrs/0001-*.md", "unchanged"))
    else:
        adr = render("adopt/adr-0001.md.j2", None, today=today)
        actions.append(core.decide("docs/adrs/0001-record-architecture-decisions.md", adr, None, False))
    return actions


def _codeowners(workspace: Path, env: Mapping[str, str], owners: list[str] | None, force: bool) -> core.FileAction:
    """CODEOWNERS over the ledger, runbook, configuration and workflows, so each change to them needs a review."""
    path = ".github/CODEOWNERS"
    existing = _read(workspace / path)
    if owners is None:
        if existing is not None and not force:
            return core.FileAction(path, "unchanged" if core.covers_trusted_paths(existing) else "kept")
        owners = ["@" + _github(env).whoami().login]
    text = render("adopt/CODEOWNERS.j2", None, owners=" ".join(owners), branch="main")
    return core.decide(path, text, existing, force)


def _github(env: Mapping[str, str]) -> GitHubClient:
    token, repository = env.get("GITHUB_TOKEN", ""), env.get("GITHUB_REPOSITORY", "")
    if not token or "/" not in repository:
        raise IncidentOpsError(
            "GITHUB_TOKEN and GITHUB_REPOSITORY (owner/name) are needed to create the labels",
            hint="export GITHUB_TOKEN=$(gh auth token) GITHUB_REPOSITORY=owner/name",
        )
    return GitHubClient(token=token, repository=repository, api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL)


def _expression(inner: str) -> str:
    """A GitHub Actions expression in a generated workflow (jinja would read `${{ }}` as its own)."""
    return "${{ " + inner + " }}"


def _yaml_load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def _ledger(workspace: Path, facts: Facts, force: bool) -> core.FileAction:
    path = f"deployments/{facts.environment}.yaml"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pins: dict[str, dict[str, Any]] = {
        s.name: {
            "kind": s.kind,
            "version": facts.live[s.name],
            "set_by": "incidentops-init",
            "set_at": now,
            "verified": False,
        }
        for s in facts.services
        if facts.live.get(s.name)
    }
    wanted = render_ledger({"environment": facts.environment, "services": pins})
    existing = _read(workspace / path)
    if existing is not None:
        try:
            pinned = {k: p.version for k, p in pins_from_doc(load_ledger(existing), "").items()}
        except Exception:  # an unreadable ledger is someone's to fix; init keeps it
            pinned = {}
        if pinned == {k: v["version"] for k, v in pins.items()}:
            return core.FileAction(path, "unchanged")
    return core.decide(path, wanted, existing, force)


def _describe(action: core.FileAction) -> str:
    return {
        "create": f"wrote     {action.path}",
        "overwrite": f"rewrote   {action.path} (--force)",
        "unchanged": f"unchanged {action.path}",
        "kept": f"kept      {action.path}: it differs from what init would write (edited?); --force overwrites it",
    }[action.action]


# -- labels ---------------------------------------------------------------------------------------------------


def _labels(workspace: Path, env: Mapping[str, str], result: InitResult) -> list[str]:
    gh = _github(env)
    from ruamel.yaml import YAML

    config = parse_config(YAML(typ="safe", pure=True).load((workspace / CONFIG_FILE).read_text(encoding="utf-8")))
    present = gh.labels()
    lines = []
    for name, (colour, description) in required_labels(config.severities, config.incident_label).items():
        if name in present:
            lines.append(f"unchanged label {name}")
        elif gh.create_label(name, colour, description):
            lines.append(f"created   label {name}")
            result.changed = True
    return lines
