"""Paper keys through the connector: the same subjects, replies and events as live trading, filled by the
connector against the exchange's market data with its precision and fees, balances kept in Postgres across a
restart, and not one request to the exchange's private API.

Real NATS, Postgres, simulator and connector processes.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import nats
import pytest

from borsa_proto import decode
from borsa_proto import requests as rq
from borsa_proto.exchange import BalanceReply, Market, Ticker
from borsa_proto.orders import Order, OrderEvent
from borsa_proto.subjects import balance, market, order_cancel, order_create, order_events, ticker
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import QUOTES, SEALING_KEY, SYMBOLS, store_key

pytestmark = [pytest.mark.integration]

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
ENV = {"BORSA_RATE_LIMIT_SCALE": "100", "BORSA_REQUEST_TIMEOUT_MS": "3000", "BORSA_ORDER_POLL_MS": "300"}


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", ",".join(EXCHANGES), "--rate-limit-scale", "100", "--seed", "21").url


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    server = start_nats(tmp_path_factory.mktemp("nats-paper"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def connector(bus, sim, migrated_database, connector_factory):
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


async def balances(nc, exchange: str, account: str) -> dict:
    reply = await request(nc, balance(exchange), rq.BalanceRequest(account=account), BalanceReply, timeout=15)
    return reply.balances


async def next_event(sub, kind: str, timeout: float = 20) -> OrderEvent:
    async with asyncio.timeout(timeout):
        while True:
            event = decode((await sub.next_msg(timeout=timeout)).data, OrderEvent)
            if event.kind == kind:
                return event


def private_requests(stats: dict, exchange: str) -> int:
    """Requests to the exchange's private API: those carrying a key (balance, orders, trades)."""
    private_words = ("account", "order", "Balance", "Order", "Trade", "fills", "transaction_summary")
    endpoints = stats.get(exchange, {}).get("endpoints", {})
    return sum(
        counts.get("requests", 0)
        for endpoint, counts in endpoints.items()
        if any(word in endpoint for word in private_words) and "/market/" not in endpoint
    )


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_paper_account_fills_with_fees_and_keeps_its_balance_across_a_restart(nc, db, sim, connector, exchange):
    quote, symbol = QUOTES[exchange], SYMBOLS[exchange]
    account = await store_key(db, exchange, None, mode="paper", paper_balances={quote: "50000"})
    first = connector(exchange)
    async with SimAdmin(sim) as admin:
        stats_before = await admin.stats()
    rules = await request(nc, market(exchange), rq.MarketRequest(symbol=symbol), Market)
    assert (await balances(nc, exchange, account))[quote].free == Decimal("50000")

    sub = await nc.jetstream().subscribe(order_events(exchange, account), ordered_consumer=True)
    try:
        bought = await request(
            nc,
            order_create(exchange),
            rq.OrderCreateRequest(
                account=account,
                client_order_id=f"paper-{uuid.uuid4().hex}",
                symbol=symbol,
                side="buy",
                type="market",
                amount=Decimal("0.0123456789"),
            ),
            Order,
            timeout=20,
        )
        assert bought.status == "closed" and bought.amount == bought.filled
        assert bought.amount % rules.precision.amount == 0 and bought.amount <= Decimal("0.0123456789")
        assert bought.fee is not None and bought.fee.currency == quote
        assert bought.fee.cost == pytest.approx(bought.cost * rules.taker, rel=Decimal("0.000001"))
        filled = await next_event(sub, "filled")
        assert filled.order.id == bought.id and sum(f.amount for f in filled.fills) == bought.filled
        assert all(f.fee_cost is not None and f.fee_currency == quote for f in filled.fills)
    finally:
        await sub.unsubscribe()

    after = await balances(nc, exchange, account)
    assert after["BTC"].total == bought.filled
    assert after[quote].total == Decimal("50000") - bought.cost - bought.fee.cost

    # A resting limit sell holds its BTC; a restart keeps balances and the open order.
    last = (await request(nc, ticker(exchange), rq.TickerRequest(symbol=symbol), Ticker)).last
    resting = await request(
        nc,
        order_create(exchange),
        rq.OrderCreateRequest(
            account=account,
            client_order_id=f"paper-{uuid.uuid4().hex}",
            symbol=symbol,
            side="sell",
            type="limit",
            amount=bought.filled,
            price=last * 2,
        ),
        Order,
        timeout=20,
    )
    assert resting.status == "open"
    held = await balances(nc, exchange, account)
    assert held["BTC"].used == bought.filled and held["BTC"].free == 0

    first.stop()
    connector(exchange)
    assert await balances(nc, exchange, account) == held
    canceled = await request(
        nc,
        order_cancel(exchange),
        rq.OrderCancelRequest(account=account, symbol=symbol, client_order_id=resting.client_order_id),
        Order,
        timeout=20,
    )
    assert canceled.status == "canceled" and canceled.id == resting.id
    assert (await balances(nc, exchange, account))["BTC"].free == bought.filled

    with pytest.raises(E.InsufficientFunds):
        await request(
            nc,
            order_create(exchange),
            rq.OrderCreateRequest(
                account=account,
                client_order_id=f"paper-{uuid.uuid4().hex}",
                symbol=symbol,
                side="buy",
                type="limit",
                amount=Decimal("100"),
                price=last,
            ),
            Order,
            timeout=20,
        )
    async with SimAdmin(sim) as admin:
        assert private_requests(await admin.stats(), exchange) == private_requests(stats_before, exchange)
