"""Kraken refuses a nonce not above every one it has seen for the key: one key's private requests are signed and
sent one at a time, so they reach Kraken in nonce order however many run at once. No network: `fetch` is faked."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import parse_qs

import pytest

from borsa_connector.exchanges.registry import resolve_exchange

pytestmark = pytest.mark.unit

KEY = {"apiKey": "k" * 16, "secret": "c2VjcmV0c2VjcmV0c2VjcmV0"}


async def test_concurrent_private_requests_arrive_in_nonce_order_one_at_a_time() -> None:
    exchange_id, cls = resolve_exchange("kraken")
    kraken = cls(exchange_id)
    client = kraken.account_client(KEY, "live")
    arrived: list[int] = []
    busy = [0]

    async def fetch(url, method="GET", headers=None, body=None):
        if "/private/" not in url:
            await asyncio.sleep(0.003)
            return {"error": [], "result": {"unixtime": 1}}
        busy[0] += 1
        assert busy[0] == 1, "two private requests of one key were on the wire at once"
        await asyncio.sleep(random.uniform(0, 0.003))  # a connection pool would let a later one overtake here
        arrived.append(int(parse_qs(body)["nonce"][0]))
        busy[0] -= 1
        return {"error": [], "result": {}}

    client.fetch = fetch
    client.enableRateLimit = False
    try:
        await asyncio.gather(*(client.privatePostBalance() for _ in range(30)))
        await asyncio.gather(client.publicGetTime(), client.privatePostBalance())  # public calls skip the lock
    finally:
        await client.close()
        await kraken.public.close()
    assert len(arrived) == 31
    assert arrived == sorted(arrived) and len(set(arrived)) == len(arrived)
