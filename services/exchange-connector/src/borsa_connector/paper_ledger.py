"""One paper account's balances, orders and trades in Postgres, changed only in whole transactions.

Every change (an order, its trades, its balance moves) is ONE transaction that first locks the account's balance rows
it touches, in currency order (so two orders never deadlock), then the order row: concurrent orders cannot
overspend, and a crash leaves nothing half written. The CHECK (free >= 0, used >= 0) of paper_balances is the last
line of defence; hitting it is a bug, reported as `internal`.

Starting balances are written on first use, once per currency (INSERT ... ON CONFLICT DO NOTHING): a currency held
is never reset, and one added to the key's starting set later is added.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import structlog

from borsa_runtime.errors import BorsaError, ExchangeUnavailable, Internal, InvalidOrder, OrderNotFound

from . import paper_fills as pf

log = structlog.get_logger("borsa.connector.paper")

DB_TIMEOUT_SECONDS = 5.0
DEFAULT_LIST_LIMIT = 500  # newest orders or trades a list returns when the caller gives no limit
OPEN, CLOSED, CANCELED = "open", "closed", "canceled"
ORDER_COLUMNS = (
    "id, client_order_id, symbol, side, type, amount, price, filled, cost, fee_cost, fee_currency, reserved, status, "
    "created_ms, updated_ms"
)

Balances = dict[str, tuple[Decimal, Decimal]]
"""currency -> (free, used)."""


@dataclass(frozen=True, slots=True)
class NewOrder:
    client_order_id: str
    symbol: str
    base: str
    quote: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None


class PaperLedger:
    def __init__(self, pool: asyncpg.Pool, account_id: str, exchange: str, starting: dict[str, Decimal]) -> None:
        self.pool = pool
        self.account_id = account_id
        self.key = uuid.UUID(str(account_id))
        self.exchange = exchange
        self.starting = dict(starting)
        self._seeded = False

    # -- changes ----------------------------------------------------------------------------------------------
    async def place(self, order: NewOrder, plan: pf.Plan, status: str, check: Callable[[Balances], None]) -> dict:
        """Record a new order with its taker fills and balance moves; `check` sees the locked balances first and
        raises to refuse the order (nothing is written then)."""
        order_id, now = uuid.uuid4().hex, now_ms()
        async with self.transaction("place an order") as conn:
            balances = await self.lock(conn, (order.base, order.quote))
            existing = await conn.fetchval(
                "SELECT id FROM paper_orders WHERE account_id = $1 AND client_order_id = $2",
                self.key,
                order.client_order_id,
            )
            if existing is not None:
                raise self._duplicate(order.client_order_id, existing)
            check(balances)
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO paper_orders ({ORDER_COLUMNS}, account_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) "
                    f"RETURNING {ORDER_COLUMNS}",
                    order_id,
                    order.client_order_id,
                    order.symbol,
                    order.side,
                    order.type,
                    order.amount,
                    order.price,
                    plan.filled,
                    plan.cost,
                    plan.fee,
                    order.quote,
                    plan.reserve,
                    status,
                    now,
                    self.key,
                )
            except asyncpg.UniqueViolationError:  # the same client id committed between our check and our insert
                raise self._duplicate(order.client_order_id, None) from None
            trades = await self._insert_trades(conn, row, plan.fills, start=1, now=now)
            await self._move(conn, pf.create_moves(plan, order.base, order.quote))
        return order_dict(row, trades)

    async def fill_resting(self, order_id: str, base: str, quote: str, maker: Decimal) -> bool:
        """Fill an open limit order whole at its price as maker; False if it is no longer open."""
        now = now_ms()
        async with self.transaction("fill an order") as conn:
            await self.lock(conn, (base, quote))
            row = await self._locked_order(conn, order_id)
            if row["status"] != OPEN:
                return False  # canceled or filled since it was read
            rest = pf.CONTEXT.subtract(row["amount"], row["filled"])
            fill = pf.maker_fill(row["side"], row["price"], rest, maker, row["reserved"])
            done = await conn.fetchval(
                "SELECT count(*) FROM paper_trades WHERE account_id = $1 AND order_id = $2", self.key, order_id
            )
            await self._insert_trades(conn, row, (fill,), start=done + 1, now=now)
            await self._move(conn, pf.maker_moves(row["side"], fill, row["reserved"], base, quote))
            await conn.execute(
                f"UPDATE paper_orders SET status = '{CLOSED}', filled = amount, cost = cost + $3, "
                "fee_cost = fee_cost + $4, reserved = 0, updated_ms = $5 WHERE account_id = $1 AND id = $2",
                self.key,
                order_id,
                fill.cost,
                fill.fee,
                now,
            )
        return True

    async def cancel(self, order_id: str, base: str, quote: str) -> dict:
        """Cancel an open order and give back what it held. An order no longer open cannot be canceled: the
        order exists (it can be fetched), so that is InvalidOrder, not OrderNotFound."""
        async with self.transaction("cancel an order") as conn:
            await self.lock(conn, (base, quote))
            row = await self._locked_order(conn, order_id)
            if row["status"] != OPEN:
                raise InvalidOrder(
                    f"paper order {row['id']} ({row['client_order_id']}) is already {row['status']}: only an open "
                    "order can be canceled",
                    exchange=self.exchange,
                )
            await self._move(conn, pf.release_moves(row["side"], row["reserved"], base, quote))
            row = await conn.fetchrow(
                f"UPDATE paper_orders SET status = '{CANCELED}', reserved = 0, updated_ms = $3 "
                f"WHERE account_id = $1 AND id = $2 RETURNING {ORDER_COLUMNS}",
                self.key,
                order_id,
                now_ms(),
            )
        return (await self._with_trades([row]))[0]

    # -- reads ------------------------------------------------------------------------------------------------
    async def order_row(self, id: str | None, client_order_id: str | None) -> asyncpg.Record | None:
        column, value = ("id", str(id)) if id else ("client_order_id", str(client_order_id))
        async with self.db("read an order"):
            return await self.pool.fetchrow(
                f"SELECT {ORDER_COLUMNS} FROM paper_orders WHERE account_id = $1 AND {column} = $2",
                self.key,
                value,
                timeout=DB_TIMEOUT_SECONDS,
            )

    async def order(self, row: asyncpg.Record) -> dict:
        return (await self._with_trades([row]))[0]

    async def open_rows(self) -> list[asyncpg.Record]:
        async with self.db("read open orders"):
            return await self.pool.fetch(
                f"SELECT {ORDER_COLUMNS} FROM paper_orders WHERE account_id = $1 AND status = '{OPEN}' "
                "ORDER BY created_ms, id",
                self.key,
                timeout=DB_TIMEOUT_SECONDS,
            )

    async def orders(self, symbol: str | None, since: int | None, limit: int | None, *, open_only: bool) -> list:
        status = "status = 'open'" if open_only else "status <> 'open'"
        rows = await self._newest(
            f"SELECT {ORDER_COLUMNS} FROM paper_orders WHERE account_id = $1 AND {status} "
            "AND ($2::text IS NULL OR symbol = $2) AND ($3::bigint IS NULL OR created_ms >= $3)",
            "created_ms",
            symbol,
            since,
            limit,
        )
        return await self._with_trades(rows)

    async def trades(self, symbol: str | None, since: int | None, limit: int | None) -> list[dict]:
        rows = await self._newest(
            "SELECT * FROM paper_trades WHERE account_id = $1 AND ($2::text IS NULL OR symbol = $2) "
            "AND ($3::bigint IS NULL OR timestamp_ms >= $3)",
            "timestamp_ms",
            symbol,
            since,
            limit,
        )
        return [trade_dict(r) for r in rows]

    async def balances(self) -> Balances:
        await self.seed()
        async with self.db("read balances"):
            rows = await self.pool.fetch(
                "SELECT currency, free, used FROM paper_balances WHERE account_id = $1 ORDER BY currency",
                self.key,
                timeout=DB_TIMEOUT_SECONDS,
            )
        return {r["currency"]: (r["free"], r["used"]) for r in rows}

    # -- the mechanism ----------------------------------------------------------------------------------------
    async def seed(self) -> None:
        """The starting balances, written once per currency: a later call (or another replica) changes nothing."""
        if self._seeded:
            return
        currencies = sorted(self.starting)
        async with self.db("set up balances"):
            await self.pool.execute(
                "INSERT INTO paper_balances (account_id, currency, free, used) "
                "SELECT $1, c, f, 0 FROM unnest($2::text[], $3::numeric[]) AS s(c, f) ORDER BY c "
                "ON CONFLICT DO NOTHING",
                self.key,
                currencies,
                [self.starting[c] for c in currencies],
                timeout=DB_TIMEOUT_SECONDS,
            )
        self._seeded = True

    async def lock(self, conn: asyncpg.Connection, currencies: Iterable[str]) -> Balances:
        """Lock the balance rows a change touches, creating empty ones, always in currency order. `transaction()`
        has seeded the starting balances first: an empty row would keep its starting balance from being set."""
        ordered = sorted(set(currencies))
        await conn.execute(
            "INSERT INTO paper_balances (account_id, currency, free, used) SELECT $1, c, 0, 0 "
            "FROM unnest($2::text[]) AS c ORDER BY c ON CONFLICT DO NOTHING",
            self.key,
            ordered,
        )
        rows = await conn.fetch(
            "SELECT currency, free, used FROM paper_balances WHERE account_id = $1 AND currency = ANY($2::text[]) "
            "ORDER BY currency FOR UPDATE",
            self.key,
            ordered,
        )
        return {r["currency"]: (r["free"], r["used"]) for r in rows}

    @asynccontextmanager
    async def transaction(self, doing: str) -> AsyncIterator[asyncpg.Connection]:
        # Seeded before a connection is held: seeding inside would need a second one from the pool, and orders
        # holding every connection while each waits for one more would wait forever.
        await self.seed()
        async with self.db(doing), self.pool.acquire(timeout=DB_TIMEOUT_SECONDS) as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def db(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except BorsaError:
            raise
        except asyncpg.CheckViolationError as exc:  # a balance would go below zero: a bug, never a person's fault
            log.error("paper balance check failed", account=self.account_id, error=str(exc))
            raise Internal(f"paper account {self.account_id} cannot {doing}: a balance would go negative") from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("paper state unavailable", account=self.account_id, error=f"{type(exc).__name__}: {exc}")
            raise ExchangeUnavailable(
                f"paper trading on {self.exchange} cannot {doing} right now (database unavailable); try again",
                exchange=self.exchange,
            ) from None

    async def _locked_order(self, conn: asyncpg.Connection, order_id: str) -> asyncpg.Record:
        row = await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM paper_orders WHERE account_id = $1 AND id = $2 FOR UPDATE",
            self.key,
            order_id,
        )
        if row is None:  # rows go only with their API key
            raise OrderNotFound(f"paper order {order_id} is gone: its API key was deleted", exchange=self.exchange)
        return row

    async def _move(self, conn: asyncpg.Connection, moves: pf.Moves) -> None:
        for currency in sorted(moves):
            d_free, d_used = moves[currency]
            if d_free or d_used:
                await conn.execute(
                    "UPDATE paper_balances SET free = free + $3, used = used + $4 WHERE account_id = $1 "
                    "AND currency = $2",
                    self.key,
                    currency,
                    d_free,
                    d_used,
                )

    async def _insert_trades(self, conn, order, fills: Iterable[pf.Fill], *, start: int, now: int) -> list[dict]:
        trades = [
            {
                "id": f"{order['id']}-{n}",
                "order_id": order["id"],
                "symbol": order["symbol"],
                "side": order["side"],
                "price": fill.price,
                "amount": fill.amount,
                "cost": fill.cost,
                "fee_cost": fill.fee,
                "fee_currency": order["fee_currency"],
                "taker_or_maker": fill.taker_or_maker,
                "timestamp_ms": now,
            }
            for n, fill in enumerate(fills, start)
        ]
        if trades:
            columns = tuple(trades[0])
            await conn.executemany(
                f"INSERT INTO paper_trades (account_id, {', '.join(columns)}) "
                f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 2))})",
                [(self.key, *(t[c] for c in columns)) for t in trades],
            )
        return trades

    async def _newest(self, query: str, time_column: str, symbol: str | None, since: int | None, limit: int | None):
        """ccxt's since/limit rule: with `since`, the first `limit` rows from it; without, the newest `limit`.
        Always returned oldest first."""
        order = "ASC" if since is not None else "DESC"
        async with self.db("read orders and trades"):
            rows = await self.pool.fetch(
                f"{query} ORDER BY {time_column} {order}, id {order} LIMIT $4",
                self.key,
                symbol,
                since,
                limit or DEFAULT_LIST_LIMIT,
                timeout=DB_TIMEOUT_SECONDS,
            )
        return rows if since is not None else rows[::-1]

    async def _with_trades(self, rows) -> list[dict]:
        ids = [r["id"] for r in rows]
        trades: dict[str, list] = {i: [] for i in ids}
        if ids:
            async with self.db("read trades"):
                for trade in await self.pool.fetch(
                    "SELECT * FROM paper_trades WHERE account_id = $1 AND order_id = ANY($2::text[]) "
                    "ORDER BY timestamp_ms, id",
                    self.key,
                    ids,
                    timeout=DB_TIMEOUT_SECONDS,
                ):
                    trades[trade["order_id"]].append(trade)
        return [order_dict(r, trades[r["id"]]) for r in rows]

    def _duplicate(self, client_order_id: str, order_id: str | None) -> InvalidOrder:
        # "duplicate" is the word the order path looks for: this create may be an earlier attempt's, to look up.
        which = f" (order {order_id})" if order_id else ""
        return InvalidOrder(
            f"duplicate clientOrderId {client_order_id!r}: this paper account already has an order with it{which}; "
            "use a new client order id",
            exchange=self.exchange,
        )


# -- ccxt's unified shapes ------------------------------------------------------------------------------------
def order_dict(row, trades: Iterable) -> dict:
    trades = [trade_dict(t) for t in trades]
    amount, filled, cost = row["amount"], row["filled"], row["cost"]
    fee = {"cost": pf.tidy(row["fee_cost"]), "currency": row["fee_currency"]}
    return {
        "info": {"paper": True, "reserved": pf.tidy(row["reserved"])},
        "id": row["id"],
        "clientOrderId": row["client_order_id"],
        "timestamp": row["created_ms"],
        "datetime": iso(row["created_ms"]),
        "lastTradeTimestamp": max((t["timestamp"] for t in trades), default=None),
        "lastUpdateTimestamp": row["updated_ms"],
        "symbol": row["symbol"],
        "type": row["type"],
        "timeInForce": "GTC" if row["type"] == "limit" else "IOC",
        "postOnly": False,
        "side": row["side"],
        "price": row["price"],
        "average": pf.average(cost, filled),
        "amount": amount,
        "filled": pf.tidy(filled),
        "remaining": pf.tidy(pf.CONTEXT.subtract(amount, filled)),
        "cost": pf.tidy(cost),
        "status": row["status"],
        "fee": fee,
        "fees": [dict(fee)],
        "trades": trades,
    }


def trade_dict(row) -> dict:
    fee = {"cost": pf.tidy(row["fee_cost"]), "currency": row["fee_currency"]}
    return {
        "info": {"paper": True},
        "id": row["id"],
        "order": row["order_id"],
        "timestamp": row["timestamp_ms"],
        "datetime": iso(row["timestamp_ms"]),
        "symbol": row["symbol"],
        "type": None,
        "side": row["side"],
        "takerOrMaker": row["taker_or_maker"],
        "price": row["price"],
        "amount": row["amount"],
        "cost": pf.tidy(row["cost"]),
        "fee": fee,
        "fees": [dict(fee)],
    }


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
