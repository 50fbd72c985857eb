"""The runner: takes its share of the running bots, keeps their leases, and feeds them what changed.

- Bots are taken through leases in Postgres (`bot_leases`). Each runner takes at most its fair share
  (running bots / live runners, rounded up) and gives back what is above it when a runner joins, so replicas split
  the bots; the bots of a runner that stops renewing are taken by the others once its leases run out.
- The gateway's notices (`borsa.bots.changed`) make a start or stop take effect at once; a scan of the table every
  few seconds catches a notice that was lost.
- Order events from the BORSA_ORDERS stream are applied to intents, fills and positions by whichever runner pulls
  them (one durable consumer shared by all); each runner follows its own bots' changes from `bot_intents`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from decimal import Decimal

import structlog
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from borsa_proto import BotChanged, BotEvent, decode, encode
from borsa_proto.orders import OrderEvent
from borsa_proto.subjects import BOTS_CHANGED, ORDER_EVENTS_ALL, ORDERS_STREAM, bot_events, parse_order_events
from borsa_runtime.streams import ensure_orders_stream

from .bot import Bot
from .market import MarketFeed
from .metrics import Metrics
from .position import Holding
from .settings import RunnerSettings
from .store import LeaseLost, RunnerStore

log = structlog.get_logger("borsa.runner")

CONSUMER = "borsa-runner"
EVENT_BATCH = 256
POISON_DELIVERIES = 10
FREEZE_AFTER = 100
# Changes are read again for this long: a transaction that took its change number before a later one committed
# is seen on the next reads instead of being skipped.
CHANGES_REREAD_SECONDS = 5.0


class Runner:
    def __init__(self, settings: RunnerSettings, nc: Client, store: RunnerStore, metrics: Metrics) -> None:
        self.settings = settings
        self.nc = nc
        self.store = store
        self.metrics = metrics
        self.timeout = settings.request_timeout_ms / 1000
        self.feed = MarketFeed(nc, timeout=self.timeout)
        self.inflight = asyncio.Semaphore(settings.max_inflight)
        self.bots: dict[str, Bot] = {}
        self.starting: set[str] = set()
        self.versions: dict[str, object] = {}  # bot id -> bot_configs.updated_at it was started with
        self.share = settings.max_bots
        self.ready = False
        self._tasks: list[asyncio.Task] = []
        self._sub = None
        self._wake = asyncio.Event()
        self._claim_lock = asyncio.Lock()
        self._state_writes: dict[str, tuple[dict, int]] = {}
        self._state_flush = asyncio.Event()
        self._lease_deadline = 0.0
        self._claims: set[asyncio.Task] = set()

    # -- start and stop -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._top = await self.store.last_change()
        self._gaps: dict[int, float] = {}
        await self._heartbeat()
        self._lease_deadline = time.monotonic() + self.settings.lease_seconds
        js = self.nc.jetstream()
        await ensure_orders_stream(js)
        self._events = await js.pull_subscribe(
            ORDER_EVENTS_ALL,
            durable=CONSUMER,
            stream=ORDERS_STREAM,
            config=ConsumerConfig(
                durable_name=CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_ack_pending=20_000,
            ),
        )
        self._sub = await self.nc.subscribe(BOTS_CHANGED, cb=self._on_notice)
        self.feed.start()
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="leases"),
            asyncio.create_task(self._scan_loop(), name="scan"),
            asyncio.create_task(self._changes_loop(), name="changes"),
            asyncio.create_task(self._events_loop(), name="order-events"),
            asyncio.create_task(self._state_loop(), name="state-writes"),
            asyncio.create_task(self._lag_loop(), name="loop-lag"),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Stop every bot without cancelling its orders (it goes on in another runner) and give the leases back."""
        self.ready = False
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        await asyncio.gather(*(bot.stop(cancel_orders=False) for bot in list(self.bots.values())))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A fetch cut short leaves a message in the subscription's queue: without this the drain waits it out.
        with contextlib.suppress(Exception):
            await self._events.unsubscribe()
        await self._flush_states()
        await self.feed.stop()
        with contextlib.suppress(Exception):
            await self.store.leave()
        self.bots.clear()

    # -- leases ---------------------------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        runners, running = await self.store.heartbeat()
        self.share = min(self.settings.max_bots, max(1, math.ceil(running / max(runners, 1))))
        self.metrics.runners.set(runners)

    async def _lease_loop(self) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._heartbeat()
                held = await self.store.renew()
            except Exception as exc:
                log.warning("lease renewal failed", error=str(exc))
                if self.bots and time.monotonic() > self._lease_deadline:
                    log.error("leases ran out while the database was unreachable; stopping this runner's bots")
                    for bot in list(self.bots.values()):
                        self.lost(bot)
                continue
            self._lease_deadline = time.monotonic() + self.settings.lease_seconds
            await self._reconcile(held)

    async def _reconcile(self, held: dict[str, tuple[str, object]]) -> None:
        missing = [bot_id for bot_id in self.bots if bot_id not in held]
        deleted = await self.store.deleted(missing) if missing else set()
        for bot_id, bot in list(self.bots.items()):
            if bot_id in deleted:  # deleted and its notice lost: its orders must not outlive it
                await self._stop_bot(bot, cancel_orders=self.settings.cancel_on_stop, release=False)
                continue
            if bot_id not in held:
                log.warning("bot lease lost", bot=bot_id)
                self.lost(bot)
                continue
            status, updated_at = held[bot_id]
            if status != "running":
                await self._stop_bot(bot, cancel_orders=self.settings.cancel_on_stop and status == "stopped")
            elif updated_at != self.versions.get(bot_id):
                log.info("bot settings changed; restarting it", bot=bot_id)
                await self._stop_bot(bot, cancel_orders=False, release=False)
                await self._start_bots([bot_id])
        excess = len(self.bots) - self.share
        if excess > 1:  # a runner joined: give back what is above the fair share (one of slack avoids ping-pong)
            running = [bot for bot in self.bots.values() if bot.status == "running"]
            for bot in running[: excess - 1]:
                log.info("handing a bot over to another runner", bot=bot.id)
                await self._stop_bot(bot, cancel_orders=False)

    async def _scan_loop(self) -> None:
        while True:
            try:
                await self._claim()
            except Exception as exc:
                log.warning("bot scan failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.scan_ms / 1000)
            self._wake.clear()

    async def _claim(self, bot_id: str | None = None) -> None:
        async with self._claim_lock:
            if bot_id is not None:
                await self._heartbeat()
            room = self.share - len(self.bots) - len(self.starting)
            taken = await self.store.claim(room, bot_id)
            if taken:
                await self._start_bots(taken)

    async def _start_bots(self, bot_ids: list[str]) -> None:
        self.starting.update(bot_ids)
        try:
            rows = await self.store.load(bot_ids)
            for row in rows:
                bot = Bot(row, self)
                self.versions[row.id] = row.updated_at
                self.bots[row.id] = bot
                try:
                    started = await bot.start()
                except Exception as exc:  # the connector is away: try again at the next scan
                    log.warning("bot could not start yet", bot=row.id, error=str(exc))
                    self.bots.pop(row.id, None)
                    await self.store.release(row.id)
                    continue
                if started:
                    log.info(
                        "bot started",
                        bot=row.id,
                        exchange=row.exchange,
                        symbol=row.symbol,
                        strategy=row.strategy,
                        state=row.strategy_state,
                        intents=len(row.intents),
                    )
        finally:
            self.starting.difference_update(bot_ids)
            self.metrics.bots.set(len(self.bots))
        if len(bot_ids) >= FREEZE_AFTER:
            # Thousands of long-lived bots: keep them out of the collector's full passes (each would stall the
            # loop for 100 ms and more at 10,000 bots).
            gc.freeze()

    async def _stop_bot(self, bot: Bot, *, cancel_orders: bool, release: bool = True) -> None:
        self.bots.pop(bot.id, None)
        await bot.stop(cancel_orders=cancel_orders)
        await self._flush_states()
        if release:
            await self.store.release(bot.id)
        self.metrics.bots.set(len(self.bots))
        log.info("bot stopped", bot=bot.id, cancel_orders=cancel_orders)

    def lost(self, bot: Bot) -> None:
        """Another runner has the bot now: stop here without touching its orders or its lease."""
        self.bots.pop(bot.id, None)
        bot.status = "stopped"
        self.feed.unfollow(bot)
        if bot.task is not None and bot.task is not asyncio.current_task():
            bot.task.cancel()
        self.metrics.bots.set(len(self.bots))

    async def paused(self, bot: Bot, reason: str) -> None:
        if await self.store.pause(bot.id, reason):
            self.metrics.paused.inc()
            await self.publish_bot(bot, "paused", reason)
        self.bots.pop(bot.id, None)
        await bot.stop(cancel_orders=False)
        await self.store.release(bot.id)
        self.metrics.bots.set(len(self.bots))

    # -- notices from the gateway -----------------------------------------------------------------------------------
    async def _on_notice(self, msg) -> None:
        try:
            notice = decode(msg.data, BotChanged)
        except Exception:
            log.warning("bad bot notice", subject=msg.subject)
            return
        bot = self.bots.get(notice.bot_id)
        if notice.status == "running":
            if bot is None:
                task = asyncio.create_task(self._claim_quietly(notice.bot_id))
                self._claims.add(task)
                task.add_done_callback(self._claims.discard)
            elif self.versions.get(bot.id) is not None:
                self._wake.set()
            return
        if bot is not None:
            cancel = notice.cancel_orders if notice.cancel_orders is not None else self.settings.cancel_on_stop
            await self._stop_bot(bot, cancel_orders=cancel and notice.status in ("stopped", "deleted"))

    async def _claim_quietly(self, bot_id: str) -> None:
        try:
            await self._claim(bot_id)
        except Exception as exc:
            log.warning("bot claim failed", bot=bot_id, error=str(exc))

    # -- what changed on the bots' orders ------------------------------------------------------------------------------
    async def _changes_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.changes_ms / 1000)
            try:
                await self._read_changes()
            except Exception as exc:
                log.warning("reading order changes failed", error=str(exc))

    async def _read_changes(self) -> None:
        """What changed on the bots' intents since the last read. A change number skipped over (its transaction
        had not committed when a later one was read) is asked for again for a few seconds, so no change is missed;
        rows already seen are not read again."""
        now = time.monotonic()
        for seq, noticed in list(self._gaps.items()):
            if now - noticed > CHANGES_REREAD_SECONDS:
                del self._gaps[seq]  # a number that never commits: rolled back, or its row changed again since
        rows = await self.store.changes(self._top, list(self._gaps))
        top = self._top
        for intent, holding in rows:
            self._gaps.pop(intent.change_seq, None)
            bot = self.bots.get(intent.bot_id)
            if bot is not None:
                bot.on_change(intent, holding)
            if intent.change_seq > top:
                for missing in range(top + 1, intent.change_seq):
                    self._gaps[missing] = now
                top = intent.change_seq
        self._top = top

    async def _events_loop(self) -> None:
        while True:
            try:
                msgs = await self._events.fetch(EVENT_BATCH, timeout=1.0)
            except TimeoutError:
                continue
            except Exception as exc:
                log.warning("order events fetch failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            events = []
            for msg in msgs:
                try:
                    exchange, account = parse_order_events(msg.subject)
                    events.append((exchange, account, decode(msg.data, OrderEvent)))
                except Exception:
                    log.warning("bad order event skipped", subject=msg.subject)
            try:
                changed = await self.store.apply_events(events)
            except Exception as exc:  # nothing was committed: the events come again
                log.warning("applying order events failed", error=str(exc))
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        if msg.metadata.num_delivered >= POISON_DELIVERIES:
                            # One event that can never apply must not hold up every bot's fills behind it.
                            log.error("order event set aside after repeated failures", subject=msg.subject)
                            await msg.term()
                        else:
                            await msg.nak(delay=1.0)
                continue
            for msg in msgs:  # acknowledged only once the transaction committed
                await msg.ack()
            self.metrics.events.inc(len(msgs))
            for bot_id, holding in changed:
                bot = self.bots.get(bot_id)
                if bot is not None:
                    bot.holding = holding
                    await self.publish_bot(bot, "running", None, holding)

    async def _lag_loop(self, period: float = 0.05) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(period)
            self.metrics.loop_lag.observe(max(0.0, time.perf_counter() - started - period))

    # -- strategy state ---------------------------------------------------------------------------------------------
    def save_state_later(self, bot: Bot, state: dict, version: int) -> None:
        self._state_writes[bot.id] = (state, version)
        self._state_flush.set()

    async def _state_loop(self) -> None:
        while True:
            await self._state_flush.wait()
            await asyncio.sleep(0.2)  # gather a few
            await self._flush_states()

    async def _flush_states(self) -> None:
        self._state_flush.clear()
        writes, self._state_writes = self._state_writes, {}
        for bot_id, (state, version) in writes.items():
            try:
                await self.store.save_state(bot_id, state, version)
            except LeaseLost:
                bot = self.bots.get(bot_id)
                if bot is not None:
                    self.lost(bot)
            except Exception as exc:
                log.warning("saving bot state failed", bot=bot_id, error=str(exc))
                self._state_writes.setdefault(bot_id, (state, version))

    # -- dashboards ---------------------------------------------------------------------------------------------------
    async def publish_bot(self, bot: Bot, status: str, reason: str | None, holding: Holding | None = None) -> None:
        holding = holding or bot.holding
        event = BotEvent(
            bot_id=bot.id,
            exchange=bot.exchange,
            symbol=bot.symbol,
            status=status,
            status_reason=reason,
            position=holding.amount,
            average_entry=holding.average_entry,
            realized_pnl=holding.realized_pnl or Decimal(0),
            timestamp=int(time.time() * 1000),
        )
        with contextlib.suppress(Exception):
            await self.nc.publish(bot_events(bot.exchange, bot.id), encode(event))
