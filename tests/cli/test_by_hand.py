"""The real `incidentops` executable run by a person at a terminal, against the sandbox (issue: on-call by hand).

Each test starts from what an engineer has: a clone of the ops repository with their own unfinished work in it,
their personal token in GITHUB_TOKEN, no GITHUB_ACTIONS, and the sandbox's URLs exported.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from incidentops.sandbox.github import personal_token
from tests.flows.conftest import FORM_BODY, World, git

EXE = Path(os.environ.get("VIRTUAL_ENV") or Path(__file__).resolve().parents[2] / ".venv") / "bin" / "incidentops"
LEDGER = "deployments/production.yaml"


def person_env(world: World, login: str = "oncall-admin", **overrides: str) -> dict[str, str]:
    """What a person exports to run incidentops by hand against the sandbox (no GITHUB_ACTIONS, no workspace)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(world.tmp),
        "USER": "alice",
        "GITHUB_REPOSITORY": world.info["repository"],
        "GITHUB_API_URL": world.info["github_api_url"],
        "GITHUB_SERVER_URL": world.info["github_server_url"],
        "GITHUB_TOKEN": personal_token(login),
        "CLOUDFLARE_API_BASE_URL": world.info["cloudflare_api_base_url"],
        "CLOUDFLARE_API_TOKEN": world.info["cloudflare_api_token"],
        "INCIDENTOPS_BASE_URLS": json.dumps(world.info["base_urls"]),
        **world.info["smoke_env"],
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run(world: World, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args],
        cwd=cwd or world.workspace,
        env=person_env(world, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class LocalWork:
    """A person's unfinished work in their clone: a local branch, an unpushed commit and an uncommitted edit."""

    branch: str
    head: str
    diff: str
    status: str


def local_work(workspace: Path) -> LocalWork:
    git("checkout", "-q", "-b", "force-queue-consumer", cwd=workspace)
    (workspace / "NOTES.md").write_text("what I tried so far\n")
    git("add", "NOTES.md", cwd=workspace)
    git("-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-qm", "my notes", cwd=workspace)
    ledger = workspace / LEDGER
    # The very edit a rollback plan asks for, not yet committed.
    ledger.write_text(ledger.read_text().replace("verified: false", "verified: false\n    force: true", 1))
    return snapshot(workspace)


def snapshot(workspace: Path) -> LocalWork:
    return LocalWork(
        branch=git("rev-parse", "--abbrev-ref", "HEAD", cwd=workspace).strip(),
        head=git("rev-parse", "HEAD", cwd=workspace).strip(),
        diff=git("diff", cwd=workspace),
        status=git("status", "--porcelain", cwd=workspace),
    )


@pytest.fixture
def declared(world: World) -> Iterator[World]:
    number = world.open_incident(body=FORM_BODY)
    world.label(number, "sev-1")
    world.run(world.next_event("issues", "labeled"))
    git("pull", "-q", "--ff-only", cwd=world.workspace)
    yield world


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "plan", "--incident", "INC-0001"),
        ("rollback", "apply", "--incident", "INC-0001"),
        ("verify", "--incident", "INC-0001"),
        ("verify", "--incident", "INC-0001", "--close"),
        ("remind",),
        ("smoke", "--incident", "INC-0001", "--service", "api-worker"),
        ("lint",),
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_commands_never_touch_a_persons_branch_tree_or_unpushed_commits(declared: World, args: tuple[str, ...]) -> None:
    world = declared
    before = local_work(world.workspace)
    result = run(world, *args)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(world.workspace) == before
    assert "force: true" in (world.workspace / LEDGER).read_text()
    # The private work tree is gone again.
    worktrees = git("worktree", "list", "--porcelain", cwd=world.workspace)
    assert worktrees.count("worktree ") == 1, worktrees


def test_a_writing_command_commits_as_the_person_and_pushes_from_its_own_work_tree(declared: World) -> None:
    world = declared
    before = local_work(world.workspace)
    result = run(world, "smoke", "--incident", "INC-0001", "--service", "api-worker", login="oncall-maintain")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert snapshot(world.workspace) == before
    author = git(
        "log", "-1", "--format=%an <%ae>", "main", "--", "incidents/INC-0001.md", cwd=Path(world.info["bare_repo"])
    )
    assert "github-actions[bot]" not in author and "+oncall-maintain@users.noreply.github.com" in author


def test_the_actor_is_the_tokens_owner_not_user_or_github_actor(declared: World) -> None:
    world = declared
    # alice's shell, an admin's name in GITHUB_ACTOR, but a triager's token: the triager acts, and is refused.
    result = run(world, "verify", "--incident", "INC-0001", "--close", login="triager", GITHUB_ACTOR="oncall-admin")
    assert result.returncode == 1
    assert "error: @triager has role 'triage'; resolve needs 'write'. Nothing was changed." in result.stderr
    assert "hint:" in result.stderr
    # A workflow's token belongs to nobody: by hand it cannot say who is acting.
    bot = run(world, "rollback", "apply", GITHUB_TOKEN=world.info["actions_token"])
    assert bot.returncode == 1 and "cannot tell who you are" in bot.stderr


def test_errors_on_a_terminal_are_plain_lines_on_stderr(declared: World) -> None:
    world = declared
    result = run(world, "rollback", "plan", "--incident", "INC-0001", "--service", "mainframe")
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown service(s): mainframe")
    assert "\nhint: " in result.stderr
    assert "::error::" not in result.stdout + result.stderr and "%0A" not in result.stderr


def test_a_yaml_error_names_file_line_and_column_and_shows_the_line(declared: World) -> None:
    world = declared
    bad = world.tmp / "bad"
    bad.mkdir()
    (bad / "incidentops.yaml").write_text("version: 1\nseverities:\n  sev-1: [SEV-1\n  sev-2: SEV-2\n")
    result = run(world, "lint", cwd=bad)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: incidentops.yaml:4:8: not valid YAML")
    assert lines[1].strip() == "sev-2: SEV-2" and lines[2].strip() == "^"


def test_exit_codes_tell_the_truth(declared: World, tmp_path: Path) -> None:
    world = declared
    missing = run(world, "verify", "--incident", "INC-9999")
    assert missing.returncode == 1 and "INC-9999 does not exist" in missing.stdout + missing.stderr
    event = tmp_path / "event.json"
    event.write_text("{}")
    typo = run(world, "handle-event", GITHUB_EVENT_NAME="isues", GITHUB_EVENT_PATH=str(event))
    assert typo.returncode == 2 and "'isues' is not a GitHub event" in typo.stderr
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    outside = run(world, "lint", cwd=nowhere)
    assert outside.returncode == 1 and "nothing to lint" in outside.stderr
    (nowhere / "incidentops.yaml").write_text((world.workspace / "incidentops.yaml").read_text())
    (nowhere / "incidents").write_text("a file where a folder should be")
    wrong_type = run(world, "lint", cwd=nowhere)
    assert wrong_type.returncode == 1 and "must name a folder" in wrong_type.stderr
    unmet = run(world, "verify", "--incident", "INC-0001", "--close")
    assert unmet.returncode == 1 and "exit criteria unmet" in unmet.stdout
    usage = run(world, "verify")
    assert usage.returncode == 2 and "error:" in usage.stderr


def test_help_says_what_each_command_does_writes_reads_and_shows_an_example(world: World) -> None:
    top = run(world, "--help")
    assert top.returncode == 0 and "exit codes:" in top.stdout
    for args in (
        ("handle-event",),
        ("rollback", "plan"),
        ("rollback", "apply"),
        ("smoke",),
        ("lint",),
        ("verify",),
        ("remind",),
        ("report",),
        ("doctor",),
        ("init",),
        ("demo",),
        ("sandbox", "serve"),
    ):
        shown = run(world, *args, "--help").stdout
        for part in ("writes:", "reads the environment:", "example:", "exit codes:"):
            assert part in shown, (args, part)
        assert "--incident" in shown or args[0] not in ("verify", "smoke", "rollback")


UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "plan", "--incident", "INC-0001"),
        ("rollback", "apply", "--incident", "INC-0001"),
        ("verify", "--incident", "INC-0001"),
        ("verify", "--incident", "INC-0001", "--close"),
        ("remind",),
        ("smoke", "--incident", "INC-0001"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
@pytest.mark.parametrize("trouble", ["unreachable", "no-access"])
def test_ordinary_failures_are_errors_not_bugs(declared: World, args: tuple[str, ...], trouble: str) -> None:
    world = declared
    if trouble == "unreachable":
        env = {"GITHUB_API_URL": UNREACHABLE, "CLOUDFLARE_API_BASE_URL": UNREACHABLE}
    else:
        env = {"GITHUB_TOKEN": "ghp_" + "x" * 36, "CLOUDFLARE_API_TOKEN": "no-such-token"}
    result = run(world, *args, **env)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    # An error on stderr, or (plain `verify`) the metrics it could not read reported as unmet criteria.
    assert result.stderr.startswith("error: ") or "exit criteria unmet" in result.stdout, result.stderr


def test_report_into_an_existing_file_is_an_error(world: World) -> None:
    (world.tmp / "site").write_text("not a folder")
    result = run(world, "report", "--out", str(world.tmp / "site"))
    assert result.returncode == 1 and "is a file, not a folder" in result.stderr


def test_lint_prints_each_problem_once(world: World) -> None:
    path = world.workspace / "incidents" / "INC-0042.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text("---\nid: INC-0042\n---\n")
    result = run(world, "lint")
    assert result.returncode == 1
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith("incidents/INC-0042.md:")]
    assert problem_lines and len(problem_lines) == len(set(problem_lines))
    assert result.stdout.count(problem_lines[0]) == 1


def test_control_api_is_reachable(world: World) -> None:
    # The fixture's sandbox answers; the unreachable address above really is unreachable.
    assert httpx.get(world.info["control_url"] + "/events").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(UNREACHABLE, timeout=2)


def test_sandbox_serve_prints_an_environment_a_person_can_paste(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [str(EXE), "sandbox", "serve", "--seed", str(root), "--workdir", str(tmp_path / "sb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        info = json.loads(proc.stdout.readline())  # the JSON ready line stays first on stdout
        block = []
        while not block or not block[-1].startswith("# then:"):
            block.append(proc.stderr.readline().rstrip("\n"))
        assert any(line.startswith("export GITHUB_TOKEN=ghp_") for line in block)
        (tmp_path / "env.sh").write_text("\n".join(block) + "\n")
        script = (
            f". {tmp_path / 'env.sh'} && git clone -q {info['bare_repo']} {tmp_path / 'ops'} && cd {tmp_path / 'ops'}"
            f" && {EXE} smoke --env production --service api-worker"
        )
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]}
        )
        assert result.returncode in (0, 1), result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        # The exported base URLs and credentials reached the checks, and each result is printed once.
        assert "api health" in result.stdout and "is not set" not in result.stdout
        lines = result.stdout.splitlines()
        for check in ("api health", "tenant A lists only its own reports"):
            assert sum(line.startswith(check) for line in lines) == 1, result.stdout
        assert not [line for line in lines if line.startswith("  - ")], result.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_slow_cloudflare_call_is_named_on_a_terminal(declared: World) -> None:
    import pty

    world = declared
    httpx.post(
        world.info["control_url"] + "/faults",
        json={
            "method": "GET",
            "path": "/client/v4/accounts/.*/workers/scripts/api-worker/deployments",
            "delay_ms": 3500,
        },
    )
    main, secondary = pty.openpty()  # stderr is a terminal, as for a person
    try:
        result = subprocess.run(
            [str(EXE), "rollback", "plan", "--incident", "INC-0001", "--service", "api-worker"],
            cwd=world.workspace,
            env=person_env(world),
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=120,
        )
        os.close(secondary)
        said = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(main)
    assert result.returncode in (0, 1), result.stdout
    text = said.decode()
    assert "waiting on Cloudflare: GET " in text and "api-worker/deployments" in text, text
    assert text.count("waiting on Cloudflare") == 1
