"""The sandbox in a process of its own, as the benchmarks run it: `incidentops sandbox serve`.

The real services are other machines; a sandbox in the measured process would share its interpreter lock, and its
handler threads would make the client look slower than it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from incidentops.flows.base import Ports

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def sandbox(workdir: Path, latency_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """Serve the sandbox seeded from this repository in `workdir`; yields its ready line (URLs, tokens, bare repo).

    `latency_ms` delays every response by that much (the server's default, none, when not given). The server is
    stopped on the way out.
    """
    command = [sys.executable, "-m", "incidentops", "sandbox", "serve", "--seed", str(ROOT), "--workdir", str(workdir)]
    if latency_ms is not None:
        command += ["--latency-ms", str(latency_ms)]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # The package from this checkout, whatever the interpreter: rollback_race.py runs under a bare environment.
        env=dict(os.environ, PYTHONPATH=str(ROOT / "scripts")),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise SystemExit(f"`incidentops sandbox serve` exited ({server.wait()}) before it was ready")
        yield json.loads(line)
    finally:
        server.terminate()
        server.wait(timeout=10)


def ports_for(info: dict[str, Any], workspace: Path) -> Ports:
    """The ports a workflow run gets (the workflow's token) on a checkout of the sandbox's repository."""
    from incidentops.adapters.git import GitRepo
    from incidentops.adapters.github import GitHubClient
    from incidentops.config import load_config
    from incidentops.core.redact import Redactor
    from incidentops.core.timefmt import utc_now
    from incidentops.flows.base import Ports

    return Ports(
        config=load_config(workspace),
        workspace=workspace,
        github=GitHubClient(info["actions_token"], info["repository"], info["github_api_url"]),
        git=GitRepo(workspace),
        repository=info["repository"],
        server_url=info["github_server_url"],
        redact=Redactor.from_env({}),
        clock=utc_now,
    )
