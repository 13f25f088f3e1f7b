"""Git plumbing over the emulator's bare repository.

Every read goes to git (clients may `git push` straight into the bare repository), and every branch move
is a compare-and-swap `git update-ref <ref> <new> <old>`, so a concurrent push is never overwritten.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ZERO_SHA = "0" * 40
_CAS_ATTEMPTS = 8


class GitError(Exception):
    """A git command failed for a reason the caller cannot fix by retrying."""


class RefMoved(Exception):
    """A compare-and-swap ref update lost a race (the ref is not where we read it)."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # "blob", "tree" or "commit" (a submodule)
    sha: str
    size: int
    path: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Identity
    author_date: datetime
    committer: Identity
    committer_date: datetime
    message: str


def iso(moment: datetime) -> str:
    """Format a moment the way GitHub does: `YYYY-MM-DDTHH:MM:SSZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitStore:
    """Read and write one bare repository with git plumbing commands."""

    def __init__(self, bare: Path) -> None:
        self.bare = Path(bare)

    def git(self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        """Run git in the bare repository and return stdout; raise `GitError` on failure."""
        result = self._run(*args, stdin=stdin, env=env)
        if result.returncode != 0:
            raise GitError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def _run(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
        # Paths come from API clients: never let git read pathspec magic such as ":(glob)" in them.
        full_env["GIT_LITERAL_PATHSPECS"] = "1"
        return subprocess.run(
            ["git", "--git-dir", str(self.bare), *args],
            input=stdin,
            capture_output=True,
            env=full_env,
            check=False,
        )

    # -- reading -------------------------------------------------------------------------------

    def branch_sha(self, branch: str) -> str | None:
        """Return the commit `refs/heads/<branch>` points at, read fresh from git."""
        return self.ref_sha(f"refs/heads/{branch}")

    def ref_sha(self, ref: str) -> str | None:
        """Return the object a full ref name points at, or None."""
        result = self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip() or None

    def resolve(self, name: str) -> str | None:
        """Resolve a branch name, tag or (abbreviated) commit sha to a commit sha."""
        if not name or name.startswith("-"):
            return None
        for candidate in (f"refs/heads/{name}", f"refs/tags/{name}", name):
            sha = self.ref_sha(candidate)
            if sha:
                return sha
        return None

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        """Map every ref under `prefix` to the object it points at."""
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", prefix).decode()
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """Return the tree entry at `path` in `commit` (the root tree when `path` is empty)."""
        path = path.strip("/")
        if not path:
            tree = self.git("rev-parse", f"{commit}^{{tree}}").decode().strip()
            return TreeEntry("040000", "tree", tree, 0, "")
        found = self._ls_tree(commit, path)
        return next((e for e in found if e.path == path), None)

    def list_dir(self, commit: str, path: str) -> list[TreeEntry]:
        """List the entries of the directory `path` in `commit`."""
        path = path.strip("/")
        return self._ls_tree(commit, f"{path}/" if path else "")

    def _ls_tree(self, commit: str, path: str) -> list[TreeEntry]:
        args = ["ls-tree", "-l", "-z", "--full-tree", commit]
        if path:
            args += ["--", path]
        out = self.git(*args).decode("utf-8", "surrogateescape")
        entries = []
        for record in filter(None, out.split("\0")):
            meta, _, entry_path = record.partition("\t")
            mode, kind, sha, size = meta.split()
            entries.append(TreeEntry(mode, kind, sha, 0 if size == "-" else int(size), entry_path))
        return entries

    def read_blob(self, sha: str) -> bytes:
        """Return the bytes of a blob."""
        return self.git("cat-file", "blob", sha)

    def commit_info(self, sha: str) -> CommitInfo:
        """Read a commit's tree, parents, author, committer and message."""
        fields = "%H%x00%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B"
        out = self.git("show", "-s", f"--format={fields}", sha, "--").decode("utf-8", "replace")
        full, tree, parents, an, ae, at, cn, ce, ct, message = out.split("\0", 9)
        return CommitInfo(
            sha=full,
            tree=tree,
            parents=tuple(parents.split()),
            author=Identity(an, ae),
            author_date=datetime.fromtimestamp(int(at), UTC),
            committer=Identity(cn, ce),
            committer_date=datetime.fromtimestamp(int(ct), UTC),
            message=message.rstrip("\n"),
        )

    def valid_ref_name(self, ref: str) -> bool:
        """Tell whether git accepts `ref` as a full ref name."""
        return self._run("check-ref-format", ref).returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Tell whether `ancestor` is reachable from `descendant`."""
        return self._run("merge-base", "--is-ancestor", ancestor, descendant).returncode == 0

    def count_commits(self, base: str, head: str) -> int:
        """Count the commits on `head` that `base` lacks."""
        return int(self.git("rev-list", "--count", f"{base}..{head}").decode().strip() or 0)

    def diff_stats(self, base: str, head: str) -> tuple[int, int, int]:
        """Return (additions, deletions, changed files) from the merge base of `base` and `head` to `head`."""
        merge_base = self._run("merge-base", base, head).stdout.decode().strip()
        if not merge_base:
            return 0, 0, 0
        out = self.git("diff", "--numstat", merge_base, head).decode("utf-8", "replace")
        additions = deletions = files = 0
        for line in out.splitlines():
            added, removed, _ = line.split("\t", 2)
            files += 1
            additions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
        return additions, deletions, files

    def merge_tree(self, base: str, head: str) -> str | None:
        """Return the tree of merging `head` into `base`, or None when they conflict."""
        result = self._run("merge-tree", "--write-tree", "--no-messages", base, head)
        if result.returncode == 1:
            return None
        if result.returncode != 0:
            raise GitError(f"git merge-tree failed: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode().split("\n", 1)[0].strip()

    # -- writing -------------------------------------------------------------------------------

    def update_ref(self, ref: str, new: str, old: str | None) -> None:
        """Move `ref` to `new` only if it still points at `old` (None: only if it does not exist)."""
        result = self._run("update-ref", ref, new, old or ZERO_SHA)
        if result.returncode != 0:
            raise RefMoved(result.stderr.decode(errors="replace").strip())

    def commit_tree(self, tree: str, parents: list[str], message: str, author: Identity, committer: Identity) -> str:
        """Write a commit object and return its sha."""
        now = datetime.now(UTC)
        stamp = f"{int(now.timestamp())} +0000"
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": stamp,
        }
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.git(*args, stdin=message.encode(), env=env).decode().strip()

    def _tree_with_file(self, parent: str, path: str, blob: str) -> str:
        # A throwaway index keeps the bare repository free of any shared index state.
        with tempfile.TemporaryDirectory(prefix="gitstore-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("read-tree", parent, env=env)
            self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            return self.git("write-tree", env=env).decode().strip()

    def commit_file(
        self,
        branch: str,
        path: str,
        content: bytes,
        message: str,
        author: Identity,
        committer: Identity,
        guard: Callable[[TreeEntry | None], None],
    ) -> tuple[CommitInfo, str]:
        """Commit `content` at `path` on `branch`; return the commit and the blob sha.

        `guard` sees the entry currently at `path` on the branch tip and raises to refuse the write;
        it runs again whenever a concurrent push moved the branch, so a stale sha is always caught.
        """
        blob = self.git("hash-object", "-w", "--stdin", stdin=content).decode().strip()
        for _ in range(_CAS_ATTEMPTS):
            parent = self.branch_sha(branch)
            if parent is None:
                raise LookupError(branch)
            guard(self.entry(parent, path))
            tree = self._tree_with_file(parent, path, blob)
            commit = self.commit_tree(tree, [parent], message, author, committer)
            try:
                self.update_ref(f"refs/heads/{branch}", commit, parent)
            except RefMoved:
                continue
            return self.commit_info(commit), blob
        raise RefMoved(f"refs/heads/{branch} kept moving")

    def merge(
        self, base_branch: str, head: str, message: str, author: Identity, committer: Identity
    ) -> CommitInfo | None:
        """Merge commit `head` into `base_branch` with a two-parent commit; None on conflict."""
        for _ in range(_CAS_ATTEMPTS):
            base = self.branch_sha(base_branch)
            if base is None:
                raise LookupError(base_branch)
            tree = self.merge_tree(base, head)
            if tree is None:
                return None
            commit = self.commit_tree(tree, [base, head], message, author, committer)
            try:
                self.update_ref(f"refs/heads/{base_branch}", commit, base)
            except RefMoved:
                continue
            return self.commit_info(commit)
        raise RefMoved(f"refs/heads/{base_branch} kept moving")
