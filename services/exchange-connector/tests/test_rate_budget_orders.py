"""Three Binance accounts placing orders as fast as they can through one connector, against the simulator
enforcing Binance's real limits (100 orders per 10 s per account, 6000 weight per minute per IP): not one 429,
and at least 80% of the allowed order rate used.

Real NATS, Postgres, simulator (limits at scale 1) and connector; 30 seconds of orders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import asyncpg
import nats
import pytest

from borsa_proto import requests as rq
from borsa_proto.exchange import Ticker
from borsa_proto.orders import Order
from borsa_proto.subjects import order_create, ticker
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import SEALING_KEY, store_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNTS = 3
WORKERS_PER_ACCOUNT = 6
SECONDS = 30.0
ORDERS_PER_10S = 100  # Binance's ORDERS limit per account, as the simulator enforces it at scale 1


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", "binance", "--rate-limit-scale", "1", "--seed", "3").url


async def test_three_binance_accounts_flat_out_never_hit_a_429_and_use_the_budget(
    tmp_path_factory, sim, migrated_database, connector_factory
):
    server = start_nats(tmp_path_factory.mktemp("nats-budget"))
    env = {
        "BORSA_SEALING_KEY": SEALING_KEY,
        "DATABASE_URL": migrated_database,
        "BORSA_RATE_LIMIT_SCALE": "1",
        "BORSA_REQUEST_TIMEOUT_MS": "5000",
    }
    process = connector_factory("binance", server.url, sim, env=env)
    nc = await nats.connect(server.url)
    db = await asyncpg.connect(migrated_database)
    try:
        async with SimAdmin(sim) as admin:
            accounts = []
            for _ in range(ACCOUNTS):
                made = await admin.create_account("binance", {"USDT": "1000000"})
                accounts.append((await store_key(db, "binance", made["credentials"]), made["account_id"]))
            last = (await request(nc, ticker("binance"), rq.TickerRequest(symbol="BTC/USDT"), Ticker)).last
            price = (last * Decimal("0.5")).quantize(Decimal("0.01"))  # rests: every order stays unfilled
            await admin.reset_limits()
            stats_before = await admin.stats()

            refused: list[E.BorsaError] = []
            started = time.monotonic()
            deadline = started + SECONDS

            async def worker(account: str) -> None:
                while time.monotonic() < deadline:
                    create = rq.OrderCreateRequest(
                        account=account,
                        client_order_id=f"flat-{uuid.uuid4().hex}",
                        symbol="BTC/USDT",
                        side="buy",
                        type="limit",
                        amount=Decimal("0.0002"),
                        price=price,
                    )
                    try:
                        await request(nc, order_create("binance"), create, Order, timeout=30)
                    except E.RateLimited as error:  # the connector's own refusal: nothing was sent
                        refused.append(error)
                        await asyncio.sleep((error.retry_after_ms or 100) / 1000)

            await asyncio.gather(*(worker(a) for a, _ in accounts for _ in range(WORKERS_PER_ACCOUNT)))
            elapsed = time.monotonic() - started
            stats = await admin.stats()
            placed = [len(await admin.orders("binance", sim_account)) for _, sim_account in accounts]
    finally:
        await db.close()
        await nc.close()
        process.stop()
        server.stop()

    limited = _count(stats, "rate_limited") - _count(stats_before, "rate_limited")
    assert limited == 0, f"the simulator answered {limited} requests with 429/418"
    allowed = ORDERS_PER_10S * elapsed / 10
    for count in placed:
        assert count >= 0.8 * allowed, f"{count} orders in {elapsed:.1f} s; allowed {allowed:.0f}: {placed}"
        assert count <= ORDERS_PER_10S * (elapsed // 10 + 1)


def _count(stats: dict, key: str) -> int:
    return stats.get("binance", {}).get("totals", {}).get(key, 0)
