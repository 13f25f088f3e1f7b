"""Wiring: the ports every flow works through, and how a job builds them from its environment.

Flows receive a `Ports` and never read the environment themselves, so a test (or the demo) can build one by hand.
The adapters are imported where the ports are built, not at module level: a flow module that only needs the
`Ports` type pays nothing for PyGithub or httpx until a run really talks to GitHub or Cloudflare.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from incidentops.errors import IncidentOpsError

if TYPE_CHECKING:
    from incidentops.adapters.cloudflare import CloudflareClient
    from incidentops.adapters.git import GitRepo
    from incidentops.adapters.github import GitHubClient
    from incidentops.config import Config
    from incidentops.core.redact import Redactor

SANDBOX_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Ports:
    """Everything a flow may touch, built once by the CLI (or a test)."""

    config: Config
    workspace: Path
    github: GitHubClient
    git: GitRepo
    repository: str
    server_url: str
    redact: Redactor
    clock: Callable[[], datetime]
    # Builds a Cloudflare client for an account id; None where no Cloudflare token is configured.
    cloudflare: Callable[[str], CloudflareClient] | None = None


def clock_from_env(env: Mapping[str, str]) -> Callable[[], datetime]:
    """Real UTC time; against the sandbox only, `INCIDENTOPS_SANDBOX_NOW` moving forward with real seconds.

    The demo tells its story on a story clock; when it runs the real workflows under act, the job needs the same
    "now". The override is refused unless every API the job talks to is on this machine.
    """
    from incidentops.core.timefmt import parse_ts, utc_now

    fixed = env.get("INCIDENTOPS_SANDBOX_NOW")
    if not fixed:
        return utc_now
    hosts = {urlsplit(env.get(k) or "").hostname for k in ("GITHUB_API_URL", "CLOUDFLARE_API_BASE_URL")}
    if not hosts <= SANDBOX_HOSTS:
        raise IncidentOpsError(
            "INCIDENTOPS_SANDBOX_NOW is honoured only against the sandbox (APIs on 127.0.0.1)",
            hint="Unset it: production runs always use the real clock.",
        )
    start, began = parse_ts(fixed), time.monotonic()
    return lambda: start + timedelta(seconds=int(time.monotonic() - began))


def in_actions(env: Mapping[str, str]) -> bool:
    """Whether this process is a step of a GitHub Actions job (the runner sets GITHUB_ACTIONS=true)."""
    return env.get("GITHUB_ACTIONS") == "true"


def ports_from_env(env: Mapping[str, str]) -> Ports:
    """Build the ports from the variables GitHub Actions sets (or a person exported by hand).

    In Actions the runner's own checkout is the work tree. By hand, the current checkout is left alone: git work
    happens in a private work tree at the remote's default branch, removed when the process ends.
    """
    from incidentops.adapters.git import GitRepo
    from incidentops.adapters.github import DEFAULT_API_URL, GitHubClient
    from incidentops.config import load_config
    from incidentops.core.redact import Redactor

    checkout = Path(env.get("GITHUB_WORKSPACE") or os.getcwd())
    if in_actions(env):
        workspace, git = checkout, None
    else:
        branch = load_config(checkout).default_branch if (checkout / "incidentops.yaml").is_file() else "main"
        git = GitRepo.private_worktree(checkout, branch=branch)
        workspace = git.workdir
    config = load_config(workspace)
    repository = env.get("GITHUB_REPOSITORY", "")
    github = GitHubClient(
        token=env.get("GITHUB_TOKEN", ""),
        repository=repository,
        api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
    )

    def cloudflare(account_id: str) -> CloudflareClient:
        from incidentops.adapters.cloudflare import CloudflareClient

        return CloudflareClient.from_env(account_id=account_id, env=env)

    return Ports(
        config=config,
        workspace=workspace,
        github=github,
        git=git or GitRepo(workspace, branch=config.default_branch),
        repository=repository,
        server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
        redact=Redactor.from_env(env),
        clock=clock_from_env(env),
        # A job without the production environment's secrets has no Cloudflare client at all.
        cloudflare=cloudflare if env.get("CLOUDFLARE_API_TOKEN") else None,
    )


def acting_person(ports: Ports, env: Mapping[str, str]) -> str:
    """Who is acting: the run's actor in Actions; by hand, the token's owner, who then also authors the commits.

    By hand, neither `$USER` nor `GITHUB_ACTOR` proves anything (anyone can set them); the token does.
    """
    if in_actions(env):
        return env.get("GITHUB_ACTOR") or "github-actions[bot]"
    person = ports.github.whoami()
    ports.git.author = (person.name, person.email)
    return person.login
