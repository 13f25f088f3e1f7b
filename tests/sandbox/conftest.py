"""A running GitHub emulator over a fresh bare repository, for the sandbox tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from incidentops.sandbox import http as http_toolkit
from incidentops.sandbox.github import GitHubEmulator
from incidentops.sandbox.http import HttpServer, Hub
from incidentops.sandbox.server import create_bare_repo


@dataclass
class GitHubWorld:
    api_url: str
    server_url: str
    emulator: GitHubEmulator
    hub: Hub
    bare_repo: Path


def make_bare_repo(workdir: Path) -> Path:
    """Create `workdir/acme/ops.git` with one seed commit on `main` holding a README and incidents/."""
    seed = workdir / "seed"
    (seed / "incidents").mkdir(parents=True)
    (seed / "README.md").write_text("# acme ops\n")
    (seed / "incidents" / "README.md").write_text("Incident records live here.\n")
    # One seed commit keeps these tests about the emulator, not about the demo ledger's history.
    return create_bare_repo(workdir, seed, with_ledger_history=False)


@pytest.fixture(scope="session")
def _github_server() -> Iterator[tuple[Hub, HttpServer]]:
    # One listening server for the session: stopping a server costs up to half a second of polling.
    with pytest.MonkeyPatch.context() as patch:
        # Headers and body leave in two writes; with Nagle on, each keep-alive response waits ~40 ms
        # for a delayed ACK. (Proposed as a default for the toolkit's handler.)
        patch.setattr(http_toolkit._Handler, "disable_nagle_algorithm", True, raising=False)
        hub = Hub()
        server = HttpServer(hub).start()
        try:
            yield hub, server
        finally:
            server.stop()


@pytest.fixture
def github_world(tmp_path: Path, _github_server: tuple[Hub, HttpServer]) -> Iterator[GitHubWorld]:
    """Serve a fresh `GitHubEmulator` over a fresh bare repository on 127.0.0.1 under `/api/v3`."""
    hub, server = _github_server
    bare = make_bare_repo(tmp_path)
    base = server.url
    emulator = GitHubEmulator(api_url=f"{base}/api/v3", server_url=base, owner="acme", repo="ops", bare_repo=bare)
    with hub.lock:
        hub.mounts.clear()
        hub.faults.clear()
        hub.log.clear()
    hub.mount("/api/v3", emulator.app)
    yield GitHubWorld(f"{base}/api/v3", base, emulator, hub, bare)
