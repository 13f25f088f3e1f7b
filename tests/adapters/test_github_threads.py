"""GitHub requests from several threads of one run (the role read beside the live issue's, a label beside a comment)
each get their own answer: PyGithub's connection object is shared and not thread-safe (PyGithub/PyGithub#2052)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.flows import conftest as flows
from tests.flows.conftest import World

world = flows.world


def test_two_threads_requests_are_not_mixed_up(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from github import Requester

    number = world.open_incident()
    named = Requester.HTTPRequestsConnectionClass.request

    def preempted(self: Any, *args: Any, **kwargs: Any) -> None:
        named(self, *args, **kwargs)
        time.sleep(0.05)  # the thread loses the interpreter between naming its request and sending it

    monkeypatch.setattr(Requester.HTTPRequestsConnectionClass, "request", preempted)
    client = world.ports().github
    log = world.info["control_url"] + "/requests"
    before = len(httpx.get(log).json())
    with ThreadPoolExecutor(max_workers=2) as pool:
        role = pool.submit(client.role_of, "oncall-write")
        live = pool.submit(client.live_issue, number)
        assert role.result() == "write"
        assert live.result().number == number and live.result().state == "open"
    sent = sorted(f"{r['method']} {r['path']}" for r in httpx.get(log).json()[before:] if "/api/v3/" in r["path"])
    repo = f"/api/v3/repos/{world.info['repository']}"
    assert sent == [f"GET {repo}/collaborators/oncall-write/permission", f"GET {repo}/issues/{number}"]
