"""Trading through the connectors, on all four exchanges: orders rounded to the market, placed exactly once
(concurrent repeats, repeats after a fill, ambiguous answers), tracked to the end with their fills published to
BORSA_ORDERS, and every error code a trader can meet.

Real NATS (with JetStream), Postgres, simulator and connector processes; the real ccxt classes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import nats
import pytest

from borsa_proto import decode
from borsa_proto import requests as rq
from borsa_proto.exchange import Market, Ticker
from borsa_proto.orders import OpenOrdersReply, Order, OrderEvent
from borsa_proto.subjects import market, order_cancel, order_create, order_events, order_get, orders_open, ticker
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import CREATE_PATHS, QUOTES, SEALING_KEY, SYMBOLS, store_key

pytestmark = [pytest.mark.integration, pytest.mark.contract]

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
FAST = {"BORSA_RATE_LIMIT_SCALE": "100", "BORSA_REQUEST_TIMEOUT_MS": "3000", "BORSA_ORDER_POLL_MS": "300"}


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", ",".join(EXCHANGES), "--rate-limit-scale", "100", "--seed", "7").url


@pytest.fixture(scope="module")
def database(database_factory) -> str:
    return database_factory()


@pytest.fixture(scope="module")
def bus(tmp_path_factory, sim, database, connector_factory):
    """This module's NATS server and one connector per exchange on it, reading this module's database."""
    server = start_nats(tmp_path_factory.mktemp("nats-orders"))
    env = {"BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": database, **FAST}
    started = [connector_factory(exchange, server.url, sim, env=env) for exchange in EXCHANGES]
    try:
        yield server.url
    finally:
        for process in started:
            process.stop()
        server.stop()


@pytest.fixture
async def nc(bus):
    client = await nats.connect(bus)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(database):
    conn = await asyncpg.connect(database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def admin(sim):
    async with SimAdmin(sim) as client:
        yield client
        await client.clear_faults()


async def new_account(admin: SimAdmin, db, exchange: str, quote: str = "100000", base: str = "2") -> tuple[str, str]:
    """A funded simulator account and its stored key: (Borsa account id, simulator account id)."""
    made = await admin.create_account(exchange, {QUOTES[exchange]: quote, "BTC": base})
    return await store_key(db, exchange, made["credentials"]), made["account_id"]


def cid() -> str:
    return f"test-{uuid.uuid4().hex}"


async def create(nc, exchange: str, timeout: float = 20, **fields) -> Order:
    fields.setdefault("symbol", SYMBOLS[exchange])
    fields.setdefault("client_order_id", cid())
    return await request(nc, order_create(exchange), rq.OrderCreateRequest(**fields), Order, timeout=timeout)


async def last_price(nc, exchange: str) -> Decimal:
    reply = await request(nc, ticker(exchange), rq.TickerRequest(symbol=SYMBOLS[exchange]), Ticker, timeout=10)
    return reply.last


async def market_of(nc, exchange: str) -> Market:
    return await request(nc, market(exchange), rq.MarketRequest(symbol=SYMBOLS[exchange]), Market, timeout=10)


async def sim_orders(admin: SimAdmin, exchange: str, sim_account: str) -> list[dict]:
    return await admin.orders(exchange, sim_account)


def create_requests(stats: dict, exchange: str) -> int:
    method, path = CREATE_PATHS[exchange]
    endpoints = stats.get(exchange, stats).get("endpoints", stats.get(exchange, {}))
    total = 0
    for endpoint, counts in endpoints.items():
        verb, _, route = endpoint.partition(" ")
        if verb == method and route.endswith(path.rsplit("*", 1)[-1]):
            total += counts.get("requests", 0) if isinstance(counts, dict) else counts
    return total


async def events_of(nc, exchange: str, account: str, until, timeout: float = 20) -> list[OrderEvent]:
    """Order events of one account from BORSA_ORDERS (from the start), until `until(events)` holds."""
    js = nc.jetstream()
    sub = await js.subscribe(order_events(exchange, account), ordered_consumer=True)
    events: list[OrderEvent] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(events):
                msg = await sub.next_msg(timeout=timeout)
                events.append(decode(msg.data, OrderEvent))
    except TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return events


# -- placing, rounding, cancelling ---------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_limit_order_is_sent_rounded_then_canceled(nc, db, admin, exchange):
    account, sim_account = await new_account(admin, db, exchange)
    rules = await market_of(nc, exchange)
    price = (await last_price(nc, exchange)) * Decimal("0.7")  # far below the market: it rests
    amount = Decimal("0.0123456789123")
    order = await create(nc, exchange, account=account, side="buy", type="limit", amount=amount, price=price)

    assert order.status == "open" and order.exchange == exchange and order.account == account
    assert order.symbol == SYMBOLS[exchange] and order.market_id == rules.market_id
    assert order.amount <= amount and order.amount % rules.precision.amount == 0  # truncated, never up
    assert amount - order.amount < rules.precision.amount
    assert order.price <= price and order.price % rules.precision.price == 0  # a buy never pays more
    placed = await sim_orders(admin, exchange, sim_account)
    assert len(placed) == 1 and str(placed[0]["id"]) == order.id
    assert Decimal(placed[0]["amount"]) == order.amount and Decimal(placed[0]["price"]) == order.price

    listed = await request(nc, orders_open(exchange), rq.OpenOrdersRequest(account=account), OpenOrdersReply)
    assert [(o.id, o.client_order_id) for o in listed.orders] == [(order.id, order.client_order_id)]

    canceled = await request(
        nc,
        order_cancel(exchange),
        rq.OrderCancelRequest(account=account, symbol=SYMBOLS[exchange], client_order_id=order.client_order_id),
        Order,
        timeout=20,
    )
    assert canceled.id == order.id and canceled.status == "canceled"
    fetched = await request(
        nc, order_get(exchange), rq.OrderGetRequest(account=account, symbol=rules.market_id, id=order.id), Order
    )
    assert fetched.status == "canceled" and fetched.client_order_id == order.client_order_id
    assert [o["status"] for o in await sim_orders(admin, exchange, sim_account)] == ["canceled"]


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_market_order_fills_and_its_fills_are_published_with_fees(nc, db, admin, exchange):
    account, sim_account = await new_account(admin, db, exchange)
    order = await create(nc, exchange, account=account, side="buy", type="market", amount=Decimal("0.01"))
    assert order.amount == Decimal("0.01") and order.price is None

    events = await events_of(nc, exchange, account, lambda evs: any(e.kind == "filled" for e in evs))
    final = [e for e in events if e.kind == "filled"]
    assert len(final) == 1, [e.kind for e in events]
    fills = [f for e in events for f in e.fills]
    assert fills, "the fill event carries the trades"
    filled = final[0].order.filled
    assert sum(f.amount for f in fills) == filled
    if exchange == "coinbase":  # a market buy is sized in quote (amount x price), so the base filled is close
        assert abs(filled - Decimal("0.01")) / Decimal("0.01") < Decimal("0.01")
    else:
        assert filled == Decimal("0.01")
    for fill in fills:
        assert fill.trade_id and fill.price > 0 and fill.fee_cost is not None and fill.fee_cost > 0
        assert fill.fee_currency
    assert len({f.trade_id for f in fills}) == len(fills)  # each fill once
    sim_fills = [f for o in await sim_orders(admin, exchange, sim_account) for f in o.get("fills", [])]
    if sim_fills:
        assert sorted(Decimal(str(f["amount"])) for f in sim_fills) == sorted(f.amount for f in fills)


# -- exactly once ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_the_same_create_sent_twenty_times_at_once_places_one_order(nc, db, admin, exchange):
    account, sim_account = await new_account(admin, db, exchange)
    price = (await last_price(nc, exchange)) * Decimal("0.8")
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "limit", "amount": Decimal("0.01")}
    replies = await asyncio.gather(*(create(nc, exchange, price=price, **fields) for _ in range(20)))
    assert len({r.id for r in replies}) == 1
    assert len(await sim_orders(admin, exchange, sim_account)) == 1
    again = await create(nc, exchange, price=price, **fields)  # and later, once more
    assert again.id == replies[0].id
    assert len(await sim_orders(admin, exchange, sim_account)) == 1


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_a_create_repeated_after_its_order_filled_is_not_placed_again(nc, db, admin, exchange):
    """Binance and KuCoin take a client id again once the first order is closed: the connector must not."""
    account, sim_account = await new_account(admin, db, exchange)
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "market", "amount": Decimal("0.01")}
    first = await create(nc, exchange, **fields)
    second = await create(nc, exchange, **fields)
    assert second.id == first.id
    assert len(await sim_orders(admin, exchange, sim_account)) == 1


async def test_a_client_id_reused_for_another_order_is_refused(nc, db, admin):
    account, _ = await new_account(admin, db, "binance")
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "market"}
    await create(nc, "binance", amount=Decimal("0.01"), **fields)
    with pytest.raises(E.BadRequest, match="client_order_id"):
        await create(nc, "binance", amount=Decimal("0.02"), **fields)


@pytest.mark.parametrize("exchange", EXCHANGES)
@pytest.mark.parametrize("fault", [{"status": 500}, {"status": 503}, {"timeout": True}], ids=["500", "503", "timeout"])
async def test_an_order_accepted_behind_an_error_is_found_not_placed_twice(nc, db, admin, exchange, fault):
    account, sim_account = await new_account(admin, db, exchange)
    method, path = CREATE_PATHS[exchange]
    await admin.add_fault(exchange=exchange, endpoint=path, method=method, phase="after", count=1, **fault)
    price = (await last_price(nc, exchange)) * Decimal("0.8")
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "limit", "amount": Decimal("0.01")}
    try:
        order = await create(nc, exchange, price=price, **fields)
    except E.BorsaError as error:  # not confirmed and not visible yet: retryable, and the retry finds it
        failure = error
        order = await create(nc, exchange, price=price, **fields)
    else:
        failure = None
    assert failure is None or failure.retryable, failure
    retried = await create(nc, exchange, price=price, **fields)
    assert retried.id == order.id
    placed = await sim_orders(admin, exchange, sim_account)
    assert [str(o["id"]) for o in placed] == [order.id]


@pytest.mark.parametrize("exchange", ["binance", "kraken"])  # a lookup by client id, and a scan of the listings
async def test_a_create_refused_after_an_unanswered_attempt_leaves_no_claim_behind(nc, db, admin, exchange):
    """The first send never reached the exchange (no answer); the retry takes the claim over, the exchange refuses
    it, and the claim is released: nothing left for order tracking to chase, and the id can be sent afresh."""
    account, sim_account = await new_account(admin, db, exchange, quote="10")
    method, path = CREATE_PATHS[exchange]
    await admin.add_fault(exchange=exchange, endpoint=path, method=method, timeout=True, count=1)
    price = (await last_price(nc, exchange)) * Decimal("0.9")
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "limit", "amount": Decimal("1")}
    with pytest.raises(E.BorsaError) as unanswered:
        await create(nc, exchange, price=price, **fields)
    assert unanswered.value.retryable, unanswered.value
    claims = "SELECT state, attempt FROM connector_orders WHERE account_id = $1"
    assert [tuple(r) for r in await db.fetch(claims, uuid.UUID(account))] == [("sending", 1)]
    with pytest.raises(E.InsufficientFunds):
        await create(nc, exchange, price=price, **fields)
    assert await db.fetch(claims, uuid.UUID(account)) == []
    assert await sim_orders(admin, exchange, sim_account) == []


# -- errors -------------------------------------------------------------------------------------------------------
async def test_an_order_below_the_minimum_is_refused_without_calling_the_exchange(nc, db, admin):
    account, _ = await new_account(admin, db, "kraken")
    rules = await market_of(nc, "kraken")
    before = create_requests(await admin.stats(), "kraken")
    with pytest.raises(E.InvalidOrder, match="amount") as caught:
        await create(
            nc,
            "kraken",
            account=account,
            side="buy",
            type="limit",
            amount=rules.limits.amount.min / 2,
            price=Decimal("1000"),
        )
    assert "kraken" in caught.value.message
    assert create_requests(await admin.stats(), "kraken") == before
    assert await db.fetchval("SELECT count(*) FROM connector_orders WHERE account_id = $1", uuid.UUID(account)) == 0
    await create(nc, "kraken", account=account, side="buy", type="market", amount=rules.limits.amount.min * 2)
    assert create_requests(await admin.stats(), "kraken") == before + 1  # the count does see a create


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_not_enough_funds_is_insufficient_funds(nc, db, admin, exchange):
    account, _ = await new_account(admin, db, exchange, quote="10")
    price = await last_price(nc, exchange)
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "limit", "amount": Decimal("1")}
    with pytest.raises(E.InsufficientFunds):
        await create(nc, exchange, price=price * Decimal("0.9"), **fields)
    # Refused, so not recorded as placed: after a deposit the same create goes through.
    assert await db.fetchval("SELECT count(*) FROM connector_orders WHERE account_id = $1", uuid.UUID(account)) == 0


@pytest.mark.parametrize("exchange", EXCHANGES)
async def test_an_unknown_order_is_order_not_found(nc, db, admin, exchange):
    account, _ = await new_account(admin, db, exchange)
    with pytest.raises(E.OrderNotFound):
        await request(
            nc,
            order_get(exchange),
            rq.OrderGetRequest(account=account, symbol=SYMBOLS[exchange], client_order_id="never-sent-1"),
            Order,
            timeout=20,
        )


async def test_an_unknown_account_is_unknown_account(nc):
    with pytest.raises(E.UnknownAccount):
        await create(nc, "binance", account=str(uuid.uuid4()), side="buy", type="market", amount=Decimal("0.01"))


async def test_a_refused_key_is_auth_failed_and_nothing_is_placed(nc, db, admin):
    made = await admin.create_account("binance", {"USDT": "1000"})
    account = await store_key(db, "binance", {**made["credentials"], "secret": "not-the-secret"})
    with pytest.raises(E.AuthFailed):
        await create(nc, "binance", account=account, side="buy", type="market", amount=Decimal("0.01"))
    assert await admin.orders("binance", made["account_id"]) == []


async def test_an_exchange_rate_limit_is_rate_limited_with_retry_after(nc, db, admin):
    account, sim_account = await new_account(admin, db, "kucoin")
    method, path = CREATE_PATHS["kucoin"]
    await admin.add_fault(exchange="kucoin", endpoint=path, method=method, status=429, count=1)
    fields = {"account": account, "client_order_id": cid(), "side": "buy", "type": "market", "amount": Decimal("0.01")}
    with pytest.raises(E.RateLimited) as caught:
        await create(nc, "kucoin", **fields)
    assert caught.value.retryable
    # A 429 means the order was not taken: the same create is sent once the limit allows.
    await admin.clear_faults()
    await asyncio.sleep((caught.value.retry_after_ms or 0) / 1000)
    order = await create(nc, "kucoin", **fields)
    assert [str(o["id"]) for o in await sim_orders(admin, "kucoin", sim_account)] == [order.id]


async def test_a_stored_order_is_what_was_sent_and_fits_the_exchange_client_id_rules(nc, db, admin):
    """Kraken takes at most 18 characters: a longer id is fitted deterministically, and the reply keeps ours."""
    account, sim_account = await new_account(admin, db, "kraken")
    client_order_id = f"bot-{uuid.uuid4()}-000001"
    order = await create(
        nc,
        "kraken",
        account=account,
        client_order_id=client_order_id,
        side="buy",
        type="market",
        amount=Decimal("0.01"),
    )
    assert order.client_order_id == client_order_id
    query = "SELECT sent_client_order_id, state, amount, order_id FROM connector_orders WHERE client_order_id = $1"
    row = await db.fetchrow(query, client_order_id)  # recorded before it was sent
    assert row["amount"] == Decimal("0.01")
    async with asyncio.timeout(10):  # and its exchange id right after the reply
        while (row := await db.fetchrow(query, client_order_id))["state"] != "placed":
            await asyncio.sleep(0.05)
    assert row["order_id"] == order.id
    assert len(row["sent_client_order_id"]) <= 18
    placed = await sim_orders(admin, "kraken", sim_account)
    assert [o["client_order_id"] for o in placed] == [row["sent_client_order_id"]]
    assert json.loads(json.dumps(placed[0], default=str))  # the simulator saw a plain order
