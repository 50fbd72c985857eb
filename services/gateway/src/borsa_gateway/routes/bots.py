"""Bots: the exchange follows from the key, the symbol is resolved by that exchange's connector and stored
both unified and native, and params are checked against the strategy's schema and the market's rules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from borsa_runtime.errors import BorsaError

from ..deps import BotLists, Bus, Db, User
from ..errors import ApiError, ErrorResponse, not_found
from ..strategies import check_against_market, params_json, parse_params
from ..text import Text

router = APIRouter(
    prefix="/bots",
    tags=["bots"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
BotId = Annotated[UUID, Path()]
Status = Literal["stopped", "running", "paused"]


class BotIn(BaseModel):
    api_key_id: UUID
    symbol: Text = Field(min_length=1, max_length=40, examples=["XBTUSD"])
    strategy: Text = Field(min_length=1, max_length=40, examples=["dca"])
    params: dict[str, Any]


class BotPatch(BaseModel):
    symbol: Text | None = Field(default=None, min_length=1, max_length=40)
    params: dict[str, Any] | None = None


class BotOut(BaseModel):
    id: UUID
    api_key_id: UUID
    exchange: str
    symbol: str
    market_id: str
    strategy: str
    params: dict[str, Any]
    status: Status
    status_reason: str | None
    created_at: datetime
    updated_at: datetime


COLUMNS = (
    "id, api_key_id, exchange_name, symbol, market_id, strategy, params, status, status_reason, created_at, updated_at"
)


def _out(row) -> BotOut:
    return BotOut(
        id=row["id"],
        api_key_id=row["api_key_id"],
        exchange=row["exchange_name"],
        symbol=row["symbol"],
        market_id=row["market_id"],
        strategy=row["strategy"],
        params=json.loads(row["params"]),
        status=row["status"],
        status_reason=row["status_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _validated(bus: Bus, exchange: str, symbol: str, strategy: str, params: dict) -> tuple[str, str, dict]:
    parsed = parse_params(strategy, params)
    try:
        market = await bus.market(exchange, symbol)
    except BorsaError as exc:
        raise ApiError.from_bus(exc, "symbol") from exc
    if not market.active:
        raise ApiError("invalid_order", f"{market.symbol} is not trading on {exchange} right now", "symbol")
    ticker = await bus.ticker(exchange, market.symbol)
    price = ticker.last or ticker.ask
    check_against_market(parsed, market, price, exchange)
    return market.symbol, market.market_id, params_json(parsed)


async def _owned(pool: Db, user: User, bot_id: UUID):
    row = await pool.fetchrow(f"SELECT {COLUMNS} FROM bot_configs WHERE id = $1 AND user_id = $2", bot_id, user)
    if row is None:
        raise not_found("bot")
    return row


@router.post("", status_code=201, response_model=BotOut, responses={503: {"model": ErrorResponse}})
async def create(body: BotIn, user: User, pool: Db, bus: Bus, lists: BotLists) -> BotOut:
    key = await pool.fetchrow(
        "SELECT exchange_name FROM api_keys WHERE id = $1 AND user_id = $2 AND status = 'active'", body.api_key_id, user
    )
    if key is None:
        raise ApiError("not_found", "API key not found", "api_key_id")
    exchange = key["exchange_name"]
    symbol, market_id, params = await _validated(bus, exchange, body.symbol, body.strategy, body.params)
    row = await pool.fetchrow(
        f"INSERT INTO bot_configs (user_id, api_key_id, exchange_name, symbol, market_id, strategy, params) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
        user,
        body.api_key_id,
        exchange,
        symbol,
        market_id,
        body.strategy,
        json.dumps(params),
    )
    await lists.changed(user)
    return _out(row)


class _BotRow(msgspec.Struct):
    """The list's wire form, encoded straight from rows: a pydantic model per bot costs more than the query."""

    id: UUID
    api_key_id: UUID
    exchange: str
    symbol: str
    market_id: str
    strategy: str
    params: msgspec.Raw  # jsonb arrives as JSON text already
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime


_encode_list = msgspec.json.Encoder().encode


@router.get("", response_model=list[BotOut])
async def list_bots(
    request: Request, user: User, pool: Db, exchange: Annotated[str | None, Query(pattern="^[a-z0-9]{2,32}$")] = None
) -> Response:
    cache = request.app.state.bot_lists
    cached = cache.get(user, exchange)
    if cached is not None:
        return Response(cached, media_type="application/json")
    generation = cache.generation(user)
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM bot_configs WHERE user_id = $1 AND ($2::text IS NULL OR exchange_name = $2) "
        "ORDER BY created_at",
        user,
        exchange,
    )
    bots = [
        _BotRow(
            r["id"],
            r["api_key_id"],
            r["exchange_name"],
            r["symbol"],
            r["market_id"],
            r["strategy"],
            msgspec.Raw(r["params"].encode()),
            r["status"],
            r["status_reason"],
            r["created_at"],
            r["updated_at"],
        )
        for r in rows
    ]
    body = _encode_list(bots)
    cache.put(user, exchange, generation, body)
    return Response(body, media_type="application/json")


@router.get("/{bot_id}", response_model=BotOut)
async def read(bot_id: BotId, user: User, pool: Db) -> BotOut:
    return _out(await _owned(pool, user, bot_id))


@router.patch("/{bot_id}", response_model=BotOut)
async def update(bot_id: BotId, body: BotPatch, user: User, pool: Db, bus: Bus, lists: BotLists) -> BotOut:
    row = await _owned(pool, user, bot_id)
    symbol, market_id, params = await _validated(
        bus,
        row["exchange_name"],
        body.symbol or row["symbol"],
        row["strategy"],
        body.params if body.params is not None else json.loads(row["params"]),
    )
    row = await pool.fetchrow(
        f"UPDATE bot_configs SET symbol = $3, market_id = $4, params = $5, updated_at = now() "
        f"WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}",
        bot_id,
        user,
        symbol,
        market_id,
        json.dumps(params),
    )
    await lists.changed(user)
    await bus.bot_changed(bot_id, row["status"])
    return _out(row)


@router.delete("/{bot_id}", status_code=204, response_model=None)
async def delete(bot_id: BotId, user: User, pool: Db, bus: Bus, lists: BotLists) -> None:
    if await pool.fetchval("DELETE FROM bot_configs WHERE id = $1 AND user_id = $2 RETURNING id", bot_id, user) is None:
        raise not_found("bot")
    await lists.changed(user)
    await bus.bot_changed(bot_id, "deleted")


async def _set_status(
    pool: Db, bus: Bus, user: User, bot_id: UUID, status: str, lists: BotLists, cancel_orders: bool | None = None
) -> BotOut:
    row = await _owned(pool, user, bot_id)
    if status == "running":
        active = await pool.fetchval("SELECT status = 'active' FROM api_keys WHERE id = $1", row["api_key_id"])
        if not active:
            raise ApiError(
                "invalid_order", "this bot's API key was deleted; give the bot a new key first", "api_key_id"
            )
    row = await pool.fetchrow(
        f"UPDATE bot_configs SET status = $3, status_reason = NULL, updated_at = now() "
        f"WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}",
        bot_id,
        user,
        status,
    )
    await lists.changed(user)
    await bus.bot_changed(bot_id, status, cancel_orders)
    return _out(row)


@router.post("/{bot_id}/start", response_model=BotOut)
async def start(bot_id: BotId, user: User, pool: Db, bus: Bus, lists: BotLists) -> BotOut:
    """The bot runs within a second (a runner takes it); a paused bot starts again with its reason cleared."""
    return await _set_status(pool, bus, user, bot_id, "running", lists)


@router.post("/{bot_id}/stop", response_model=BotOut)
async def stop(
    bot_id: BotId,
    user: User,
    pool: Db,
    bus: Bus,
    lists: BotLists,
    cancel_orders: Annotated[
        bool | None, Query(description="cancel the bot's open orders (default: the runner's setting, true)")
    ] = None,
) -> BotOut:
    return await _set_status(pool, bus, user, bot_id, "stopped", lists, cancel_orders)
