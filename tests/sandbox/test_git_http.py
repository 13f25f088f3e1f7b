"""The sandbox serves its repositories over git's smart HTTP protocol, read-only, as github.com serves clones:
what act needs to fetch a remote reusable workflow and actions/checkout to fetch another repository."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "sandbox", seed=ROOT, ledger_history=False).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": str(cwd or Path("/nonexistent"))}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_clone_and_a_fetch_by_sha_over_http(world: Sandbox, tmp_path: Path) -> None:
    url = f"{world.info['github_server_url']}/acme/ops"
    tip = git("--git-dir", str(world.bare_repo), "rev-parse", "main").stdout.strip()
    clone = git("clone", "--quiet", "--depth=1", url, str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    assert git("rev-parse", "HEAD", cwd=tmp_path / "clone").stdout.strip() == tip
    # As actions/checkout fetches a pinned commit: by its SHA, protocol v2, depth 1, into a fresh repository.
    fresh = tmp_path / "fresh"
    assert git("init", "--quiet", str(fresh)).returncode == 0
    fetched = git("-c", "protocol.version=2", "fetch", "--quiet", "--depth=1", f"{url}.git", tip, cwd=fresh)
    assert fetched.returncode == 0, fetched.stderr
    assert git("cat-file", "-t", tip, cwd=fresh).stdout.strip() == "commit"


def test_a_commit_no_ref_reaches_cannot_be_fetched(world: Sandbox, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    git("init", "--quiet", str(fresh))
    missing = "0123456789abcdef0123456789abcdef01234567"
    fetched = git("fetch", "--quiet", f"{world.info['github_server_url']}/acme/ops", missing, cwd=fresh)
    assert fetched.returncode != 0


def test_pushes_and_unknown_repositories_are_refused(world: Sandbox, tmp_path: Path) -> None:
    base = world.info["github_server_url"]
    assert httpx.get(f"{base}/acme/nope/info/refs?service=git-upload-pack").status_code == 404
    assert httpx.get(f"{base}/acme/ops/info/refs?service=git-receive-pack").status_code == 403
    assert httpx.post(f"{base}/acme/ops/git-receive-pack", content=b"0000").status_code == 403
    clone = git("clone", "--quiet", f"{base}/acme/ops", str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    pushed = git("push", "origin", "HEAD:refs/heads/elsewhere", cwd=tmp_path / "clone")
    assert pushed.returncode != 0
    # The API still answers under its own prefix.
    assert httpx.get(f"{base}/api/v3/repos/acme/ops").status_code in (200, 401)
