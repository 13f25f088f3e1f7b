"""The smoke runner over real HTTP: bounded concurrency, retries, per-check timeout, total deadline."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from incidentops.adapters import aio_transport
from incidentops.adapters.smoke import Answer, Probe, Settings, run
from incidentops.sandbox.http import App, HttpServer, Hub, Request, Response


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, int]]]:
    """A tiny app: /ok, /slow (250 ms), /flaky (500 on the first call, then 200)."""
    hits: dict[str, int] = {}
    lock = threading.Lock()
    app = App()

    def count(name: str) -> int:
        with lock:
            hits[name] = hits.get(name, 0) + 1
            return hits[name]

    @app.route("GET", "/ok")
    def ok(request: Request) -> Response:
        count("ok")
        return Response(200, {"status": "ok"})

    @app.route("GET", "/slow")
    def slow(request: Request) -> Response:
        count("slow")
        time.sleep(0.25)
        return Response(200, {"status": "ok"})

    @app.route("GET", "/flaky")
    def flaky(request: Request) -> Response:
        return Response(500 if count("flaky") == 1 else 200, {})

    hub = Hub()
    hub.mount("", app)
    http = HttpServer(hub).start()
    try:
        yield http.url, hits
    finally:
        http.stop()


@pytest.fixture
def silent() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


def status_is(code: int) -> Callable[[Answer], list[str]]:
    return lambda answer: [] if answer.status == code else [f"status {answer.status}"]


def test_a_blip_is_retried_and_a_real_failure_is_not_hidden(server: tuple[str, dict[str, int]]) -> None:
    url, hits = server
    flaky, wrong = run(
        [
            Probe("flaky", "GET", url + "/flaky", judge=status_is(200)),
            Probe("wrong", "GET", url + "/ok", judge=status_is(201)),
        ],
        Settings(retries=2, retry_delay=0.01),
    )
    assert (flaky.passed, flaky.attempts, flaky.status) == (True, 2, 200)
    assert (wrong.passed, wrong.attempts, wrong.reason) == (False, 3, "status 200")
    assert hits["ok"] == 3


def test_a_server_that_never_answers_times_out_while_others_pass(
    server: tuple[str, dict[str, int]], silent: str
) -> None:
    url, _ = server
    began = time.perf_counter()
    hung, fine = run(
        [Probe("hung", "GET", silent + "/healthz"), Probe("fine", "GET", url + "/ok", judge=status_is(200))],
        Settings(timeout=0.3, retries=1, retry_delay=0.01, deadline=10),
    )
    assert time.perf_counter() - began < 2
    assert not hung.passed and hung.attempts == 2 and "timeout" in hung.reason and hung.status is None
    assert fine.passed


def test_the_total_deadline_bounds_the_run(silent: str) -> None:
    began = time.perf_counter()
    results = run(
        [Probe(str(i), "GET", silent + "/") for i in range(4)],
        Settings(timeout=5, retries=5, deadline=0.5),
    )
    assert time.perf_counter() - began < 2.5
    assert all(not r.passed and "timeout" in r.reason for r in results)


def test_concurrency_is_bounded(server: tuple[str, dict[str, int]]) -> None:
    url, _ = server
    probes = [Probe(str(i), "GET", url + "/slow", judge=status_is(200)) for i in range(6)]
    began = time.perf_counter()
    assert all(r.passed for r in run(probes, Settings(concurrency=2)))
    bounded = time.perf_counter() - began
    began = time.perf_counter()
    assert all(r.passed for r in run(probes, Settings(concurrency=6)))
    wide = time.perf_counter() - began
    assert bounded >= 0.7  # three rounds of 250 ms
    assert wide < bounded


def test_the_judge_sees_status_body_and_latency(server: tuple[str, dict[str, int]]) -> None:
    url, _ = server
    seen: list[Answer] = []

    def judge(answer: Answer) -> list[str]:
        seen.append(answer)
        return []

    (result,) = run([Probe("slow", "GET", url + "/slow", judge=judge)])
    assert result.passed and seen[0].status == 200 and '"ok"' in seen[0].body
    assert seen[0].latency_ms >= 250 and result.latency_ms is not None and result.latency_ms >= 250


class _InTurn(httpx.AsyncBaseTransport):
    """A transport that records when each probe starts and opens its connection, and answers none of them until
    every probe has its connection under way (so the probes must all be in flight at once)."""

    def __init__(self, probes: int, refused: str) -> None:
        self.events: list[str] = []
        self.probes = probes
        self.refused = refused
        self.everyone_connecting = asyncio.Event()
        self.connecting = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.strip("/")
        self.events.append(f"start {name}")
        await asyncio.sleep(0)  # a real transport yields before it connects
        if name == self.refused:  # fails before any connection: must not hold up the probes after it
            self.connecting += 1
            raise httpx.ConnectError("refused")
        self.events.append(f"connect {name}")
        trace = request.extensions.get("trace")
        if trace is not None:
            await trace("connection.connect_tcp.started", {})
        self.connecting += 1
        if self.connecting == self.probes:
            self.everyone_connecting.set()
        await self.everyone_connecting.wait()
        return httpx.Response(200, content=b"ok")


def test_each_probe_starts_once_the_one_before_is_connecting_and_all_are_in_flight_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _InTurn(6, refused="p2")
    monkeypatch.setattr(aio_transport, "transport", lambda *args, **kwargs: fake)
    probes = [Probe(f"p{i}", "GET", f"http://127.0.0.1:9/p{i}", judge=status_is(200)) for i in range(6)]
    results = run(probes, Settings(retries=0, deadline=30))
    assert [r.passed for r in results] == [True, True, False, True, True, True]
    assert "ConnectError: refused" in results[2].reason
    events = fake.events
    for i in range(1, 6):
        before = f"start p{i - 1}" if i - 1 == 2 else f"connect p{i - 1}"
        assert events.index(before) < events.index(f"start p{i}"), events


def test_the_collector_is_off_while_probes_run_and_as_it_was_after(server: tuple[str, dict[str, int]]) -> None:
    url, _ = server
    seen: list[bool] = []

    def judge(answer: Answer) -> list[str]:
        seen.append(gc.isenabled())
        return []

    assert gc.isenabled()
    run([Probe("ok", "GET", url + "/ok", judge=judge)])
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        run([Probe("ok", "GET", url + "/ok", judge=judge)])
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
