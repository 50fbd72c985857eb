"""Fixtures of the private websocket tests (test_binance_ws, test_kraken_ws, test_kucoin_ws): a simulator of one
exchange, its admin client, a funded account and a REST + ccxt.pro client pair.

A module that uses them names its exchange in `EXCHANGE` and its market in `SYMBOL`. Modules with fixtures of the
same names (the REST dialect tests, the contract classes) keep their own: those override these.
"""

from __future__ import annotations

import pytest

from borsa_testing.sim import SimAdmin, ccxt_client


@pytest.fixture(scope="module")
def solo_sim_url(request: pytest.FixtureRequest, sim_factory) -> str:
    """A simulator of the module's exchange alone, so no other module moves its prices. Not named `sim_url`: that
    is the plugin's shared simulator, which test_admin uses."""
    return sim_factory("--exchanges", request.module.EXCHANGE, "--seed", "7", "--tick-interval", "0.25").url


@pytest.fixture
async def admin(request: pytest.FixtureRequest, solo_sim_url: str):
    async with SimAdmin(solo_sim_url) as admin:
        await admin.pause(True)  # prices move only when a test moves them
        yield admin
        await admin.drop_ws(request.module.EXCHANGE, refuse_ms=0)  # a failed drop test leaves no outage behind
        await admin.pause(False)


@pytest.fixture
async def account(request: pytest.FixtureRequest, admin: SimAdmin) -> dict:
    """Funded for the module's market: 100000 of its quote currency, 2 of its base."""
    base, quote = request.module.SYMBOL.split("/")
    return await admin.create_account(request.module.EXCHANGE, {quote: "100000", base: "2"})


@pytest.fixture
async def clients(request: pytest.FixtureRequest, solo_sim_url: str, account: dict):
    """A REST client and a ccxt.pro client of the same key, sharing one market table."""
    exchange = request.module.EXCHANGE
    rest = ccxt_client(exchange, solo_sim_url, account["credentials"])
    pro = ccxt_client(exchange, solo_sim_url, account["credentials"], pro=True)
    try:
        await rest.load_markets()
        pro.set_markets_from_exchange(rest)
        yield rest, pro
    finally:
        await rest.close()
        await pro.close()
