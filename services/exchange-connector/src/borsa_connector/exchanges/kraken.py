"""Kraken spot."""

from __future__ import annotations

import asyncio

from .ccxt_api import CcxtExchangeAPI, Quirks


class KrakenAPI(CcxtExchangeAPI):
    quirks: Quirks = {
        # Kraken's own codes: people type XBTUSD and XDGUSD; ccxt's unified codes are BTC and DOGE.
        "currency_aliases": {"XBT": "BTC", "XDG": "DOGE"},
        # cl_ord_id: a UUID or free text of at most 18 ASCII characters (AddOrder reference).
        "client_order_id_max_length": 18,
        # ccxt turns a clientOrderId on fetch_order into a userref filter and still needs the txid.
        "fetch_order_by_client_id": False,
        # The private key is base64; ccxt base64-decodes it before signing.
        "secret_format": "base64",
        "credential_labels": {"apiKey": "API key", "secret": "Private key (base64)"},
        "ohlcv_max_limit": 720,
        # Orders name their pair by altname (XBTUSD); ccxt resolves it through options built by load_markets.
        "market_options": ("marketsByAltname",),
        # A wrong private key is "EAPI:Invalid signature", which ccxt 4.5.90 raises as a plain ExchangeError.
        "key_refusals": ("EAPI:Invalid signature",),
        # WebSocket v2 `executions` with a GetWebSocketsToken token, which the simulator speaks too. ccxt.pro 4.5.90
        # hands an `executions` message whose first entry is a `trade` to watch_my_trades, and a partial fill is
        # only that: the stream follows both.
        "ws_orders": True,
        "ws_trades": True,
        "notes": (
            "Fees start at 0.25% maker and 0.40% taker, charged in the quote currency.",
            "Each pair has its own minimum volume (ordermin) and minimum cost (costmin).",
        ),
    }

    def account_client(self, credentials: dict[str, str], mode: str, account: str | None = None):
        """Kraken refuses a nonce not above every one it has seen (EAPI:Invalid nonce): requests signed first must
        arrive first, so one key's private requests go one at a time (signing and sending under one lock), and
        their nonces strictly increase."""
        client = super().account_client(credentials, mode, account)
        # ccxt's nonce is the clock's millisecond: two requests within one millisecond would share it.
        clock_nonce, last = client.nonce, [0]

        def nonce() -> int:
            last[0] = max(int(clock_nonce()), last[0] + 1)
            return last[0]

        return _serialized(client, asyncio.Lock(), nonce)

    def stream_client(self, account_client, account: str):
        # The stream's GetWebSocketsToken is signed with the same key: it takes its nonce from the account client's
        # sequence and waits its turn on the same lock, or the two clients would refuse each other's nonces.
        client = super().stream_client(account_client, account)
        lock = getattr(account_client, "borsa_private_lock", None)
        return _serialized(client, lock, account_client.nonce) if lock is not None else client


def _serialized(client, lock: asyncio.Lock, nonce):
    fetch2 = client.fetch2

    async def serialized(path, api="public", method="GET", params=None, config=None):
        # ccxt's implicit methods pass `api` as a list (["private"]); fetch2's own callers may pass a string.
        if _api_name(api) == "private":
            async with lock:
                return await fetch2(path, api, method, params or {}, config or {})
        return await fetch2(path, api, method, params or {}, config or {})

    client.fetch2 = serialized
    client.nonce = nonce
    client.borsa_private_lock = lock
    return client


def _api_name(api) -> str:
    return api[0] if isinstance(api, (list, tuple)) and api else api
