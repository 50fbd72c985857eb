"""Which `BaseExchangeAPI` serves an exchange id: the four with quirks, aliases, and any other ccxt exchange."""

from __future__ import annotations

import difflib

import ccxt.async_support as ccxt_async

from .binance import BinanceAPI
from .ccxt_api import CcxtExchangeAPI
from .coinbase import CoinbaseAPI
from .kraken import KrakenAPI
from .kucoin import KucoinAPI

REGISTRY: dict[str, type[CcxtExchangeAPI]] = {
    "binance": BinanceAPI,
    "kraken": KrakenAPI,
    "coinbase": CoinbaseAPI,
    "kucoin": KucoinAPI,
}

# Names people use for the same exchange.
ALIASES = {
    "coinbaseadvanced": "coinbase",
    "coinbase-advanced": "coinbase",
    "coinbase_advanced": "coinbase",
    "binance-spot": "binance",
    "binancecom": "binance",
    "kraken-spot": "kraken",
    "kucoin-spot": "kucoin",
}


def resolve_exchange(name: str) -> tuple[str, type[CcxtExchangeAPI]]:
    """(canonical id, API class) for a name; the generic ccxt implementation for any other ccxt exchange."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in REGISTRY:
        return key, REGISTRY[key]
    if key in ccxt_async.exchanges:
        return key, CcxtExchangeAPI
    matches = difflib.get_close_matches(key, [*REGISTRY, *ALIASES, *ccxt_async.exchanges], n=5)
    hint = f"; did you mean {', '.join(matches)}?" if matches else ""
    raise ValueError(f"unknown exchange {name!r}: not a ccxt exchange id{hint}")
