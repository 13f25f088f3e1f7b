"""What a team sets up around the product, emulated: GitHub repository settings and secret names, the Cloudflare
API token's permissions, and the account-wide lists `incidentops init` discovers. `incidentops doctor` reads all
of it; tests break each piece through the control API (`/_sandbox/adoption/…`).

Sources, per route:
- GitHub REST "Get default workflow permissions for a repository" (`GET /repos/{o}/{r}/actions/permissions/workflow`,
  `default_workflow_permissions` read|write, `can_approve_pull_request_reviews`; needs admin, or the fine-grained
  "Administration" read permission, which GITHUB_TOKEN can never have);
- "List repository secrets" (`GET …/actions/secrets`: names and dates, never values; needs admin / "Secrets" read,
  which GITHUB_TOKEN cannot be granted);
- "List repository organization secrets" (`GET …/actions/organization-secrets`, the same access);
- "Get a GitHub Pages site" (`GET …/pages`: 404 when Pages is off; `build_type` workflow|legacy, `public`);
- "Get rules for a branch" (`GET …/rules/branches/{branch}`: the active ruleset rules, readable with read access);
- "Delete a label" (`DELETE …/labels/{name}`, write access, 204).
- Deployment environments (docs.github.com/en/rest/deployments/environments, "Get an environment":
  `GET …/environments/{environment_name}`, read access, 404 when there is none; `deployment_branch_policy` is null
  when any branch may deploy, else `{protected_branches, custom_branch_policies}` with exactly one true;
  `protection_rules` items typed `wait_timer`, `required_reviewers` (with `reviewers: [{type, reviewer}]`) and
  `branch_policy`); "List deployment branch policies" (docs.github.com/en/rest/deployments/branch-policies:
  `GET …/environments/{environment_name}/deployment-branch-policies`, read access, `{total_count,
  branch_policies: [{id, node_id, name, type: branch|tag}]}`, usable only while `custom_branch_policies` is true:
  otherwise 404 here, the stricter answer); "List environment secrets" (docs.github.com/en/rest/actions/secrets:
  `GET …/environments/{environment_name}/secrets`, names and dates only; admin / "Secrets" read, which
  GITHUB_TOKEN cannot be granted). A workflow job that names a missing environment makes GitHub create it with no
  protection at all (docs.github.com/en/actions/managing-workflow-runs-and-deployments/managing-deployments/
  managing-environments-for-deployment, "Referencing an environment that does not exist will create an environment
  with the referenced name").
- Cloudflare "Verify Token" (`GET /user/tokens/verify`), "Token Details" (`GET /user/tokens/{id}`, needs the
  user permission "API Tokens Read"), "List Workers" (`GET /accounts/{a}/workers/scripts`), "Get Projects"
  (`GET /accounts/{a}/pages/projects`), "List Zones" (`GET /zones`), "List Routes" (`GET /zones/{z}/workers/routes`);
  permission group names from developers.cloudflare.com/fundamentals/api/reference/permissions/. A call the token's
  policies do not allow answers 403 with code 10000 "Authentication error", as a wrong token does (the same
  reference's troubleshooting page: "The token has incorrect permissions").
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from incidentops.sandbox import world as seed_world
from incidentops.sandbox.http import App, HttpError, Request, Response

if TYPE_CHECKING:
    from incidentops.sandbox.cloudflare import CloudflareEmulator
    from incidentops.sandbox.github import Call, GitHubEmulator

# -- GitHub ------------------------------------------------------------------------------------------------

SEED_SECRETS = ("CLOUDFLARE_API_TOKEN", "SMOKE_TENANT_A_TOKEN", "SMOKE_TENANT_B_TOKEN")
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class EnvironmentSettings:
    """One deployment environment, set up as docs/security.md asks: only main deploys, the secrets live here."""

    # "protected" (only protected branches), "custom" (the name patterns below) or None (any branch).
    branch_policy: str | None = "custom"
    branch_policies: list[dict[str, str]] = field(default_factory=lambda: [{"name": "main", "type": "branch"}])
    reviewers: list[str] = field(default_factory=list)  # logins a run waits for (required_reviewers)
    secrets: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SEED_SECRETS, "2026-11-01T00:00:00Z"))


@dataclass
class RepoSettings:
    """Settings an admin changes in the repository's Settings pages; the defaults are a well set-up repository."""

    default_workflow_permissions: str = "read"
    can_approve_pull_request_reviews: bool = True  # "Allow GitHub Actions to create and approve pull requests"
    secrets: dict[str, str] = field(default_factory=dict)  # repository secrets: any branch's workflow reads them
    environments: dict[str, EnvironmentSettings] = field(default_factory=lambda: {"production": EnvironmentSettings()})
    org_secrets: list[str] = field(default_factory=list)  # organization secrets shared with the repository
    pages: dict[str, Any] | None = field(default_factory=lambda: {"build_type": "workflow", "public": True})
    branch_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # branch -> ruleset rules


def install_github(github: GitHubEmulator, settings: RepoSettings) -> None:
    """Add the settings routes to the emulated GitHub API."""

    @github.route("GET", "/actions/permissions/workflow", need="admin")
    def workflow_permissions(call: Call) -> Response:
        return Response(
            200,
            {
                "default_workflow_permissions": settings.default_workflow_permissions,
                "can_approve_pull_request_reviews": settings.can_approve_pull_request_reviews,
            },
        )

    @github.route("GET", "/actions/secrets", need="admin")
    def list_secrets(call: Call) -> Response:
        names = sorted(settings.secrets)
        items = [{"name": n, "created_at": settings.secrets[n], "updated_at": settings.secrets[n]} for n in names]
        return Response(200, {"total_count": len(items), "secrets": items})

    @github.route("GET", "/actions/organization-secrets", need="admin")
    def list_org_secrets(call: Call) -> Response:
        # "List repository organization secrets": the organization's secrets shared with this repository.
        names = sorted(settings.org_secrets)
        items = [{"name": n, "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"} for n in names]
        return Response(200, {"total_count": len(items), "secrets": items})

    @github.route("GET", "/pages")
    def get_pages(call: Call) -> Response:
        if settings.pages is None:
            raise HttpError(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/pages"})
        site = f"https://{github.owner.lower()}.github.io/{github.repo}/"
        return Response(
            200,
            {
                "url": f"{github.repo_api}/pages",
                "status": "built",
                "cname": None,
                "custom_404": False,
                "html_url": site,
                "build_type": settings.pages["build_type"],
                "source": {"branch": "gh-pages", "path": "/"} if settings.pages["build_type"] == "legacy" else None,
                "public": bool(settings.pages["public"]),
                "https_enforced": True,
            },
        )

    @github.route("GET", "/rules/branches/{branch:path}")
    def branch_rules(call: Call) -> Response:
        branch = call.params["branch"]
        rules = [
            {
                **rule,
                "ruleset_source_type": "Repository",
                "ruleset_source": f"{github.owner}/{github.repo}",
                "ruleset_id": 42,
            }
            for rule in settings.branch_rules.get(branch, [])
        ]
        return Response(200, rules)

    def environment(name: str) -> EnvironmentSettings:
        found = settings.environments.get(name)
        if found is None:
            raise HttpError(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        return found

    @github.route("GET", "/environments/{name}")
    def get_environment(call: Call) -> Response:
        name = call.params["name"]
        env = environment(name)
        rules: list[dict[str, Any]] = []
        ident = 3700 + 10 * sorted(settings.environments).index(name)
        if env.reviewers:
            reviewers = [
                {"type": "User", "reviewer": github.user_json(github.users[login])}
                for login in env.reviewers
                if login in github.users
            ]
            rules.append(
                {
                    "id": ident + 1,
                    "node_id": f"GA_kwDO{ident + 1}",
                    "prevent_self_review": False,
                    "type": "required_reviewers",
                    "reviewers": reviewers,
                }
            )
        if env.branch_policy is not None:
            rules.append({"id": ident + 2, "node_id": f"GA_kwDO{ident + 2}", "type": "branch_policy"})
        policy = (
            None
            if env.branch_policy is None
            else {
                "protected_branches": env.branch_policy == "protected",
                "custom_branch_policies": env.branch_policy == "custom",
            }
        )
        return Response(
            200,
            {
                "id": 161088068 + ident,
                "node_id": f"EN_kwDO{ident}",
                "name": name,
                "url": f"{github.repo_api}/environments/{name}",
                "html_url": f"{github.repo_html}/deployments/activity_log?environments_filter={name}",
                "created_at": "2026-11-01T00:00:00Z",
                "updated_at": "2026-11-01T00:00:00Z",
                "can_admins_bypass": True,
                "protection_rules": rules,
                "deployment_branch_policy": policy,
            },
        )

    @github.route("GET", "/environments/{name}/deployment-branch-policies")
    def list_branch_policies(call: Call) -> Response:
        env = environment(call.params["name"])
        if env.branch_policy != "custom":
            raise HttpError(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        items = [
            {"id": 361471 + i, "node_id": f"MDE2OkdhdGVCcmFuY2hQb2xpY3kz{i}", "name": p["name"], "type": p["type"]}
            for i, p in enumerate(env.branch_policies)
        ]
        return Response(200, {"total_count": len(items), "branch_policies": items})

    @github.route("GET", "/environments/{name}/secrets", need="admin")
    def list_environment_secrets(call: Call) -> Response:
        env = environment(call.params["name"])
        items = [{"name": n, "created_at": d, "updated_at": d} for n, d in sorted(env.secrets.items())]
        return Response(200, {"total_count": len(items), "secrets": items})

    @github.route("DELETE", "/labels/{name}", need="write")
    def delete_label(call: Call) -> Response:
        name = call.params["name"]
        if github.labels.pop(name, None) is None:
            raise HttpError(404, {"message": "Not Found"})
        for issue in github.issues.values():
            issue.labels = [label for label in issue.labels if label != name]
        return Response(204)


# -- Cloudflare --------------------------------------------------------------------------------------------

# Permission groups the product's calls need (Edit implies Read: "Edit is full CRUDL access").
ALL_PERMISSIONS = (
    "Workers Scripts Read",
    "Workers Scripts Write",
    "Workers Routes Read",
    "Pages Read",
    "Pages Write",
    "Zone Read",
    "Zone WAF Read",
    "Zone WAF Write",
    "Account Analytics Read",
    "API Tokens Read",
)
_IMPLIED = {
    "Workers Scripts Read": "Workers Scripts Write",
    "Pages Read": "Pages Write",
    "Zone WAF Read": "Zone WAF Write",
}

# (method pattern, path pattern, permission group)
_NEEDS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/accounts/[^/]+/workers/(scripts|services)(/.*)?$"), "Workers Scripts Read"),
    ("*", re.compile(r"^/accounts/[^/]+/workers/(scripts|services)(/.*)?$"), "Workers Scripts Write"),
    ("GET", re.compile(r"^/accounts/[^/]+/pages/projects(/.*)?$"), "Pages Read"),
    ("*", re.compile(r"^/accounts/[^/]+/pages/projects(/.*)?$"), "Pages Write"),
    ("GET", re.compile(r"^/zones/[^/]+/rulesets(/.*)?$"), "Zone WAF Read"),
    ("*", re.compile(r"^/zones/[^/]+/rulesets(/.*)?$"), "Zone WAF Write"),
    ("GET", re.compile(r"^/zones/[^/]+/workers/routes(/.*)?$"), "Workers Routes Read"),
    ("GET", re.compile(r"^/zones(/[^/]+)?$"), "Zone Read"),
    ("POST", re.compile(r"^/graphql$"), "Account Analytics Read"),
    ("GET", re.compile(r"^/user/tokens/(?!verify$)[^/]+$"), "API Tokens Read"),
)

# Where each demo Worker is reachable, per zone (the Pages projects' custom domains: world.PAGES_DOMAINS).
WORKER_ROUTES = {
    seed_world.ZONE_ID: (("api.example.com/*", "api-worker"), ("ingest.example.com/*", "ingest-worker")),
    seed_world.STAGING_ZONE_ID: (("api.staging.example.com/*", "api-worker"),),
}


@dataclass
class TokenState:
    permissions: set[str] = field(default_factory=lambda: set(ALL_PERMISSIONS))
    revoked: bool = False


def needed_permission(method: str, path: str) -> str | None:
    for wanted, pattern, permission in _NEEDS:
        if (wanted == method or (wanted == "*" and method != "GET")) and pattern.match(path.rstrip("/") or "/"):
            return permission
    return None


def check_token(token: TokenState, request: Request) -> HttpError | None:
    """The 403 a call outside the token's policies gets; None when the token may make it."""
    permission = needed_permission(request.method, request.path)
    if permission is None or permission in token.permissions or _IMPLIED.get(permission) in token.permissions:
        return None
    return HttpError(
        403,
        {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        },
    )


def _ok(result: Any, info: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return Response(200, body)


def _info(count: int) -> dict[str, Any]:
    return {"page": 1, "per_page": max(count, 20), "count": count, "total_count": count, "total_pages": 1}


def install_cloudflare(cf: CloudflareEmulator, token: TokenState) -> None:
    """Add the token-details and discovery routes to the emulated Cloudflare API."""
    app: App = cf.app

    @app.route("GET", "/user/tokens/{token_id}")
    def token_details(request: Request) -> Response:
        if request.params["token_id"] != seed_world.TOKEN_ID:
            raise HttpError(404, {"success": False, "errors": [{"code": 1003, "message": "Invalid token"}]})
        groups = [{"id": uuid.uuid5(uuid.NAMESPACE_URL, p).hex, "name": p} for p in sorted(token.permissions)]
        return _ok(
            {
                "id": seed_world.TOKEN_ID,
                "name": "incidentops",
                "status": "active",
                "issued_on": "2026-11-01T00:00:00Z",
                "modified_on": "2026-11-01T00:00:00Z",
                "policies": [
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, "policy/incidentops").hex,
                        "effect": "allow",
                        "resources": {f"com.cloudflare.api.account.{cf.account_id}": "*"},
                        "permission_groups": groups,
                    }
                ],
            }
        )

    @app.route("GET", "/accounts/{account_id}/workers/scripts")
    def list_scripts(request: Request) -> Response:
        cf._account(request)
        items = [
            {"id": name, "created_on": "2026-10-01T00:00:00Z", "modified_on": "2026-11-26T21:00:00Z"}
            for name in sorted(cf.workers)
        ]
        return _ok(items)

    @app.route("GET", "/accounts/{account_id}/pages/projects")
    def list_projects(request: Request) -> Response:
        cf._account(request)
        items = [
            {
                "id": project.id,
                "name": name,
                "subdomain": f"{name}.pages.dev",
                "domains": [*seed_world.PAGES_DOMAINS.get(name, ()), f"{name}.pages.dev"],
                "production_branch": "main",
            }
            for name, project in sorted(cf.pages.items())
        ]
        return _ok(items, _info(len(items)))

    @app.route("GET", "/zones")
    def list_zones(request: Request) -> Response:
        wanted = request.arg("account.id")
        items = [
            {
                "id": zone_id,
                "name": zone["name"],
                "status": "active",
                "account": {"id": cf.account_id, "name": seed_world.ACCOUNT_NAME},
                "plan": {"legacy_id": zone["plan"]},
            }
            for zone_id, zone in sorted(cf.zones.items(), key=lambda item: item[1]["name"])
            if wanted in (None, cf.account_id)
        ]
        return _ok(items, _info(len(items)))

    @app.route("GET", "/zones/{zone_id}/workers/routes")
    def list_routes(request: Request) -> Response:
        zone_id = cf._zone(request)
        items = [
            {"id": uuid.uuid5(uuid.NAMESPACE_URL, pattern).hex, "pattern": pattern, "script": script}
            for pattern, script in WORKER_ROUTES.get(zone_id, ())
        ]
        return _ok(items)


# -- control API ---------------------------------------------------------------------------------------------


def install_control(app: App, settings: RepoSettings, token: TokenState) -> None:
    """`/_sandbox/adoption/…`: break (or mend) what doctor checks, as an admin would in the two dashboards."""

    @app.route("GET", "/adoption")
    def show(request: Request) -> Response:
        return Response(
            200,
            {
                "github": {
                    "default_workflow_permissions": settings.default_workflow_permissions,
                    "can_approve_pull_request_reviews": settings.can_approve_pull_request_reviews,
                    "secrets": sorted(settings.secrets),
                    "org_secrets": sorted(settings.org_secrets),
                    "pages": settings.pages,
                    "branch_rules": settings.branch_rules,
                    "environments": {
                        name: {
                            "branch_policy": env.branch_policy,
                            "branch_policies": env.branch_policies,
                            "reviewers": env.reviewers,
                            "secrets": sorted(env.secrets),
                        }
                        for name, env in settings.environments.items()
                    },
                },
                "cloudflare_token": {"permissions": sorted(token.permissions), "revoked": token.revoked},
            },
        )

    @app.route("PATCH", "/adoption/github")
    def patch_github(request: Request) -> Response:
        body = request.json() or {}
        if "default_workflow_permissions" in body:
            if body["default_workflow_permissions"] not in ("read", "write"):
                raise HttpError(400, {"message": "default_workflow_permissions must be read or write"})
            settings.default_workflow_permissions = body["default_workflow_permissions"]
        if "can_approve_pull_request_reviews" in body:
            settings.can_approve_pull_request_reviews = bool(body["can_approve_pull_request_reviews"])
        if "secrets" in body:
            names = [str(n) for n in body["secrets"]]
            bad = [n for n in names if not SECRET_NAME.match(n) or n.upper().startswith("GITHUB_")]
            if bad:  # GitHub refuses these names ("Naming your secrets")
                raise HttpError(400, {"message": f"invalid secret names: {bad}"})
            settings.secrets = dict.fromkeys(names, "2026-11-01T00:00:00Z")
        if "org_secrets" in body:
            settings.org_secrets = [str(n) for n in body["org_secrets"]]
        if "pages" in body:
            pages = body["pages"]
            if pages is not None and (
                not isinstance(pages, dict) or pages.get("build_type") not in ("workflow", "legacy")
            ):
                raise HttpError(400, {"message": "pages must be null or {build_type: workflow|legacy, public: bool}"})
            settings.pages = (
                None
                if pages is None
                else {"build_type": pages["build_type"], "public": bool(pages.get("public", True))}
            )
        if "branch_rules" in body:
            settings.branch_rules = {str(b): list(r) for b, r in dict(body["branch_rules"]).items()}
        for name, change in dict(body.get("environments") or {}).items():
            # null deletes the environment; a mapping creates or changes it (unspecified fields keep their value).
            if change is None:
                settings.environments.pop(str(name), None)
                continue
            env = settings.environments.setdefault(str(name), EnvironmentSettings(branch_policy=None, secrets={}))
            if "branch_policy" in change:
                if change["branch_policy"] not in (None, "protected", "custom"):
                    raise HttpError(400, {"message": "branch_policy must be null, protected or custom"})
                env.branch_policy = change["branch_policy"]
            if "branch_policies" in change:
                env.branch_policies = [
                    {"name": str(p["name"]), "type": str(p.get("type", "branch"))} for p in change["branch_policies"]
                ]
            if "reviewers" in change:
                env.reviewers = [str(login) for login in change["reviewers"]]
            if "secrets" in change:
                env.secrets = dict.fromkeys((str(n) for n in change["secrets"]), "2026-11-01T00:00:00Z")
        return show(request)

    @app.route("PATCH", "/adoption/cloudflare-token")
    def patch_token(request: Request) -> Response:
        body = request.json() or {}
        if "permissions" in body:
            unknown = sorted(set(body["permissions"]) - set(ALL_PERMISSIONS))
            if unknown:
                raise HttpError(400, {"message": f"unknown permission groups: {unknown}"})
            token.permissions = set(body["permissions"])
        if "revoked" in body:
            token.revoked = bool(body["revoked"])
        return show(request)
