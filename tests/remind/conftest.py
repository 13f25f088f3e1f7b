"""The flow tests' sandbox world, with the emulated Cloudflare on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.flows.conftest import NOW, World
from tests.flows.conftest import world as _flows_world  # noqa: F401  (the fixture this one builds on)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def world(_flows_world: World, clock: Clock, tmp_path: Path) -> Iterator[World]:  # noqa: F811
    _flows_world.sandbox.cloudflare.set_clock(clock)
    yield _flows_world


@pytest.fixture(autouse=True)
def smoke_environment(_flows_world: World, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Point the runbook's smoke checks at the sandbox's demo services, as a workflow's env would."""
    import json

    info = _flows_world.info
    for name, value in (info.get("smoke_env") or {}).items():
        monkeypatch.setenv(name, value)
    if info.get("base_urls"):
        monkeypatch.setenv("INCIDENTOPS_BASE_URLS", json.dumps(info["base_urls"]))
