"""nats.micro handlers built once: decode the request, answer the reply or the typed error, log one line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from nats.micro import Request
from nats.micro.request import Handler

from borsa_proto import BadMessage, decode, encode
from borsa_runtime.errors import BadRequest, BorsaError, Internal, respond_error
from borsa_runtime.logging import log_context

log = structlog.get_logger("borsa.endpoint")

Req = TypeVar("Req")


def handler(
    request_type: type[Req],
    serve: Callable[[Req], Awaitable[object]],
    observe: Callable[[str, float], None] | None = None,
) -> Handler:
    """A micro endpoint handler around `serve(request) -> reply message`.

    A request that does not decode is answered `bad_request` naming the field; a BorsaError is
    answered as itself; anything else is logged with its traceback and answered `internal`.
    `observe(outcome, seconds)` is told about every request (metrics).
    """

    async def handle(request: Request) -> None:
        started = time.perf_counter()
        outcome = "ok"
        with log_context(subject=request.subject):
            try:
                reply = await serve(decode(request.data, request_type))
                await request.respond(encode(reply))
            except BadMessage as exc:
                outcome = BadRequest.code
                await respond_error(request, BadRequest(str(exc)))
            except BorsaError as exc:
                outcome = exc.code
                await respond_error(request, exc)
            except Exception:
                outcome = Internal.code
                log.exception("request failed")
                await respond_error(request, Internal(f"{request.subject} failed on our side; see its logs."))
            finally:
                elapsed = time.perf_counter() - started
                # Every request is in the metrics; the log keeps the ones that went wrong (all of them at debug).
                (log.debug if outcome == "ok" else log.info)(
                    "request", outcome=str(outcome), duration_ms=round(elapsed * 1000, 1)
                )
                if observe is not None:
                    observe(str(outcome), elapsed)

    return handle


class InFlight:
    """Serve each request of a subscription in its own task, at most `limit` at a time.

    A NATS subscription hands its callback one message at a time: without this, one slow exchange call holds up
    every request behind it on that endpoint. At the limit, the subscription waits (back-pressure) instead of
    piling up tasks. `wait()` lets the ones under way finish before the connection drains.
    """

    def __init__(self, limit: int = 256) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task] = set()

    def wrap(self, handle: Handler) -> Handler:
        async def spawn(request: Request) -> None:
            await self._slots.acquire()
            task = asyncio.create_task(handle(request))
            self._tasks.add(task)
            task.add_done_callback(self._done)

        return spawn

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._slots.release()

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float = 15.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
