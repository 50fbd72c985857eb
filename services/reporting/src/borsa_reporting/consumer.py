"""The durable JetStream consumer on BORSA_ORDERS: batches of events into Postgres, acknowledged after the commit.

Nothing is acknowledged before its transaction committed: a crash (or a failed commit) leaves the batch to be
delivered again, and the writes are idempotent, so the rows end up the same. An event that cannot be decoded is
set aside at once; one whose batch keeps failing is retried alone and set aside after repeated failures, so it
never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from borsa_proto import decode
from borsa_proto.orders import OrderEvent
from borsa_proto.subjects import ORDER_EVENTS_ALL, ORDERS_STREAM, parse_order_events
from borsa_runtime.streams import ensure_orders_stream

from .ingest import Ingest
from .metrics import Metrics

log = structlog.get_logger("borsa.reporting.consumer")

POISON_DELIVERIES = 10


class Consumer:
    def __init__(
        self,
        js: JetStreamContext,
        ingest: Ingest,
        metrics: Metrics,
        *,
        durable: str,
        batch: int,
        wait_ms: int,
        ack_wait_seconds: float = 30.0,
    ) -> None:
        self.js = js
        self.ingest = ingest
        self.metrics = metrics
        self.durable = durable
        self.batch = batch
        self.wait = wait_ms / 1000
        self.ack_wait = ack_wait_seconds
        self._sub = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await ensure_orders_stream(self.js)
        self._sub = await self.js.pull_subscribe(
            ORDER_EVENTS_ALL,
            durable=self.durable,
            stream=ORDERS_STREAM,
            config=ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_ack_pending=50_000,
                max_waiting=64,
            ),
        )
        self._task = asyncio.create_task(self._run(), name="reporting-consumer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _run(self) -> None:
        while True:
            try:
                msgs = await self._sub.fetch(self.batch, timeout=self.wait)
            except TimeoutError:
                continue
            except Exception as exc:
                log.warning("order events fetch failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            await self.handle(msgs)

    async def handle(self, msgs) -> None:
        events, good = [], []
        for msg in msgs:
            try:
                exchange, account = parse_order_events(msg.subject)
                events.append((exchange, account, decode(msg.data, OrderEvent)))
                good.append(msg)
            except Exception:
                log.error("undecodable order event set aside", subject=msg.subject)
                await msg.term()
        if not events:
            return
        started = time.perf_counter()
        try:
            applied = await self.ingest.apply(events)
        except Exception as exc:
            log.warning("applying order events failed; each is tried alone", error=str(exc), events=len(events))
            await self._one_by_one(good, events)
            return
        for msg in good:  # only now: the transaction committed
            await msg.ack()
        self.metrics.observe(applied, time.perf_counter() - started)

    async def _one_by_one(self, msgs, events) -> None:
        for msg, event in zip(msgs, events, strict=True):
            try:
                applied = await self.ingest.apply([event])
            except Exception as exc:
                if msg.metadata.num_delivered >= POISON_DELIVERIES:
                    log.error("order event set aside after repeated failures", subject=msg.subject, error=str(exc))
                    await msg.term()
                else:
                    await msg.nak(delay=1.0)
                continue
            await msg.ack()
            self.metrics.observe(applied, 0.0)
