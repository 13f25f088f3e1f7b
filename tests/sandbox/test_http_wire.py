"""The sandbox's HTTP server on the wire: answers that must leave at once although its writes are buffered."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from incidentops.sandbox.http import App, HttpServer, Hub, Request, Response

TIMEOUT = 10.0


@pytest.fixture
def server() -> Iterator[HttpServer]:
    app = App()

    @app.route("POST", "/echo")
    def echo(request: Request) -> Response:
        return Response(200, {"received": len(request.body)})

    @app.route("GET", "/ok")
    def ok(request: Request) -> Response:
        return Response(200, {"status": "ok"})

    hub = Hub()
    hub.mount("", app)
    http = HttpServer(hub).start()
    try:
        yield http
    finally:
        http.stop()


def connect(server: HttpServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_answer(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 answer with a Content-Length: (status line, headers, body)."""
    data = read_until(sock, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return status, headers, body


def test_the_interim_100_continue_is_sent_before_the_body_is_read(server: HttpServer) -> None:
    body = b"x" * 1000
    with connect(server) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: sandbox\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        # A client that asked waits for this before sending the body; were it held in the buffer, neither would move.
        interim = read_until(sock, b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        status, _, answer = read_answer(sock)
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(answer) == {"received": len(body)}


def test_keep_alive_answers_each_request_in_turn(server: HttpServer) -> None:
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: sandbox\r\n\r\n")
            status, headers, body = read_answer(sock)
            assert status == "HTTP/1.1 200 OK"
            assert headers["content-type"].startswith("application/json")
            assert json.loads(body) == {"status": "ok"}
        sock.sendall(b"HEAD /ok HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        # No HEAD route here: the 405's headers (and no body) must still arrive, on the same connection.
        assert head.startswith(b"HTTP/1.1 405 ")
        assert head.endswith(b"\r\n\r\n")
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert read_answer(sock)[0] == "HTTP/1.1 200 OK"


def test_a_request_the_server_refuses_gets_its_error_before_the_connection_closes(server: HttpServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 414 ")
