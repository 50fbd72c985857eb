"""A small client for the simulator's admin API and for real ccxt classes pointed at the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from borsa_runtime.simurl import point_to_sim

# Options that keep ccxt's load_markets to spot endpoints (see shared research, ccxt-offline.md section 1).
SPOT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
    "kraken": {},
    "coinbase": {},
    "kucoin": {"fetchMarkets": {"types": ["spot"], "fetchTickersFees": False}},
}


def ccxt_client(
    exchange_id: str,
    sim_url: str,
    credentials: dict[str, str] | None = None,
    timeout_ms: int = 10_000,
    *,
    pro: bool = False,
    **options: Any,
):
    """The REAL ccxt async class for `exchange_id` (its ccxt.pro class with `pro=True`), its REST and websocket
    URLs pointed at the simulator."""
    if pro:
        import ccxt.pro as ccxt_async
    else:
        import ccxt.async_support as ccxt_async

    config = {
        "enableRateLimit": False,
        "timeout": timeout_ms,
        "options": {**SPOT_OPTIONS.get(exchange_id, {}), **options},
        **(credentials or {}),
    }
    return point_to_sim(getattr(ccxt_async, exchange_id)(config), sim_url)


class SimAdmin:
    """`/_sim/` admin calls. Use as `async with SimAdmin(url) as admin:`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimAdmin:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._session is not None
        await self._session.close()

    async def _call(self, method: str, path: str, **kwargs) -> Any:
        assert self._session is not None, "use SimAdmin as an async context manager"
        async with self._session.request(method, f"{self.url}/_sim{path}", **kwargs) as response:
            data = await response.json()
            if response.status >= 400:
                raise AssertionError(f"{method} /_sim{path} -> {response.status}: {data}")
            return data

    async def create_account(self, exchange: str, balances: dict[str, str | Decimal]) -> dict:
        body = {"exchange": exchange, "balances": {k: str(v) for k, v in balances.items()}}
        return await self._call("POST", "/accounts", json=body)

    async def accounts(self, exchange: str | None = None) -> list[dict]:
        params = {"exchange": exchange} if exchange else {}
        return (await self._call("GET", "/accounts", params=params))["accounts"]

    async def balances(self, exchange: str, account_id: str) -> dict:
        for account in await self.accounts(exchange):
            if account["account_id"] == account_id:
                return account["balances"]
        raise AssertionError(f"no account {account_id} on {exchange}")

    async def orders(self, exchange: str | None = None, account: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("exchange", exchange), ("account", account)) if v}
        return (await self._call("GET", "/orders", params=params))["orders"]

    async def fill_order(self, exchange: str, order_id: str, amount: str | Decimal) -> dict:
        """Fill `amount` of a resting limit order at its price now (a partial fill, or the rest); the order after."""
        body = {"exchange": exchange, "order_id": str(order_id), "amount": str(amount)}
        return (await self._call("POST", "/orders/fill", json=body))["order"]

    async def stats(self) -> dict:
        return (await self._call("GET", "/stats"))["exchanges"]

    async def add_fault(self, **fault: Any) -> list[dict]:
        return (await self._call("POST", "/faults", json=fault))["faults"]

    async def clear_faults(self, exchange: str | None = None) -> None:
        await self._call("DELETE", "/faults", params={"exchange": exchange} if exchange else {})

    async def drop_ws(self, exchange: str | None = None, refuse_ms: int = 0) -> dict[str, int]:
        """Close the simulator's websocket connections; refuse new ones for `refuse_ms`."""
        body = {"refuse_ms": refuse_ms, **({"exchange": exchange} if exchange else {})}
        return (await self._call("POST", "/ws/drop", json=body))["dropped"]

    async def reset_limits(self) -> None:
        await self._call("POST", "/limits/reset")

    async def set_price(self, exchange: str, symbol: str, price: str | Decimal) -> dict:
        return await self._call("POST", "/prices", json={"exchange": exchange, "symbol": symbol, "price": str(price)})

    async def script_candles(self, exchange: str, symbol: str, closes: list[str | Decimal]) -> dict:
        """Make the last closed one-minute candles of `symbol` close at `closes` (oldest first)."""
        body = {"exchange": exchange, "symbol": symbol, "closes": [str(c) for c in closes]}
        return await self._call("POST", "/candles", json=body)

    async def prices(self, exchange: str) -> dict[str, str]:
        return (await self._call("GET", "/prices", params={"exchange": exchange}))["prices"][exchange]

    async def pause(self, paused: bool = True) -> None:
        await self._call("POST", "/prices", json={"paused": paused})

    async def health(self) -> dict:
        return await self._call("GET", "/health")
