"""The exchange contract for binance: ccxt's real binance class against the simulator's binance dialect."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import pytest
from ccxt.base import errors as E

from borsa_sim.dialects.binance_wire import random_id
from borsa_testing.exchange_contract import ExchangeContract, amount_for, dec

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

    # ccxt's binance fetch_closed_orders keeps only status "closed" (fully filled) out of /api/v3/allOrders,
    # so a canceled order can never be among them whatever the exchange answers. Binance's own notion of a
    # finished order is what allOrders returns: the canceled order is there, and in fetch_canceled_orders.
    async def test_limit_order_rests_then_cancels(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * Decimal("0.8")) // spec.price_tick) * spec.price_tick
        amount = amount_for(spec, limit)
        order = await ex.create_order(self.symbol, "limit", "buy", float(amount), float(limit))
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "open"
        assert dec(fetched["amount"]) == amount
        assert dec(fetched["price"]) == limit
        assert dec(fetched["filled"]) == 0
        open_orders = await ex.fetch_open_orders(self.symbol)
        assert [o["id"] for o in open_orders] == [order["id"]]
        balance = await ex.fetch_balance()
        assert dec(balance[spec.quote]["used"]) >= amount * limit
        await ex.cancel_order(order["id"], self.symbol)
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "canceled"
        assert await ex.fetch_open_orders(self.symbol) == []
        canceled = await ex.fetch_canceled_orders(self.symbol)
        assert order["id"] in [o["id"] for o in canceled]
        everything = {o["id"]: o["status"] for o in await ex.fetch_orders(self.symbol)}
        assert everything[order["id"]] == "canceled"
        balance = await ex.fetch_balance()
        assert dec(balance[spec.quote]["used"]) == 0
