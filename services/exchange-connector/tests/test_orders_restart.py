"""Exactly once across a killed connector: SIGKILL after the order reached the exchange and before the reply, a
restart, the create retried: one order. And what changed while the connector was down is published after it
restarts (reconciliation).

Real NATS, Postgres, simulator and connector processes; each test starts and kills its own connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

import asyncpg
import nats
import pytest

from borsa_proto import decode
from borsa_proto import requests as rq
from borsa_proto.exchange import Ticker
from borsa_proto.orders import Order, OrderEvent
from borsa_proto.subjects import order_create, order_events, ticker
from borsa_runtime.request import request
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import CREATE_PATHS, QUOTES, SEALING_KEY, SYMBOLS, store_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
ENV = {"BORSA_RATE_LIMIT_SCALE": "100", "BORSA_REQUEST_TIMEOUT_MS": "3000", "BORSA_ORDER_POLL_MS": "300"}


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", ",".join(EXCHANGES), "--rate-limit-scale", "100", "--seed", "9").url


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    server = start_nats(tmp_path_factory.mktemp("nats-restart"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def connector(bus, sim, migrated_database, connector_factory):
    """Start (again) the connector of `exchange` on this test's database; every one is stopped after the test."""
    started = []

    def start(exchange: str):
        env = {"BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": migrated_database, **ENV}
        process = connector_factory(exchange, bus, sim, env=env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
async def nc(bus):
    client = await nats.connect(bus)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(migrated_database):
    conn = await asyncpg.connect(migrated_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def admin(sim):
    async with SimAdmin(sim) as client:
        yield client
        await client.clear_faults()


async def wait_for(predicate, timeout: float = 20.0, every: float = 0.05):
    async with asyncio.timeout(timeout):
        while not (result := await predicate()):
            await asyncio.sleep(every)
    return result


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_connector_killed_between_sending_and_replying_places_one_order(nc, db, admin, connector, exchange):
    made = await admin.create_account(exchange, {QUOTES[exchange]: "100000", "BTC": "1"})
    account = await store_key(db, exchange, made["credentials"])
    first = connector(exchange)
    last = (await request(nc, ticker(exchange), rq.TickerRequest(symbol=SYMBOLS[exchange]), Ticker)).last
    create = rq.OrderCreateRequest(
        account=account,
        client_order_id=f"bot-{uuid.uuid4()}-1",
        symbol=SYMBOLS[exchange],
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=last * Decimal("0.8"),
    )
    # The simulator takes the order, then holds the answer: the connector dies in between.
    method, path = CREATE_PATHS[exchange]
    await admin.add_fault(exchange=exchange, endpoint=path, method=method, phase="after", latency_ms=5000, count=1)
    pending = asyncio.create_task(request(nc, order_create(exchange), create, Order, timeout=30))
    placed = await wait_for(lambda: admin.orders(exchange, made["account_id"]))
    first.kill()
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pending

    connector(exchange)
    retried = await request(nc, order_create(exchange), create, Order, timeout=30)
    assert [str(o["id"]) for o in placed] == [retried.id]
    assert retried.client_order_id == create.client_order_id and retried.status == "open"
    again = await request(nc, order_create(exchange), create, Order, timeout=30)
    assert again.id == retried.id
    assert len(await admin.orders(exchange, made["account_id"])) == 1


async def test_fills_that_happened_while_the_connector_was_down_are_published_after_restart(nc, db, admin, connector):
    exchange, symbol = "binance", SYMBOLS["binance"]
    made = await admin.create_account(exchange, {"USDT": "100000"})
    account = await store_key(db, exchange, made["credentials"])
    first = connector(exchange)
    last = (await request(nc, ticker(exchange), rq.TickerRequest(symbol=symbol), Ticker)).last
    create = rq.OrderCreateRequest(
        account=account,
        client_order_id=f"bot-{uuid.uuid4()}-1",
        symbol=symbol,
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=last * Decimal("0.95"),
    )
    order = await request(nc, order_create(exchange), create, Order, timeout=30)
    assert order.status == "open"
    first.kill()

    # While nobody watches, the market falls through the order's price and fills it.
    await admin.set_price(exchange, symbol, last * Decimal("0.9"))
    await wait_for(lambda: _status(admin, exchange, made["account_id"], "filled"))

    connector(exchange)
    js = nc.jetstream()
    sub = await js.subscribe(order_events(exchange, account), ordered_consumer=True)
    events: list[OrderEvent] = []
    try:
        async with asyncio.timeout(30):
            while not any(e.kind == "filled" for e in events):
                events.append(decode((await sub.next_msg(timeout=30)).data, OrderEvent))
    finally:
        await sub.unsubscribe()
    final = next(e for e in events if e.kind == "filled")
    assert final.order.id == order.id and final.order.filled == Decimal("0.01")
    sim_order = (await admin.orders(exchange, made["account_id"]))[0]
    published = [f for e in events for f in e.fills]
    # The exchange's own trade ids (Binance numbers them its way), one per simulator fill, same amounts and prices.
    assert len({f.trade_id for f in published}) == len(published) == len(sim_order["fills"])
    assert sorted((f.amount, f.price) for f in published) == sorted(
        (Decimal(f["amount"]), Decimal(f["price"])) for f in sim_order["fills"]
    )
    assert sum(f.amount for f in published) == Decimal("0.01")


async def _status(admin: SimAdmin, exchange: str, account: str, status: str) -> bool:
    return any(o["status"] == status for o in await admin.orders(exchange, account))
