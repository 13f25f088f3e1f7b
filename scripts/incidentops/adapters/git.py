"""The only module that runs git: sync the workspace, commit a change, push with fetch-and-reapply on rejection.

A rejected push is handled by fetching the new tip and re-applying our edit function to the files as they
are now (a rebase of our one commit, without textual conflicts because the edit is re-computed). We never
force-push: other incidents' commits and people's edits on the default branch are never lost.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from incidentops.errors import GitError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
SYNC_FRESH_FOR = 5.0  # seconds after a sync in which a commit skips its own fetch (a stale tip only costs a retry)

# An edit reads files through the callable and returns {path: new text}; empty means nothing to change.
Edit = Callable[[Callable[[str], str | None]], Mapping[str, str]]


@dataclass(frozen=True)
class CommitResult:
    sha: str | None  # None when the edit had nothing to change
    attempts: int
    changed: tuple[str, ...]


class PushRejected(Exception):
    """The remote refused our push (someone else pushed first, or a hook said no)."""


# What GitHub answers when a branch rule forbids the push: classic branch protection (GH006, "protected
# branch hook declined") or a ruleset (GH013, "push declined due to repository rule violations"). Retrying
# cannot succeed, so these stop the run at once (henne49/dbus-opendtu#235 and mastra-ai/mastra#20609 show
# the messages for a workflow's push).
PROTECTED_MARKERS = (
    "gh006",
    "gh013",
    "protected branch hook declined",
    "push declined due to repository rule violations",
)


def raise_if_protected(output: str, branch: str) -> None:
    """Raise an actionable GitError when `output` of a failed push says a branch rule declined it."""
    lowered = output.lower()
    if not any(marker in lowered for marker in PROTECTED_MARKERS):
        return
    said = [line.strip() for line in output.splitlines() if line.strip().startswith("remote:")]
    raise GitError(
        f"GitHub declined the push to {branch}: a branch protection rule or ruleset protects it "
        f"({' '.join(said)[:400] or output.strip()[-300:]})",
        hint=f"incidentops commits incident records straight to {branch} with the workflow's GITHUB_TOKEN. "
        f"Let that identity push: add the GitHub Actions app (github-actions) to the ruleset's bypass list, "
        f"or keep incidents/** out of the rule (docs/reliability.md, 'Repository settings'). "
        "Nothing was lost: re-run the job once the setting is changed.",
    )


class GitRepo:
    """A working tree whose `origin` is the ops repository."""

    def __init__(
        self,
        workdir: Path,
        branch: str = "main",
        remote: str = "origin",
        author: tuple[str, str] = (BOT_NAME, BOT_EMAIL),
        max_attempts: int = 40,
        deadline: float = 240.0,
        sleep: Callable[[float], None] = time.sleep,
        detached: bool = False,
    ) -> None:
        self.workdir = workdir
        self.branch = branch
        self.remote = remote
        self.author = author
        self.max_attempts = max_attempts
        self.deadline = deadline  # seconds for all push attempts of one change
        self.sleep = sleep
        # A private work tree shares its refs with a person's checkout: it never holds a local branch, so moving to
        # the remote tip or publishing a branch cannot touch the branches (or the work) of the person's clone.
        self.detached = detached
        self.commands: list[str] = []  # what was run, for the job summary and tests
        self._synced: float | None = None  # when the last sync was made, while nothing moved HEAD since

    @classmethod
    def private_worktree(cls, checkout: Path, branch: str = "main", remote: str = "origin") -> GitRepo:
        """A temporary work tree at the remote's `branch`, beside a person's checkout, removed when the process ends.

        Run by hand, incidentops must never change the person's working tree, index, branch or local commits
        (uncommitted ledger edits, unpushed work): everything it reads or writes happens in this work tree.
        """
        probe = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=checkout, capture_output=True, text=True, check=False
        )
        if probe.returncode != 0:
            raise GitError(
                f"{checkout} is not inside a git checkout",
                hint="Run incidentops from a clone of the ops repository (the one with incidentops.yaml).",
            )
        top = Path(probe.stdout.strip())
        place = Path(tempfile.mkdtemp(prefix="incidentops-worktree-"))
        shutil.rmtree(place)  # `git worktree add` wants to create the folder itself
        repo = cls(top, branch=branch, remote=remote, detached=True)
        repo.run("fetch", "--quiet", remote, branch)
        repo.run("worktree", "add", "--quiet", "--detach", str(place), f"{remote}/{branch}")
        atexit.register(_remove_worktree, top, place)
        repo.workdir = place
        return repo

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one git command in the work tree (the single choke point for git)."""
        env = dict(os.environ)
        env.update(
            GIT_AUTHOR_NAME=self.author[0],
            GIT_AUTHOR_EMAIL=self.author[1],
            GIT_COMMITTER_NAME=self.author[0],
            GIT_COMMITTER_EMAIL=self.author[1],
            GIT_TERMINAL_PROMPT="0",
        )
        self.commands.append("git " + " ".join(args))
        try:
            result = subprocess.run(
                ["git", *args], cwd=self.workdir, env=env, capture_output=True, text=True, timeout=120
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH", hint="Install git and run again.") from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} did not finish within 120 s", hint="Check the remote is reachable.") from exc
        if check and result.returncode != 0:
            raise GitError(
                f"git {' '.join(args[:2])} failed: {result.stderr.strip()[-500:]}",
                hint="Is this the ops repository checkout, with an 'origin' remote you may push to?",
            )
        return result

    def sync(self, reuse_within: float = 0.0) -> None:
        """Move the work tree to the remote branch's current tip.

        With `reuse_within`, a sync this process made less than that many seconds ago (nothing committed since)
        counts as this one: a flow that reads the incident again right after the run read it saves a fetch.
        """
        if self._synced is not None and time.monotonic() - self._synced < reuse_within:
            return
        self.run("fetch", "--quiet", self.remote, self.branch)
        # --force: index and work tree as at the tip (what `reset --hard` did), in the same process.
        if self.detached:
            self.run("checkout", "--quiet", "--force", "--detach", f"{self.remote}/{self.branch}")
        else:
            self.run("checkout", "--quiet", "--force", "-B", self.branch, f"{self.remote}/{self.branch}")
        self._synced = time.monotonic()

    def read(self, path: str) -> str | None:
        """A file's text in the work tree, or None if it does not exist."""
        full = self.workdir / path
        try:
            return full.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def _push(self) -> None:
        result = self.run("push", "--quiet", "--porcelain", self.remote, f"HEAD:refs/heads/{self.branch}", check=False)
        if result.returncode == 0:
            return
        raise_if_protected(result.stdout + result.stderr, self.branch)
        text = (result.stdout + result.stderr).lower()
        rejected_markers = (
            "rejected",
            "non-fast-forward",
            "fetch first",
            "failed to update ref",
            "cannot lock ref",
        )
        if any(marker in text for marker in rejected_markers) or "hook declined" in text:
            raise PushRejected(result.stderr.strip()[-300:])
        raise GitError(
            f"git push failed: {result.stderr.strip()[-500:]}",
            hint="Check the workflow has 'contents: write' and the token may push to the default branch.",
        )

    def _stage(self, edit: Edit) -> dict[str, str]:
        """Write the files `edit` changes and `git add` them; return what changed."""
        changes = {path: text for path, text in edit(self.read).items() if self.read(path) != text}
        for path, text in changes.items():
            full = self.workdir / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(text, encoding="utf-8")
            self.run("add", "--", path)
        return changes

    def commit(self, edit: Edit, message: str) -> CommitResult:
        """Apply `edit` on the latest tip, commit and push; on rejection re-apply on the new tip and retry."""
        started = time.monotonic()
        attempt = 0
        for attempt in range(1, self.max_attempts + 1):
            # A flow that synced a moment ago (to read the file) need not fetch again: if the tip moved since, the
            # push is rejected and the edit is re-applied on the new tip, as for any race.
            just_synced = attempt == 1 and self._synced is not None and started - self._synced < SYNC_FRESH_FOR
            self._synced = None
            if not just_synced:
                self.sync()
                self._synced = None
            changes = self._stage(edit)
            if not changes:
                return CommitResult(None, attempt, ())
            self.run("commit", "--quiet", "--no-verify", "-m", message)
            try:
                self._push()
            except PushRejected:
                if attempt == self.max_attempts or time.monotonic() - started > self.deadline:
                    break
                # Someone pushed first; back off (full jitter, so racing runs spread out) and re-apply.
                self.sleep(random.uniform(0.05, min(0.25 * 2 ** (attempt - 1), 4.0)))
                continue
            sha = self.run("rev-parse", "HEAD").stdout.strip()
            self._synced = time.monotonic()  # the work tree is the tip just pushed: as good as a sync
            return CommitResult(sha, attempt, tuple(changes))
        raise GitError(
            f"push to {self.branch} was rejected {attempt} times in a row ({time.monotonic() - started:.0f} s)",
            hint="The default branch is changing very fast or is protected; re-run the job to try again "
            "(nothing was lost: the change is re-computed from the event).",
        )

    def history(self, path: str, limit: int = 200, rev: str = "HEAD") -> list[tuple[str, str]]:
        """(commit sha, file text) for each commit that changed `path` up to `rev` (the tip), newest first."""
        self.complete_history()
        shas = self.run("log", f"--max-count={limit}", "--format=%H", rev, "--", path).stdout.split()
        found = []
        for sha in shas:
            shown = self.run("show", f"{sha}:{path}", check=False)
            if shown.returncode == 0:
                found.append((sha, shown.stdout))
        return found

    def complete_history(self) -> None:
        """Fetch the branch's full history when the work tree is a shallow clone.

        actions/checkout fetches one commit by default (action.yml: `fetch-depth` default 1, "0 indicates all
        history"), and `git log -- <path>` in such a clone shows only the tip: the ledger's verified pins would
        silently vanish. A failed fetch is an error, never a shorter history.
        """
        if self.run("rev-parse", "--is-shallow-repository").stdout.strip() != "true":
            return
        done = self.run("fetch", "--quiet", "--unshallow", "--no-tags", self.remote, self.branch, check=False)
        if done.returncode != 0:
            raise GitError(
                f"cannot fetch the history of {self.branch} into this shallow checkout: {done.stderr.strip()[-300:]}",
                hint="The rollback target is read from the ledger's git history; check that the job may read the "
                "repository, or check out with `fetch-depth: 0`.",
            )

    def show(self, rev: str, path: str) -> str | None:
        """A file's text at commit `rev`, or None where it does not exist there."""
        shown = self.run("show", f"{rev}:{path}", check=False)
        return shown.stdout if shown.returncode == 0 else None

    def parents(self, rev: str) -> list[str]:
        """The parents of commit `rev` (a shallow checkout shows none: the history is fetched first)."""
        self.complete_history()
        if self.run("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode != 0:
            self.run("fetch", "--quiet", self.remote, rev, check=False)
        return self.run("rev-list", "--parents", "-n", "1", rev).stdout.split()[1:]

    def commits(self, base: str, head: str) -> list[tuple[str, str, str, str]]:
        """(sha, author email, committer email, subject) of each commit in base..head, oldest first."""
        out = self.run("log", "--reverse", "--format=%H%x1f%ae%x1f%ce%x1f%s", f"{base}..{head}", check=False)
        rows = [line.split("\x1f") for line in out.stdout.split("\n") if line]
        return [(r[0], r[1], r[2], r[3]) for r in rows if len(r) == 4]

    def publish_branch(self, branch: str, edit: Edit, message: str) -> CommitResult:
        """Commit `edit` on top of the default branch as `branch` and push it (our own branch, never main)."""
        self.sync()
        self._synced = None
        changes = self._stage(edit)
        if not changes:
            return CommitResult(None, 1, ())
        if not self.detached:
            self.run("checkout", "--quiet", "-B", branch)  # carries the staged change over to the branch
        self.run("commit", "--quiet", "--no-verify", "-m", message)
        remote = self.run("ls-remote", "--heads", self.remote, branch).stdout.split()
        # A stale branch of ours from a closed PR may exist; replace only that exact tip (lease), never main.
        lease = [f"--force-with-lease=refs/heads/{branch}:{remote[0]}"] if remote else []
        pushed = self.run("push", "--quiet", *lease, self.remote, f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode != 0:
            raise_if_protected(pushed.stdout + pushed.stderr, branch)
            raise GitError(
                f"git push of {branch} failed: {pushed.stderr.strip()[-500:]}",
                hint="Check the workflow has 'contents: write' and may push branches.",
            )
        sha = self.run("rev-parse", "HEAD").stdout.strip()
        if self.detached:
            self.run("checkout", "--quiet", "--detach", f"{self.remote}/{self.branch}")
        else:
            self.run("checkout", "--quiet", self.branch)
        return CommitResult(sha, 1, tuple(changes))


def _remove_worktree(checkout: Path, place: Path) -> None:
    """Drop a private work tree and git's record of it (best effort: the process is ending)."""
    subprocess.run(["git", "worktree", "remove", "--force", str(place)], cwd=checkout, capture_output=True, check=False)
    shutil.rmtree(place, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=checkout, capture_output=True, check=False)
