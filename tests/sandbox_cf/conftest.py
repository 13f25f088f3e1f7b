"""A running emulated Cloudflare API on 127.0.0.1, and an authenticated HTTP client for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from incidentops.sandbox.cloudflare import CloudflareEmulator, Served, serving


@dataclass
class CloudflareApi:
    served: Served
    http: httpx.Client

    @property
    def emulator(self) -> CloudflareEmulator:
        return self.served.emulator

    @property
    def account(self) -> str:
        return f"/accounts/{self.emulator.account_id}"

    @property
    def zone(self) -> str:
        return f"/zones/{self.emulator.zone_id}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path.lstrip("/"), **kwargs)

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path.lstrip("/"), **kwargs)


@pytest.fixture(scope="module")
def _server() -> Iterator[Served]:
    # One server per module (stopping one takes half a second); each test mounts a fresh emulator on it.
    with serving() as served:
        yield served


@pytest.fixture
def cf(_server: Served) -> Iterator[CloudflareApi]:
    """Serve a freshly seeded emulator; after the test, every body must have matched the API description."""
    hub = _server.hub
    # Rule changes reach the edge at once here; tests of propagation set their own delay.
    emulator = CloudflareEmulator(api_base_url=_server.base_url, propagation=(0.0, 0.0))
    with hub.lock:
        hub.faults.clear()
        hub.log.clear()
    hub.mounts = [("/client/v4", emulator.app)]
    served = Served(emulator, hub, _server.server)
    headers = {"Authorization": f"Bearer {emulator.token}"}
    with httpx.Client(base_url=served.base_url + "/", headers=headers, timeout=10) as http:
        yield CloudflareApi(served, http)
    # Tests that provoke a mismatch on purpose assert on it and clear the list themselves.
    assert emulator.violations == []
