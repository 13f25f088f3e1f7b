"""GitHub's repository rules in the sandbox, as strict as github.com: protected branches and rulesets reject a
direct push through the real bare repository, custom roles answer like the permission API, deleted and
transferred issues answer 410 and 301, and the primary rate limit answers 403 with its headers."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from github import Auth, Github, GithubException, UnknownObjectException

from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    world = Sandbox(tmp_path / "sandbox", seed=ROOT).start()
    assert control(world, "PUT", "/github/push-events", {"enabled": True}).status_code == 200
    try:
        yield world
    finally:
        world.stop()


def control(sandbox: Sandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, sandbox.info["control_url"] + path, json=body, timeout=30)


def git(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def token_env(token: str, server: str) -> dict[str, str]:
    """How the workflows hand git the job token: environment-only config, as in incident.yml."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        **os.environ,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def clone_and_commit(sandbox: Sandbox, tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    git("clone", "--quiet", str(sandbox.bare_repo), str(work), cwd=tmp_path)
    (work / "incidents" / f"{name}.md").write_text("x\n", encoding="utf-8")
    git("add", "-A", cwd=work)
    git("-c", "user.name=bot", "-c", "user.email=bot@example.invalid", "commit", "-qm", name, cwd=work)
    return work


def pushes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e["payload"] for e in sandbox.github.events if e["event"] == "push"]


def test_a_protected_main_declines_the_bots_push_with_githubs_message(sandbox: Sandbox, tmp_path: Path) -> None:
    assert control(sandbox, "PUT", "/github/branches/main/protection", {"kind": "classic"}).status_code == 200
    work = clone_and_commit(sandbox, tmp_path, "bot")
    env = token_env(sandbox.info["actions_token"], sandbox.info["github_server_url"])
    before = git("rev-parse", "main", cwd=sandbox.bare_repo).stdout
    done = git("push", "origin", "HEAD:main", cwd=work, env=env, check=False)
    assert done.returncode != 0
    assert "remote: error: GH006: Protected branch update failed for refs/heads/main." in done.stderr
    assert "remote: error: Changes must be made through a pull request." in done.stderr
    assert (
        "[remote rejected] HEAD -> main (pre-receive hook declined)" in done.stderr
    )  # GitHub: "protected branch hook declined"
    assert git("rev-parse", "main", cwd=sandbox.bare_repo).stdout == before
    assert pushes(sandbox) == []
    branch = httpx.get(
        f"{sandbox.info['github_api_url']}/repos/acme/ops/branches/main",
        headers={"Authorization": "Bearer oncall-write"},
    ).json()
    assert branch["protected"] is True


def test_a_ruleset_declines_with_gh013_unless_the_pusher_may_bypass(sandbox: Sandbox, tmp_path: Path) -> None:
    rule = {"kind": "ruleset", "required_status_checks": ["make test"]}
    control(sandbox, "PUT", "/github/branches/main/protection", rule)
    work = clone_and_commit(sandbox, tmp_path, "person")
    env = token_env("oncall-write", sandbox.info["github_server_url"])
    done = git("push", "origin", "HEAD:main", cwd=work, env=env, check=False)
    assert "remote: error: GH013: Repository rule violations found for refs/heads/main." in done.stderr
    assert "remote: - Changes must be made through a pull request." in done.stderr
    assert 'remote: - Required status check "make test" is expected.' in done.stderr
    rules = httpx.get(
        f"{sandbox.info['github_api_url']}/repos/acme/ops/rules/branches/main",
        headers={"Authorization": "Bearer oncall-write"},
    ).json()
    assert [r["type"] for r in rules] == ["pull_request", "required_status_checks"]  # what `doctor` reads

    control(sandbox, "PUT", "/github/branches/main/protection", {**rule, "bypass": ["oncall-write"]})
    assert git("push", "origin", "HEAD:main", cwd=work, env=env, check=False).returncode == 0
    (push,) = pushes(sandbox)
    assert (push["pusher"]["name"], push["sender"]["login"], push["ref"]) == (
        "oncall-write",
        "oncall-write",
        "refs/heads/main",
    )
    assert push["head_commit"]["added"] == ["incidents/person.md"]


def test_the_pusher_is_who_the_credentials_say_even_when_persisted_in_git_config(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    work = clone_and_commit(sandbox, tmp_path, "persisted")
    basic = base64.b64encode(f"x-access-token:{sandbox.info['actions_token']}".encode()).decode()
    # What actions/checkout (v6 and later) leaves with persist-credentials: true: the header in a config file
    # of its own, included from .git/config (src/git-auth-helper.ts).
    creds = tmp_path / "git-credentials.config"
    git(
        "config",
        "--file",
        str(creds),
        f"http.{sandbox.info['github_server_url']}/.extraheader",
        f"AUTHORIZATION: basic {basic}",
        cwd=work,
    )
    git("config", "--local", f"includeIf.gitdir:{work}/.git.path", str(creds), cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    (push,) = pushes(sandbox)
    assert push["pusher"]["name"] == "github-actions[bot]"


def test_a_wrong_token_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    work = clone_and_commit(sandbox, tmp_path, "wrong")
    done = git("push", "origin", "HEAD:main", cwd=work, env=token_env("nobody", "http://x"), check=False)
    assert done.returncode != 0 and "Invalid username or token." in done.stderr


def test_a_custom_role_answers_with_its_base_roles_permissions(sandbox: Sandbox) -> None:
    answer = control(sandbox, "PUT", "/github/collaborators/sre-alice", {"role_name": "sre", "base_role": "maintain"})
    assert answer.status_code == 200, answer.text
    permission = httpx.get(
        f"{sandbox.info['github_api_url']}/repos/acme/ops/collaborators/sre-alice/permission",
        headers={"Authorization": "Bearer oncall-write"},
    ).json()
    assert (permission["permission"], permission["role_name"]) == ("write", "sre")  # maintain folds into write
    assert permission["user"]["permissions"] == {
        "admin": False,
        "maintain": True,
        "push": True,
        "triage": True,
        "pull": True,
    }
    assert sandbox.github.violations == []  # checked against api.github.com's OpenAPI description
    assert (
        control(sandbox, "PUT", "/github/collaborators/x", {"role_name": "sre", "base_role": "boss"}).status_code == 400
    )


def test_deleted_and_transferred_issues_answer_410_and_301(sandbox: Sandbox) -> None:
    gh = Github(auth=Auth.Token("oncall-write"), base_url=sandbox.info["github_api_url"], retry=None)
    repo = gh.get_repo("acme/ops")
    gone, moved = repo.create_issue(title="Follow-up A"), repo.create_issue(title="Follow-up B")
    control(sandbox, "POST", f"/github/issues/{gone.number}/delete")
    control(sandbox, "POST", f"/github/issues/{moved.number}/transfer", {"repository": "acme/platform", "number": 9})
    api = sandbox.info["github_api_url"]
    headers = {"Authorization": "Bearer oncall-write"}
    deleted = httpx.get(f"{api}/repos/acme/ops/issues/{gone.number}/comments", headers=headers)
    assert deleted.status_code == 410 and deleted.json()["message"] == "This issue was deleted"
    transferred = httpx.get(f"{api}/repos/acme/ops/issues/{moved.number}", headers=headers)
    assert transferred.status_code == 301
    assert transferred.headers["location"] == f"{api}/repos/acme/platform/issues/9"
    with pytest.raises(GithubException) as caught:
        repo.get_issue(gone.number)
    assert caught.value.status == 410
    with pytest.raises(UnknownObjectException):  # PyGithub follows the 301 to a repository it cannot see
        repo.get_issue(moved.number)
    assert sandbox.github.violations == []


def test_the_primary_rate_limit_answers_403_with_its_headers(sandbox: Sandbox) -> None:
    control(sandbox, "PUT", "/github/rate-limit/reader", {"limit": 2, "reset_in": 120})
    api = sandbox.info["github_api_url"]
    answers = [httpx.get(f"{api}/repos/acme/ops", headers={"Authorization": "Bearer reader"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    last = answers[-1]
    assert last.json()["message"].startswith("API rate limit exceeded for user ID")
    assert (last.headers["x-ratelimit-limit"], last.headers["x-ratelimit-remaining"]) == ("2", "0")
    assert int(last.headers["x-ratelimit-reset"]) > 0 and last.headers["x-ratelimit-resource"] == "core"
    bot = httpx.get(
        f"{api}/repos/acme/ops/issues", headers={"Authorization": f"Bearer {sandbox.info['actions_token']}"}
    )
    assert bot.headers["x-ratelimit-limit"] == "1000"  # GITHUB_TOKEN: 1,000 requests per hour per repository
