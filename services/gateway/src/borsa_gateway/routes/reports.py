"""Orders, trades, the summary and the trades CSV, read straight from the report tables and scoped to the user."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from borsa_reporting import queries
from borsa_runtime.errors import BorsaError

from ..deps import Bus, Db, User
from ..errors import ApiError, ErrorResponse
from ..text import Text

log = structlog.get_logger("borsa.gateway")

router = APIRouter(
    tags=["reports"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The summary splits a range into whole days and looks one day past its ends: keep a day clear of datetime's limits.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
EARLIEST_MS, LATEST_MS = ((t - EPOCH) // timedelta(milliseconds=1) for t in (EARLIEST, LATEST))
MS_DIGITS = re.compile(r"^-?[0-9]+$")
PRICE_TTL_SECONDS = 5.0
PRICE_TIMEOUT_SECONDS = 2.0
CSV_BATCH = 500

DecimalText = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["0.00123"])]
TIME_DOC = "epoch milliseconds (1790000000000) or an ISO-8601 datetime (2026-09-21T12:00:00Z; no zone: UTC)"


def _ms(value: str | None, field: str) -> int | None:
    if not value:
        return None
    if MS_DIGITS.fullmatch(value):
        ms = int(value)
    else:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            message = f"{field} must be epoch milliseconds or an ISO-8601 datetime, not {value!r}"
            raise ApiError("bad_request", message, field) from None
        ms = (when.replace(tzinfo=when.tzinfo or UTC) - EPOCH) // timedelta(milliseconds=1)
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise ApiError("bad_request", f"{field} must be between the years 1 and 9999, not {value!r}", field)
    return ms


async def report_filters(
    user: User,
    pool: Db,
    bot_id: Annotated[UUID | None, Query(description="only this bot's")] = None,
    exchange: Annotated[str | None, Query(pattern="^[a-z0-9]{2,32}$")] = None,
    symbol: Annotated[Text | None, Query(min_length=1, max_length=40, description="unified, BTC/USDT")] = None,
    account: Annotated[UUID | None, Query(description="only this API key's (its id)")] = None,
    since: Annotated[str | None, Query(max_length=40, description=f"from (inclusive): {TIME_DOC}")] = None,
    until: Annotated[str | None, Query(max_length=40, description=f"up to (exclusive): {TIME_DOC}")] = None,
) -> queries.Filters:
    f = queries.Filters(user, exchange, account, bot_id, symbol, _ms(since, "since"), _ms(until, "until"))
    try:
        f.check()
    except queries.QueryError as exc:
        raise ApiError("bad_request", exc.message, exc.field) from None
    # Another user's key or bot is a 404, not an empty list (DESIGN section 6). A deleted bot's reports stay its.
    if account is not None and not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND user_id = $2)", account, user
    ):
        raise ApiError("not_found", "API key not found", "account")
    if bot_id is not None and not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM bot_configs WHERE id = $1 AND user_id = $2) OR EXISTS (SELECT 1 FROM "
        "report_orders o JOIN api_keys k ON k.id = o.account_id WHERE o.bot_id = $1 AND k.user_id = $2)",
        bot_id,
        user,
    ):
        raise ApiError("not_found", "bot not found", "bot_id")
    return f


Filtered = Annotated[queries.Filters, Depends(report_filters)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def plain(value: Decimal | None) -> str | None:
    """A decimal string without an exponent, every stored digit kept."""
    return None if value is None else format(value, "f")


def _plain_row(row: dict) -> dict:
    return {k: plain(v) if isinstance(v, Decimal) else v for k, v in row.items()}


class OrderOut(BaseModel):
    exchange: str
    account: str
    order_id: str
    client_order_id: str | None
    bot_id: str | None
    symbol: str
    market_id: str
    side: str
    type: str
    status: str
    amount: DecimalText
    filled: DecimalText
    price: DecimalText | None
    average: DecimalText | None
    cost: DecimalText
    fee_cost: DecimalText | None
    fee_currency: str | None
    created_ms: int
    updated_ms: int


class TradeOut(BaseModel):
    exchange: str
    account: str
    trade_id: str
    order_id: str
    client_order_id: str | None
    bot_id: str | None
    symbol: str
    side: str
    price: DecimalText
    amount: DecimalText
    cost: DecimalText
    fee_cost: DecimalText | None
    fee_currency: str | None
    fee_quote: DecimalText | None = Field(description="the fee in quote; null when no rate to quote was known")
    fee_rate: DecimalText | None = Field(description="quote per unit of the fee currency used to convert the fee")
    realized_pnl: DecimalText
    timestamp_ms: int


class SummaryRowOut(BaseModel):
    exchange: str
    quote: str = Field(description="every amount of the row is in this currency")
    account: str | None = None
    bot_id: str | None = None
    symbol: str | None = None
    orders: int
    fills: int
    volume: DecimalText
    fees: DecimalText
    unconverted_fees: int = Field(description="fills whose fee had no rate to quote (left out of fees)")
    realized_pnl: DecimalText
    position: DecimalText | None = Field(
        default=None, description="open now, in base; null when the group holds more than one base asset"
    )
    unrealized_pnl: DecimalText = Field(description="at the connector's last price; 0 while it does not answer")


class SummaryOut(BaseModel):
    group_by: str
    rows: list[SummaryRowOut]


@router.get("/orders", response_model=list[OrderOut])
async def list_orders(f: Filtered, pool: Db, limit: Limit = 100, offset: Offset = 0) -> list[dict]:
    """Orders, newest first."""
    async with pool.acquire() as conn:
        return [_plain_row(r) for r in await queries.orders(conn, f, limit, offset)]


@router.get("/trades", response_model=list[TradeOut])
async def list_trades(f: Filtered, pool: Db, limit: Limit = 100, offset: Offset = 0) -> list[dict]:
    """Fills, newest first, each with its fee in quote and the PnL it realised (FIFO)."""
    async with pool.acquire() as conn:
        return [_plain_row(r) for r in await queries.trades(conn, f, limit, offset)]


# -- summary ---------------------------------------------------------------------------------------------------------
_PRICES: dict[tuple[str, str], tuple[float, Decimal | None]] = {}


async def _price(bus: Bus, exchange: str, symbol: str) -> Decimal | None:
    """The connector's last price, kept a few seconds; None (unrealised 0) while the connector does not answer."""
    cached = _PRICES.get((exchange, symbol))
    if cached is not None and time.monotonic() - cached[0] < PRICE_TTL_SECONDS:
        return cached[1]
    try:
        ticker = await asyncio.wait_for(bus.ticker(exchange, symbol), min(bus.timeout, PRICE_TIMEOUT_SECONDS))
        price = ticker.last or ticker.bid or ticker.ask
    except (BorsaError, TimeoutError) as exc:
        log.info("no price for unrealised pnl", exchange=exchange, symbol=symbol, error=type(exc).__name__)
        price = None
    _PRICES[(exchange, symbol)] = (time.monotonic(), price)
    return price


async def _prices(bus: Bus, pool: Db, f: queries.Filters) -> queries.PriceOf:
    """Every open position's price asked for at once, before a connection is held for the summary."""
    pairs = [
        (r["exchange_name"], r["symbol"])
        for r in await pool.fetch(
            "SELECT DISTINCT p.exchange_name, p.symbol FROM report_positions p "
            "WHERE p.account_id IN (SELECT id FROM api_keys WHERE user_id = $1) AND p.position <> 0 "
            "AND ($2::text IS NULL OR p.exchange_name = $2) AND ($3::text IS NULL OR p.symbol = $3)",
            f.user_id,
            f.exchange,
            f.symbol,
        )
    ]
    found = dict(zip(pairs, await asyncio.gather(*(_price(bus, *p) for p in pairs)), strict=True))

    async def price_of(exchange: str, symbol: str) -> Decimal | None:
        if (exchange, symbol) in found:
            return found[(exchange, symbol)]
        return await _price(bus, exchange, symbol)  # opened since the prefetch

    return price_of


@router.get("/reports/summary", response_model=SummaryOut)
async def summary(
    f: Filtered, pool: Db, bus: Bus, group_by: Literal["exchange", "bot", "symbol", "account"] = "exchange"
) -> dict:
    """Orders, fills, volume, fees and PnL per group and quote currency: a row never adds USD to USDT."""
    price_of = await _prices(bus, pool, f)
    async with pool.acquire() as conn:
        rows = await queries.summary(conn, f, group_by, price_of)
    return {"group_by": group_by, "rows": [_plain_row(r) for r in rows]}


# -- CSV ---------------------------------------------------------------------------------------------------------------
# fmt: off
CSV_COLUMNS = (
    "time", "timestamp_ms", "exchange", "account", "symbol", "side", "price", "amount", "cost", "fee_cost",
    "fee_currency", "fee_quote", "fee_rate", "realized_pnl", "trade_id", "order_id", "client_order_id", "bot_id",
)
# fmt: on


def _iso(ms: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A spreadsheet runs a cell that starts with one of these as a formula; ids and symbols come from exchanges and
# from whoever placed an order, so a text cell that starts with one is quoted (numbers are left as they are).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(row: dict, column: str) -> str:
    if column == "time":
        return _iso(row["timestamp_ms"])
    value = row[column]
    if value is None:
        return ""
    if isinstance(value, Decimal | int):
        return plain(value) if isinstance(value, Decimal) else str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


async def _csv_lines(pool: Db, f: queries.Filters) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    # One connection and one transaction for the whole file: the rows come through a server-side cursor.
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for row in queries.trade_rows(conn, f, batch=CSV_BATCH):
            writer.writerow([_csv_cell(row, c) for c in CSV_COLUMNS])
            rows += 1
            if rows % CSV_BATCH == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/reports/trades.csv",
    response_class=StreamingResponse,
    responses={
        200: {"description": "every fill in time order", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def trades_csv(f: Filtered, pool: Db) -> StreamingResponse:
    """Every fill in time order as CSV: time in ISO-8601 UTC and in ms, decimals as plain strings."""
    return StreamingResponse(
        _csv_lines(pool, f),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="borsa-trades.csv"'},
    )
