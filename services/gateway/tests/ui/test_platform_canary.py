"""A key's secrets, followed through the whole platform while a bot trades with it: never in a log of any Borsa
process (gateway, connectors, bot runner, reporting), on the bus, in an HTTP answer or in any database table.

No browser here: the module shares the UI tier's platform fixture, the one place where every service runs.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from borsa_testing.gateway import new_user
from borsa_testing.leaks import BusTap, found, table_texts
from borsa_testing.sim import SimAdmin

from .conftest import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_a_trading_keys_secrets_never_leave_their_sealed_column(platform: Platform) -> None:
    async with (
        BusTap(platform.nats_url) as bus,
        aiohttp.ClientSession() as http,
        SimAdmin(platform.sim_url) as admin,
    ):
        user = await new_user(http, platform.url)
        made = await admin.create_account("kucoin", {"USDT": "1000"})
        credentials = made["credentials"]
        body = {"exchange": "kucoin", "label": "canary", "mode": "live", "credentials": credentials}
        _, key = await user.call("POST", "/api-keys", body, 201)
        body = {"api_key_id": key["id"], "symbol": "BTC/USDT", "strategy": "dca"}
        body["params"] = {"quote_amount": "20", "interval_seconds": 3600}
        _, bot = await user.call("POST", "/bots", body, 201)
        await user.call("POST", f"/bots/{bot['id']}/start", expect=200)
        async with asyncio.timeout(60):  # the buy placed, filled, reported
            while not (await user.call("GET", f"/trades?bot_id={bot['id']}", expect=200))[1]:
                await asyncio.sleep(0.5)
        await user.call("POST", f"/bots/{bot['id']}/stop", expect=200)
        assert await admin.orders("kucoin", made["account_id"])  # it did trade on the key

    tables = await table_texts(platform.database_url)
    logs = [p.log_path for p in platform.processes]
    assert len(logs) == 5 and all(log.stat().st_size for log in logs), logs
    for secret in (credentials["secret"], credentials["password"]):
        assert found(secret, answers=user.answers, bus=bus, logs=logs, tables=tables) == []
    # The search reaches what it should: the bot's id is in the reports, on the bus and in the runner's tables.
    assert {"bus", "table bot_configs", "table report_fills"} <= set(found(bot["id"], bus=bus, tables=tables))
