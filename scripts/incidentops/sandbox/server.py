"""The emulated world: GitHub and Cloudflare APIs on one 127.0.0.1 port, plus control endpoints.

Mounts:
  /api/v3      emulated GitHub REST API (backed by a real bare git repository)
  /client/v4   emulated Cloudflare API
  /_sandbox    control: recorded webhook events, injected faults, request log, contract violations

Beside it, the demo services (sandbox/services.py) answer on their own ports, one per environment host;
the ready line lists them under `base_urls`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from incidentops.config import load_config
from incidentops.core.ledger import render_ledger
from incidentops.errors import IncidentOpsError
from incidentops.sandbox import adoption, githooks, githttp, world
from incidentops.sandbox.cloudflare import CloudflareEmulator
from incidentops.sandbox.github import GitHubEmulator, Protection
from incidentops.sandbox.http import App, HttpServer, Hub, Request, Response
from incidentops.sandbox.services import SMOKE_ENV, DemoServices, demo_environments

OWNER, REPO = "acme", "ops"

# What a team's ops repository holds; the sandbox repo is seeded with this project's own copies.
SEED_PATHS = (
    "incidentops.yaml",
    "pyproject.toml",
    "uv.lock",
    "scripts",
    ".gitignore",
    "templates",
    "docs",
    "deployments",
    "incidents/README.md",
    ".github",
    "README.md",
)


def seed_tree(source: Path, target: Path) -> None:
    """Copy the ops layout found in `source` into the work tree `target`."""
    for rel in SEED_PATHS:
        src = source / rel
        dst = target / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def _git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    full_env = {**os.environ, **env} if env else None
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=full_env)
    return result.stdout


# Building the seeded repository takes ~40 git commands; tests start many sandboxes, so each process builds it
# once per (seed, history) and copies the result (a bare repository is just files).
_TEMPLATES: dict[tuple[str, bool], Path] = {}
_TEMPLATE_LOCK = threading.Lock()


def create_bare_repo(workdir: Path, seed: Path, with_ledger_history: bool = True) -> Path:
    """Create `workdir/acme/ops.git`: a seed commit on `main`, then the ledger's history as people made it."""
    bare = workdir / OWNER / f"{REPO}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    key = (str(seed.resolve()), with_ledger_history)
    with _TEMPLATE_LOCK:
        template = _TEMPLATES.get(key)
        if template is None or not template.is_dir():
            root = Path(tempfile.mkdtemp(prefix="incidentops-seed-"))
            atexit.register(shutil.rmtree, root, True)
            template = _build_bare_repo(root, seed, with_ledger_history)
            _TEMPLATES[key] = template
    shutil.copytree(template, bare, symlinks=True)
    return bare


def _build_bare_repo(workdir: Path, seed: Path, with_ledger_history: bool) -> Path:
    bare = workdir / OWNER / f"{REPO}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--bare", "-q", "-b", "main", str(bare), cwd=workdir)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tree = Path(tmp)
        _git("init", "-q", "-b", "main", cwd=tree)
        seed_tree(seed, tree)
        if with_ledger_history:  # the ledger arrives through its own history below
            (tree / world.LEDGER_PATH).unlink(missing_ok=True)
        (tree / "incidents").mkdir(exist_ok=True)
        _git("add", "-A", cwd=tree)
        _git(
            "-c",
            "user.name=sandbox",
            "-c",
            "user.email=sandbox@incidentops.invalid",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "Seed the ops repository",
            cwd=tree,
        )
        if with_ledger_history:
            _commit_ledger_history(tree)
        _git("push", "-q", str(bare), "main", cwd=tree)
    return bare


def _commit_ledger_history(tree: Path) -> None:
    """Replay the seeded world's ledger pins as commits, so a planner can search git history for good pins."""
    ledger = tree / world.LEDGER_PATH
    ledger.parent.mkdir(parents=True, exist_ok=True)
    for message, author, at, doc in world.ledger_history():
        ledger.write_text(render_ledger(doc), encoding="utf-8")
        _git("add", world.LEDGER_PATH, cwd=tree)
        _git(
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
            cwd=tree,
            env={
                "GIT_AUTHOR_NAME": author,
                "GIT_AUTHOR_EMAIL": f"{author}@acme.example",
                "GIT_AUTHOR_DATE": at,
                "GIT_COMMITTER_NAME": author,
                "GIT_COMMITTER_EMAIL": f"{author}@acme.example",
                "GIT_COMMITTER_DATE": at,
            },
        )


def _environments(seed: Path) -> dict[str, dict[str, str]]:
    """Base URLs per environment from the seed's incidentops.yaml (the demo hosts' names come from there)."""
    try:
        config = load_config(seed)
    except IncidentOpsError:
        return {}
    return {env.name: dict(env.base_urls) for env in config.environments}


class Sandbox:
    """Start and stop the whole emulated world; `info` is the ready line."""

    def __init__(
        self,
        workdir: Path,
        seed: Path,
        latency_ms: int = 0,
        port: int = 0,
        propagation: tuple[float, float] | None = None,
        ledger_history: bool = True,
    ) -> None:
        self.workdir = workdir
        self.hub = Hub(latency_ms=latency_ms)
        self.server = HttpServer(self.hub, port=port)
        base = self.server.url
        self.bare_repo = create_bare_repo(workdir, seed, with_ledger_history=ledger_history)
        self.github = GitHubEmulator(
            api_url=f"{base}/api/v3",
            server_url=base,
            owner=OWNER,
            repo=REPO,
            bare_repo=self.bare_repo,
        )
        self.cloudflare = CloudflareEmulator(api_base_url=f"{base}/client/v4")
        if propagation is not None:
            self.cloudflare.set_propagation(*propagation)
        self.repo_settings = adoption.RepoSettings()
        self.token_state = adoption.TokenState()
        self.github.repo_settings = self.repo_settings
        self.cloudflare.token_state = self.token_state
        adoption.install_github(self.github, self.repo_settings)
        adoption.install_cloudflare(self.cloudflare, self.token_state)
        self.hub.mount("/api/v3", self.github.app)
        self.hub.mount("/client/v4", self.cloudflare.app)
        self.hub.mount("/_sandbox", self._control_app())
        # Clones of every repository under the work directory (OWNER/REPO.git), at <server>/OWNER/REPO, read-only.
        git_app = App()
        githttp.install(git_app, self.bare_repo.parent.parent)
        self.hub.mount("", git_app)  # last: the prefixes above take their paths first
        githooks.install(self.bare_repo, f"{base}/_sandbox")
        self.services = DemoServices(self.cloudflare, demo_environments(_environments(seed)), hub=self.hub)
        self.actions: Any = None  # the Actions scheduler (sandbox/scheduler.py) when one runs the workflows

    def start(self) -> Sandbox:
        self.server.start()
        self.services.start()
        return self

    def stop(self) -> None:
        self.services.stop()
        self.server.stop()

    @property
    def info(self) -> dict[str, Any]:
        base = self.server.url
        return {
            "github_api_url": f"{base}/api/v3",
            "github_server_url": base,
            "repository": f"{OWNER}/{REPO}",
            "bare_repo": str(self.bare_repo),
            "actions_token": GitHubEmulator.ACTIONS_TOKEN,
            "cloudflare_api_base_url": f"{base}/client/v4",
            "cloudflare_account_id": self.cloudflare.account_id,
            "cloudflare_api_token": self.cloudflare.token,
            "control_url": f"{base}/_sandbox",
            "base_urls": self.services.base_urls,
            # The demo tenants' credentials, as the smoke checks read them (SMOKE_TENANT_A_TOKEN, …).
            "smoke_env": dict(SMOKE_ENV),
        }

    def _control_app(self) -> App:
        app = App()
        adoption.install_control(app, self.repo_settings, self.token_state)
        self._github_control(app)

        @app.route("GET", "/events")
        def events(request: Request) -> Response:
            since = int(request.arg("since", "0") or 0)
            return Response(200, self.github.events[since:])

        @app.route("POST", "/faults")
        def add_fault(request: Request) -> Response:
            spec = request.json() or {}
            fault = self.hub.add_fault(spec)
            return Response(201, fault.report())

        @app.route("GET", "/faults")
        def list_faults(request: Request) -> Response:
            with self.hub.lock:
                return Response(200, [fault.report() for fault in self.hub.faults])

        @app.route("DELETE", "/faults")
        def clear_faults(request: Request) -> Response:
            with self.hub.lock:
                self.hub.faults.clear()
            return Response(204)

        @app.route("GET", "/requests")
        def requests(request: Request) -> Response:
            with self.hub.lock:
                return Response(200, [asdict(entry) for entry in self.hub.log])

        @app.route("GET", "/cloudflare/live")
        def live(request: Request) -> Response:
            """What each emulated service serves right now, and whether that build is good."""
            return Response(
                200,
                {
                    name: {"version": self.cloudflare.live_version(name), "good": self.cloudflare.is_good(name)}
                    for name in world.SERVICES
                },
            )

        @app.route("PUT", "/cloudflare/zones/{zone_id}/plan")
        def set_plan(request: Request) -> Response:
            """Put a zone on a plan: body {"plan": "free" | "pro" | "business" | "enterprise"}."""
            body = request.json() or {}
            try:
                self.cloudflare.set_plan(request.params["zone_id"], str(body.get("plan")))
            except KeyError:
                return Response(404, {"error": f"no zone {request.params['zone_id']}"})
            except ValueError as err:
                return Response(400, {"error": str(err)})
            return Response(200, {"zone": request.params["zone_id"], "plan": body.get("plan")})

        @app.route("PUT", "/cloudflare/propagation")
        def set_propagation(request: Request) -> Response:
            """How long rule changes take to reach the edge: body {"min_seconds": 1, "max_seconds": 3}."""
            body = request.json() or {}
            try:
                self.cloudflare.set_propagation(float(body["min_seconds"]), float(body["max_seconds"]))
            except (KeyError, TypeError, ValueError) as err:
                return Response(400, {"error": f"expected min_seconds <= max_seconds, both >= 0 ({err})"})
            return Response(200, {"min_seconds": body["min_seconds"], "max_seconds": body["max_seconds"]})

        @app.route("GET", "/violations")
        def violations(request: Request) -> Response:
            return Response(200, self.github.violations + self.cloudflare.violations)

        return app

    def _github_control(self, app: App) -> None:
        """Repository settings a test or the demo changes as an admin would in the UI."""
        github = self.github

        @app.route("GET", "/actions/runs")
        def actions_runs(request: Request) -> Response:
            """Every workflow run the Actions scheduler started, skipped or cancelled, and every event that
            started none (with the reason)."""
            if self.actions is None:
                return Response(404, {"message": "no Actions scheduler runs here (serve with --actions)"})
            return Response(200, self.actions.report())

        @app.route("POST", "/github/git-hook/{kind}")
        def git_hook(request: Request) -> Response:
            body = request.json() or {}
            updates = [(str(u[0]), str(u[1]), str(u[2])) for u in body.get("updates") or [] if len(u) == 3]
            token = body.get("token")
            login = github.tokens.get(str(token)) if token else None
            if token and login is None:
                return Response(200, {"accept": False, "messages": ["Invalid username or token."]})
            if request.params["kind"] == "pre-receive":
                accept, messages = github.receive(updates, login)
                return Response(200, {"accept": accept, "messages": messages})
            github.record_push(updates, login)
            return Response(200, {"accept": True, "messages": []})

        @app.route("PUT", "/github/push-events")
        def push_events(request: Request) -> Response:
            enabled = bool((request.json() or {}).get("enabled", True))
            github.record_git_pushes(enabled)
            return Response(200, {"enabled": enabled})

        @app.route("PUT", "/github/branches/{branch}/protection")
        def protect(request: Request) -> Response:
            body = request.json() or {}
            kind = str(body.get("kind") or "classic")
            if kind not in ("classic", "ruleset"):
                return Response(400, {"message": "kind must be classic or ruleset"})
            rule = Protection(
                kind=kind,
                bypass=tuple(str(x) for x in body.get("bypass") or ()),
                required_status_checks=tuple(str(x) for x in body.get("required_status_checks") or ()),
            )
            github.protect(request.params["branch"], rule)
            # A ruleset is also what "Get rules for a branch" answers (sandbox/adoption.py; `incidentops doctor`).
            rules: list[dict[str, Any]] = []
            if kind == "ruleset":
                rules.append({"type": "pull_request", "ruleset_source_type": "Repository", "ruleset_id": 1})
                if rule.required_status_checks:
                    checks = [{"context": c} for c in rule.required_status_checks]
                    rules.append({"type": "required_status_checks", "parameters": {"required_status_checks": checks}})
            if rules:
                self.repo_settings.branch_rules[request.params["branch"]] = rules
            else:
                self.repo_settings.branch_rules.pop(request.params["branch"], None)
            return Response(200, asdict(rule))

        @app.route("DELETE", "/github/branches/{branch}/protection")
        def unprotect(request: Request) -> Response:
            github.protect(request.params["branch"], None)
            self.repo_settings.branch_rules.pop(request.params["branch"], None)
            return Response(204)

        @app.route("PUT", "/github/collaborators/{login}")
        def collaborator(request: Request) -> Response:
            body = request.json() or {}
            try:
                user = github.set_role(request.params["login"], str(body.get("base_role") or ""), body.get("role_name"))
            except ValueError as exc:
                return Response(400, {"message": str(exc)})
            return Response(200, {"login": user.login, "base_role": user.role, "role_name": user.role_name})

        @app.route("POST", "/github/issues/{number}/delete")
        def delete_issue(request: Request) -> Response:
            github.delete_issue(int(request.params["number"]))
            return Response(204)

        @app.route("POST", "/github/issues/{number}/transfer")
        def transfer_issue(request: Request) -> Response:
            body = request.json() or {}
            url = github.transfer_issue(
                int(request.params["number"]),
                str(body.get("repository") or "acme/elsewhere"),
                int(body.get("number") or 1),
            )
            return Response(200, {"url": url})

        @app.route("PUT", "/github/rate-limit/{login}")
        def rate_limit(request: Request) -> Response:
            body = request.json() or {}
            with github.lock:
                github.rate_limits[request.params["login"]] = int(body.get("limit", 0))
                if body.get("reset_in") is not None:
                    github._reset_at = int(time.time()) + int(body["reset_in"])
            return Response(200, {"limit": github.rate_limits[request.params["login"]], "reset": github._reset_at})
