"""The exchange contract for binance: ccxt's real binance class against the simulator's binance dialect."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import pytest
from ccxt.base import errors as E

from borsa_sim.dialects.binance_wire import random_id
from borsa_testing.exchange_contract import ExchangeContract

pytestmark = [pytest.mark.contract, pytest.mark.integration]


class TestBinance(ExchangeContract):
    exchange_id = "binance"
    symbol = "BTC/USDT"
    market_id = "BTCUSDT"
    errors: ClassVar[dict[str, type[Exception]]] = {
        **ExchangeContract.errors,
        # {"code":-1013,"msg":"Filter failure: NOTIONAL"}: ccxt's binance maps -1013 to BadRequest and, unlike
        # LOT_SIZE and PRICE_FILTER, has no message rule that makes a NOTIONAL failure an InvalidOrder.
        "below_min_cost": E.BadRequest,
    }

    def client_id_params(self, client_order_id: str) -> dict:
        return {"clientOrderId": client_order_id}  # sent as newClientOrderId

    async def fetch_order_by_client_id(self, ex, client_order_id: str, symbol: str) -> dict:
        return await ex.fetch_order(None, symbol, {"clientOrderId": client_order_id})  # origClientOrderId

    async def stale_request(self, ex) -> None:
        # ccxt stamps requests with milliseconds() - timeDifference: a minute behind is past recvWindow (10 s).
        ex.options["timeDifference"] = 60_000
        await ex.fetch_balance()

    async def unknown_symbol_request(self, ex) -> None:
        await ex.public_get_ticker_24hr({"symbol": "NOPEUSDT"})

    def wrong_secret(self, credentials: dict) -> dict:
        return {**credentials, "secret": random_id(64)}

    def wrong_key(self, credentials: dict) -> dict:
        return {**credentials, "apiKey": random_id(64)}

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        return await ex.private_post_order(
            {
                "symbol": ex.market(symbol or self.symbol)["id"],
                "side": side.upper(),
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": format(amount, "f"),
                "price": format(price, "f"),
            }
        )

    def unknown_order_id(self) -> str:
        return "123456789"

    def malformed_requests(self) -> list[tuple[str, str, str]]:
        return [
            ("GET", "/api/v3/depth", ""),
            ("GET", "/api/v3/depth?symbol=BTCUSDT&limit=abc", ""),
            ("GET", "/api/v3/depth?symbol=btc/usdt", ""),
            ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=7x", ""),
            ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=yesterday", ""),
            ("GET", "/api/v3/ticker/24hr?symbols=[BTCUSDT", ""),
            ("GET", "/api/v3/ticker/24hr?symbol=BTCUSDT&colour=red", ""),
            ("GET", "/api/v3/exchangeInfo?symbols=%5B1%2C2%5D", ""),
            ("POST", "/api/v3/order", "{not json"),
            ("POST", "/api/v3/order", '{"symbol": "BTCUSDT", "side": "BUY"}'),
            ("DELETE", "/api/v3/order", ""),
            ("GET", "/api/v3/account?timestamp=abc&signature=zz", ""),
            ("GET", "/api/v3/nowhere", ""),
            ("PUT", "/api/v3/order", ""),
        ]
