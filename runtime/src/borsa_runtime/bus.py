"""The NATS connection every service opens, and the shutdown that drains it before the process exits."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client

from borsa_runtime.redact import mask_url_password

log = structlog.get_logger("borsa.bus")

DEFAULT_SHUTDOWN_TIMEOUT = 30.0


async def _process_pong(self: Client) -> None:
    """nats-py's own, except that a flush given up on (timed out, or its task cancelled) is skipped when its PONG
    comes: nats-py sets the result of that cancelled future, raising InvalidStateError in the read loop, which
    then drops the connection and leaves every request in flight hanging."""
    if self._pongs:
        future = self._pongs.pop(0)
        if not future.done():
            future.set_result(True)
        self._pongs_received += 1
        self._pings_outstanding = 0


Client._process_pong = _process_pong  # every Borsa process connects through this module


async def connect(url: str, name: str, **options: Any) -> Client:
    """A nats-py client that reconnects forever and logs every change of state.

    `url` may list several servers separated by commas. With reconnects unlimited, nats-py also
    retries the first connection until the server answers, which is what a service starting
    before NATS wants. `options` go to `nats.connect` and win over these defaults.
    """
    servers = [server.strip() for server in url.split(",") if server.strip()]
    shown = mask_url_password(url)
    bound = log.bind(nats_name=name)

    async def disconnected() -> None:
        bound.warning("nats disconnected", url=shown)

    async def reconnected() -> None:
        bound.info("nats reconnected", url=shown)

    async def error(exc: Exception) -> None:
        bound.warning("nats error", error=f"{type(exc).__name__}: {exc}")

    async def closed() -> None:
        bound.info("nats connection closed")

    settings: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1.0,
        "connect_timeout": 2.0,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
        "closed_cb": closed,
    }
    nc = await nats.connect(**(settings | options))
    bound.info("nats connected", url=shown)
    return nc


async def drain(nc: Client) -> None:
    """Finish in-flight messages, flush replies, then close. Safe on a closed connection."""
    if nc.is_closed:
        return
    try:
        await nc.drain()
    except (nats.errors.ConnectionReconnectingError, nats.errors.ConnectionClosedError):
        # Nothing can be drained while the server is away; close what is left.
        await nc.close()


class GracefulShutdown:
    """SIGTERM/SIGINT turn into one orderly stop: registered steps run last-in first-out."""

    def __init__(self, *, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        self.timeout = timeout
        self.reason: str | None = None
        self._requested = asyncio.Event()
        self._done = asyncio.Event()
        self._steps: list[Callable[[], Awaitable[Any]]] = []

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def install(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.request, sig.name)

    def request(self, reason: str = "requested") -> None:
        if self.requested:
            log.info("shutdown already under way", reason=reason)
            return
        log.info("shutting down", reason=reason)
        self.reason = reason
        self._requested.set()

    def on_shutdown(self, step: Callable[[], Awaitable[Any]]) -> None:
        """Run `step` at shutdown; steps registered later run first."""
        self._steps.append(step)

    def drain_on_shutdown(self, nc: Client) -> None:
        self.on_shutdown(lambda: drain(nc))

    async def wait(self) -> None:
        """Return once shutdown was requested and every step (the NATS drain) has finished.

        Code after it may close what the message handlers used.
        """
        await self._done.wait()

    async def run_steps(self) -> None:
        while self._steps:
            step = self._steps.pop()
            try:
                await asyncio.wait_for(step(), self.timeout)
            except TimeoutError:
                log.error("shutdown step timed out", step=repr(step), timeout_s=self.timeout)
            except Exception:
                log.exception("shutdown step failed", step=repr(step))
        self._done.set()


async def _supervise(main: Callable[[GracefulShutdown], Awaitable[None]], shutdown: GracefulShutdown) -> int:
    task = asyncio.ensure_future(main(shutdown))
    requested = asyncio.ensure_future(shutdown._requested.wait())
    await asyncio.wait({task, requested}, return_when=asyncio.FIRST_COMPLETED)
    requested.cancel()
    await shutdown.run_steps()
    if not task.done():
        try:
            await asyncio.wait_for(task, shutdown.timeout)
        except TimeoutError:
            log.error("service did not stop in time", timeout_s=shutdown.timeout)
            return 1
    if task.cancelled():
        return 1
    if exc := task.exception():
        log.error("service failed", exc_info=exc)
        return 1
    return 0


def run_service(
    main: Callable[[GracefulShutdown], Awaitable[None]], *, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
) -> int:
    """Run `main(shutdown)` until it returns or a signal arrives, drain, and give the exit code.

    `main` connects, registers `shutdown.drain_on_shutdown(nc)`, starts serving and awaits
    `shutdown.wait()`. Use it as `raise SystemExit(run_service(main))`.
    """

    async def supervised() -> int:
        shutdown = GracefulShutdown(timeout=timeout)
        shutdown.install()
        return await _supervise(main, shutdown)

    return asyncio.run(supervised())
