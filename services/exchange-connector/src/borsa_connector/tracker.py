"""Order tracking: follow every order this connector placed until it ends, and publish each change once.

Per account with orders to follow, a pass (at most one at a time, every `interval_s`, sooner when an order was
just created or canceled) asks the exchange for the account's open orders per symbol, for the final state of those
no longer open, and for the trades of those that filled more, then publishes a lifecycle event with the new fills
to BORSA_ORDERS. Each event carries `Nats-Msg-Id` derived from its content, so a re-publish after a crash or by a
second replica is dropped by JetStream. Orders of a connector instance that is gone are adopted by the next pass,
which is how a restart reconciles what changed while the connector was down. Paper accounts are matched first.

Where the account's private order stream runs (order_streams.py), each update on it asks for a pass at once, and
while the stream is up the account is polled only every `fallback_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

import msgspec
import structlog
from nats.js import JetStreamContext

from borsa_proto import convert, encode
from borsa_proto.orders import Fill, Order, OrderEvent, OrderEventKind, OrderStatus
from borsa_proto.subjects import order_events
from borsa_runtime import errors as E

from .order_store import Claim, OrderStore
from .orders import fills_from_trades, order_from_ccxt, status_of

if TYPE_CHECKING:
    from .accounts import AccountStore
    from .exchanges.ccxt_api import CcxtExchangeAPI
    from .order_streams import OrderStreams
    from .orders import OrderDesk

log = structlog.get_logger("borsa.connector.tracker")

# A closed order whose trades the exchange has not listed yet waits this long for them before its final event.
FILLS_GRACE_SECONDS = 30.0
TRADES_LOOKBACK_MS = 60_000
# Marks of the last events published, kept so that a stream update repeating one costs no pass.
PUBLISHED_KEPT = 100_000


def plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def mark(status: OrderStatus, filled: Decimal) -> str:
    """What was last published for an order: its status and filled amount."""
    return f"{status}:{plain(filled)}"


def mark_of(order: Order) -> str:
    return mark(order.status, order.filled)


def kind_of(order: Order) -> OrderEventKind:
    if order.status == OrderStatus.OPEN:
        return OrderEventKind.UPDATED if order.filled > 0 else OrderEventKind.CREATED
    if order.status == OrderStatus.CLOSED:
        return OrderEventKind.FILLED
    if order.status == OrderStatus.REJECTED:
        return OrderEventKind.REJECTED
    return OrderEventKind.CANCELED  # canceled, expired


def event_id(order: Order, fills: list[Fill]) -> str:
    """The same change always gets the same id, whoever publishes it and however often."""
    trades = hashlib.sha256(",".join(sorted(f.trade_id for f in fills)).encode()).hexdigest()[:16]
    return f"{order.exchange}:{order.account}:{order.id}:{mark_of(order)}:{trades}"


class OrderTracker:
    def __init__(
        self,
        js: JetStreamContext,
        api: CcxtExchangeAPI,
        accounts: AccountStore,
        store: OrderStore,
        *,
        interval_s: float = 2.0,
        min_gap_s: float = 1.0,
        fallback_s: float = 15.0,
    ) -> None:
        self.js = js
        self.api = api
        self.accounts = accounts
        self.store = store
        self.desk: OrderDesk | None = None
        self.interval_s = interval_s
        self.min_gap_s = min_gap_s
        self.fallback_s = fallback_s
        self.streams: OrderStreams | None = None
        self._polled_at: dict[str, float] = {}
        self._wanted: dict[str, asyncio.Event] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._loop: asyncio.Task | None = None
        self._closed_at: dict[str, float] = {}
        self._published: dict[tuple[str, str], str] = {}  # (account, order id) -> mark of its last event
        self.events_published = 0

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self.streams is not None:
            await self.streams.close()
        tasks = [t for t in (self._loop, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def record(self, order: Order) -> None:
        """What the exchange just said about an order, outside a pass. Nothing filled: no trades to fetch, so its
        event is published at once. Something filled: its trades and event are left to a pass, soon."""
        if self.streams is not None and order.status == OrderStatus.OPEN:
            self.streams.want(order.account)
        if order.filled == 0:
            await self.publish(order, [])
            await self.store.record(order, published=mark_of(order))
        else:
            await self.store.record(order)
            self.poke(order.account)

    def told(self, account: str, update: list) -> bool:
        """Whether an order stream's update says nothing this connector has not published: every order in it
        unfilled and in the state of its last event (an order it placed or canceled itself and published at once).
        Anything else (a fill, a state it has not seen, an order it does not know) asks for a pass."""
        if not update:
            return False
        for raw in update:
            if not isinstance(raw, dict) or raw.get("id") is None or raw.get("filled") not in (None, "", 0):
                return False
            status = status_of(raw, None)
            if status is None or self._published.get((account, str(raw["id"]))) != mark(status, Decimal(0)):
                return False
        return True

    def poke(self, account: str) -> None:
        if self.streams is not None:
            self.streams.want(account)
        self._wanted.setdefault(account, asyncio.Event()).set()
        worker = self._workers.get(account)
        if worker is None or worker.done():
            self._workers[account] = asyncio.create_task(self._worker(account))

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.store.adopt_orphans()
                now = time.monotonic()
                for account in await self.store.pending_accounts():
                    streamed = self.streams is not None and self.streams.healthy(account)
                    if streamed and now - self._polled_at.get(account, 0.0) < self.fallback_s:
                        continue  # its stream asks for passes; a poll now and then catches a missed update
                    self._polled_at[account] = now
                    self.poke(account)
            except Exception as exc:  # the database may be away for a moment: try again next round
                log.warning("order tracking round failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.interval_s)

    async def _worker(self, account: str) -> None:
        """One pass at a time per account; pokes during a pass ask for one more pass after it."""
        wanted = self._wanted[account]
        while wanted.is_set():
            wanted.clear()
            started = time.monotonic()
            try:
                await self.sync(account)
                if self.streams is not None and self.streams.running(account) and not await self.store.pending(account):
                    self.streams.stop(account)
            except E.UnknownAccount as error:
                log.warning("orders of an unusable key are not tracked", account=account, reason=error.message)
            except Exception as exc:
                log.warning("order tracking pass failed", account=account, error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(max(0.0, self.min_gap_s - (time.monotonic() - started)))

    # -- one pass ---------------------------------------------------------------------------------------------
    async def sync(self, account: str) -> int:
        """Bring every tracked order of `account` up to date; returns the number of events published."""
        claims = await self.store.pending(account)
        if not claims:
            return 0
        published = 0
        async with self.accounts.lease(account) as lease:
            client = lease.client
            if getattr(client, "paper", False):
                await client.match()
            if self.desk is not None:
                claims = [await self.desk.settle(lease, c) if c.state == "sending" else c for c in claims]
            placed = [c for c in claims if c is not None and c.order_id]
            by_symbol: dict[str, list[Claim]] = defaultdict(list)
            for claim in placed:
                by_symbol[claim.symbol].append(claim)
            for symbol, group in by_symbol.items():
                published += await self._sync_symbol(lease, account, symbol, group)
        return published

    async def _sync_symbol(self, lease, account: str, symbol: str, claims: list[Claim]) -> int:
        api, client = self.api, lease.client
        market = api.market(symbol)
        open_now = {}
        if any(c.status in (None, "open") for c in claims):
            async with api.key_calling(client):
                open_now = {str(raw["id"]): raw for raw in await client.fetch_open_orders(market.symbol)}
        orders: dict[str, tuple[Claim, Order]] = {}
        for claim in claims:
            raw = open_now.get(claim.order_id)
            if raw is None and claim.status in (None, "open"):
                async with api.key_calling(client):
                    raw = await client.fetch_order(claim.order_id, market.symbol)
            order = self._order(raw, market, claim) if raw is not None else _convert_order(claim.last_order)
            if order is not None:
                orders[claim.order_id] = (claim, order)
        need_trades = [(c, o) for c, o in orders.values() if o.filled > 0 and mark_of(o) != c.published]
        trades: list[dict] = []
        if need_trades:
            since = min(order.created_at for _, order in need_trades) - TRADES_LOOKBACK_MS
            async with api.key_calling(client):
                trades = await client.fetch_my_trades(market.symbol, since)
        published = 0
        for claim, order in orders.values():
            fills = await self.store.add_fills(account, order, fills_from_trades(trades, order.id))
            published += await self._settle_order(claim, order, fills)
        return published

    def _order(self, raw: dict, market, claim: Claim) -> Order:
        return order_from_ccxt(
            raw,
            exchange=self.api.id,
            account=claim.account,
            market=market,
            client_order_id=claim.client_order_id,
            sent_amount=claim.amount,
            sent_price=claim.price,
            type=claim.type,
            side=claim.side,
        )

    async def _settle_order(self, claim: Claim, order: Order, new_fills: list[Fill]) -> int:
        mark = mark_of(order)
        if mark == claim.published and not new_fills:
            await self.store.record(order)
            return 0
        if order.status != OrderStatus.OPEN and order.filled > 0:
            recorded = sum((f.amount for f in await self.store.fills_of(claim.account, order.id)), Decimal(0))
            first_seen = self._closed_at.setdefault(order.id, time.monotonic())
            if recorded < order.filled and time.monotonic() - first_seen < FILLS_GRACE_SECONDS:
                # Ended, but the exchange does not list all its trades yet: say what is known, end it later.
                if not new_fills:
                    return 0
                await self.publish(_as_open(order), new_fills)
                await self.store.record(order)
                return 1
            self._closed_at.pop(order.id, None)
        await self.publish(order, new_fills)
        await self.store.record(order, published=mark)
        return 1

    async def publish(self, order: Order, fills: list[Fill]) -> None:
        event = OrderEvent(
            event_id=event_id(order, fills),
            kind=str(kind_of(order)),
            order=order,
            fills=fills,
            timestamp=int(time.time() * 1000),
        )
        # Marked before the publish, whose ack takes a moment in which the stream's word on the same change arrives.
        key, before = (order.account, order.id), self._published.get((order.account, order.id))
        self._published[key] = mark_of(order)
        if len(self._published) > PUBLISHED_KEPT:
            del self._published[next(iter(self._published))]  # the oldest: a stream update for it asks for a pass
        try:
            await self.js.publish(
                order_events(order.exchange, order.account), encode(event), headers={"Nats-Msg-Id": event.event_id}
            )
        except BaseException:
            if before is None:
                self._published.pop(key, None)
            else:
                self._published[key] = before
            raise
        self.events_published += 1
        log.debug(
            "order event", kind=event.kind, order_id=order.id, client_order_id=order.client_order_id, fills=len(fills)
        )


def _convert_order(data: dict | None) -> Order | None:
    return convert(data, Order) if data is not None else None


def _as_open(order: Order) -> Order:
    """An ended order whose trades are still arriving, published as an update until they are all in."""
    return msgspec.structs.replace(order, status=OrderStatus.OPEN)
