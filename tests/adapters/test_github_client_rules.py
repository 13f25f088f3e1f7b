"""The GitHub adapter against the sandbox's stricter rules: custom roles and the primary rate limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from incidentops.adapters.github import GitHubClient, RateLimited
from incidentops.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    world = Sandbox(tmp_path_factory.mktemp("gh") / "sandbox", seed=ROOT).start()
    try:
        yield world
    finally:
        world.stop()


def client(sandbox: Sandbox, token: str) -> GitHubClient:
    return GitHubClient(token, "acme/ops", api_url=sandbox.info["github_api_url"], sleep=lambda _: None)


@pytest.mark.parametrize(
    ("role_name", "base_role"),
    [("sre", "maintain"), ("incident-commander", "admin"), ("scribe", "triage"), ("auditor", "read")],
)
def test_a_custom_role_is_its_base_role(sandbox: Sandbox, role_name: str, base_role: str) -> None:
    login = f"{role_name}-person"
    answer = httpx.put(
        f"{sandbox.info['control_url']}/github/collaborators/{login}",
        json={"role_name": role_name, "base_role": base_role},
    )
    assert answer.status_code == 200, answer.text
    assert client(sandbox, "oncall-write").role_of(login) == base_role


def test_base_roles_are_read_as_they_are(sandbox: Sandbox) -> None:
    gh = client(sandbox, "oncall-write")
    assert [gh.role_of(login) for login in ("oncall-maintain", "triager", "outsider")] == ["maintain", "triage", "none"]


def test_a_used_up_rate_limit_fails_fast_with_when_to_re_run(sandbox: Sandbox) -> None:
    gh = client(sandbox, "reader")
    number = client(sandbox, "oncall-write").repo.create_issue(title="x").number
    httpx.put(f"{sandbox.info['control_url']}/github/rate-limit/reader", json={"limit": 0, "reset_in": 3000})
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        gh.issue_state(number)
    assert time.monotonic() - started < 20
    assert "rate limit is used up until" in caught.value.message and "re-run" in (caught.value.hint or "")
