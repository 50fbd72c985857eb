"""The exchange contract for coinbase: ccxt's real coinbase class (Advanced Trade) against the coinbase dialect."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import ClassVar

import pytest
from ccxt.base import errors as E

from borsa_sim.dialects.coinbase_auth import new_credentials
from borsa_testing.exchange_contract import ExchangeContract, amount_for, dec

pytestmark = [pytest.mark.contract, pytest.mark.integration]

D = Decimal


class TestCoinbase(ExchangeContract):
    exchange_id = "coinbase"
    symbol = "BTC/USD"
    market_id = "BTC-USD"
    # ccxt cannot fetch by client id: fetch_order(None, ...) requests /orders/historical/None.
    fetch_by_client_id = False
    errors: ClassVar[dict[str, type[Exception]]] = {
        **ExchangeContract.errors,
        # An expired JWT is a 401 {"error":"unauthorized"} (on /v2: {"errors":[{"id":"expired_token"}]}).
        # ccxt's InvalidNonce rule ("request timestamp expired") sits behind the exact match of
        # "authentication_error", so no Coinbase answer to a stale request gives more than AuthenticationError.
        "stale": E.AuthenticationError,
        # Failed creates are {"success":false,"error_response":{"preview_failure_reason":...}}; ccxt maps only
        # PREVIEW_INSUFFICIENT_FUND (and a stop-price reason), so size, cost, step and tick failures
        # (PREVIEW_INVALID_BASE_SIZE_TOO_SMALL, ..._QUOTE_SIZE_TOO_SMALL, ..._SIZE_PRECISION,
        # ..._PRICE_PRECISION) are plain ExchangeErrors.
        "below_min_amount": E.ExchangeError,
        "below_min_cost": E.ExchangeError,
        "amount_step": E.ExchangeError,
        "price_tick": E.ExchangeError,
        # 404 {"error":"NOT_FOUND","error_details":"valid product_id is required"}: NOT_FOUND is not in ccxt's
        # exact table (only lower-case "not_found" is, as an ExchangeError).
        "unknown_symbol": E.ExchangeError,
        # 404 {"error":"NOT_FOUND","message":"order with this orderID was not found"}: ccxt's broad rule looks
        # for "order with self orderID was not found" (its transpiler turned "this" into "self").
        "unknown_order": E.ExchangeError,
        # 429 {"errors":[{"id":"rate_limit_exceeded"}]} is an exact match: RateLimitExceeded, not just DDoS.
        "rate_limited": E.RateLimitExceeded,
    }

    def client_id_params(self, client_order_id: str) -> dict:
        # ccxt drops the unified clientOrderId and sends its own "ccxt-<uuid>" unless the raw field is given.
        return {"client_order_id": client_order_id}

    def market_buy_price(self, price: Decimal) -> float | None:
        return float(price)  # ccxt turns amount x price into quote_size

    async def stale_request(self, ex) -> None:
        # ccxt stamps the JWT with its own clock (nbf = now, exp = now + 120 s): five minutes behind is expired.
        ex.seconds = lambda: int(time.time()) - 300
        await ex.fetch_balance()

    async def unknown_symbol_request(self, ex) -> None:
        await ex.v3PublicGetBrokerageMarketProductsProductId({"product_id": "NOPE-USD"})

    def wrong_secret(self, credentials: dict) -> dict:
        return {**credentials, "secret": new_credentials()["secret"]}

    def wrong_key(self, credentials: dict) -> dict:
        return {**credentials, "apiKey": f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"}

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        return await ex.v3PrivatePostBrokerageOrders(
            {
                "client_order_id": str(uuid.uuid4()),
                "product_id": ex.market(symbol or self.symbol)["id"],
                "side": side.upper(),
                "order_configuration": {
                    "limit_limit_gtc": {
                        "base_size": format(amount, "f"),
                        "limit_price": format(price, "f"),
                        "post_only": False,
                    }
                },
            }
        )

    def unknown_order_id(self) -> str:
        return str(uuid.uuid4())

    def malformed_requests(self) -> list[tuple[str, str, str]]:
        products = "/api/v3/brokerage/market/products"
        return [
            ("GET", f"{products}/BTC-USD/candles?granularity=FOREVER&start=1&end=2", ""),
            ("GET", f"{products}/BTC-USD/candles?granularity=ONE_MINUTE&start=yesterday&end=today", ""),
            ("GET", f"{products}/BTC-USD/candles?granularity=ONE_MINUTE", ""),
            ("GET", f"{products}/BTC-USD/candles?granularity=ONE_MINUTE&start=0&end=9999999999", ""),
            ("GET", f"{products}/BTC-USD/ticker?limit=-5", ""),
            ("GET", f"{products}/btc_usd/ticker?limit=1", ""),
            ("GET", f"{products}?product_type=OPTIONS", ""),
            ("GET", f"{products}?limit=lots", ""),
            ("GET", "/api/v3/brokerage/market/product_book", ""),
            ("GET", "/api/v3/brokerage/market/product_book?product_id=BTC-USD&limit=many", ""),
            ("GET", "/v2/exchange-rates?currency=NOPE", ""),
            ("POST", "/api/v3/brokerage/orders", "{not json"),
            ("POST", "/api/v3/brokerage/orders/batch_cancel", '{"order_ids": 7}'),
            ("GET", "/api/v3/brokerage/orders/historical/batch?order_status=SOMETIMES", ""),
            ("GET", "/v2/accounts?limit=1000", ""),
            ("PUT", "/api/v3/brokerage/orders", ""),
            ("GET", "/api/v3/brokerage/nowhere", ""),
        ]

    # -- overrides, where Coinbase (through ccxt) works otherwise ---------------------------------------------------
    async def test_market_buy_fills_at_once_with_taker_fee(self, ex, admin, account) -> None:
        """Coinbase buys at market by quote funds: ccxt sends quote_size = amount x price, so the base filled is
        what those funds buy at the ask, not the requested amount (the shared test wants the amount exactly)."""
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        amount = amount_for(spec, price)
        funds = (amount * price // spec.price_tick) * spec.price_tick  # ccxt's cost_to_precision truncates
        before = await ex.fetch_balance()
        order = await ex.create_order(self.symbol, "market", "buy", float(amount), self.market_buy_price(price))
        trades = await self.wait_for(lambda: ex.fetch_my_trades(self.symbol))
        assert all(t["order"] == order["id"] for t in trades)
        cost = sum(dec(t["cost"]) for t in trades)
        filled = sum(dec(t["amount"]) for t in trades)
        top_ask = max(dec(t["price"]) for t in trades)
        # Every cent of the funds is spent, up to what one more amount step would have cost.
        assert funds - top_ask * spec.amount_step < cost <= funds
        fee = sum(dec(t["fee"]["cost"]) for t in trades)
        assert trades[0]["fee"]["currency"] == spec.quote
        assert abs(fee / cost - spec.taker) < D("0.0000001"), fee / cost
        after = await ex.fetch_balance()
        assert dec(after[spec.base]["total"]) == dec(before[spec.base]["total"]) + filled
        assert dec(after[spec.quote]["total"]) < dec(before[spec.quote]["total"]) - cost * D("0.999")
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "closed"
        assert dec(fetched["filled"]) == filled
        assert dec(fetched["info"]["order_configuration"]["market_market_ioc"]["quote_size"]) == funds

    async def test_duplicate_open_client_order_id_is_rejected(self, ex, admin, account) -> None:
        """Coinbase's create order is idempotent on client_order_id (Create Order reference: if the id is not
        unique, no order is created and the order with that id is returned instead). So the second create
        succeeds with the same order instead of failing, and the exchange still holds exactly one order."""
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.8")) // spec.price_tick) * spec.price_tick
        amount = float(amount_for(spec, limit))
        cid = self.new_client_id()
        first = await ex.create_order(self.symbol, "limit", "buy", amount, float(limit), self.client_id_params(cid))
        again = await ex.create_order(self.symbol, "limit", "buy", amount, float(limit), self.client_id_params(cid))
        assert again["id"] == first["id"]
        assert again["clientOrderId"] == cid
        mine = [o for o in await admin.orders(self.exchange_id, account["account_id"]) if o["client_order_id"] == cid]
        assert len(mine) == 1
        assert mine[0]["status"] == "open"
        await ex.cancel_order(first["id"], self.symbol)
