"""The ledger's history is read in full even from a shallow checkout (actions/checkout's default depth 1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from incidentops.adapters.git import GitRepo
from incidentops.errors import GitError


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def seeded_bare(tmp_path: Path, versions: int) -> Path:
    bare = tmp_path / "bare.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "seed"
    git("clone", "--quiet", str(bare), str(work))
    for n in range(1, versions + 1):
        (work / "deployments").mkdir(exist_ok=True)
        (work / "deployments" / "production.yaml").write_text(f"version: v{n}\n", encoding="utf-8")
        (work / "other.txt").write_text(f"{n}\n", encoding="utf-8")
        git("add", "-A", cwd=work)
        git("-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "--quiet", "-m", f"v{n}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return bare


def shallow_checkout(bare: Path, into: Path) -> GitRepo:
    """What actions/checkout leaves with its default fetch-depth (1)."""
    git("init", "--quiet", str(into))
    git("remote", "add", "origin", f"file://{bare}", cwd=into)
    git("fetch", "--quiet", "--depth=1", "origin", "+refs/heads/main:refs/remotes/origin/main", cwd=into)
    git("checkout", "--quiet", "-B", "main", "refs/remotes/origin/main", cwd=into)
    assert git("rev-parse", "--is-shallow-repository", cwd=into).strip() == "true"
    return GitRepo(into)


def test_history_of_a_shallow_checkout_holds_every_ledger_snapshot(tmp_path: Path) -> None:
    repo = shallow_checkout(seeded_bare(tmp_path, 4), tmp_path / "work")
    repo.sync()
    texts = [text for _, text in repo.history("deployments/production.yaml")]
    assert texts == [f"version: v{n}\n" for n in (4, 3, 2, 1)]
    assert any("--unshallow" in command for command in repo.commands)


def test_a_full_clone_fetches_nothing_more(tmp_path: Path) -> None:
    bare = seeded_bare(tmp_path, 2)
    git("clone", "--quiet", f"file://{bare}", str(tmp_path / "full"))
    repo = GitRepo(tmp_path / "full")
    assert len(repo.history("deployments/production.yaml")) == 2
    assert not any("--unshallow" in command for command in repo.commands)


def test_history_that_cannot_be_fetched_is_an_error_not_a_shorter_history(tmp_path: Path) -> None:
    bare = seeded_bare(tmp_path, 3)
    repo = shallow_checkout(bare, tmp_path / "work")
    git("remote", "set-url", "origin", f"file://{tmp_path / 'gone.git'}", cwd=tmp_path / "work")
    with pytest.raises(GitError, match="cannot fetch the history of main"):
        repo.history("deployments/production.yaml")
