"""Exchanges: which connectors are online, what each needs and what a trader should know; their markets."""

from __future__ import annotations

import functools
import time
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from borsa_proto import to_builtins
from borsa_runtime.errors import BorsaError

from ..bus import DESCRIBE_TTL
from ..deps import Bus
from ..errors import ApiError, ErrorResponse

router = APIRouter(prefix="/exchanges", tags=["exchanges"], responses={422: {"model": ErrorResponse}})
ExchangeId = Annotated[str, Path(pattern="^[a-z0-9]{2,32}$")]


class CredentialField(BaseModel):
    name: str
    label: str
    secret: bool


class Exchange(BaseModel):
    id: str
    name: str
    online: bool
    modes: list[str]
    credentials: list[CredentialField]
    fees: dict[str, str | None] = {}
    min_order: dict[str, str | None] = {}
    notes: list[str] = []
    markets_count: int = 0


class MarketOut(BaseModel):
    symbol: str
    market_id: str
    base: str
    quote: str
    active: bool
    precision: dict[str, str]
    limits: dict[str, dict[str, str | None]]
    maker: str | None = None
    taker: str | None = None


@router.get("", response_model=list[Exchange])
async def list_exchanges(request: Request, bus: Bus) -> list[Exchange]:
    online = await bus.online()
    configured = request.app.state.settings.configured_exchanges
    out = []
    for exchange in [*[e for e in configured if e in online], *sorted(online - set(configured))]:
        try:
            out.append(await _describe(bus, exchange))
        except BorsaError:
            online.discard(exchange)
    out += [await run_in_threadpool(_offline, e) for e in configured if e not in online]
    return out


@functools.cache
def _offline(exchange: str) -> Exchange:
    """What the connector would say, from the same quirks and ccxt metadata, without a connector: the fields a key
    needs, its modes and notes. Built once per exchange (constructing a ccxt class makes no request)."""
    from borsa_connector.exchanges.registry import resolve_exchange

    notes = [f"The {exchange} connector is not answering; keys and bots for it cannot be checked now."]
    try:
        exchange_id, api_class = resolve_exchange(exchange)
        api = api_class(exchange_id)
    except ValueError:
        return Exchange(id=exchange, name=exchange, online=False, modes=[], credentials=[], notes=notes)
    fields = [CredentialField(name=c.name, label=c.label, secret=c.secret) for c in api.credential_fields()]
    describe = api.describe()
    return Exchange(
        id=exchange_id,
        name=describe.name,
        online=False,
        modes=describe.modes,
        credentials=fields,
        notes=[*notes, *describe.notes],
    )


_SUMMARIES: dict[str, tuple[float, Exchange]] = {}


async def _describe(bus: Bus, exchange: str) -> Exchange:
    """Describe plus fees and minimums read off the market list: fetched once a minute, not on every page view."""
    cached = _SUMMARIES.get(exchange)
    if cached and time.monotonic() - cached[0] < DESCRIBE_TTL:
        return cached[1]
    summary = await _summarise(bus, exchange)
    _SUMMARIES[exchange] = (time.monotonic(), summary)
    return summary


async def _summarise(bus: Bus, exchange: str) -> Exchange:
    describe = await bus.describe(exchange)
    markets = await bus.markets(exchange, None, None)
    fees = Counter((str(m.maker), str(m.taker)) for m in markets if m.maker is not None)
    maker, taker = fees.most_common(1)[0][0] if fees else (None, None)
    costs = Counter(f"{m.limits.cost.min} {m.quote}" for m in markets if m.limits.cost.min)
    return Exchange(
        id=describe.id,
        name=describe.name,
        online=True,
        modes=describe.modes,
        credentials=[
            CredentialField(name=c.name, label=c.label, secret=c.secret) for c in describe.required_credentials
        ],
        fees={"maker": maker, "taker": taker},
        min_order={"typical_cost": costs.most_common(1)[0][0] if costs else None},
        notes=describe.notes,
        markets_count=describe.markets_count,
    )


async def require_online(request: Request, bus: Bus, exchange: str, status_if_unknown: int = 404) -> None:
    """An exchange nobody configured is unknown (404, or 422 in a body); a configured one that is down, 503."""
    online = await bus.online()
    if exchange in online:
        return
    configured = request.app.state.settings.configured_exchanges
    if exchange not in configured:
        known = ", ".join(sorted(set(configured) | online))
        code = "not_found" if status_if_unknown == 404 else "bad_request"
        raise ApiError(
            code, f"exchange {exchange!r} is not served here; use one of {known}", "exchange", status=status_if_unknown
        )
    raise ApiError(
        "exchange_unavailable", f"the {exchange} connector is not online right now; try again later", "exchange"
    )


@router.get(
    "/{exchange}/markets",
    response_model=list[MarketOut],
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def markets(
    exchange: ExchangeId,
    request: Request,
    bus: Bus,
    search: Annotated[str | None, Query(max_length=40)] = None,
    quote: Annotated[str | None, Query(max_length=12)] = None,
) -> list[dict]:
    await require_online(request, bus, exchange)
    return [to_builtins(m) for m in await bus.markets(exchange, search or None, quote or None)]
