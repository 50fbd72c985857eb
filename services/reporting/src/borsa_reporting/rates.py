"""What a fee charged in a third asset (BNB, KCS) is worth in the quote currency: the exchange's own ticker for
FEE/QUOTE through its connector, cached for a minute. No ticker, no rate: the fee stays unconverted and is counted
as such, never guessed."""

from __future__ import annotations

import time
from decimal import Decimal

import structlog
from nats.aio.client import Client

from borsa_proto.exchange import Ticker
from borsa_proto.requests import TickerRequest
from borsa_proto.subjects import ticker
from borsa_runtime.errors import BorsaError
from borsa_runtime.request import request

log = structlog.get_logger("borsa.reporting.rates")

TTL_SECONDS = 60.0


class Rates:
    def __init__(self, nc: Client | None, timeout: float = 2.0) -> None:
        self.nc = nc
        self.timeout = timeout
        self._cache: dict[tuple[str, str, str], tuple[float, Decimal | None]] = {}

    async def rate(self, exchange: str, currency: str, quote: str) -> Decimal | None:
        """Quote per unit of `currency` on `exchange`, or None when the exchange does not say."""
        key = (exchange, currency, quote)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < TTL_SECONDS:
            return cached[1]
        found = await self._fetch(exchange, currency, quote)
        self._cache[key] = (time.monotonic(), found)
        return found

    async def _fetch(self, exchange: str, currency: str, quote: str) -> Decimal | None:
        if self.nc is None:
            return None
        for symbol, invert in ((f"{currency}/{quote}", False), (f"{quote}/{currency}", True)):
            try:
                found = await request(
                    self.nc, ticker(exchange), TickerRequest(symbol=symbol), Ticker, timeout=self.timeout
                )
            except BorsaError:
                continue
            price = found.last or found.bid or found.ask
            if price:
                return (1 / price) if invert else price
        log.info("no rate for a fee currency", exchange=exchange, currency=currency, quote=quote)
        return None
