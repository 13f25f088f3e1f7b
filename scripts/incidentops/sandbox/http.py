"""A small HTTP toolkit for the emulated services: routing, JSON, latency and fault injection.

Every emulated API (GitHub, Cloudflare, demo services) is an `App`: a list of routes mapping
(method, path pattern) to a handler that takes a `Request` and returns a `Response`. The server
adds the cross-cutting behaviour tests rely on: `--latency-ms`, injected faults and a request log.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str  # path below the app's mount prefix, percent-decoded per segment by the router
    raw_path: str  # full request path as received, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """Decode the body as JSON; raise `HttpError(400)` when it is not."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, {"message": f"Problems parsing JSON: {exc}"}) from exc

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and token:
            return token.strip()
        return None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    # Work on the answer that the client does not wait for (checking it against the API description): the
    # server runs it with the bytes it sent, once they are sent. It must be safe to skip (its owner runs
    # whatever is left before anyone reads its results), so a handler called without the server loses nothing.
    after: Callable[[bytes], None] | None = field(default=None, repr=False, compare=False)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


class HttpError(Exception):
    """Raised by handlers to answer with an error status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.response = Response(status, body, headers or {})


Handler = Callable[[Request], Response]


def _compile(pattern: str) -> re.Pattern[str]:
    # "{name}" matches one path segment; "{name:path}" matches the rest, slashes included.
    regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}/?$")


class App:
    """A set of routes; `dispatch` finds the handler or answers with `not_found`."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method.upper(), _compile(pattern), handler))
            return handler

        return register

    def not_found(self, request: Request) -> Response:
        return Response(404, {"message": "Not Found"})

    def method_not_allowed(self, request: Request) -> Response:
        return Response(405, {"message": "Method Not Allowed"})

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if not match:
                continue
            path_matched = True
            if method != request.method:
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                return handler(request)
            except HttpError as err:
                return err.response
        return self.method_not_allowed(request) if path_matched else self.not_found(request)


@dataclass
class Fault:
    """An injected failure: matching requests get `status` (or a delay, or a dropped connection)."""

    path: re.Pattern[str]
    method: str | None = None
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    delay_ms: int = 0
    drop: bool = False  # close the connection before handling: the request never took effect
    drop_response: bool = False  # handle the request, then close without answering: the answer is lost
    count: int | None = 1  # None: every matching request, until cleared
    hits: int = 0  # how often it fired: tests read it back (GET /_sandbox/faults) to prove the fault happened
    id: int = 0

    def report(self) -> dict[str, Any]:
        """What `GET /_sandbox/faults` shows of this fault."""
        return {"id": self.id, "method": self.method, "path": self.path.pattern, "count": self.count, "hits": self.hits}

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.count is not None and self.hits >= self.count:
            return False
        return bool(self.path.search(path))


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    status: int
    at: float


LATER_WAIT = 0.05  # seconds `later` work waits for the handlers to be idle before it runs anyway


class Hub:
    """Mount apps under path prefixes and share latency, faults and the request log between them."""

    def __init__(self, latency_ms: int = 0) -> None:
        self.latency_ms = latency_ms
        self.mounts: list[tuple[str, App]] = []
        self.faults: list[Fault] = []
        self.faults_added = 0  # ids stay unique across DELETE /_sandbox/faults
        self.log: list[LoggedRequest] = []
        self.lock = threading.Lock()
        self._later: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._answering = 0  # handlers past their latency, making an answer
        self._quiet = threading.Condition()
        self._later_thread: threading.Thread | None = None

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Mark a handler as working on an answer (its latency slept): `later` work waits until none is."""
        with self._quiet:
            self._answering += 1
        try:
            yield
        finally:
            with self._quiet:
                self._answering -= 1
                if not self._answering:
                    self._quiet.notify_all()

    def later(self, work: Callable[[], None]) -> None:
        """Run `work` on the hub's one background thread (`Response.after`): a handler thread goes back to its
        connection at once, so the client's next request on it is read without waiting for that work."""
        with self.lock:
            if self._later_thread is None:
                self._later_thread = threading.Thread(target=self._run_later, name="sandbox-after", daemon=True)
                self._later_thread.start()
        self._later.put(work)

    def stop_later(self) -> None:
        """End the background thread once the work queued so far is done (the server stopped)."""
        with self.lock:
            running, self._later_thread = self._later_thread, None
        if running is not None:
            self._later.put(None)

    def _run_later(self) -> None:
        while (work := self._later.get()) is not None:
            with self._quiet:
                # The bodies' checks wait for a moment when no answer is being made (at most LATER_WAIT each),
                # so they do not hold the interpreter lock while a handler is due to answer.
                self._quiet.wait_for(lambda: not self._answering, timeout=LATER_WAIT)
            with contextlib.suppress(Exception):  # its owner records its own failures (see Response.after)
                work()

    def mount(self, prefix: str, app: App) -> None:
        self.mounts.append((prefix.rstrip("/"), app))
        self.mounts.sort(key=lambda m: len(m[0]), reverse=True)

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        """Register a fault from the JSON of `POST /_sandbox/faults`."""
        try:
            fault = Fault(
                path=re.compile(spec.get("path") or ".*"),
                method=spec.get("method"),
                status=spec.get("status"),
                body=spec.get("body"),
                retry_after=None if spec.get("retry_after") is None else str(spec["retry_after"]),
                delay_ms=int(spec.get("delay_ms") or 0),
                drop=bool(spec.get("drop", False)),
                drop_response=bool(spec.get("drop_response", False)),
                count=None if spec.get("count", 1) is None else int(spec.get("count", 1)),
            )
        except (re.error, TypeError, ValueError) as exc:
            raise HttpError(400, {"message": f"bad fault spec: {exc}"}) from exc
        with self.lock:
            self.faults_added += 1
            fault.id = self.faults_added
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def handle(self, request: Request) -> Response:
        for prefix, app in self.mounts:
            if request.raw_path == prefix or request.raw_path.startswith(prefix + "/") or prefix == "":
                request.path = request.raw_path[len(prefix) :] or "/"
                return app.dispatch(request)
        return Response(404, {"message": "Not Found"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # A buffered wfile: the status line, headers and body leave in one write (unbuffered, they were two, and the
    # client woke twice per answer). Nagle stays off for answers larger than the buffer, which leave in parts that
    # would otherwise wait ~40 ms for an ACK.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle_expect_100(self) -> bool:
        answered = super().handle_expect_100()
        self.wfile.flush()  # the client waits for this interim answer before it sends the body
        return answered

    def _hang_up(self) -> None:
        # Close without answering, as a reset connection or crashed proxy would.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _serve(self) -> None:
        hub = self.server.hub
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()  # git sends a large fetch request this way (http.postBuffer)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(
            method=self.command,
            path=url.path,
            raw_path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        if hub.latency_ms:
            time.sleep(hub.latency_ms / 1000)
        fault = None if url.path.startswith("/_sandbox") else hub.take_fault(self.command, url.path)
        if fault and fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        with hub.answering():
            if fault and fault.drop:
                self._hang_up()
                return
            if fault and fault.status:
                fault_headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                response = Response(fault.status, fault.body or {"message": "injected fault"}, fault_headers)
            else:
                try:
                    response = hub.handle(request)
                except HttpError as err:
                    response = err.response
                except Exception as exc:  # a bug in the emulator: answer 500 and keep serving
                    response = Response(500, {"message": f"sandbox error: {type(exc).__name__}: {exc}"})
            payload = response.encode()
            with hub.lock:
                hub.log.append(
                    LoggedRequest(
                        method=self.command,
                        path=url.path,
                        query=url.query,
                        headers=headers,
                        body=body.decode("utf-8", "replace"),
                        status=response.status,
                        at=time.time(),
                    )
                )
            self._answer(response, payload, hang_up=bool(fault and fault.drop_response))
        if response.after is not None:
            after = response.after
            hub.later(lambda: after(payload))

    def _answer(self, response: Response, payload: bytes, hang_up: bool) -> None:
        if hang_up:
            self._hang_up()
            return
        self.send_response(response.status)
        content_type = response.headers.get("Content-Type")
        if content_type is None and not isinstance(response.body, (bytes, str)):
            content_type = "application/json; charset=utf-8"
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in response.headers.items():
            if name != "Content-Type":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()  # now, while the answer is being made: the bodies' checks wait for that

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    """One thread per open connection, as before, but threads are kept for the next connection once theirs
    closes: starting a thread makes the accepting loop wait for it to run, which under load made a burst of
    fifty connections wait up to a tenth of a second to be accepted."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], hub: Hub) -> None:
        self.hub = hub
        self._connections: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._workers_lock = threading.Lock()
        self._idle = 0  # workers waiting for a connection
        self._workers = 0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._workers_lock:
            spawn = self._idle == 0
            if spawn:
                self._workers += 1
            else:
                self._idle -= 1
        self._connections.put((request, client_address))
        if spawn:
            # A plain thread start: Thread.start() would wait here until the new thread runs.
            _thread.start_new_thread(self._work, ())

    def _work(self) -> None:
        while (job := self._connections.get()) is not None:
            self.process_request_thread(*job)  # handles, reports errors, closes the connection
            with self._workers_lock:
                self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._workers_lock:
            workers = self._workers
        for _ in range(workers):
            self._connections.put(None)


class HttpServer:
    """A threaded HTTP server on 127.0.0.1 serving a `Hub` in a background thread."""

    def __init__(self, hub: Hub, port: int = 0) -> None:
        self.hub = hub
        self._server = _Server(("127.0.0.1", port), hub)
        # A short poll interval makes stop() quick (the default 0.5 s adds up across test fixtures).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.hub.stop_later()
