"""Reports over the report tables, scoped to one user (through their API keys): summary, orders, trades, CSV rows.

The summary reads the daily sums (days wholly inside the range) and the raw fills and orders of the days at its
edges, so it never scans every fill. Amounts are per quote currency: a row never adds USD to USDT. Every row says
its exchange.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

ZERO = Decimal(0)
GROUPS = ("exchange", "bot", "symbol", "account")
DAY_MS = 86_400_000

PriceOf = Callable[[str, str], Awaitable[Decimal | None]]
"""(exchange, symbol) -> the latest price, for unrealised PnL."""


class QueryError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class Filters:
    user_id: uuid.UUID
    exchange: str | None = None
    account: uuid.UUID | None = None
    bot: uuid.UUID | None = None
    symbol: str | None = None
    since: int | None = None
    """From this time, ms, inclusive."""
    until: int | None = None
    """Up to this time, ms, exclusive."""

    def check(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise QueryError("since", "since must be before until")


def _where(f: Filters, table: str, time_column: str, params: list) -> str:
    """The WHERE clause for a report table aliased `table`; appends to `params`."""
    params.append(f.user_id)
    clauses = [f"{table}.account_id IN (SELECT id FROM api_keys WHERE user_id = ${len(params)})"]
    for column, value in (
        ("exchange_name", f.exchange),
        ("account_id", f.account),
        ("bot_id" if table != "d" else "bot_key", (str(f.bot) if table == "d" else f.bot) if f.bot else None),
        ("symbol", f.symbol),
    ):
        if value is not None:
            params.append(value)
            clauses.append(f"{table}.{column} = ${len(params)}")
    if time_column:
        if f.since is not None:
            params.append(f.since)
            clauses.append(f"{table}.{time_column} >= ${len(params)}")
        if f.until is not None:
            params.append(f.until)
            clauses.append(f"{table}.{time_column} < ${len(params)}")
    return " AND ".join(clauses)


# -- summary -------------------------------------------------------------------------------------------------------
GROUP_COLUMNS = {
    "exchange": ("exchange_name",),
    "account": ("exchange_name", "account_id"),
    "bot": ("exchange_name", "bot_key"),
    "symbol": ("exchange_name", "symbol"),
}


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


async def summary(conn: asyncpg.Connection, f: Filters, group_by: str, price_of: PriceOf | None = None) -> list[dict]:
    if group_by not in GROUPS:
        raise QueryError("group_by", f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
    f.check()
    keys = GROUP_COLUMNS[group_by]
    totals: dict[tuple, dict] = {}

    def add(row, key_values: tuple) -> None:
        out = totals.setdefault(
            key_values,
            {
                "orders": 0,
                "fills": 0,
                "volume": ZERO,
                "fees": ZERO,
                "unconverted_fees": 0,
                "realized_pnl": ZERO,
            },
        )
        out["orders"] += int(row["orders"] or 0)
        out["fills"] += int(row["fills"] or 0)
        out["volume"] += row["volume"] or ZERO
        out["fees"] += row["fees"] or ZERO
        out["unconverted_fees"] += int(row["unconverted"] or 0)
        out["realized_pnl"] += row["realized_pnl"] or ZERO

    # Whole days from the daily sums; the parts of days at the edges of the range from the raw rows.
    first_whole, end_whole, edges = _split(f.since, f.until)
    if first_whole is None or end_whole is None or first_whole < end_whole:
        rows = await _daily(conn, f, keys, first_whole, end_whole)
        for r in rows:
            add(r, (*(r[c] for c in keys), r["quote"]))
    for lo, hi in edges:
        await _add_raw(conn, f, keys, lo, hi, add)
    positions = await _positions(conn, f, keys)
    out = []
    for key_values, values in sorted(totals.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        position = positions.get(key_values)
        row = dict(zip((*keys, "quote"), key_values, strict=True))
        row["exchange"] = row.pop("exchange_name")
        if "account_id" in row:
            row["account"] = str(row.pop("account_id"))
        if "bot_key" in row:
            row["bot_id"] = row.pop("bot_key") or None
        row.update(values)
        row["position"], row["unrealized_pnl"] = ZERO, ZERO
        if position is not None:
            row["position"] = _one_asset(position)
            row["unrealized_pnl"] = await _unrealized(position["open"], price_of)
        out.append(row)
    for key_values, position in positions.items():  # groups with a position but no activity in the range
        if key_values not in totals and position["position"] != 0:
            row = dict(zip((*keys, "quote"), key_values, strict=True))
            row["exchange"] = row.pop("exchange_name")
            if "account_id" in row:
                row["account"] = str(row.pop("account_id"))
            if "bot_key" in row:
                row["bot_id"] = row.pop("bot_key") or None
            row.update(orders=0, fills=0, volume=ZERO, fees=ZERO, unconverted_fees=0, realized_pnl=ZERO)
            row["position"] = _one_asset(position)
            row["unrealized_pnl"] = await _unrealized(position["open"], price_of)
            out.append(row)
    return out


def _split(since: int | None, until: int | None) -> tuple[date | None, date | None, list[tuple[int, int]]]:
    """[first whole day, end of whole days) and the ranges outside whole days, in ms."""
    if since is None and until is None:
        return None, None, []
    first = None if since is None else _day(since) + timedelta(days=0 if since % DAY_MS == 0 else 1)
    end = None if until is None else _day(until)
    if first is not None and end is not None and first >= end:  # less than one whole day
        return first, end, [(since, until)]
    edges = []
    if since is not None and since < _day_ms(first):
        edges.append((since, _day_ms(first)))
    if until is not None and _day_ms(end) < until:
        edges.append((_day_ms(end), until))
    return first, end, edges


async def _daily(conn, f: Filters, keys: tuple, first: date | None, end: date | None) -> list:
    params: list = []
    where = _where(Filters(f.user_id, f.exchange, f.account, f.bot, f.symbol), "d", "", params)
    if first is not None:
        params.append(first)
        where += f" AND d.day >= ${len(params)}"
    if end is not None:
        params.append(end)
        where += f" AND d.day < ${len(params)}"
    cols = ", ".join(f"d.{c}" for c in keys)
    return await conn.fetch(
        f"""
        SELECT {cols}, d.quote, sum(d.orders) AS orders, sum(d.fills) AS fills, sum(d.volume) AS volume,
               sum(d.fees) AS fees, sum(d.unconverted) AS unconverted, sum(d.realized_pnl) AS realized_pnl
        FROM report_daily d WHERE {where} GROUP BY {cols}, d.quote
        """,
        *params,
    )


async def _add_raw(conn, f: Filters, keys: tuple, lo: int, hi: int, add) -> None:
    ranged = Filters(f.user_id, f.exchange, f.account, f.bot, f.symbol, lo, hi)
    fill_keys = ["coalesce(x.bot_id::text, '') AS bot_key" if k == "bot_key" else f"x.{k}" for k in keys]
    group = ", ".join(fill_keys)
    params: list = []
    where = _where(ranged, "x", "timestamp_ms", params)
    for r in await conn.fetch(
        f"""
        SELECT {group}, x.quote, 0 AS orders, count(*) AS fills, sum(x.cost) AS volume,
               sum(coalesce(x.fee_quote, 0)) AS fees, count(*) FILTER (WHERE x.fee_quote IS NULL) AS unconverted,
               sum(x.realized_pnl) AS realized_pnl
        FROM report_fills x WHERE {where} GROUP BY {", ".join(str(i + 1) for i in range(len(keys) + 1))}
        """,
        *params,
    ):
        add(r, (*(r[k] for k in keys), r["quote"]))
    params = []
    where = _where(ranged, "x", "created_ms", params)
    for r in await conn.fetch(
        f"""
        SELECT {group}, split_part(split_part(x.symbol, '/', 2), ':', 1) AS quote, count(*) AS orders,
               0 AS fills, 0 AS volume, 0 AS fees, 0 AS unconverted, 0 AS realized_pnl
        FROM report_orders x WHERE {where} GROUP BY {", ".join(str(i + 1) for i in range(len(keys) + 1))}
        """,
        *params,
    ):
        add(r, (*(r[k] for k in keys), r["quote"]))


async def _positions(conn, f: Filters, keys: tuple) -> dict[tuple, dict]:
    """Open positions now, per group: the amount and the open lots' (exchange, symbol, amount, cost)."""
    params: list = []
    where = _where(Filters(f.user_id, f.exchange, f.account, f.bot, f.symbol), "d", "", params)
    rows = await conn.fetch(
        f"SELECT d.exchange_name, d.account_id, d.bot_key, d.symbol, d.quote, d.position, d.cost "
        f"FROM report_positions d WHERE {where} AND d.position <> 0",
        *params,
    )
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (*(r[k] for k in keys), r["quote"])
        entry = out.setdefault(key, {"position": ZERO, "open": []})
        entry["position"] += r["position"]
        entry["open"].append((r["exchange_name"], r["symbol"], r["position"], r["cost"]))
    return out


def _one_asset(position: dict) -> Decimal | None:
    """The open amount, when the group holds one base asset: BTC and ETH do not add up to a number."""
    bases = {symbol.partition("/")[0] for _, symbol, _, _ in position["open"]}
    return position["position"] if len(bases) == 1 else None


async def _unrealized(open_lots: list, price_of: PriceOf | None) -> Decimal:
    total = ZERO
    for exchange, symbol, amount, cost in open_lots:
        price = await price_of(exchange, symbol) if price_of is not None else None
        if price is not None:
            total += amount * price - cost
    return total


# -- orders and trades -----------------------------------------------------------------------------------------------
ORDER_COLUMNS = (
    "exchange_name, account_id, order_id, client_order_id, bot_id, symbol, market_id, side, type, status, amount, "
    "filled, price, average, cost, fee_cost, fee_currency, created_ms, updated_ms"
)
FILL_COLUMNS = (
    "exchange_name, account_id, trade_id, order_id, client_order_id, bot_id, symbol, side, price, amount, cost, "
    "fee_cost, fee_currency, fee_quote, fee_rate, realized_pnl, timestamp_ms"
)


async def orders(conn, f: Filters, limit: int = 100, offset: int = 0) -> list[dict]:
    f.check()
    params: list = []
    where = _where(f, "x", "created_ms", params)
    params += [limit, offset]
    rows = await conn.fetch(
        f"SELECT {ORDER_COLUMNS} FROM report_orders x WHERE {where} "
        f"ORDER BY created_ms DESC, order_id LIMIT ${len(params) - 1} OFFSET ${len(params)}",
        *params,
    )
    return [_out(r) for r in rows]


async def trades(conn, f: Filters, limit: int = 100, offset: int = 0) -> list[dict]:
    f.check()
    params: list = []
    where = _where(f, "x", "timestamp_ms", params)
    params += [limit, offset]
    rows = await conn.fetch(
        f"SELECT {FILL_COLUMNS} FROM report_fills x WHERE {where} "
        f"ORDER BY timestamp_ms DESC, trade_id LIMIT ${len(params) - 1} OFFSET ${len(params)}",
        *params,
    )
    return [_out(r) for r in rows]


async def trade_rows(conn, f: Filters, batch: int = 2000) -> AsyncIterator[dict]:
    """Every trade in time order, read through a server-side cursor (call inside a transaction)."""
    f.check()
    params: list = []
    where = _where(f, "x", "timestamp_ms", params)
    cursor = conn.cursor(
        f"SELECT {FILL_COLUMNS} FROM report_fills x WHERE {where} ORDER BY timestamp_ms, trade_id",
        *params,
        prefetch=batch,
    )
    async for r in cursor:
        yield _out(r)


def _out(r) -> dict:
    out = dict(r)
    out["exchange"] = out.pop("exchange_name")
    out["account"] = str(out.pop("account_id"))
    out["bot_id"] = str(out["bot_id"]) if out.get("bot_id") else None
    return out
