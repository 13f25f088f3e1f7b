"""A push GitHub declines because a branch rule protects the branch stops the run at once, saying what to change."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from incidentops.adapters.git import GitRepo
from incidentops.errors import GitError
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    world = Sandbox(tmp_path / "sandbox", seed=ROOT).start()
    try:
        yield world
    finally:
        world.stop()


def bot_checkout(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """A clone pushing with the job token the way the workflows hand it to git (environment-only config)."""
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "--quiet", str(sandbox.bare_repo), str(work)], check=True)
    basic = base64.b64encode(f"x-access-token:{sandbox.info['actions_token']}".encode()).decode()
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"http.{sandbox.info['github_server_url']}/.extraheader")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"AUTHORIZATION: basic {basic}")
    sleeps: list[float] = []
    repo = GitRepo(work, sleep=sleeps.append)
    repo.sleeps = sleeps  # type: ignore[attr-defined]
    return repo


def edit(read: object) -> dict[str, str]:
    return {"incidents/INC-0099.md": "---\nid: INC-0099\n---\n"}


@pytest.mark.parametrize(("kind", "code"), [("classic", "GH006"), ("ruleset", "GH013")])
def test_a_protected_main_stops_the_run_at_once_with_what_to_change(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, code: str
) -> None:
    httpx.put(f"{sandbox.info['control_url']}/github/branches/main/protection", json={"kind": kind})
    repo = bot_checkout(sandbox, tmp_path, monkeypatch)
    started = time.monotonic()
    with pytest.raises(GitError) as caught:
        repo.commit(edit, "INC-0099: declared")
    assert time.monotonic() - started < 30  # no 240-second retry loop
    assert repo.sleeps == []  # type: ignore[attr-defined]
    assert sum(command.startswith("git push") for command in repo.commands) == 1
    assert code in caught.value.message and "protects it" in caught.value.message
    assert "bypass list" in (caught.value.hint or "")


def test_the_bot_on_the_bypass_list_commits(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    httpx.put(
        f"{sandbox.info['control_url']}/github/branches/main/protection",
        json={"kind": "ruleset", "bypass": ["github-actions[bot]"]},
    )
    repo = bot_checkout(sandbox, tmp_path, monkeypatch)
    assert repo.commit(edit, "INC-0099: declared").sha is not None
