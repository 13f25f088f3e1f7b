"""Setup checks (pure): what `incidentops doctor` concludes from what it read, and how it says so.

Each check is ✅ (ok), ⚠️ (warn: works, but something a person should know) or ❌ (fail: a part of the product
will not work), always with the fix. The flow gathers the facts; everything here decides and renders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from incidentops.core.adopt import uncovered_paths
from incidentops.core.incidentfile import escape_inline

if TYPE_CHECKING:
    from incidentops.config import Service

OK, WARN, FAIL = "ok", "warn", "fail"
SYMBOLS = {OK: "✅", WARN: "⚠️", FAIL: "❌"}

# Labels the product reads or writes besides the severities, with the colour and description `init` gives them.
FIXED_LABELS: dict[str, tuple[str, str]] = {
    "rollback": ("0e8a16", "A rollback pull request opened by incidentops"),
    "incident-followup": ("1d76db", "Follow-up work from an incident"),
    "architecture-significant": ("c5def5", "A decision that gets an ADR"),
}
SEVERITY_COLOURS = ("b60205", "d93f0b", "fbca04", "0e8a16", "c2e0c6")
INCIDENT_LABEL = ("5319e7", "An incident record, managed by incidentops")

# What the product does with the Cloudflare token, and the permission group each needs
# (developers.cloudflare.com/fundamentals/api/reference/permissions/; "Edit is full CRUDL access").
CLOUDFLARE_NEEDS: tuple[tuple[str, str], ...] = (
    ("read Worker deployments and versions", "Workers Scripts Read"),
    ("deploy a Worker version (rollback)", "Workers Scripts Write"),
    ("read Pages projects and deployments", "Pages Read"),
    ("roll back a Pages deployment", "Pages Write"),
    ("read the zone and its plan", "Zone Read"),
    ("read the zone's custom rules", "Zone WAF Read"),
    ("edit the zone's custom rules (containment)", "Zone WAF Write"),
    ("read analytics (blast radius, exit criteria)", "Account Analytics Read"),
)
_IMPLIED_BY = {
    "Workers Scripts Read": "Workers Scripts Write",
    "Pages Read": "Pages Write",
    "Zone WAF Read": "Zone WAF Write",
}
PLAN_RULE_LIMITS = {"free": 5, "pro": 20, "business": 100, "enterprise": 1000}  # WAF custom rules per zone

_WORKFLOW_SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
_RUNBOOK_SECRET = re.compile(r"\$\{(SMOKE_[A-Z0-9_]+)\}")


@dataclass(frozen=True)
class Check:
    id: str  # stable, for --json and tests: "github.labels", "cloudflare.token", …
    area: str  # GitHub | Secrets | Cloudflare | Repository
    title: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check(id: str, area: str, title: str, status: str, detail: str, fix: str = "") -> Check:
    return Check(id, area, title, status, detail, fix if status != OK else "")


AREAS = ("Repository", "GitHub", "Secrets", "Cloudflare")


def ordered(checks: Sequence[Check]) -> list[Check]:
    """Group by area (repository first), keeping the order within each."""
    return sorted(checks, key=lambda c: AREAS.index(c.area) if c.area in AREAS else len(AREAS))


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def render_text(checks: Sequence[Check]) -> str:
    lines: list[str] = []
    area = None
    for c in ordered(checks):
        if c.area != area:
            area = c.area
            lines.append(f"{'' if not lines else chr(10)}{area}")
        lines.append(f"  {SYMBOLS[c.status]} {c.title}: {c.detail}")
        if c.fix:
            lines.append(f"     fix: {c.fix}")
    counts = {s: sum(1 for c in checks if c.status == s) for s in (OK, WARN, FAIL)}
    lines.append(f"\n{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failing")
    return "\n".join(lines) + "\n"


def render_markdown(checks: Sequence[Check]) -> str:
    """The job summary: one table row per check (cells escaped: details quote API answers and names people set)."""

    def cell(text: str) -> str:
        return escape_inline(text, limit=2000)

    rows = ["| | check | result | fix |", "|---|---|---|---|"]
    rows += [
        f"| {SYMBOLS[c.status]} | {cell(c.area)}: {cell(c.title)} | {cell(c.detail)} | {cell(c.fix)} |"
        for c in ordered(checks)
    ]
    verdict = "❌ not ready" if exit_code(checks) else "✅ ready"
    return f"## incidentops doctor: {verdict}\n\n" + "\n".join(rows) + "\n"


def render_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": exit_code(checks) == 0, "checks": [asdict(c) for c in ordered(checks)]}, indent=2) + "\n"


# -- decisions -----------------------------------------------------------------------------------------------


def required_labels(severities: Mapping[str, str], incident_label: str) -> dict[str, tuple[str, str]]:
    """Every label the product needs, with the colour and description `init` creates it with."""
    labels: dict[str, tuple[str, str]] = {}
    for index, (label, severity) in enumerate(severities.items()):
        colour = SEVERITY_COLOURS[min(index, len(SEVERITY_COLOURS) - 1)]
        labels[label] = (colour, f"Declares a {severity} incident (incidentops)")
    labels[incident_label] = INCIDENT_LABEL
    labels.update(FIXED_LABELS)
    return labels


def labels_check(present: Iterable[str], required: Iterable[str]) -> Check:
    have = set(present)
    missing = [name for name in required if name not in have]
    if missing:
        return check(
            "github.labels",
            "GitHub",
            "labels",
            FAIL,
            f"missing: {', '.join(missing)}",
            "run `incidentops init` (creates them), or add them under Issues → Labels",
        )
    return check("github.labels", "GitHub", "labels", OK, "all present")


def workflow_settings_check(status: int, data: Any) -> list[Check]:
    """Default token permissions, and whether Actions may open pull requests (the rollback PR)."""
    if status != 200 or not isinstance(data, dict):
        cannot = (
            "this token may not read the Actions settings (it needs admin; GITHUB_TOKEN never can)",
            "run `incidentops doctor` by hand with an admin's token, or check Settings → Actions → General",
        )
        return [
            check("github.workflow-permissions", "GitHub", "workflow permissions", WARN, *cannot),
            check("github.actions-create-prs", "GitHub", "Actions may open pull requests", WARN, *cannot),
        ]
    default = data.get("default_workflow_permissions")
    perms = (
        check(
            "github.workflow-permissions",
            "GitHub",
            "workflow permissions",
            OK,
            "read by default; each workflow asks for what it needs",
        )
        if default == "read"
        else check(
            "github.workflow-permissions",
            "GitHub",
            "workflow permissions",
            WARN,
            f"default is {default!r}: every workflow without `permissions:` gets write access",
            "Settings → Actions → General → Workflow permissions → Read repository contents and packages permissions",
        )
    )
    prs = (
        check("github.actions-create-prs", "GitHub", "Actions may open pull requests", OK, "allowed")
        if data.get("can_approve_pull_request_reviews")
        else check(
            "github.actions-create-prs",
            "GitHub",
            "Actions may open pull requests",
            FAIL,
            "not allowed: the rollback pull request cannot be opened",
            'Settings → Actions → General → tick "Allow GitHub Actions to create and approve pull requests"',
        )
    )
    return [perms, prs]


def branch_checks(branch: str, branch_status: int, branch_data: Any, rules_status: int, rules: Any) -> list[Check]:
    """Whether the default branch takes the bot's direct pushes, and whether required checks block rollback PRs."""
    blockers: list[str] = []
    required: list[str] = []
    if branch_status == 200 and isinstance(branch_data, dict):
        if branch_data.get("protected"):
            blockers.append("branch protection")
        protection = branch_data.get("protection") or {}
        required += list((protection.get("required_status_checks") or {}).get("contexts") or [])
    for rule in rules if rules_status == 200 and isinstance(rules, list) else []:
        kind = rule.get("type") if isinstance(rule, dict) else None
        if kind in ("pull_request", "update", "non_fast_forward", "required_linear_history"):
            blockers.append(f"ruleset rule {kind!r}")
        if kind == "required_status_checks":
            params = rule.get("parameters") or {}
            required += [str(c.get("context")) for c in params.get("required_status_checks") or [] if c.get("context")]
    out: list[Check] = []
    if branch_status != 200:
        out.append(
            check(
                "github.branch-pushes",
                "GitHub",
                f"pushes to {branch}",
                FAIL,
                f"cannot read branch {branch!r} (HTTP {branch_status})",
                f"create {branch!r} or set default_branch in incidentops.yaml",
            )
        )
    elif blockers:
        out.append(
            check(
                "github.branch-pushes",
                "GitHub",
                f"pushes to {branch}",
                FAIL,
                f"{', '.join(dict.fromkeys(blockers))} on {branch}: incidentops commits incident files straight to "
                f"{branch}, and those pushes are refused (GH006/GH013)",
                "add the GitHub Actions app to the ruleset's bypass list, or narrow the rule so it does not cover "
                + branch,
            )
        )
    else:
        out.append(
            check("github.branch-pushes", "GitHub", f"pushes to {branch}", OK, "no rule blocks the bot's pushes")
        )
    if required:
        out.append(
            check(
                "github.required-checks",
                "GitHub",
                "required checks vs rollback PRs",
                WARN,
                f"{branch} requires {', '.join(dict.fromkeys(required))}; a pull request opened with GITHUB_TOKEN "
                "starts no "
                "workflow, so these never report on a rollback PR",
                "let maintainers merge rollback PRs without the checks (ruleset bypass), or run the checks on "
                "`pull_request_target`/`workflow_dispatch` for branches named incidentops/rollback-*",
            )
        )
    else:
        out.append(check("github.required-checks", "GitHub", "required checks vs rollback PRs", OK, "none required"))
    return out


def pages_check(uses_report: bool, status: int, data: Any) -> Check:
    title = "Pages (incident history site)"
    if not uses_report:
        return check("github.pages", "GitHub", title, OK, "the report workflow is not used")
    if status == 404:
        return check(
            "github.pages",
            "GitHub",
            title,
            FAIL,
            "GitHub Pages is not enabled; the report workflow cannot publish",
            "Settings → Pages → Source: GitHub Actions",
        )
    if status != 200 or not isinstance(data, dict):
        return check(
            "github.pages",
            "GitHub",
            title,
            WARN,
            f"cannot read the Pages settings (HTTP {status})",
            "give the token `pages: read`, or check Settings → Pages by hand",
        )
    if data.get("build_type") != "workflow":
        return check(
            "github.pages",
            "GitHub",
            title,
            FAIL,
            f"source is {data.get('build_type')!r}, not GitHub Actions: the report workflow's deployment is ignored",
            "Settings → Pages → Source: GitHub Actions",
        )
    if data.get("public"):
        return check(
            "github.pages",
            "GitHub",
            title,
            WARN,
            f"the site {data.get('html_url', '')} is public: anyone can read incident summaries",
            "make the site private (Settings → Pages → Visibility; needs Enterprise Cloud), "
            "or drop the report workflow",
        )
    return check("github.pages", "GitHub", title, OK, f"published from Actions, private ({data.get('html_url', '')})")


def referenced_secrets(workflow_texts: Iterable[str], runbook_text: str) -> list[str]:
    names: dict[str, None] = {}
    for text in workflow_texts:
        names.update(dict.fromkeys(_WORKFLOW_SECRET.findall(text)))
    names.update(dict.fromkeys(_RUNBOOK_SECRET.findall(runbook_text)))
    names.pop("GITHUB_TOKEN", None)  # automatic
    return sorted(names)


def secrets_check(referenced: Sequence[str], status: int, data: Any, in_env: Mapping[str, bool]) -> Check:
    title = "secrets the workflows and the runbook use"
    if not referenced:
        return check("secrets", "Secrets", title, OK, "none referenced")
    if status == 200 and isinstance(data, dict):
        have = {str(s.get("name")) for s in data.get("secrets") or [] if isinstance(s, dict)}
        missing = [name for name in referenced if name not in have]
        if missing:
            return check(
                "secrets",
                "Secrets",
                title,
                FAIL,
                f"not set: {', '.join(missing)}",
                f"Settings → Environments → {SECRETS_ENVIRONMENT} → Add secret (or `gh secret set NAME --env "
                f"{SECRETS_ENVIRONMENT}`)",
            )
        return check("secrets", "Secrets", title, OK, f"all set: {', '.join(referenced)}")
    # The token may not list secret names; what the environment holds is the next best evidence.
    missing = [name for name in referenced if not in_env.get(name)]
    if missing:
        return check(
            "secrets",
            "Secrets",
            title,
            WARN,
            f"this token may not list secret names (needs admin); not in this environment: {', '.join(missing)}",
            "pass them to the doctor step's env, or run doctor by hand with an admin's token",
        )
    return check(
        "secrets",
        "Secrets",
        title,
        OK,
        f"all present in this environment ({', '.join(referenced)}); names not listed: the token may not",
    )


# The environment the shipped workflows' privileged jobs declare: a caller job (`uses:` a reusable workflow) reads
# its secrets there, since `on.workflow_call` has no environment of its own.
SECRETS_ENVIRONMENT = "production"
_QUOTED = re.compile(r"'([^']+)'")


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


_INPUT = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$")


def _input_default(doc: Any, expression: str) -> list[str]:
    """`environment: ${{ inputs.environment }}` in a reusable workflow: the input's default, which a caller that
    names no environment gets (a caller that names one is read by `core.callers`)."""
    match = _INPUT.match(expression.strip())
    # YAML 1.1 reads a bare `on` key as True.
    on = (doc.get("on") or doc.get(True)) if isinstance(doc, dict) else None
    call = on.get("workflow_call") if isinstance(on, Mapping) else None
    inputs = call.get("inputs") if isinstance(call, Mapping) else None
    spec = inputs.get(match.group(1)) if match and isinstance(inputs, Mapping) else None
    default = spec.get("default") if isinstance(spec, Mapping) else None
    return [default] if isinstance(default, str) and default else []


def secret_environments(workflows: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Environment name -> {"file:job": secrets it reads}, for every job that reads a secret besides GITHUB_TOKEN.

    A job without an environment is listed under "" (its secrets are repository secrets, readable from any branch).
    `environment: ${{ vars.X || 'name' }}` counts as its literal fallback.
    """
    found: dict[str, dict[str, list[str]]] = {}
    for filename, doc in workflows.items():
        jobs = doc.get("jobs") if isinstance(doc, Mapping) else None
        for job_id, job in (jobs or {}).items() if isinstance(jobs, Mapping) else ():
            if not isinstance(job, Mapping):
                continue
            names = {n for text in _strings(job) for n in _WORKFLOW_SECRET.findall(text)} - {"GITHUB_TOKEN"}
            if not names:
                continue
            env = job.get("environment")
            name = env.get("name") if isinstance(env, Mapping) else env
            if isinstance(name, str) and "${{" in name:
                literals = _QUOTED.findall(name) or _input_default(doc, name)
                name = literals[-1] if literals else None
            if not isinstance(name, str) or not name:
                name = SECRETS_ENVIRONMENT if "uses" in job else ""
            found.setdefault(name, {})[f"{filename}:{job_id}"] = sorted(names)
    return found


def _env_check(name: str, part: str, title: str, status: str, detail: str, fix: str = "") -> Check:
    return check(f"github.environment.{name}{part}", "Secrets", f"environment {name}: {title}", status, detail, fix)


def unscoped_secrets_check(jobs: Mapping[str, list[str]]) -> list[Check]:
    """Jobs that read secrets without an environment: those must be repository secrets, which every branch reads."""
    if not jobs:
        return []
    listed = "; ".join(f"{job} ({', '.join(names)})" for job, names in sorted(jobs.items()))
    return [
        check(
            "github.environment.none",
            "Secrets",
            "jobs reading secrets outside an environment",
            FAIL,
            f"{listed}: a secret without an environment is a repository secret, readable by a workflow on any branch",
            f"add `environment: {SECRETS_ENVIRONMENT}` to each job and move the secrets into that environment",
        )
    ]


def environment_checks(
    name: str,
    jobs: Mapping[str, list[str]],
    branch: str,
    env: tuple[int, Any],
    policies: tuple[int, Any],
    env_secrets: tuple[int, Any],
    outside: set[str] | None,
    want_reviewers: bool,
) -> list[Check]:
    """The GitHub environment whose secrets `jobs` read: it exists, only `branch` deploys from it, the secrets are
    its own (not repository or organization secrets, `outside`; None when the token may not list those), and
    whether a person must approve each run (a failure only when incidentops.yaml asks for reviewers)."""
    env_status, env_data = env
    used_by = ", ".join(sorted(jobs))
    settings = f"Settings → Environments → {name}"
    if env_status == 404:
        return [
            _env_check(
                name,
                "",
                "exists",
                FAIL,
                f"no environment {name!r}, though {used_by} read secrets from it; GitHub creates it on the first run, "
                "with no branch limit and no secrets",
                f"{settings.rsplit(' → ', 1)[0]} → New environment {name!r}; limit it to {branch}; add the secrets",
            )
        ]
    if env_status != 200 or not isinstance(env_data, Mapping):
        return [
            _env_check(
                name,
                "",
                "exists",
                WARN,
                f"cannot read environment {name!r} (HTTP {env_status})",
                "give the token actions: read, or check Settings → Environments by hand",
            )
        ]
    out = [_env_check(name, "", "exists", OK, f"used by {used_by}")]
    out.append(_branch_policy_check(name, branch, env_data.get("deployment_branch_policy"), policies, settings))
    out.append(_environment_secrets_check(name, jobs, env_secrets, outside, settings))
    reviewers = [
        str((r.get("reviewer") or {}).get("login") or (r.get("reviewer") or {}).get("slug") or "?")
        for rule in env_data.get("protection_rules") or []
        if isinstance(rule, Mapping) and rule.get("type") == "required_reviewers"
        for r in rule.get("reviewers") or []
        if isinstance(r, Mapping)
    ]
    if reviewers:
        out.append(_env_check(name, ".reviewers", "required reviewers", OK, ", ".join(reviewers)))
    else:
        out.append(
            _env_check(
                name,
                ".reviewers",
                "required reviewers",
                FAIL if want_reviewers else OK,
                "none: its jobs (containment, rollback apply) start without a person's approval"
                + ("" if want_reviewers else " (incidentops.yaml does not ask for reviewers)"),
                f"{settings} → Required reviewers: add the people who approve production changes",
            )
        )
    return out


def _branch_policy_check(name: str, branch: str, policy: Any, policies: tuple[int, Any], settings: str) -> Check:
    title = "deployment branches"
    fix = f"{settings} → Deployment branches and tags → Selected branches and tags → only {branch!r}"
    if not isinstance(policy, Mapping):
        return _env_check(
            name,
            ".branches",
            title,
            FAIL,
            "any branch may deploy: a workflow pushed to any branch (a pull request's own) receives its secrets",
            fix,
        )
    if policy.get("protected_branches"):
        return _env_check(
            name,
            ".branches",
            title,
            OK,
            f"protected branches only (keep {branch} protected and no other branch protected that anyone can push)",
        )
    status, data = policies
    if status != 200 or not isinstance(data, Mapping):
        return _env_check(name, ".branches", title, WARN, f"custom branch policies, not readable (HTTP {status})", fix)
    patterns = [
        f"{p.get('type') or 'branch'} {p.get('name')}"
        for p in data.get("branch_policies") or []
        if isinstance(p, Mapping)
    ]
    if patterns == [f"branch {branch}"]:
        return _env_check(name, ".branches", title, OK, f"only {branch}")
    if not patterns:
        return _env_check(name, ".branches", title, FAIL, "no branch may deploy: every job in it fails", fix)
    extra = [p for p in patterns if p != f"branch {branch}"]
    return _env_check(
        name,
        ".branches",
        title,
        FAIL,
        f"besides {branch}, {', '.join(extra)} may deploy and receive the secrets",
        fix,
    )


def _environment_secrets_check(
    name: str, jobs: Mapping[str, list[str]], listed: tuple[int, Any], outside: set[str] | None, settings: str
) -> Check:
    title = "secrets held by the environment"
    wanted = sorted({secret for names in jobs.values() for secret in names})
    status, data = listed
    if status != 200 or not isinstance(data, Mapping):
        return _env_check(
            name,
            ".secrets",
            title,
            WARN,
            f"this token may not list the environment's secrets (needs admin); wanted there: {', '.join(wanted)}",
            "run `incidentops doctor` by hand with an admin's token",
        )
    have = {str(s.get("name")) for s in data.get("secrets") or [] if isinstance(s, Mapping)}
    problems: list[str] = []
    missing = [s for s in wanted if s not in have]
    exposed = sorted(set(wanted) & outside) if outside is not None else []
    if exposed:
        problems.append(
            f"{', '.join(exposed)} also exist as repository or organization secrets, which a workflow on any branch "
            "reads"
        )
    if missing:
        problems.append(f"not in the environment: {', '.join(missing)}")
    if problems:
        fixes = []
        if missing:
            fixes.append(f"{settings} → Environment secrets → add {', '.join(missing)}")
        if exposed:
            fixes.append(
                "delete the repository copies (Settings → Secrets and variables → Actions → Repository secrets; "
                "an organization secret: stop sharing it with this repository)"
            )
        return _env_check(name, ".secrets", title, FAIL, "; ".join(problems), "; then ".join(fixes))
    detail = f"{', '.join(wanted)}, and no repository copies"
    if outside is None:
        detail = f"{', '.join(wanted)} (repository secrets not listable with this token)"
    return _env_check(name, ".secrets", title, OK, detail)


def token_check(verified: Mapping[str, Any] | None, error: str | None) -> Check:
    title = "CLOUDFLARE_API_TOKEN"
    if verified is None or verified.get("status") != "active":
        why = error or f"status {verified.get('status') if verified else 'unknown'}"
        return check(
            "cloudflare.token",
            "Cloudflare",
            title,
            FAIL,
            f"CLOUDFLARE_API_TOKEN is not valid: {why}",
            "create a token (My Profile → API Tokens) with the permissions below and store it as the "
            "CLOUDFLARE_API_TOKEN secret",
        )
    return check("cloudflare.token", "Cloudflare", title, OK, f"active (token id {verified.get('id')})")


def permission_checks(granted: set[str] | None, probed: Mapping[str, bool]) -> list[Check]:
    """One check per thing the product does. With the token's policies (`granted`) every need is decided;
    without them only reads were probed and writes are reported as unchecked."""
    out: list[Check] = []
    for what, group in CLOUDFLARE_NEEDS:
        cid = "cloudflare.permission." + group.lower().replace(" ", "-")
        if granted is not None:
            ok = group in granted or _IMPLIED_BY.get(group) in granted
            out.append(
                check(
                    cid,
                    "Cloudflare",
                    f"token may {what}",
                    OK if ok else FAIL,
                    f"{group}: {'granted' if ok else 'missing'}",
                    f"edit the token (My Profile → API Tokens) and add {group}",
                )
            )
        elif group in probed:
            ok = probed[group]
            out.append(
                check(
                    cid,
                    "Cloudflare",
                    f"token may {what}",
                    OK if ok else FAIL,
                    f"{group}: {'a read succeeded' if ok else 'refused (403)'}",
                    f"edit the token (My Profile → API Tokens) and add {group}",
                )
            )
        else:
            out.append(
                check(
                    cid,
                    "Cloudflare",
                    f"token may {what}",
                    WARN,
                    f"{group}: not checked (only a write would tell)",
                    'add "API Tokens Read" to the token so doctor can read its policies',
                )
            )
    return out


def codeowners_check(text: str | None) -> Check:
    """Whether CODEOWNERS puts the ledger, runbook, configuration and workflows under review (a warning: only the
    branch rule "Require review from Code Owners", which doctor cannot always read, makes it bite)."""
    title = "CODEOWNERS"
    fix = "run `incidentops init` (writes .github/CODEOWNERS), then require code-owner review on the default branch"
    if text is None:
        return check(
            "repo.codeowners",
            "Repository",
            title,
            WARN,
            "missing: a ledger, runbook or workflow change can merge without a production owner's review",
            fix,
        )
    missing = uncovered_paths(text)
    if missing:
        return check("repo.codeowners", "Repository", title, WARN, f"no owner for {', '.join(missing)}", fix)
    return check("repo.codeowners", "Repository", title, OK, "the ledger, runbook, config and workflows have owners")


def form_check(
    fields: Sequence[Any] | None, problem: str | None, services: Sequence[str], environments: Sequence[str]
) -> Check:
    """The issue form's fields against what the parser reads: ids, the environment and service options, the
    risk boxes whose exact wording switches containment and the rollback PR on."""
    title = "issue form .github/ISSUE_TEMPLATE/incident.yml"
    if fields is None:
        return check(
            "repo.form", "Repository", title, FAIL, problem or "missing", "run `incidentops init` to write the form"
        )
    by_id = {f.id: f for f in fields}
    issues: list[str] = []
    for wanted in ("summary", "environment", "started_at", "routes", "services", "risks"):
        if wanted not in by_id:
            issues.append(f"no field with id {wanted!r}")
    env_field, svc_field, risk_field = by_id.get("environment"), by_id.get("services"), by_id.get("risks")
    if env_field is not None and set(env_field.options) != set(environments):
        issues.append(
            f"environment options {list(env_field.options)} differ from incidentops.yaml's {list(environments)}"
        )
    if svc_field is not None and set(svc_field.options) != set(services):
        issues.append(f"service options {list(svc_field.options)} differ from incidentops.yaml's {list(services)}")
    if risk_field is not None:
        from incidentops.core.form import DEPLOY_RISK_OPTION, TENANT_RISK_OPTION

        for option in (TENANT_RISK_OPTION, DEPLOY_RISK_OPTION):
            if option not in risk_field.options:
                issues.append(f"risk option {option!r} is missing (the parser matches it exactly)")
    if issues:
        return check(
            "repo.form",
            "Repository",
            title,
            FAIL,
            "; ".join(issues),
            "make the form match incidentops.yaml (`incidentops init --force` rewrites it)",
        )
    return check("repo.form", "Repository", title, OK, "fields and options match the parser and incidentops.yaml")


def ledger_check(env: str, pins: Mapping[str, str] | None, live: Mapping[str, str | None]) -> Check:
    title = f"ledger deployments/{env}.yaml"
    cid = f"repo.ledger.{env}"
    if pins is None:
        return check(
            cid,
            "Repository",
            title,
            WARN,
            "missing: a rollback has no pins to return to",
            "run `incidentops init` to pin what is live now",
        )
    differ = [
        f"{name}: pinned {pins.get(name) or 'nothing'}, live {live.get(name) or 'nothing'}"
        for name in live
        if pins.get(name) != live.get(name)
    ]
    if differ:
        return check(
            cid,
            "Repository",
            title,
            WARN,
            "differs from what is live: " + "; ".join(differ),
            "expected during an incident; otherwise pin what is live in a pull request",
        )
    return check(cid, "Repository", title, OK, "matches what is live")


def hosts_check(
    env: str,
    services: Sequence[Service],
    base_urls: Mapping[str, str],
    answers: Mapping[str, Sequence[str]],
    routes_read: bool = True,
) -> Check:
    """Services that answer the host of one of the environment's base URLs (Worker routes, Pages domains) but name
    none in `services[].hosts`: their exit criteria would read invocation errors, which miss every 500 they answer
    and every leak answered with 200 (real-world-facts Cloudflare 2)."""
    cid, title = f"repo.hosts.{env}", f"service hosts ({env})"
    by_host = {urlsplit(url).hostname: key for key, url in base_urls.items()}
    unnamed = []
    for service in services:
        keys = list(dict.fromkeys(by_host[h] for h in answers.get(service.name, ()) if h in by_host))
        if keys and not service.hosts:
            unnamed.append(
                f"{service.name} answers {', '.join(base_urls[k] for k in keys)} (hosts: [{', '.join(keys)}])"
            )
    unread = "" if routes_read else "; Worker routes not read (the token lacks Workers Routes Read), Pages checked"
    if unnamed:
        return check(
            cid,
            "Repository",
            title,
            WARN,
            "no hosts in incidentops.yaml, so exit criteria miss the 500s they answer: " + "; ".join(unnamed) + unread,
            "add the hosts shown to each service in incidentops.yaml",
        )
    return check(cid, "Repository", title, OK, "every service that answers a base URL's host names it" + unread)


def plan_check(env: str, zone: str, plan: str | None, rules_used: int | None) -> Check:
    cid, title = f"cloudflare.zone.{env}", f"zone {zone} ({env})"
    if plan is None:
        return check(cid, "Cloudflare", title, FAIL, "cannot read the zone", "check zone_id in incidentops.yaml")
    limit = PLAN_RULE_LIMITS.get(plan)
    if limit is None:
        return check(cid, "Cloudflare", title, WARN, f"unknown plan {plan!r}", "")
    free = limit - (rules_used or 0)
    # The deny carries the incident's JSON body on paid plans; Free allows no custom response, so there the
    # deny shows Cloudflare's block page (flows/contain.py).
    mode = "Cloudflare's block page (Free allows no custom response)" if plan == "free" else "the incident's JSON deny"
    if free <= 0:
        return check(
            cid,
            "Cloudflare",
            title,
            FAIL,
            f"{plan} plan: all {limit} custom-rule slots are used; containment cannot add its rule",
            "remove an unused custom rule (Security → WAF → Custom rules)",
        )
    return check(
        cid,
        "Cloudflare",
        title,
        OK if free > 1 else WARN,
        f"{plan} plan: containment answers with {mode}; {free} of {limit} custom-rule slots free",
        "remove unused custom rules so more than one route can be contained",
    )
