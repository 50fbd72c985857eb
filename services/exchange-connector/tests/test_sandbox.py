"""Sandbox keys talk to the exchange's testnet (ccxt's sandbox URLs); exchanges without one refuse sandbox keys.

No network: building a client makes no request, and its URLs say where it would send them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from borsa_connector.exchanges.registry import resolve_exchange
from borsa_runtime import errors as E

KEY = {"apiKey": "k" * 16, "secret": "c2VjcmV0c2VjcmV0c2VjcmV0"}


def api_urls(client) -> set[str]:
    out = set()

    def walk(value) -> None:
        if isinstance(value, str) and value.startswith("http"):
            out.add(urlsplit(value).hostname)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(client.urls["api"])
    return out


def api(exchange: str, sim_url: str | None = None):
    exchange_id, cls = resolve_exchange(exchange)
    return cls(exchange_id, sim_url=sim_url)


async def test_a_binance_sandbox_key_targets_the_testnet_hosts() -> None:
    binance = api("binance")
    live, sandbox = binance.account_client(KEY, "live"), binance.account_client(KEY, "sandbox")
    try:
        assert "api.binance.com" in api_urls(live)
        hosts = api_urls(sandbox)
        assert all(host.startswith("testnet.") for host in hosts), hosts  # spot and futures testnets, nothing live
        assert sandbox.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
        assert sandbox.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
        assert binance.describe().modes == ["live", "sandbox", "paper"]
    finally:
        for client in (live, sandbox, binance.public):
            await client.close()


async def test_under_the_simulator_a_sandbox_key_keeps_the_testnet_paths() -> None:
    binance = api("binance", sim_url="http://127.0.0.1:9")
    sandbox = binance.account_client(KEY, "sandbox")
    try:
        assert api_urls(sandbox) == {"127.0.0.1"}
        assert sandbox.urls["api"]["public"] == "http://127.0.0.1:9/binance/api/v3"
    finally:
        await sandbox.close()
        await binance.public.close()


@pytest.mark.parametrize("exchange", ["kraken", "coinbase", "kucoin"])
async def test_an_exchange_without_a_testnet_refuses_sandbox_keys(exchange: str) -> None:
    without = api(exchange)
    try:
        assert "sandbox" not in without.describe().modes
        with pytest.raises(E.NotSupported, match=f"{exchange} has no sandbox"):
            without.account_client({}, "sandbox")
    finally:
        await without.public.close()
