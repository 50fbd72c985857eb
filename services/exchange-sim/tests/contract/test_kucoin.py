"""The exchange contract for kucoin: ccxt's real kucoin class against the simulator's kucoin dialect."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal
from typing import ClassVar

import pytest
from ccxt.base import errors as E

from borsa_testing.exchange_contract import ExchangeContract
from borsa_testing.sim import ccxt_client

pytestmark = [pytest.mark.contract, pytest.mark.integration]


class TestKucoin(ExchangeContract):
    exchange_id = "kucoin"
    symbol = "BTC/USDT"
    market_id = "BTC-USDT"
    errors: ClassVar[dict[str, type[Exception]]] = {
        **ExchangeContract.errors,
        # {"code":"400100","msg":"Price increment invalid."}: KuCoin's own words for a price off the tick. ccxt has
        # no message rule for it, so it falls to code 400100, BadRequest (the size twin is an InvalidOrder).
        "price_tick": E.BadRequest,
        # {"code":"429000",...}: ccxt kucoin raises RateLimitExceeded, which in ccxt 4.5 is a NetworkError beside
        # DDoSProtection, not a subclass of it.
        "rate_limited": E.RateLimitExceeded,
    }
    # With SPOT_OPTIONS (fetchTickersFees off) ccxt reads no fee out of /api/v2/symbols: market maker/taker are
    # its static 0.1 % defaults. tests/test_kucoin_dialect.py checks the fees parsed from allTickers instead.
    market_fees_parsed = False

    def client_id_params(self, client_order_id: str) -> dict:
        return {"clientOrderId": client_order_id}  # sent as clientOid

    async def fetch_order_by_client_id(self, ex, client_order_id: str, symbol: str) -> dict:
        # GET /api/v1/order/client-order/{clientOid} (classic) or /api/v1/hf/orders/client-order/{clientOid}
        return await ex.fetch_order(None, symbol, {"clientOrderId": client_order_id})

    async def stale_request(self, ex) -> None:
        # ccxt stamps KC-API-TIMESTAMP with milliseconds() - timeDifference: 10 s is past KuCoin's 5 s window.
        ex.options["timeDifference"] = 10_000
        await ex.fetch_balance()

    async def unknown_symbol_request(self, ex) -> None:
        # Placing an order on a pair KuCoin does not list: {"code":"400100","msg":"Unsupported trading pair."}.
        await ex.private_post_orders(
            {
                "clientOid": str(uuid.uuid4()),
                "side": "buy",
                "symbol": "NOPE-USDT",
                "type": "limit",
                "size": "1",
                "price": "1",
            }
        )

    def wrong_secret(self, credentials: dict) -> dict:
        return {**credentials, "secret": str(uuid.uuid4())}

    def wrong_key(self, credentials: dict) -> dict:
        return {**credentials, "apiKey": secrets.token_hex(12)}

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        return await ex.private_post_orders(
            {
                "clientOid": str(uuid.uuid4()),
                "side": side,
                "symbol": ex.market(symbol or self.symbol)["id"],
                "type": "limit",
                "size": format(amount, "f"),
                "price": format(price, "f"),
            }
        )

    def unknown_order_id(self) -> str:
        return "5c35c02703aa673ceec2a168"  # an ObjectId like KuCoin's, never issued by this simulator

    def malformed_requests(self) -> list[tuple[str, str, str]]:
        return [
            ("GET", "/api/v1/market/stats", ""),
            ("GET", "/api/v1/market/stats?symbol=btc/usdt", ""),
            ("GET", "/api/v1/market/orderbook/level2_20?symbol=", ""),
            ("GET", "/api/v1/market/candles?symbol=BTC-USDT&type=7x", ""),
            ("GET", "/api/v1/market/candles?symbol=BTC-USDT&type=1min&startAt=yesterday", ""),
            ("GET", "/api/v1/market/candles?symbol=BTC-USDT&type=1min&endAt=-5", ""),
            ("GET", "/api/v2/symbols?market=%ZZ", ""),
            ("POST", "/api/v1/orders", "{not json"),
            ("POST", "/api/v1/hf/orders", '{"symbol": "BTC-USDT", "side": "buy"}'),
            ("DELETE", "/api/v1/orders/abc", ""),
            ("GET", "/api/v1/accounts?type=trade", ""),
            ("GET", "/api/v1/nowhere", ""),
            ("PUT", "/api/v1/orders", ""),
        ]


class TestKucoinHF(TestKucoin):
    """The same contract through the HF order family (/api/v1/hf/...), which ccxt uses for the whole session
    once `options['hf']` is true (set by /api/v1/hf/accounts/opened, or here up front)."""

    @pytest.fixture
    async def ex(self, sim_url: str, account: dict):
        client = ccxt_client(self.exchange_id, sim_url, account["credentials"], hf=True)
        try:
            yield client
        finally:
            await client.close()

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        return await ex.private_post_hf_orders(
            {
                "clientOid": str(uuid.uuid4()),
                "side": side,
                "symbol": ex.market(symbol or self.symbol)["id"],
                "type": "limit",
                "size": format(amount, "f"),
                "price": format(price, "f"),
            }
        )
