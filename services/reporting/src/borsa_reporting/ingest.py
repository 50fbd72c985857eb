"""Order events into report rows: one transaction per batch, so a batch is all written or not at all.

Orders are upserted (a later state never goes back to an earlier one); each fill is written once per (exchange,
account, trade id), with its fee in quote and the PnL it realised, FIFO within its group (exchange, account, bot,
symbol). The groups' open lots are locked for the batch, so replicas sharing the consumer never interleave one
group's fills. A fill older than its group's newest (events out of order) recomputes the group's PnL from all its
fills. Daily sums per group are added in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg

from borsa_proto.orders import Fill, Order, OrderEvent

from .fifo import Book, Trade, lots_from_json, lots_to_json
from .rates import Rates

ZERO = Decimal(0)
TERMINAL = ("closed", "canceled", "rejected", "expired")

GroupKey = tuple[str, uuid.UUID, str, str]
"""(exchange, account, bot key ('' for no bot), symbol)."""


def bot_of(client_order_id: str | None) -> uuid.UUID | None:
    """The bot that placed an order: bot intents are `b<bot id without dashes>-<sequence>`."""
    if not client_order_id or not client_order_id.startswith("b") or "-" not in client_order_id:
        return None
    head = client_order_id[1:].split("-", 1)[0]
    if len(head) != 32:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.split(":", 1)[0]


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


@dataclass(slots=True)
class NewFill:
    exchange: str
    account: uuid.UUID
    order: Order
    fill: Fill
    bot: uuid.UUID | None
    base: str
    quote: str
    fee_quote: Decimal | None = None
    fee_rate: Decimal | None = None
    realized: Decimal = ZERO

    @property
    def key(self) -> tuple[str, uuid.UUID, str]:
        return (self.exchange, self.account, self.fill.trade_id)

    @property
    def group(self) -> GroupKey:
        return (self.exchange, self.account, str(self.bot) if self.bot else "", self.order.symbol)

    @property
    def when(self) -> tuple[int, str]:
        return (self.fill.timestamp, self.fill.trade_id)

    def trade(self) -> Trade:
        fee = self.fill.fee_cost or ZERO
        if self.fill.fee_currency == self.base:
            return Trade(self.order.side.value, self.fill.price, self.fill.amount, fee_base=fee)
        return Trade(self.order.side.value, self.fill.price, self.fill.amount, fee_quote=self.fee_quote or ZERO)


@dataclass(slots=True)
class Applied:
    events: int = 0
    orders_new: int = 0
    fills_new: int = 0
    recomputed: int = 0


def _rank(order: Order) -> tuple:
    return (order.status.value in TERMINAL, order.filled, order.updated_at)


class Ingest:
    def __init__(self, pool: asyncpg.Pool, rates: Rates) -> None:
        self.pool = pool
        self.rates = rates

    async def apply(self, events: list[tuple[str, str, OrderEvent]]) -> Applied:
        result = Applied(events=len(events))
        orders: dict[tuple[str, uuid.UUID, str], Order] = {}
        fills: dict[tuple[str, uuid.UUID, str], NewFill] = {}
        for exchange, account, event in events:
            account_id = uuid.UUID(account)
            order = event.order
            key = (exchange, account_id, order.id)
            if key not in orders or _rank(order) >= _rank(orders[key]):
                orders[key] = order
            base, quote = split_symbol(order.symbol)
            bot = bot_of(order.client_order_id)
            for fill in event.fills:
                new = NewFill(exchange, account_id, order, fill, bot, base, quote)
                fills.setdefault(new.key, new)
        await self._convert_fees(fills.values())
        async with self.pool.acquire() as conn, conn.transaction():
            inserted_orders = await self._upsert_orders(conn, orders)
            result.orders_new = len(inserted_orders)
            if fills:
                new_fills, recomputed = await self._apply_fills(conn, list(fills.values()))
                result.fills_new, result.recomputed = len(new_fills), len(recomputed)
            else:
                new_fills, recomputed = [], set()
            await self._add_daily(conn, inserted_orders, new_fills)
            for group in recomputed:
                await self._recompute(conn, group)
        return result

    async def _convert_fees(self, fills) -> None:
        for f in fills:
            fee, currency = f.fill.fee_cost, f.fill.fee_currency
            if fee is None or not currency:
                f.fee_quote, f.fee_rate = ZERO, None
            elif currency == f.quote:
                f.fee_quote, f.fee_rate = fee, Decimal(1)
            elif currency == f.base:
                f.fee_quote, f.fee_rate = fee * f.fill.price, f.fill.price
            else:
                rate = await self.rates.rate(f.exchange, currency, f.quote)
                f.fee_rate = rate
                f.fee_quote = fee * rate if rate is not None else None

    # -- orders -------------------------------------------------------------------------------------------------
    async def _upsert_orders(self, conn, orders) -> list[tuple[GroupKey, str, int]]:
        """Upsert; (group, quote, created ms) of the orders seen for the first time."""
        if not orders:
            return []
        cols: dict[str, list] = defaultdict(list)
        for (exchange, account, order_id), o in orders.items():
            bot = bot_of(o.client_order_id)
            for name, value in (
                ("exchange", exchange),
                ("account", account),
                ("order_id", order_id),
                ("client_order_id", o.client_order_id),
                ("bot", bot),
                ("symbol", o.symbol),
                ("market_id", o.market_id),
                ("side", o.side.value),
                ("type", o.type),
                ("status", o.status.value),
                ("amount", o.amount),
                ("filled", o.filled),
                ("price", o.price),
                ("average", o.average),
                ("cost", o.cost),
                ("fee_cost", o.fee.cost if o.fee else None),
                ("fee_currency", o.fee.currency if o.fee else None),
                ("created", o.created_at),
                ("updated", o.updated_at),
            ):
                cols[name].append(value)
        rows = await conn.fetch(
            """
            INSERT INTO report_orders AS r (exchange_name, account_id, order_id, client_order_id, bot_id, symbol,
                market_id, side, type, status, amount, filled, price, average, cost, fee_cost, fee_currency,
                created_ms, updated_ms)
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                $8::text[], $9::text[], $10::text[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[],
                $15::numeric[], $16::numeric[], $17::text[], $18::bigint[], $19::bigint[])
            ON CONFLICT (exchange_name, account_id, order_id) DO UPDATE SET
                status = CASE WHEN r.status IN ('closed', 'canceled', 'rejected', 'expired') THEN r.status
                              ELSE EXCLUDED.status END,
                filled = greatest(r.filled, EXCLUDED.filled),
                average = CASE WHEN EXCLUDED.filled >= r.filled THEN coalesce(EXCLUDED.average, r.average)
                               ELSE r.average END,
                cost = greatest(r.cost, EXCLUDED.cost),
                fee_cost = CASE WHEN EXCLUDED.filled >= r.filled THEN coalesce(EXCLUDED.fee_cost, r.fee_cost)
                                ELSE r.fee_cost END,
                fee_currency = coalesce(EXCLUDED.fee_currency, r.fee_currency),
                updated_ms = greatest(r.updated_ms, EXCLUDED.updated_ms)
            RETURNING (xmax = 0) AS inserted, exchange_name, account_id, bot_id, symbol, created_ms
            """,
            *(
                cols[n]
                for n in (
                    "exchange",
                    "account",
                    "order_id",
                    "client_order_id",
                    "bot",
                    "symbol",
                    "market_id",
                    "side",
                    "type",
                    "status",
                    "amount",
                    "filled",
                    "price",
                    "average",
                    "cost",
                    "fee_cost",
                    "fee_currency",
                    "created",
                    "updated",
                )
            ),
        )
        return [
            (
                (r["exchange_name"], r["account_id"], str(r["bot_id"]) if r["bot_id"] else "", r["symbol"]),
                split_symbol(r["symbol"])[1],
                r["created_ms"],
            )
            for r in rows
            if r["inserted"]
        ]

    # -- fills --------------------------------------------------------------------------------------------------
    async def _apply_fills(self, conn, batch: list[NewFill]) -> tuple[list[NewFill], set[GroupKey]]:
        groups = sorted({f.group for f in batch})
        quotes = {f.group: (f.base, f.quote) for f in batch}
        g_ex, g_acc, g_bot, g_sym = (list(x) for x in zip(*groups, strict=True))
        await conn.execute(
            """
            INSERT INTO report_positions (exchange_name, account_id, bot_key, symbol, base, quote)
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
            ON CONFLICT DO NOTHING
            """,
            g_ex,
            g_acc,
            g_bot,
            g_sym,
            [quotes[g][0] for g in groups],
            [quotes[g][1] for g in groups],
        )
        locked = await conn.fetch(
            """
            SELECT p.exchange_name, p.account_id, p.bot_key, p.symbol, p.lots, p.last_ms, p.last_trade
            FROM report_positions p
            JOIN unnest($1::text[], $2::uuid[], $3::text[], $4::text[]) AS g(e, a, b, s)
              ON (p.exchange_name, p.account_id, p.bot_key, p.symbol) = (g.e, g.a, g.b, g.s)
            ORDER BY p.exchange_name, p.account_id, p.bot_key, p.symbol
            FOR UPDATE OF p
            """,
            g_ex,
            g_acc,
            g_bot,
            g_sym,
        )
        existing = await conn.fetch(
            """
            SELECT f.exchange_name, f.account_id, f.trade_id FROM report_fills f
            JOIN unnest($1::text[], $2::uuid[], $3::text[]) AS k(e, a, t)
              ON (f.exchange_name, f.account_id, f.trade_id) = (k.e, k.a, k.t)
            """,
            [f.exchange for f in batch],
            [f.account for f in batch],
            [f.fill.trade_id for f in batch],
        )
        seen = {(r["exchange_name"], r["account_id"], r["trade_id"]) for r in existing}
        new = sorted((f for f in batch if f.key not in seen), key=lambda f: f.when)
        books: dict[GroupKey, tuple[Book, tuple[int, str]]] = {}
        for r in locked:
            key = (r["exchange_name"], r["account_id"], r["bot_key"], r["symbol"])
            lots = r["lots"] if isinstance(r["lots"], list) else json.loads(r["lots"])
            books[key] = (Book(lots_from_json(lots)), (r["last_ms"], r["last_trade"]))
        recompute: set[GroupKey] = set()
        for f in new:
            book, last = books[f.group]
            if f.when < last:
                recompute.add(f.group)  # arrived out of order: the whole group is computed again below
                continue
            f.realized = book.apply(f.trade())
            books[f.group] = (book, f.when)
        if not new:
            return [], set()
        await self._insert_fills(conn, new)
        changed = {f.group for f in new} - recompute
        if changed:
            rows = [(g, books[g]) for g in changed]
            await conn.execute(
                """
                UPDATE report_positions p SET lots = u.lots::jsonb, position = u.position, cost = u.cost,
                    last_ms = u.last_ms, last_trade = u.last_trade
                FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[],
                            $7::numeric[], $8::bigint[], $9::text[])
                    AS u(e, a, b, s, lots, position, cost, last_ms, last_trade)
                WHERE (p.exchange_name, p.account_id, p.bot_key, p.symbol) = (u.e, u.a, u.b, u.s)
                """,
                [g[0] for g, _ in rows],
                [g[1] for g, _ in rows],
                [g[2] for g, _ in rows],
                [g[3] for g, _ in rows],
                [json.dumps(lots_to_json(book.lots)) for _, (book, _) in rows],
                [book.position for _, (book, _) in rows],
                [book.cost for _, (book, _) in rows],
                [last[0] for _, (_, last) in rows],
                [last[1] for _, (_, last) in rows],
            )
        return new, recompute

    async def _insert_fills(self, conn, new: list[NewFill]) -> None:
        await conn.execute(
            """
            INSERT INTO report_fills (exchange_name, account_id, trade_id, order_id, client_order_id, bot_id, symbol,
                base, quote, side, price, amount, cost, fee_cost, fee_currency, fee_quote, fee_rate, realized_pnl,
                timestamp_ms)
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
                $8::text[], $9::text[], $10::text[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[],
                $15::text[], $16::numeric[], $17::numeric[], $18::numeric[], $19::bigint[])
            ON CONFLICT DO NOTHING
            """,
            [f.exchange for f in new],
            [f.account for f in new],
            [f.fill.trade_id for f in new],
            [f.order.id for f in new],
            [f.order.client_order_id for f in new],
            [f.bot for f in new],
            [f.order.symbol for f in new],
            [f.base for f in new],
            [f.quote for f in new],
            [f.order.side.value for f in new],
            [f.fill.price for f in new],
            [f.fill.amount for f in new],
            [f.fill.price * f.fill.amount for f in new],
            [f.fill.fee_cost for f in new],
            [f.fill.fee_currency for f in new],
            [f.fee_quote for f in new],
            [f.fee_rate for f in new],
            [f.realized for f in new],
            [f.fill.timestamp for f in new],
        )

    # -- daily sums ---------------------------------------------------------------------------------------------
    async def _add_daily(self, conn, orders: list[tuple[GroupKey, str, int]], fills: list[NewFill]) -> None:
        sums: dict[tuple[GroupKey, date], list] = {}

        def row(group: GroupKey, day: date, quote: str) -> list:
            return sums.setdefault((group, day), [quote, 0, 0, ZERO, ZERO, 0, ZERO])

        for group, quote, created in orders:
            row(group, day_of(created), quote)[1] += 1
        for f in fills:
            r = row(f.group, day_of(f.fill.timestamp), f.quote)
            r[2] += 1
            r[3] += f.fill.price * f.fill.amount
            if f.fee_quote is None:
                r[5] += 1
            else:
                r[4] += f.fee_quote
            r[6] += f.realized
        if not sums:
            return
        items = list(sums.items())
        await conn.execute(
            """
            INSERT INTO report_daily AS d (exchange_name, account_id, bot_key, symbol, day, quote, orders, fills,
                volume, fees, unconverted, realized_pnl)
            SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::date[], $6::text[],
                $7::bigint[], $8::bigint[], $9::numeric[], $10::numeric[], $11::bigint[], $12::numeric[])
            ON CONFLICT (exchange_name, account_id, bot_key, symbol, day) DO UPDATE SET
                orders = d.orders + EXCLUDED.orders, fills = d.fills + EXCLUDED.fills,
                volume = d.volume + EXCLUDED.volume, fees = d.fees + EXCLUDED.fees,
                unconverted = d.unconverted + EXCLUDED.unconverted,
                realized_pnl = d.realized_pnl + EXCLUDED.realized_pnl
            """,
            [g[0] for (g, _), _ in items],
            [g[1] for (g, _), _ in items],
            [g[2] for (g, _), _ in items],
            [g[3] for (g, _), _ in items],
            [day for (_, day), _ in items],
            *([r[i] for _, r in items] for i in range(7)),
        )

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
        book, realized, daily = Book(), [], defaultdict(lambda: ZERO)
        for r in rows:
            if r["fee_currency"] == r["base"]:
                trade = Trade(r["side"], r["price"], r["amount"], fee_base=r["fee_cost"] or ZERO)
            else:
                trade = Trade(r["side"], r["price"], r["amount"], fee_quote=r["fee_quote"] or ZERO)
            pnl = book.apply(trade)
            realized.append(pnl)
            daily[day_of(r["timestamp_ms"])] += pnl
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
        await conn.execute(
            """
            UPDATE report_daily d SET realized_pnl = u.pnl
            FROM unnest($5::date[], $6::numeric[]) AS u(day, pnl)
            WHERE (d.exchange_name, d.account_id, d.bot_key, d.symbol) = ($1, $2, $3, $4) AND d.day = u.day
            """,
            exchange,
            account,
            bot_key,
            symbol,
            list(daily),
            list(daily.values()),
        )
        last = (rows[-1]["timestamp_ms"], rows[-1]["trade_id"]) if rows else (0, "")
        await conn.execute(
            """
            UPDATE report_positions SET lots = $5::jsonb, position = $6, cost = $7, last_ms = $8, last_trade = $9
            WHERE (exchange_name, account_id, bot_key, symbol) = ($1, $2, $3, $4)
            """,
            exchange,
            account,
            bot_key,
            symbol,
            json.dumps(lots_to_json(book.lots)),
            book.position,
            book.cost,
            last[0],
            last[1],
        )
