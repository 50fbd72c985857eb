"""`borsa.reports.summary|orders|trades` over NATS, a `nats.micro` service named `reporting`."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import asyncpg
from nats.aio.client import Client
from nats.micro import add_service

from borsa_proto import convert
from borsa_proto.exchange import Ticker
from borsa_proto.reports import (
    OrdersReply,
    ReportOrder,
    ReportRequest,
    ReportTrade,
    SummaryReply,
    SummaryRow,
    TradesReply,
)
from borsa_proto.requests import TickerRequest
from borsa_proto.subjects import REPORTS_SERVICE, reports, ticker
from borsa_runtime.endpoints import InFlight, handler
from borsa_runtime.errors import BadRequest, BorsaError
from borsa_runtime.request import request

from . import queries

PRICE_TTL_SECONDS = 2.0


class Prices:
    """The latest price of a symbol for unrealised PnL, from its connector, cached for a moment."""

    def __init__(self, nc: Client, timeout: float = 2.0) -> None:
        self.nc, self.timeout = nc, timeout
        self._cache: dict[tuple[str, str], tuple[float, Decimal | None]] = {}

    async def __call__(self, exchange: str, symbol: str) -> Decimal | None:
        cached = self._cache.get((exchange, symbol))
        if cached is not None and time.monotonic() - cached[0] < PRICE_TTL_SECONDS:
            return cached[1]
        try:
            found = await request(self.nc, ticker(exchange), TickerRequest(symbol=symbol), Ticker, timeout=self.timeout)
            price = found.last or found.bid or found.ask
        except BorsaError:
            price = None
        self._cache[(exchange, symbol)] = (time.monotonic(), price)
        return price


def filters(req: ReportRequest) -> queries.Filters:
    def as_uuid(name: str, value: str | None) -> uuid.UUID | None:
        if value is None:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            raise BadRequest(f"{name} must be a UUID, got {value!r}") from None

    if not 1 <= req.limit <= 1000:
        raise BadRequest(f"limit must be between 1 and 1000, got {req.limit}")
    if req.offset < 0:
        raise BadRequest(f"offset must be 0 or more, got {req.offset}")
    f = queries.Filters(
        user_id=as_uuid("user_id", req.user_id),
        exchange=req.exchange,
        account=as_uuid("account", req.account),
        bot=as_uuid("bot_id", req.bot_id),
        symbol=req.symbol,
        since=req.since,
        until=req.until,
    )
    try:
        f.check()
    except queries.QueryError as exc:
        raise BadRequest(exc.message) from None
    return f


class ReportService:
    def __init__(self, nc: Client, pool: asyncpg.Pool) -> None:
        self.nc, self.pool = nc, pool
        self.prices = Prices(nc)
        self.in_flight = InFlight()
        self.service = None

    async def start(self) -> None:
        self.service = await add_service(
            self.nc,
            name=REPORTS_SERVICE,
            version="0.1.0",
            description="Borsa reports: summary, orders and trades per exchange, account, bot and symbol",
            queue_group="borsa-reporting",
        )
        for name, serve in (("summary", self.summary), ("orders", self.orders), ("trades", self.trades)):
            await self.service.add_endpoint(
                name=name,
                subject=reports(name),
                handler=self.in_flight.wrap(handler(ReportRequest, serve)),
                queue_group="borsa-reporting",
            )

    async def stop(self) -> None:
        await self.in_flight.wait()
        if self.service is not None:
            await self.service.stop()

    async def summary(self, req: ReportRequest) -> SummaryReply:
        f = filters(req)
        try:
            async with self.pool.acquire() as conn:
                rows = await queries.summary(conn, f, req.group_by or "exchange", self.prices)
        except queries.QueryError as exc:
            raise BadRequest(exc.message) from None
        return SummaryReply(group_by=req.group_by or "exchange", rows=[convert(r, SummaryRow) for r in rows])

    async def orders(self, req: ReportRequest) -> OrdersReply:
        async with self.pool.acquire() as conn:
            rows = await queries.orders(conn, filters(req), req.limit, req.offset)
        return OrdersReply(orders=[convert(r, ReportOrder) for r in rows])

    async def trades(self, req: ReportRequest) -> TradesReply:
        async with self.pool.acquire() as conn:
            rows = await queries.trades(conn, filters(req), req.limit, req.offset)
        return TradesReply(trades=[convert(r, ReportTrade) for r in rows])
