"""After a push the work tree is the tip just pushed: a read right after it needs no fetch, and a commit on a tip
that moved meanwhile is still re-applied on the new tip, never forced."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from incidentops.adapters.git import SYNC_FRESH_FOR, GitRepo


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def clone(bare: Path, into: Path) -> GitRepo:
    git("clone", "--quiet", str(bare), str(into))
    return GitRepo(into, sleep=lambda s: None)


def appended(line: str) -> Callable[[Callable[[str], str | None]], Mapping[str, str]]:
    def edit(read: Callable[[str], str | None]) -> Mapping[str, str]:
        return {"log.txt": (read("log.txt") or "") + line + "\n"}

    return edit


def test_a_read_after_a_push_reuses_it_and_a_commit_on_a_moved_tip_is_reapplied(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "log.txt").write_text("seed\n")
    git("add", "log.txt", cwd=seed)
    git("-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "--quiet", "-m", "seed", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    ours, theirs = clone(bare, tmp_path / "ours"), clone(bare, tmp_path / "theirs")

    ours.sync()
    first = ours.commit(appended("ours 1"), "ours 1")
    assert first.sha and first.attempts == 1
    ran = len(ours.commands)
    ours.sync(reuse_within=SYNC_FRESH_FOR)  # what a flow's next read does right after the push
    assert len(ours.commands) == ran, ours.commands[ran:]  # no fetch, no checkout
    assert ours.read("log.txt") == "seed\nours 1\n"
    assert git("rev-parse", "main", cwd=bare).strip() == first.sha

    theirs.sync()
    assert theirs.commit(appended("theirs"), "theirs").sha  # main moves while ours believes it is current
    second = ours.commit(appended("ours 2"), "ours 2")
    assert second.attempts == 2  # pushed on the stale tip, refused, re-applied on the new one
    assert git("show", "main:log.txt", cwd=bare) == "seed\nours 1\ntheirs\nours 2\n"
    assert git("log", "--format=%s", "main", cwd=bare).split() == ["ours", "2", "theirs", "ours", "1", "seed"]
