"""One running bot: its strategy, the orders it has open, and the one task that carries out its actions in order.

A bot holds no task while it has nothing to do: a tick is evaluated in the feed's dispatch and a task is started
only when the strategy answers with actions. Actions run one after another (a cancel finishes before the order that
replaces it is placed). Each order is written as an intent BEFORE it is sent; a create that times out or meets a
passing error is sent again with the same client order id until the connector answers, and the connector makes sure
it exists once. Refusals a person must resolve (funds, market rules, keys) pause the bot with a reason.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from borsa_proto.orders import Order, OrderType, Side
from borsa_proto.requests import OrderCancelRequest, OrderCreateRequest
from borsa_proto.subjects import order_cancel, order_create
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_strategies import build, parse_params
from borsa_strategies.base import (
    Action,
    Cancel,
    Candle,
    Context,
    OpenOrder,
    OrderUpdate,
    ParamsProblem,
    Place,
    Position,
    Tick,
)
from borsa_strategies.params import check_against_market

from .position import Holding
from .store import BotRow, Intent, LeaseLost

if TYPE_CHECKING:
    from .market import SymbolFeed
    from .runner import Runner

log = structlog.get_logger("borsa.runner.bot")

# Errors that pass: the same intent is sent again after a pause (the connector answers a repeat with the order).
PASSING = (E.RateLimited, E.ExchangeUnavailable, E.NetworkError)
MAX_BACKOFF_SECONDS = 30.0
SEEN_KEPT = 64


def pause_reason(error: E.BorsaError, action: str) -> str:
    """What a person reads on the dashboard next to a paused bot."""
    what = {
        "insufficient_funds": "not enough funds",
        "invalid_order": "the order does not meet the market's rules",
        "auth_failed": "the exchange refused the API key",
        "permission_denied": "the API key may not trade",
        "unknown_account": "the API key is gone",
        "unknown_symbol": "the market is not listed",
    }.get(error.code, f"the order was refused ({error.code})")
    return f"Paused: {what} to {action}. {error.message}"


class Bot:
    def __init__(self, row: BotRow, runner: Runner) -> None:
        self.row = row
        self.id = row.id
        self.exchange = row.exchange
        self.symbol = row.symbol
        self.account = row.account
        self.runner = runner
        self.strategy: Any = None
        self.params: Any = None
        self.feed: SymbolFeed | None = None
        self.holding: Holding = row.holding
        self.intents: dict[str, Intent] = {}
        self.seen: dict[int, tuple[str | None, Decimal]] = {}
        self.inbox: deque = deque()
        self.pending_tick: tuple[Tick, float] | None = None
        self.task: asyncio.Task | None = None
        self.status = "starting"
        self.saved_state: dict | None = row.strategy_state
        self.state_version = row.state_version

    # -- life -------------------------------------------------------------------------------------------------
    async def start(self) -> bool:
        """Follow the market and queue the strategy's start; False when the bot was paused instead."""
        row = self.row
        try:
            self.params = parse_params(row.strategy, row.params)
            self.strategy = build(row.strategy, self.params, row.strategy_state)
            if self.saved_state is None:
                self.saved_state = self.strategy.state()  # a new bot's state: nothing worth writing yet
        except ParamsProblem as problem:
            await self.pause(f"Paused: its settings are not valid any more: {problem.message}")
            return False
        try:
            self.feed = await self.runner.feed.follow(self)
        except E.UnknownSymbol as exc:
            await self.pause(f"Paused: {self.symbol} is not listed on {self.exchange} any more. {exc.message}")
            return False
        if self.status != "starting":  # stopped or handed over while the market was read: it runs elsewhere now
            self.runner.feed.unfollow(self)
            return False
        if not await self._rules_fit(f"{self.symbol} on {self.exchange} does not accept its settings"):
            return False
        for intent in row.intents:
            self.intents[intent.key] = intent
            self.seen[intent.seq] = (intent.status, intent.filled)
        self.status = "running"
        self._post(("start",))
        return True

    async def stop(self, *, cancel_orders: bool) -> None:
        """Stop acting; with cancel_orders, cancel what the bot has open first."""
        if self.status == "stopped":
            return
        self.status = "stopping"
        self.runner.feed.unfollow(self)
        if self.task is not None and self.task is not asyncio.current_task():
            # An action under way finishes (an intent is never left half-sent on purpose); a slow one is cut: its
            # intent stays pending and is sent again, with the same id, wherever the bot runs next.
            try:
                await asyncio.wait_for(asyncio.shield(self.task), timeout=5.0)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
        if cancel_orders:
            for key in list(self.intents):
                await self._cancel(key, attempts=3)
        self.status = "stopped"

    async def pause(self, reason: str) -> None:
        log.info("bot paused", bot=self.id, exchange=self.exchange, symbol=self.symbol, reason=reason)
        await self.runner.paused(self, reason)

    # -- inputs -----------------------------------------------------------------------------------------------
    def on_tick(self, tick: Tick, received: float) -> None:
        if self.status != "running":
            return
        if self.task is not None:
            self.pending_tick = (tick, received)  # only the latest tick matters once the bot is free again
            return
        actions = self._decide(lambda ctx: self.strategy.on_tick(ctx, tick))
        if actions:
            self.runner.metrics.tick_to_intent(time.perf_counter() - received)
            self._post(("actions", actions))
        else:
            self._save_state_if_changed()

    def on_candles(self, candles: list[Candle]) -> None:
        if self.status == "running":
            self._post(("candles", candles))

    def on_market_changed(self, *, removed: bool) -> None:
        if self.status == "running":
            self._post(("market", removed))

    def on_change(self, intent: Intent, holding: Holding) -> None:
        """An intent of this bot changed in the database (an order event applied, a cancel confirmed)."""
        self.holding = holding
        local = self.intents.get(intent.key)
        if intent.state in ("done", "failed"):
            if local is not None and local.seq == intent.seq:
                del self.intents[intent.key]
        elif local is None or local.seq <= intent.seq:
            self.intents[intent.key] = intent
        current = (intent.status, intent.filled)
        if intent.status is None or self.seen.get(intent.seq) == current:
            return
        self.seen[intent.seq] = current
        if len(self.seen) > SEEN_KEPT:
            for seq in sorted(self.seen)[: len(self.seen) - SEEN_KEPT]:
                del self.seen[seq]
        if intent.state == "failed" or self.status != "running":
            return
        update = OrderUpdate(
            key=intent.key,
            side=intent.side,
            type=intent.type,
            status=intent.status,
            amount=intent.amount,
            filled=intent.filled,
            average=intent.average,
            price=intent.price,
            fee_cost=intent.fee_cost,
            fee_currency=intent.fee_currency,
        )
        self._post(("order", update))

    # -- the bot's task ---------------------------------------------------------------------------------------
    def _post(self, item: tuple) -> None:
        self.inbox.append(item)
        if self.task is None:
            self.task = asyncio.create_task(self._drain(), name=f"bot-{self.id}")

    async def _drain(self) -> None:
        try:
            while self.status == "running":
                if self.inbox:
                    await self._handle(self.inbox.popleft())
                elif self.pending_tick is not None:
                    tick, received = self.pending_tick
                    self.pending_tick = None
                    actions = self._decide(lambda ctx, tick=tick: self.strategy.on_tick(ctx, tick))
                    if actions:
                        self.runner.metrics.tick_to_intent(time.perf_counter() - received)
                        await self._execute(actions)
                else:
                    break
                self._save_state_if_changed()
        except LeaseLost:
            log.warning("bot lease lost; another runner has it", bot=self.id)
            self.runner.lost(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("bot failed", bot=self.id)
            await self.pause(f"Paused: Borsa met an internal error running this bot ({type(exc).__name__}).")
        finally:
            self.task = None

    async def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "start":
            for intent in [i for i in self.intents.values() if i.state == "pending"]:
                await self._send_create(intent)  # after a restart or a takeover: the same id, never a new order
            actions = self._decide(self.strategy.on_start)
        elif kind == "actions":
            actions = item[1]
        elif kind == "candles":
            actions = self._decide(lambda ctx: self.strategy.on_candles(ctx, item[1]))
        elif kind == "order":
            actions = self._decide(lambda ctx: self.strategy.on_order(ctx, item[1]))
        elif kind == "market":
            if item[1]:
                await self.pause(f"Paused: {self.symbol} is no longer listed on {self.exchange}.")
                return
            await self._rules_fit(f"{self.exchange} changed the rules of {self.symbol}")
            return
        else:
            return
        await self._execute(actions)

    def _context(self) -> Context:
        feed = self.feed
        return Context(
            now_ms=int(time.time() * 1000),
            market=feed.rules,
            position=Position(self.holding.amount, self.holding.average_entry, self.holding.realized_pnl),
            open_orders={
                key: OpenOrder(key, i.side, i.type, i.amount, i.price, i.filled) for key, i in self.intents.items()
            },
            price=feed.price,
        )

    def _decide(self, call) -> list[Action]:
        return list(call(self._context()) or [])

    async def _rules_fit(self, why: str) -> bool:
        try:
            check_against_market(self.params, self.feed.rules, self.feed.price, self.exchange)
        except ParamsProblem as problem:
            await self.pause(f"Paused: {why}: {problem.message}")
            return False
        return True

    def _save_state_if_changed(self) -> None:
        state = self.strategy.state() if self.strategy is not None else None
        if state is not None and state != self.saved_state and self.status == "running":
            self.saved_state = state
            self.state_version += 1
            self.runner.save_state_later(self, state, self.state_version)

    # -- actions ------------------------------------------------------------------------------------------------
    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if self.status != "running":
                return
            if isinstance(action, Cancel):
                await self._cancel(action.key)
            elif isinstance(action, Place):
                await self._place(action)

    async def _place(self, action: Place) -> None:
        if action.key in self.intents:
            log.warning("strategy asked for a second order on an open key; skipped", bot=self.id, key=action.key)
            return
        if action.amount <= 0 or (action.type == "limit" and (action.price is None or action.price <= 0)):
            log.warning("strategy asked for an empty order; skipped", bot=self.id, key=action.key)
            return
        state = self.strategy.state()
        self.state_version += 1
        intent = await self.runner.store.record_intent(
            self.row, action.key, action.side, action.type, action.amount, action.price, state, self.state_version
        )
        self.saved_state = state
        self.intents[intent.key] = intent
        self.seen[intent.seq] = (None, Decimal(0))
        self.runner.metrics.intents.inc()
        await self._send_create(intent)

    async def _send_create(self, intent: Intent) -> None:
        message = OrderCreateRequest(
            account=self.account,
            client_order_id=intent.client_order_id,
            symbol=self.symbol,
            side=Side(intent.side),
            type=OrderType(intent.type),
            amount=intent.amount,
            price=intent.price,
        )
        what = f"{intent.side} {intent.amount} {self.symbol} " + (f"at {intent.price}" if intent.price else "at market")
        attempt = 0
        while self.status == "running":
            try:
                async with self.runner.inflight:
                    order = await request(
                        self.runner.nc, order_create(self.exchange), message, Order, timeout=self.runner.timeout
                    )
            except PASSING as exc:
                attempt += 1
                self.runner.metrics.retries.labels(exc.code).inc()
                await asyncio.sleep(backoff(attempt, exc.retry_after_ms))
                continue
            except E.BorsaError as exc:
                await self.runner.store.mark_failed(intent, f"{exc.code}: {exc.message}")
                self.intents.pop(intent.key, None)
                await self.pause(pause_reason(exc, what))
                return
            intent.order_id, intent.state = order.id, "open"
            await self.runner.store.mark_placed(intent, order)
            self.runner.metrics.orders.inc()
            return

    async def _cancel(self, key: str, attempts: int | None = None) -> None:
        intent = self.intents.get(key)
        if intent is None:
            return
        message = OrderCancelRequest(account=self.account, symbol=self.symbol, client_order_id=intent.client_order_id)
        attempt = 0
        while True:
            try:
                async with self.runner.inflight:
                    order = await request(
                        self.runner.nc, order_cancel(self.exchange), message, Order, timeout=self.runner.timeout
                    )
            except E.OrderNotFound:
                order = None  # never placed, or gone: nothing is open under this key
            except PASSING as exc:
                attempt += 1
                if attempts is not None and attempt >= attempts:
                    log.warning("cancel gave up", bot=self.id, key=key, error=exc.message)
                    return
                await asyncio.sleep(backoff(attempt, exc.retry_after_ms))
                continue
            except E.BorsaError as exc:
                log.warning("cancel refused", bot=self.id, key=key, error=exc.message)
                return
            await self.runner.store.mark_canceled(intent, order)
            if self.intents.get(key) is intent:
                del self.intents[key]
            return


def backoff(attempt: int, retry_after_ms: int | None) -> float:
    if retry_after_ms:
        return retry_after_ms / 1000
    return min(MAX_BACKOFF_SECONDS, 0.25 * 2 ** min(attempt, 8)) * random.uniform(0.5, 1.0)
