"""Pulling batches from a durable JetStream consumer with the next pull request already out while a batch is written.

nats-py's `PullSubscription.fetch` waits for each message in a task of its own with a timer (a task, a uuid and a
timeout per message): about 30,000 messages a second on one core, whatever the work after it. Here the messages land
in a subscription callback, which also prepares them (decodes) while this process would otherwise wait for Postgres,
and a batch is handed over once its pull request is answered: filled, or expired after the batch wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DEFAULT_PREFIX

log = structlog.get_logger("borsa.reporting.pull")

T = TypeVar("T")

# A request the server never answered (its connection dropped and came back) is given up this long after it expired.
LOST_AFTER_SECONDS = 1.0
# After the server refused a request (409: the consumer deleted, too many requests waiting), before the next one.
REFUSED_PAUSE_SECONDS = 1.0


class Puller(Generic[T]):
    def __init__(
        self, nc: Client, stream: str, consumer: str, *, batch: int, wait: float, prepare: Callable[[Msg], T]
    ) -> None:
        self.nc, self.batch, self.wait, self.prepare = nc, batch, wait, prepare
        self._subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._body = json.dumps({"batch": batch, "expires": int(wait * 1e9)}).encode()
        self._inbox = ""
        self._sub = None
        self._items: list[T] = []
        self._expected = 0
        self._answered = asyncio.Event()
        self._answered.set()
        self._deadline = 0.0
        self._refused = False

    async def start(self) -> None:
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self._inbox, cb=self._on_msg)

    async def stop(self) -> list[T]:
        """Stop pulling; what was delivered and not taken yet (unacknowledged, for the caller to hand back)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        left, self._items = self._items, []
        return left

    async def take(self) -> list[T]:
        """Up to a batch: at once when a batch is in hand, else what the outstanding request brought by its end."""
        loop = asyncio.get_running_loop()
        while True:
            if len(self._items) < self.batch:
                if self._refused:
                    self._refused = False
                    await asyncio.sleep(REFUSED_PAUSE_SECONDS)
                if self._answered.is_set() or loop.time() > self._deadline:
                    await self._request(loop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._answered.wait(), max(0.0, self._deadline - loop.time()))
            if self._items:
                taken = self._items[: self.batch]
                del self._items[: self.batch]
                if self._answered.is_set() or loop.time() > self._deadline:
                    await self._request(loop)  # the next batch arrives while this one is written
                return taken

    async def _request(self, loop: asyncio.AbstractEventLoop) -> None:
        self._expected = self.batch
        self._answered.clear()
        self._deadline = loop.time() + self.wait + LOST_AFTER_SECONDS
        await self.nc.publish(self._subject, self._body, reply=self._inbox)

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._items.append(self.prepare(msg))
            self._expected -= 1
            if self._expected <= 0:
                self._answered.set()
        elif status != "100":  # 404 no messages, 408 expired, 409 the server's refusal; 100 would be a heartbeat
            if status == "409":
                log.warning("pull request refused", description=msg.headers.get("Description"))
                self._refused = True
            self._answered.set()
