"""Stored API keys and trading helpers for tests that place orders through connectors."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from borsa_runtime.sealing import generate_keypair, seal, to_wire

# One sealing keypair for the test run: connectors started with SEALING_KEY open keys stored with `store_key`.
SEALING_KEY, SEALING_PUBLIC_KEY = generate_keypair()
# Markets with room for small orders on every simulated exchange, by exchange.
QUOTES = {"binance": "USDT", "kraken": "USD", "coinbase": "USD", "kucoin": "USDT"}
SYMBOLS = {"binance": "BTC/USDT", "kraken": "BTC/USD", "coinbase": "BTC/USD", "kucoin": "BTC/USDT"}
# Each exchange's create-order route at the simulator (method, path pattern), for faults and request counts.
CREATE_PATHS = {
    "binance": ("POST", "/api/v3/order"),
    "kraken": ("POST", "/0/private/AddOrder"),
    "coinbase": ("POST", "/api/v3/brokerage/orders"),
    "kucoin": ("POST", "/api/v1/*orders"),
}


def sealed(credentials: dict[str, str], public_key: str = SEALING_PUBLIC_KEY) -> str:
    """Credentials as the gateway sends them on the bus: sealed for the connectors, base64."""
    return to_wire(seal(credentials, public_key))


async def store_key(
    db,
    exchange: str,
    credentials: dict[str, str] | None,
    mode: str = "live",
    *,
    paper_balances: dict[str, str | Decimal] | None = None,
    public_key: str = SEALING_PUBLIC_KEY,
) -> str:
    """A row in api_keys as the gateway writes it (a new user each time); returns the key's id, the bus's
    `account`."""
    user = await db.fetchval(
        "INSERT INTO users (email, password_hash) VALUES ($1, 'argon2-hash') RETURNING id",
        f"{uuid.uuid4().hex}@example.test",
    )
    sealed_bytes = seal(credentials, public_key) if credentials is not None else None
    balances = json.dumps({k: str(v) for k, v in paper_balances.items()}) if paper_balances is not None else None
    key_id = await db.fetchval(
        "INSERT INTO api_keys (user_id, exchange_name, label, mode, sealed_credentials, key_hint, paper_balances) "
        "VALUES ($1, $2, 'test key', $3, $4, '', $5::jsonb) RETURNING id",
        user,
        exchange,
        mode,
        sealed_bytes,
        balances,
    )
    return str(key_id)
