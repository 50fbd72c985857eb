"""The gateway's test stack: real Postgres (migrated), NATS, simulator, connectors and a gateway process."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from borsa_runtime.sealing import generate_keypair
from borsa_testing.processes import start_gateway, start_nats


@pytest.fixture(scope="module")
def stack(database_url, sim_factory, connector_factory, tmp_path_factory):
    from borsa_db import migrate

    # A NATS server of the stack's own: connectors other test modules left running on the shared one would join
    # the queue groups (and answer without the sealing key).
    nats_server = start_nats(tmp_path_factory.mktemp("gateway-nats"))
    nats_url = nats_server.url

    name = f"gw_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    dsn = database_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(migrate(dsn))
    private, public = generate_keypair()
    sim = sim_factory("--seed", "11", "--rate-limit-scale", "100", "--exchanges", "kraken,kucoin,binance")
    # Markets read again every 3 s, so a market the simulator halts shows up within the tests.
    env = {"BORSA_SEALING_KEY": private, "DATABASE_URL": dsn, "BORSA_RATE_LIMIT_SCALE": "100"}
    env["BORSA_MARKETS_REFRESH_MINUTES"] = "0.05"
    connectors = [connector_factory(ex, nats_url, sim.url, env=env) for ex in ("kraken", "kucoin")]
    gateway_env = {
        "BORSA_SEALING_PUBLIC_KEY": public,
        "BORSA_EXCHANGES": "binance,kraken,coinbase,kucoin",
        "BORSA_LOGIN_ATTEMPTS": "3",
    }
    gateway = start_gateway(nats_url, dsn, env=gateway_env, workdir=tmp_path_factory.mktemp("gateway"))
    yield {
        "url": gateway.url,
        "sim": sim.url,
        "dsn": dsn,
        "nats": nats_url,
        "gateway": gateway,
        "gateway_env": gateway_env,
        "connectors": connectors,
    }
    gateway.stop()
    for connector in connectors:
        connector.stop()
    nats_server.stop()
