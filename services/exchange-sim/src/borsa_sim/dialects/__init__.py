"""One dialect per exchange: its paths, parameters, envelopes, signatures, limits and error payloads."""

from __future__ import annotations

import importlib

from .base import Dialect

DIALECTS = {
    "binance": "borsa_sim.dialects.binance:BinanceDialect",
    "kraken": "borsa_sim.dialects.kraken:KrakenDialect",
    "coinbase": "borsa_sim.dialects.coinbase:CoinbaseDialect",
    "kucoin": "borsa_sim.dialects.kucoin:KucoinDialect",
}


def load_dialect(name: str) -> type[Dialect]:
    module, _, attr = DIALECTS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
