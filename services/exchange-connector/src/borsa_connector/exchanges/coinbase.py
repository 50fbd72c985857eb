"""Coinbase Advanced Trade."""

from __future__ import annotations

import asyncio

from .ccxt_api import CcxtExchangeAPI, Quirks


class CoinbaseAPI(CcxtExchangeAPI):
    quirks: Quirks = {
        # ccxt drops the unified clientOrderId and sends its own "ccxt-<uuid>" unless the raw param is given.
        "client_order_id_param": "client_order_id",
        "client_order_id_max_length": 64,
        # ccxt asks /orders/historical/None for a client id: orders are found by scanning instead.
        "fetch_order_by_client_id": False,
        # ccxt turns amount x price into quote_size for a market buy (createMarketBuyOrderRequiresPrice).
        "market_buy_needs_price": True,
        # CDP keys: the key name is organizations/{org}/apiKeys/{id} and the secret an EC private key in PEM;
        # ccxt picks ES256 JWT auth from that shape (Ed25519 and legacy HMAC keys sign differently).
        "secret_format": "pem",
        "credential_labels": {"apiKey": "API key name (organizations/…/apiKeys/…)", "secret": "Private key (PEM)"},
        "ohlcv_max_limit": 300,
        # The WebSocket's `user` channel (a JWT without uri in each subscribe), which the simulator speaks too;
        # Coinbase sends the open orders as a snapshot at once, so the stream is up with its first message.
        "ws_orders": True,
        "notes": (
            "Advanced Trade fees start at 0.60% maker and 1.20% taker, in the quote currency.",
            "A market buy is sized in the quote currency (quote_size).",
        ),
    }

    async def subscribe_orders(self, client) -> bool:
        # Coinbase answers a subscribe to `user` with the open orders (a snapshot) at once, and a refused JWT with an
        # error message that ccxt.pro 4.5.90 raises inside its message handler, where no watch hears of it: wait
        # for the snapshot, so that a stream that was refused fails (and is retried) instead of waiting forever.
        snapshot = asyncio.ensure_future(client.watch_orders())
        await self._confirmation(client, {snapshot}, "snapshot")
        snapshot.result()  # raises what the watch failed with
        return True
