"""The exchange contract for Kraken: the real `ccxt.async_support.kraken` against the simulator's Kraken dialect."""

from __future__ import annotations

import base64
import secrets
import uuid
from decimal import Decimal
from typing import ClassVar

import pytest
from ccxt.base import errors as E

from borsa_testing.exchange_contract import ExchangeContract

pytestmark = [pytest.mark.contract, pytest.mark.integration]


def _b64(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size)).decode()


class TestKraken(ExchangeContract):
    exchange_id = "kraken"
    symbol = "BTC/USD"
    market_id = "XXBTZUSD"
    # What ccxt 4.5.90 really raises for Kraken's own messages (its exceptions table, kraken.py `describe`):
    errors: ClassVar[dict[str, type[Exception]]] = {
        **ExchangeContract.errors,
        # EAPI:Invalid signature is in neither of ccxt's tables: a bare ExchangeError.
        "wrong_secret": E.ExchangeError,
        # EOrder:Cost minimum not met is not mapped by ccxt either.
        "below_min_cost": E.ExchangeError,
        # "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals." matches no ccxt entry.
        "price_tick": E.ExchangeError,
        # Kraken answers EQuery:Unknown asset pair; ccxt gives BadSymbol only for "Invalid asset pair".
        "unknown_symbol": E.ExchangeError,
        # QueryOrders answers EOrder:Invalid order for a txid that is not the account's; ccxt's broad
        # ":Invalid order" makes it InvalidOrder (OrderNotFound is only for a txid missing from a good result).
        "unknown_order": E.InvalidOrder,
    }
    # ccxt cannot fetch a Kraken order by cl_ord_id: fetch_order turns clientOrderId into a `userref` filter and
    # still needs the txid (research ccxt-offline.md section 4). Cancel by cl_ord_id works (test_kraken_dialect).
    fetch_by_client_id = False
    # At this scale the limits are Kraken's documented numbers: the public counter (20, -1/s) stops
    # fetch_ticker after about twenty calls, right after load_markets' two.
    rate_limit_scale = "1"

    def new_client_id(self) -> str:
        # Kraken takes a UUID or free text of at most 18 ASCII characters as cl_ord_id.
        return "borsa" + uuid.uuid4().hex[:13]

    async def stale_request(self, ex) -> None:
        # Kraken has no timestamp window: a nonce not above the key's last one is stale. A client whose clock is
        # ten minutes behind (ccxt's timeDifference) and has forgotten its last nonce sends exactly that.
        await ex.fetch_balance()
        ex.options["timeDifference"] = 600_000
        ex.options["lastNonce"] = 0
        await ex.fetch_balance()

    async def unknown_symbol_request(self, ex) -> None:
        await ex.public_get_ticker({"pair": "XNOPEZUSD"})

    def wrong_secret(self, credentials: dict) -> dict:
        return {"apiKey": credentials["apiKey"], "secret": _b64(64)}

    def wrong_key(self, credentials: dict) -> dict:
        return {"apiKey": _b64(42), "secret": credentials["secret"]}

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        return await ex.private_post_addorder(
            {
                "pair": ex.market(symbol)["id"] if symbol else self.market_id,
                "type": side,
                "ordertype": "limit",
                "volume": format(amount, "f"),
                "price": format(price, "f"),
            }
        )

    def unknown_order_id(self) -> str:
        return "OQCLML-BW3P3-BUCMWZ"

    def malformed_requests(self) -> list[tuple[str, str, str]]:
        return [
            ("GET", "/0/public/Depth?pair=XXBTZUSD&count=lots", ""),
            ("GET", "/0/public/Depth", ""),
            ("GET", "/0/public/OHLC?pair=XXBTZUSD&interval=7", ""),
            ("GET", "/0/public/OHLC?pair=XXBTZUSD&since=yesterday", ""),
            ("GET", "/0/public/Ticker?pair=%25%25%25", ""),
            ("GET", "/0/public/AssetPairs?info=everything", ""),
            ("POST", "/0/public/AssetPairs", "{not json"),
            ("POST", "/0/public/Ticker", "[1, 2]"),
            ("POST", "/0/private/AddOrder", "{not json"),
            ("POST", "/0/private/BalanceEx", ""),
            ("GET", "/0/private/BalanceEx", ""),
            ("GET", "/0/public/NoSuchMethod", ""),
        ]
