"""Fixtures of the private websocket tests (test_binance_ws, test_kraken_ws, test_kucoin_ws, test_coinbase_ws): a
simulator of one exchange, its admin client, a funded account, a REST + ccxt.pro client pair and an outage.

A module that uses them names its exchange in `EXCHANGE` and its market in `SYMBOL`. Modules with fixtures of the
same names (the REST dialect tests, the contract classes) keep their own: those override these.
"""

from __future__ import annotations

import asyncio

import pytest
from ccxt.base import errors as E

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


@pytest.fixture
def outage(request: pytest.FixtureRequest, admin: SimAdmin, clients):
    """`await outage(pending, redial)`: the module's exchange drops its sockets and refuses new ones; the watch
    under way (`pending`) fails, and so does `redial()` while the outage lasts; then it ends, and the ccxt.pro client
    may dial again at once."""
    exchange = request.module.EXCHANGE
    _, pro = clients

    async def run(pending, redial) -> None:
        assert await admin.drop_ws(exchange, refuse_ms=60_000) == {exchange: 1}
        with pytest.raises(E.NetworkError):
            await asyncio.wait_for(pending, 5)
        with pytest.raises(E.NetworkError):  # refused while the outage lasts
            await asyncio.wait_for(redial(), 5)
        await admin.drop_ws(exchange, refuse_ms=0)  # the outage ends
        pro.ws_dial_backoff = {}  # ccxt waits between dials to a failing url; these tests need not

    return run
