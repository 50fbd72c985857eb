"""A key's secrets, followed through the whole platform while a bot trades with it: never in a log of any Borsa
process (gateway, connectors, bot runner, reporting), on the bus, in an HTTP answer or in any database table.

No browser here: the module shares the UI tier's platform fixture, the one place where every service runs.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import asyncpg
import nats
import pytest

from borsa_testing.sim import SimAdmin

from .conftest import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_a_trading_keys_secrets_never_leave_their_sealed_column(platform: Platform) -> None:
    seen_on_bus: list[bytes] = []
    nc = await nats.connect(platform.nats_url)

    async def record(msg) -> None:
        seen_on_bus.append(msg.subject.encode() + b" " + msg.data + b" " + str(msg.headers or "").encode())

    await nc.subscribe(">", cb=record)
    answers: list[str] = []
    async with aiohttp.ClientSession() as http, SimAdmin(platform.sim_url) as admin:

        async def call(method: str, path: str, body=None, token: str | None = None, expect: int = 200):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(method, f"{platform.url}/api/v1{path}", json=body, headers=headers) as response:
                text = await response.text()
                answers.append(text)
                assert response.status == expect, (method, path, response.status, text)
                return await response.json()

        email = f"canary{uuid.uuid4().hex[:8]}@example.com"
        token = (await call("POST", "/auth/register", {"email": email, "password": "correct horse"}, expect=201))[
            "access_token"
        ]
        made = await admin.create_account("kucoin", {"USDT": "1000"})
        credentials = made["credentials"]
        key = await call(
            "POST",
            "/api-keys",
            {"exchange": "kucoin", "label": "canary", "mode": "live", "credentials": credentials},
            token,
            201,
        )
        bot = await call(
            "POST",
            "/bots",
            {
                "api_key_id": key["id"],
                "symbol": "BTC/USDT",
                "strategy": "dca",
                "params": {"quote_amount": "20", "interval_seconds": 3600},
            },
            token,
            201,
        )
        await call("POST", f"/bots/{bot['id']}/start", token=token)
        async with asyncio.timeout(60):  # the buy placed, filled, reported
            while not await call("GET", f"/trades?bot_id={bot['id']}", token=token):
                await asyncio.sleep(0.5)
        await call("POST", f"/bots/{bot['id']}/stop", token=token)
        assert await admin.orders("kucoin", made["account_id"])  # it did trade on the key
    await nc.flush()
    await nc.close()

    secrets = {"secret": credentials["secret"], "passphrase": credentials["password"]}
    conn = await asyncpg.connect(platform.database_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        dumps = {t: "\n".join(str(dict(r)) for r in await conn.fetch(f'SELECT * FROM "{t}"')) for (t,) in tables}
    finally:
        await conn.close()
    logs = {str(p.log_path): p.log_path.read_text() for p in platform.processes}
    assert len(logs) == 5 and all(logs.values()), sorted(logs)
    for name, secret in secrets.items():
        assert not any(secret in a for a in answers), name
        assert not any(secret.encode() in m for m in seen_on_bus), name
        assert [log for log, text in logs.items() if secret in text] == [], name
        assert [t for t, dump in dumps.items() if secret in dump] == [], name
