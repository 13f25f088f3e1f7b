"""httpx on asyncio's own streams: the transport of the async clients (the Cloudflare API, the smoke probes).

httpx's async transport reaches the network through httpcore's default backend, anyio, which wraps every connect,
read and write in cancel scopes and task groups: about half a millisecond of CPU per request on this project's
machine, paid by each of fifty concurrent smoke probes and by every wave of a five-service rollback. Here httpcore
(and h11 under it) still does all of HTTP, and httpx all of the client; only the sockets are asyncio's
(`asyncio.open_connection`, `StreamWriter.start_tls`), behind httpcore's documented network-backend interface.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any

# httpcore's locks, events and semaphores are anyio's on asyncio, and anyio loads its asyncio backend (some thirty
# modules, ~50 ms here) when the first one is made: inside the first request, on the critical path of the run's
# first wave. Loaded with the transport instead, so that a run which prepares its client early pays it off that path.
import anyio._backends._asyncio  # noqa: F401
import httpcore
import httpx

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]  # httpcore's
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried in parallel (RFC 8305; anyio's default)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)  # httpx's


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context, shared by the Cloudflare client and the smoke probes: loading the CA bundle
    costs more CPU than a request (about 50 ms here), and a rollback, a close or a deny check builds several clients.
    httpx's default context: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR when the runner sets one (a
    self-hosted runner behind a TLS-inspecting proxy). Every client here speaks HTTP/1.1 and sets the same ALPN on it.
    """
    return httpx.create_ssl_context()


@functools.lru_cache(maxsize=64)
def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
                return
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # As anyio's TLS stream with standard_compatible=False: no wait for the peer's close_notify.
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # httpcore asks before reusing an idle keep-alive connection: anything received on it (a late 408, or
            # the end of the stream) means the server is done with it. asyncio reads eagerly into the buffer.
            return (
                self._reader.at_eof()
                or bool(getattr(self._reader, "_buffer", b""))
                or self._writer.transport.is_closing()
            )
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    # One address has nothing to race (and racing costs a task per connection).
                    happy_eyeballs_delay=None if _ip_literal(host) else HAPPY_EYEBALLS_DELAY,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or f"no connection to {host}:{port} in time") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def transport(
    ssl_context: ssl.SSLContext,
    limits: httpx.Limits = DEFAULT_LIMITS,
    socket_options: Iterable[tuple[int, int, int]] | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own async transport (HTTP/1.1, no proxy), its connection pool on asyncio's streams."""
    options = list(socket_options or ())
    built = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, socket_options=options, trust_env=False)
    # AsyncHTTPTransport takes no network backend; the pool it would build, the same way, with this one.
    built._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        socket_options=options,
        network_backend=_Backend(),
    )
    return built
