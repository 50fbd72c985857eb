"""Kraken spot."""

from __future__ import annotations

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
        # A wrong private key is "EAPI:Invalid signature", which ccxt 4.5.90 raises as a plain ExchangeError.
        "key_refusals": ("EAPI:Invalid signature",),
        "notes": (
            "Fees start at 0.25% maker and 0.40% taker, charged in the quote currency.",
            "Each pair has its own minimum volume (ordermin) and minimum cost (costmin).",
        ),
    }
