"""Pushes to main rejected again and again (a pre-receive hook in the sandbox's bare repository).

A rejected push is re-synced and the edit re-computed on the new tip; people's commits that won the race stay; the
history stays linear; when the rejections never stop the run says so and a re-run finishes the job.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from incidentops.adapters.git import GitRepo
from incidentops.errors import GitError
from tests.faults.common import labelled, path_of, run_declare
from tests.faults.conftest import Tally
from tests.flows.conftest import World, git

RACING_HOOK = """#!/bin/sh
# Reject the first {times} pushes; before each rejection someone else's commit lands on main (a lost race).
count_file="$GIT_DIR/race-count"
n=$(cat "$count_file" 2>/dev/null || echo 0)
echo $((n + 1)) > "$count_file"
if [ "$n" -lt {times} ]; then
  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
  tree=$(git rev-parse main^{{tree}})
  parent=$(git rev-parse main)
  c=$(GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=o@x \\
      git commit-tree "$tree" -p "$parent" -m "someone else's change $n")
  git update-ref refs/heads/main "$c" "$parent"
  echo "simulated race: main moved" >&2
  exit 1
fi
"""

DECLINING_HOOK = """#!/bin/sh
count_file="$GIT_DIR/race-count"
n=$(cat "$count_file" 2>/dev/null || echo 0)
echo $((n + 1)) > "$count_file"
echo "main is locked for maintenance" >&2
exit 1
"""


class Hook:
    def __init__(self, bare: Path) -> None:
        self.path = bare / "hooks" / "pre-receive"
        self.counter = bare / "race-count"

    def install(self, script: str) -> None:
        self.path.write_text(script)
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self.counter.unlink(missing_ok=True)

    def pushes(self) -> int:
        """How many pushes to the bare repository the hook has seen."""
        return int(self.counter.read_text()) if self.counter.is_file() else 0

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
def hook(world: World) -> Iterator[Hook]:
    installed = Hook(Path(world.info["bare_repo"]))
    yield installed
    installed.remove()


def subjects(world: World) -> list[str]:
    return [s for s in git("log", "--format=%s", "main", cwd=Path(world.info["bare_repo"])).split("\n") if s]


def linear(world: World) -> bool:
    return git("rev-list", "--merges", "main", cwd=Path(world.info["bare_repo"])).strip() == ""


def test_a_push_rejected_five_times_lands_on_the_sixth_and_keeps_everyone_elses_commits(
    world: World, hook: Hook, tally: Tally
) -> None:
    number, delivery = labelled(world)
    hook.install(RACING_HOOK.format(times=5))
    outcome = run_declare(delivery, world.ports())
    assert outcome.status == "declared", outcome.message
    assert any("push attempt 6" in step for step in outcome.steps), outcome.steps
    log = subjects(world)
    assert log[0] == f"INC-{number:04d}: declare SEV-1 (@oncall-write, #{number})"
    assert log[1:6] == [f"someone else's change {n}" for n in (4, 3, 2, 1, 0)]
    assert linear(world)
    assert len([c for c in world.comments(number) if "incidentops:declared" in c]) == 1
    assert hook.pushes() == 6  # the hook saw (and refused) five pushes before the sixth
    tally("git push rejected (someone else pushed first)", hook.pushes() - 1, "re-applied on the new tip; landed on 6")


def test_pushes_rejected_for_good_stop_clearly_with_nothing_half_done_and_a_rerun_finishes(
    world: World, hook: Hook, tally: Tally
) -> None:
    number, delivery = labelled(world)
    before = subjects(world)
    hook.install(DECLINING_HOOK)
    ports = replace(world.ports(), git=GitRepo(world.workspace, max_attempts=4, sleep=lambda s: None))
    with pytest.raises(GitError) as stopped:
        run_declare(delivery, ports)
    assert "push to main was rejected 4 times in a row" in str(stopped.value)
    assert "nothing was lost" in (stopped.value.hint or "") and "re-run" in (stopped.value.hint or "")
    declined = hook.pushes()
    assert declined == 4
    # Nothing downstream of the commit happened: no label, no comment, main untouched.
    assert subjects(world) == before
    assert world.comments(number) == []
    assert "incident" not in {label.name for label in world.repo().get_issue(number).get_labels()}

    hook.remove()
    again = run_declare(delivery, world.ports())
    assert again.status == "declared", again.message
    assert world.bare_log(path_of(number)) == [f"INC-{number:04d}: declare SEV-1 (@oncall-write, #{number})"]
    assert len(world.comments(number)) == 1 and linear(world)
    tally("git push declined by a hook, never recovering", declined, "clear error, nothing half done; re-run converged")
