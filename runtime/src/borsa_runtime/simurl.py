"""The URL rule of DESIGN section 5: point an exchange client's REST URLs at the Borsa simulator.

Every string in ccxt's `urls['api']` (recursively) keeps its path and gets `<sim>/<exchange id>` in place of
its scheme and host. Websocket URLs are left alone. Apply it after `set_sandbox_mode`, which replaces
`urls['api']` wholesale.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def rewrite_api_urls(api_urls: Any, sim_url: str, exchange_id: str) -> Any:
    base = sim_url.rstrip("/") + "/" + exchange_id

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            return base + parts.path + (("?" + parts.query) if parts.query else "")
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [rewrite(item) for item in value]
        return value

    return rewrite(api_urls)


def point_to_sim(exchange: Any, sim_url: str) -> Any:
    """Rewrite `exchange.urls['api']` in place (ccxt exchange object) and return the exchange."""
    exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], sim_url, exchange.id)
    return exchange
