"""The rules of a typical BTC market on each of the four exchanges, handed to tests that ask for `rules` (each in
turn) or `markets` (all of them by exchange)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from borsa_strategies.base import MarketRules

MARKETS = {
    "binance": MarketRules(
        "BTC/USDT",
        "BTC",
        "USDT",
        amount_step=D("0.00001"),
        price_step=D("0.01"),
        min_amount=D("0.00001"),
        min_cost=D("5"),
    ),
    "kraken": MarketRules(
        "BTC/USD", "BTC", "USD", amount_step=D("0.00000001"), price_step=D("0.1"), min_amount=D("0.0001")
    ),
    "coinbase": MarketRules(
        "BTC/USD", "BTC", "USD", amount_step=D("0.00000001"), price_step=D("0.01"), min_cost=D("1")
    ),
    "kucoin": MarketRules(
        "BTC/USDT",
        "BTC",
        "USDT",
        amount_step=D("0.00000001"),
        price_step=D("0.1"),
        min_amount=D("0.00001"),
        min_cost=D("0.1"),
    ),
}


@pytest.fixture(scope="session")
def markets() -> dict[str, MarketRules]:
    return MARKETS


@pytest.fixture(params=sorted(MARKETS), scope="session")
def rules(request: pytest.FixtureRequest) -> MarketRules:
    return MARKETS[request.param]
