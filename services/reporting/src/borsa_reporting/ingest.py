"""Order events into report rows: one transaction per batch, so a batch is all written or not at all.

Orders are upserted (a later state never goes back to an earlier one); each fill is written once per (exchange,
account, trade id), with its fee in quote and the PnL it realised, FIFO within its group (exchange, account, bot,
symbol). The groups' open lots are locked for the batch, so replicas sharing the consumer never interleave one
group's fills. A fill older than its group's newest (events out of order) recomputes the group's PnL from all its
fills. Daily sums per group are added in the same transaction.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import msgspec

from . import writes
from .events import Fill, Order, OrderEvent
from .fifo import Book, Trade, lots_from_json, lots_to_json
from .rates import Rates
from .writes import DAY, GroupKey

ZERO, ONE = Decimal(0), Decimal(1)
TERMINAL = frozenset(("closed", "canceled", "rejected", "expired"))

__all__ = ["Applied", "GroupKey", "Ingest", "Prepared", "bot_key", "bot_of", "day_of", "split_symbol"]


def _bot_head(client_order_id: str | None) -> str | None:
    """The bot id part of a bot intent's client order id, `b<bot id without dashes>-<sequence>`."""
    if not client_order_id or not client_order_id.startswith("b"):
        return None
    head, dash, _ = client_order_id[1:].partition("-")
    return head if dash and len(head) == 32 else None


@functools.lru_cache(maxsize=65_536)
def _bot_of_head(head: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65_536)
def _bot_key_of_head(head: str) -> str:
    bot = _bot_of_head(head)
    return str(bot) if bot else ""


def bot_of(client_order_id: str | None) -> uuid.UUID | None:
    """The bot that placed an order, from its client order id."""
    head = _bot_head(client_order_id)
    return _bot_of_head(head) if head else None


def bot_key(client_order_id: str | None) -> str:
    """`bot_of` as its group key: the bot id in canonical form, or '' for an order placed by hand. A bot's orders
    share their prefix, so the parse is cached by it."""
    head = _bot_head(client_order_id)
    return _bot_key_of_head(head) if head else ""


@functools.lru_cache(maxsize=4096)
def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":", 1)[0]


@functools.lru_cache(maxsize=65_536)
def _account(account: str) -> str:
    """An account id as Postgres writes it back: a string key hashes and compares in C, a UUID in Python."""
    return str(uuid.UUID(account))


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


class NewFill:
    """A fill of the batch with what its order says about it, and the decimals FIFO needs."""

    __slots__ = (
        "account",
        "amount",
        "base",
        "bot",
        "exchange",
        "fee",
        "fee_quote",
        "fee_rate",
        "fill",
        "group",
        "key",
        "order",
        "price",
        "quote",
        "realized",
        "when",
    )

    def __init__(self, exchange: str, account: str, order: Order, fill: Fill, bot: str) -> None:
        self.exchange, self.account, self.order, self.fill, self.bot = exchange, account, order, fill, bot
        self.key = (exchange, account, fill.trade_id)
        self.base, self.quote = split_symbol(order.symbol)
        self.group: GroupKey = (exchange, account, bot, order.symbol)
        self.when = (fill.timestamp, fill.trade_id)
        self.price, self.amount = Decimal(fill.price), Decimal(fill.amount)
        self.fee = Decimal(fill.fee_cost) if fill.fee_cost is not None else None
        self.realized = ZERO
        currency = fill.fee_currency
        # The fee in quote and the rate used; a fee in a third asset waits for its rate (Ingest._convert_fees).
        if self.fee is None or not currency:
            self.fee_quote, self.fee_rate = ZERO, None
        elif currency == self.quote:
            self.fee_quote, self.fee_rate = self.fee, ONE
        elif currency == self.base:
            self.fee_quote, self.fee_rate = self.fee * self.price, self.price
        else:
            self.fee_quote = self.fee_rate = None

    @property
    def converted(self) -> bool:
        return self.fee_rate is not None or self.fee is None or not self.fill.fee_currency

    def trade(self) -> Trade:
        if self.fill.fee_currency == self.base:
            return Trade(self.order.side, self.price, self.amount, fee_base=self.fee or ZERO)
        return Trade(self.order.side, self.price, self.amount, fee_quote=self.fee_quote or ZERO)

    def row(self) -> tuple:
        """Its row in the staging table (writes.FILL_COLUMNS)."""
        o, f = self.order, self.fill
        return (
            self.exchange,
            self.account,
            f.trade_id,
            o.id,
            o.client_order_id,
            self.bot or None,
            self.bot,
            o.symbol,
            self.base,
            self.quote,
            o.side,
            f.price,
            f.amount,
            f.fee_cost,
            f.fee_currency,
            # The strings as they came when the value is one of them (a fee in quote; a base fee's rate, the price).
            None if self.fee_quote is None else f.fee_cost if self.fee_quote is self.fee else str(self.fee_quote),
            None if self.fee_rate is None else f.price if self.fee_rate is self.price else str(self.fee_rate),
            str(self.realized),
            f.timestamp,
        )


def order_row(exchange: str, account: str, o: Order, bot: str) -> tuple:
    """An order's row in the staging table (writes.ORDER_COLUMNS)."""
    fee = o.fee
    return (
        exchange,
        account,
        o.id,
        o.client_order_id,
        bot or None,
        bot,
        o.symbol,
        split_symbol(o.symbol)[1],
        o.market_id,
        o.side,
        o.type,
        o.status,
        o.amount,
        o.filled,
        o.price,
        o.average,
        o.cost,
        fee.cost if fee else None,
        fee.currency if fee else None,
        o.created_at,
        o.updated_at,
    )


class Prepared:
    """One event made ready for a batch: what needs no database, done as it arrives (the consumer prepares each
    event while the batch before it is written)."""

    __slots__ = ("fills", "key", "order", "order_row")

    def __init__(self, exchange: str, account: str, event: OrderEvent) -> None:
        account_id = _account(account)
        order = event.order
        bot = bot_key(order.client_order_id)
        self.key = (exchange, account_id, order.id)
        self.order = order
        self.order_row = order_row(exchange, account_id, order, bot)
        self.fills = [NewFill(exchange, account_id, order, fill, bot) for fill in event.fills]


@dataclass(slots=True)
class Applied:
    events: int = 0
    orders_new: int = 0
    fills_new: int = 0
    recomputed: int = 0


def _later(order: Order, than: Order) -> bool:
    """Whether `order` is the same order's state at least as late as `than`'s."""

    def rank(o: Order) -> tuple:
        return (o.status in TERMINAL, Decimal(o.filled), o.updated_at)

    return rank(order) >= rank(than)


def _lost(conn) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took it back when it closed
        return True


class Ingest:
    """Writes batches on a connection it keeps (its staging tables live in that session), one batch at a time."""

    def __init__(self, pool: asyncpg.Pool, rates: Rates) -> None:
        self.pool = pool
        self.rates = rates
        self._conn = None

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await self.pool.release(conn)

    async def apply(self, events: list[tuple[str, str, OrderEvent]]) -> Applied:
        """Write a batch of (exchange, account, event) in one transaction."""
        return await self.apply_prepared([Prepared(*event) for event in events])

    async def apply_prepared(self, events: list[Prepared]) -> Applied:
        """Write a batch of prepared events in one transaction."""
        orders: dict[tuple[str, str, str], Prepared] = {}
        fills: dict[tuple[str, str, str], NewFill] = {}
        for event in events:
            seen = orders.get(event.key)
            if seen is None or _later(event.order, seen.order):
                orders[event.key] = event
            for fill in event.fills:
                if fill.key not in fills:
                    fills[fill.key] = fill
        await self._convert_fees(fills.values())
        order_rows = [o.order_row for o in orders.values()]
        try:
            return await self._write(len(events), fills, order_rows)
        except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
            # Another replica created one of the batch's new groups, or took locks in another order, at the same
            # moment: the transaction is gone, and the second time round the groups exist and are locked first.
            return await self._write(len(events), fills, order_rows)

    async def _write(self, events: int, fills: dict, order_rows: list[tuple]) -> Applied:
        if self._conn is None:
            self._conn = await self.pool.acquire()
            await writes.stage(self._conn)
        conn = self._conn
        try:
            async with conn.transaction():
                if fills:
                    new, positions, recompute = await self._fifo(conn, fills)
                else:
                    new, positions, recompute = [], [], set()
                orders_new, fills_new = await writes.write(conn, [f.row() for f in new], order_rows, positions)
                for group in recompute:
                    await self._recompute(conn, group)
        except asyncpg.PostgresError:
            if _lost(conn):
                await self._drop()
            raise  # an SQL error: the transaction was rolled back and the connection serves the next batch
        except BaseException:
            await self._drop()  # the connection lost, or left mid-statement: the pool closes it
            raise
        return Applied(events, orders_new, fills_new, len(recompute))

    async def _convert_fees(self, fills) -> None:
        for f in fills:
            if not f.converted:
                rate = await self.rates.rate(f.exchange, f.fill.fee_currency, f.quote)
                f.fee_rate = rate
                f.fee_quote = f.fee * rate if rate is not None else None

    async def _fifo(self, conn, fills: dict) -> tuple[list[NewFill], list[tuple], set[GroupKey]]:
        """Lock the batch's groups, leave out the fills written before, and run the new ones through their groups'
        books in time order: (new fills, staging rows of the groups they changed, groups to compute again)."""
        locked, known = await writes.lock(conn, [(*key, f.bot, f.order.symbol) for key, f in fills.items()])
        books: dict[GroupKey, list] = {}
        for r in locked:
            # A JSON string holding the list is how earlier versions stored a recomputed group's lots.
            lots = msgspec.json.decode(r["lots"])  # several times json's speed, as the encoding below
            while isinstance(lots, str):
                lots = msgspec.json.decode(lots)
            key = (r["exchange_name"], r["account_id"], r["bot_key"], r["symbol"])
            books[key] = [Book(lots_from_json(lots)), (r["last_ms"], r["last_trade"]), False, False]
        new = sorted((f for key, f in fills.items() if key not in known), key=lambda f: f.when)
        recompute: set[GroupKey] = set()
        pairs: dict[GroupKey, tuple[str, str]] = {}
        for f in new:
            state = books.get(f.group)
            if state is None:  # its first fill: the group's row is inserted with the writes
                state = books[f.group] = [Book(), (0, ""), False, True]
                pairs[f.group] = (f.base, f.quote)
            if f.when < state[1]:
                recompute.add(f.group)  # arrived out of order: the whole group is computed again after the writes
                continue
            f.realized = state[0].apply(f.trade())
            state[1], state[2] = f.when, True
        positions = [
            (
                *group,
                *pairs.get(group, ("", "")),
                created,
                msgspec.json.encode(lots_to_json(book.lots)).decode(),
                str(book.position),
                str(book.cost),
                *last,
            )
            for group, (book, last, touched, created) in books.items()
            if touched and group not in recompute
        ]
        return new, positions, recompute

    async def _recompute(self, conn, group: GroupKey) -> None:
        """The group's PnL from all its fills in time order (a fill arrived after a newer one)."""
        exchange, account, bot_key, symbol = group
        rows = await conn.fetch(
            """
            SELECT trade_id, side, price, amount, fee_cost, fee_currency, fee_quote, base, timestamp_ms
            FROM report_fills
            WHERE exchange_name = $1 AND account_id = $2 AND coalesce(bot_id::text, '') = $3 AND symbol = $4
            ORDER BY timestamp_ms, trade_id
            """,
            exchange,
            account,
            bot_key,
            symbol,
        )
        book, realized = Book(), []
        for r in rows:
            if r["fee_currency"] == r["base"]:
                trade = Trade(r["side"], r["price"], r["amount"], fee_base=r["fee_cost"] or ZERO)
            else:
                trade = Trade(r["side"], r["price"], r["amount"], fee_quote=r["fee_quote"] or ZERO)
            realized.append(book.apply(trade))
        await conn.execute(
            """
            UPDATE report_fills f SET realized_pnl = u.pnl
            FROM unnest($5::text[], $6::numeric[]) AS u(t, pnl)
            WHERE f.exchange_name = $1 AND f.account_id = $2 AND coalesce(f.bot_id::text, '') = $3
              AND f.symbol = $4 AND f.trade_id = u.t AND f.realized_pnl <> u.pnl
            """,
            exchange,
            account,
            bot_key,
            symbol,
            [r["trade_id"] for r in rows],
            realized,
        )
        # Summed by Postgres, exactly, as the batches add them up.
        await conn.execute(
            f"""
            UPDATE report_daily d SET realized_pnl = s.pnl
            FROM (
                SELECT {DAY.format("timestamp_ms")} AS day, sum(realized_pnl) AS pnl FROM report_fills
                WHERE exchange_name = $1 AND account_id = $2 AND coalesce(bot_id::text, '') = $3 AND symbol = $4
                GROUP BY 1
            ) s
            WHERE (d.exchange_name, d.account_id, d.bot_key, d.symbol) = ($1, $2, $3, $4) AND d.day = s.day
            """,
            exchange,
            account,
            bot_key,
            symbol,
        )
        last = (rows[-1]["timestamp_ms"], rows[-1]["trade_id"]) if rows else (0, "")
        await conn.execute(
            """
            UPDATE report_positions SET lots = $5::text::jsonb, position = $6, cost = $7, last_ms = $8, last_trade = $9
            WHERE (exchange_name, account_id, bot_key, symbol) = ($1, $2, $3, $4)
            """,
            exchange,
            account,
            bot_key,
            symbol,
            msgspec.json.encode(lots_to_json(book.lots)).decode(),
            book.position,
            book.cost,
            last[0],
            last[1],
        )
