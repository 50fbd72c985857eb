"""The URL rule of DESIGN section 5: point an exchange client's URLs at the Borsa simulator.

Every string in ccxt's `urls['api']` (recursively) keeps its path and gets `<sim>/<exchange id>` in place of
its scheme and host. Websocket URLs (`ws://`, `wss://`, present on ccxt.pro classes) follow the same rule with
the simulator's scheme turned into its websocket twin (`http` -> `ws`, `https` -> `wss`), so
`wss://ws-api.binance.com:443/ws-api/v3` becomes `ws://host:port/binance/ws-api/v3`. Apply it after
`set_sandbox_mode`, which replaces `urls['api']` wholesale.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

WS_SCHEMES = {"http": "ws", "https": "wss"}


def rewrite_api_urls(api_urls: Any, sim_url: str, exchange_id: str) -> Any:
    base = sim_url.rstrip("/") + "/" + exchange_id
    sim = urlsplit(base)
    ws_base = WS_SCHEMES.get(sim.scheme, sim.scheme) + base[len(sim.scheme) :]

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("http://", "https://", "ws://", "wss://")):
            parts = urlsplit(value)
            root = ws_base if parts.scheme in ("ws", "wss") else base
            return root + parts.path + (("?" + parts.query) if parts.query else "")
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        return value

    return rewrite(api_urls)


def point_to_sim(exchange: Any, sim_url: str) -> Any:
    """Rewrite `exchange.urls['api']` in place (ccxt exchange object, REST or ccxt.pro) and return it."""
    exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], sim_url, exchange.id)
    return exchange
