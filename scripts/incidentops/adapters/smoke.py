"""The only module that sends smoke-check requests: httpx async, bounded concurrency, retries, deadlines.

Each probe gets a per-attempt timeout (enforced around the whole exchange, so a server that trickles bytes
cannot stall it) and is retried up to `retries` more times when it fails, so one blip is no false alarm.
A total deadline bounds the run: whatever has not finished by then is reported as timed out, never awaited.
The verdict on an answer is the caller's `judge`; this module only moves bytes and measures time.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when probes run: planning and judging need no HTTP client
    import httpx

MAX_BODY = 1_000_000  # bytes of an answer we look at
NO_TIMEOUTS = {"connect": None, "read": None, "write": None, "pool": None}  # httpx.Timeout(None).as_dict()


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    latency_ms: float


@dataclass(frozen=True)
class Probe:
    id: str
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    judge: Callable[[Answer], list[str]] = lambda answer: []  # problems; empty means passed


@dataclass(frozen=True)
class ProbeResult:
    id: str
    passed: bool
    status: int | None
    latency_ms: float | None
    attempts: int
    reason: str  # "" when passed; the last attempt's problems otherwise


@dataclass(frozen=True)
class Settings:
    concurrency: int = 64
    timeout: float = 10.0  # seconds per attempt
    retries: int = 2  # extra attempts for a failing probe
    retry_delay: float = 0.5  # seconds between attempts of one probe
    deadline: float = 120.0  # seconds for the whole run


# httpcore's trace events (its `trace` request extension) that show a request's connection under way: a new
# connection being opened, or the request going out on one already open.
UNDER_WAY = frozenset({"connection.connect_tcp.started", "http11.send_request_headers.started"})


async def _attempt(
    transport: httpx.AsyncBaseTransport, probe: Probe, timeout: float, under_way: asyncio.Event | None = None
) -> tuple[Answer | None, str]:
    import httpx

    # No timeout per connect, read and write (each a timer to set and cancel): the one around the whole exchange
    # bounds them all.
    extensions: dict[str, Any] = {"timeout": NO_TIMEOUTS}
    if under_way is not None:

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event in UNDER_WAY:
                under_way.set()

        extensions["trace"] = trace
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            headers = httpx.Headers(_default_headers())
            headers.update(probe.headers)  # case-insensitively, as a client merges its defaults
            request = httpx.Request(probe.method, probe.url, headers=headers, content=probe.body, extensions=extensions)
            response = await transport.handle_async_request(request)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_BODY:
                        break
                body = b"".join(chunks)[:MAX_BODY].decode(response.encoding or "utf-8", "replace")
                status = response.status_code
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        return None, f"no answer within {timeout:.1f} s (timeout)"
    except httpx.TransportError as exc:
        return None, f"no answer: {type(exc).__name__}: {exc or 'connection failed'}"
    return Answer(status, body, (time.perf_counter() - started) * 1000), ""


async def _run_one(
    transport: httpx.AsyncBaseTransport,
    probe: Probe,
    settings: Settings,
    gate: asyncio.Semaphore,
    ends_at: float,
    turn: asyncio.Event | None = None,
    under_way: asyncio.Event | None = None,
) -> ProbeResult:
    """One probe with its retries. It starts once `turn` is set (the previous probe's connection is under way)
    and sets `under_way` once its own first connection is, or when it ends without one."""
    try:
        if turn is not None:
            await turn.wait()
        return await _attempts(transport, probe, settings, gate, ends_at, under_way)
    finally:
        if under_way is not None:
            under_way.set()


async def _attempts(
    transport: httpx.AsyncBaseTransport,
    probe: Probe,
    settings: Settings,
    gate: asyncio.Semaphore,
    ends_at: float,
    under_way: asyncio.Event | None,
) -> ProbeResult:
    attempts = 0
    answer: Answer | None = None
    reason = ""
    while attempts <= settings.retries:
        remaining = ends_at - time.monotonic()
        if remaining <= 0:
            reason = reason or "the run's deadline passed before this check could run"
            break
        attempts += 1
        async with gate:
            answer, failure = await _attempt(
                transport, probe, min(settings.timeout, remaining), under_way if attempts == 1 else None
            )
        problems = [failure] if answer is None else probe.judge(answer)
        if not problems:
            return ProbeResult(probe.id, True, answer.status if answer else None, _ms(answer), attempts, "")
        reason = "; ".join(problems)
        if attempts <= settings.retries:
            await asyncio.sleep(max(0.0, min(settings.retry_delay, ends_at - time.monotonic())))
    return ProbeResult(probe.id, False, answer.status if answer else None, _ms(answer), attempts, reason)


def _ms(answer: Answer | None) -> float | None:
    return round(answer.latency_ms, 1) if answer else None


@functools.cache
def _default_headers() -> dict[str, str]:
    """What an httpx client sends unless told otherwise (httpx._client), so a probe reads as it always did."""
    import httpx

    return {
        "Accept": "*/*",
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        "User-Agent": f"python-httpx/{httpx.__version__}",
    }


async def run_probes(probes: Sequence[Probe], settings: Settings = Settings()) -> list[ProbeResult]:
    """Run every probe (concurrently, bounded) and return one result per probe, in the given order."""
    import httpx

    if not probes:
        return []
    # What the process built so far (modules, configuration, the runbook) lives until it ends: frozen, a full
    # collection does not walk it in the middle of the probes, where its pause (about 60 ms here) would be added
    # to the measured latency of every check in flight.
    gc.freeze()
    gate = asyncio.Semaphore(max(1, settings.concurrency))
    ends_at = time.monotonic() + settings.deadline
    from incidentops.adapters import aio_transport

    limits = httpx.Limits(max_connections=max(1, settings.concurrency), max_keepalive_connections=0)
    # httpx's transport, without a client around it: every check is one request of its own, so there are no
    # cookies to carry from one to the next, no redirects to follow (a 3xx is the answer judged) and no auth,
    # and the client's bookkeeping of those cost about a fifth of a probe's CPU.

    # While they run, no young collection either: what the probes allocate is freed as they end, and the collector's
    # pauses (nine for 50 probes, 2.5 to 4.5 ms in all here) would land among the answers, each delaying every
    # check in flight.
    collecting = gc.isenabled()
    gc.disable()
    try:
        async with aio_transport.transport(aio_transport.tls_context(), limits) as transport:
            # Every probe is in flight at once, but each starts only once the one before has its connection under way:
            # started all together, fifty probes would each be built, then each connect, then each send, so the first
            # request left only when the last was ready, and all the answers came back together, each waiting for the
            # others to be read and judged. Started in turn, the first requests go out (and their answers come back)
            # while the later ones are still being built; the last goes out about when it did before, and no probe waits
            # for another's network round trip (the next starts as soon as a connection is being opened).
            under_way = [asyncio.Event() for _ in probes]
            tasks = [
                asyncio.create_task(
                    _run_one(transport, p, settings, gate, ends_at, under_way[i - 1] if i else None, under_way[i])
                )
                for i, p in enumerate(probes)
            ]
            # A grace beyond the deadline lets in-flight attempts report their own timeout first.
            done, pending = await asyncio.wait(tasks, timeout=settings.deadline + 1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if collecting:
            gc.enable()
    results = []
    for probe, task in zip(probes, tasks, strict=True):
        if task in done and not task.cancelled() and task.exception() is None:
            results.append(task.result())
        else:
            why = f"the run's {settings.deadline:.0f} s deadline passed (timeout)"
            if task in done and not task.cancelled() and task.exception() is not None:
                why = f"error: {task.exception()}"
            results.append(ProbeResult(probe.id, False, None, None, 0, why))
    return results


def run(probes: Sequence[Probe], settings: Settings = Settings()) -> list[ProbeResult]:
    """Synchronous entry point for flows."""
    return asyncio.run(run_probes(probes, settings))
