"""Order tracking driven by private order streams (ccxt.pro watch_orders against the simulator): Binance's user
data stream, Kraken's WebSocket v2 `executions`, KuCoin's private push channel and Coinbase's `user` channel, each
through the same checks.

With a poll interval far longer than the test, a fill reaches BORSA_ORDERS within seconds only when the stream is
on; with it off, the fill waits for the next poll. A dropped stream puts the account back on normal polling, the
fill still arrives once, and the stream comes back. Real NATS, Postgres, simulator and connector processes.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from decimal import Decimal

import aiohttp
import asyncpg
import nats
import pytest

from borsa_proto.orders import OrderEvent
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import SEALING_KEY, store_key

from .test_orders import cid, create, events_of, last_price

pytestmark = [pytest.mark.integration]


@dataclass(frozen=True)
class Case:
    exchange: str
    symbol: str
    balances: dict
    fee: tuple[str, str | None]  # (currency, cost of the 0.01 BTC maker fill, or None where it depends on the price)


CASES = {
    "binance": Case("binance", "BTC/USDT", {"USDT": "100000", "BTC": "2"}, ("BTC", "0.00001")),
    # Kraken charges its fee in the quote currency.
    "kraken": Case("kraken", "BTC/USD", {"USD": "100000", "BTC": "2"}, ("USD", None)),
    # KuCoin too, at 0.1 % of the cost.
    "kucoin": Case("kucoin", "BTC/USDT", {"USDT": "100000", "BTC": "2"}, ("USDT", None)),
    # Coinbase too (0.6 % maker), its `user` channel pushing the order as a whole.
    "coinbase": Case("coinbase", "BTC/USD", {"USD": "100000", "BTC": "2"}, ("USD", None)),
}
# Far longer than any test here: an event that arrives within seconds was not brought by a poll.
LONG_POLL = {"BORSA_ORDER_POLL_MS": "60000"}
FAST = {"BORSA_RATE_LIMIT_SCALE": "100", "BORSA_REQUEST_TIMEOUT_MS": "3000"}
SOON = 8.0  # seconds: "before the poll could have", with room for a slow machine
QUIET = 3.0  # seconds without the fill's event, where the stream brings it well within one


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", ",".join(CASES), "--rate-limit-scale", "100", "--seed", "11").url


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


@pytest.fixture
def connector(request, tmp_path_factory, sim, database_factory, connector_factory, case):
    """A connector of `case`'s exchange with the settings in `request.param`, its own NATS server and database:
    (nats url, process, database url). Started per test, so a long poll interval has not come round yet."""
    server = start_nats(tmp_path_factory.mktemp("nats-streams"))
    database = database_factory()
    env = {"BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": database, **FAST, **request.param}
    try:
        process = connector_factory(case.exchange, server.url, sim, env=env)
        try:
            yield server.url, process, database
        finally:
            process.stop()
    finally:
        server.stop()


def settings(**env: str):
    return pytest.mark.parametrize("connector", [env], indirect=True, ids=[env.get("BORSA_ORDER_WS", "")])


@pytest.fixture
async def admin(sim, case):
    async with SimAdmin(sim) as client:
        yield client
        await client.drop_ws(case.exchange, refuse_ms=0)


@pytest.fixture
async def trading(connector, admin, case):
    """A funded key of `case`'s exchange stored for the connector: (process, account id, credentials, NATS)."""
    nats_url, process, database = connector
    made = await admin.create_account(case.exchange, case.balances)
    conn = await asyncpg.connect(database)
    try:
        account = await store_key(conn, case.exchange, made["credentials"])
    finally:
        await conn.close()
    nc = await nats.connect(nats_url)
    try:
        yield process, account, made["credentials"], nc
    finally:
        await nc.close()


async def metric(process, name: str) -> float:
    exchange = process.exchange
    async with aiohttp.ClientSession() as session, session.get(process.ops_url + "/metrics") as response:
        text = await response.text()
    found = re.search(rf'^{name}{{exchange="{exchange}"}} ([0-9.e+-]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def until_metric(process, name: str, value: float, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while await metric(process, name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value}"
        await asyncio.sleep(0.1)


async def rest_below(nc, case: Case, account: str, factor: str = "0.97"):
    """A limit buy resting below the market."""
    price = (await last_price(nc, case.exchange)) * Decimal(factor)
    return await create(
        nc,
        case.exchange,
        account=account,
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=price,
        client_order_id=cid(),
    )


def filled(order_id: str):
    return lambda events: any(e.kind == "filled" and e.order.id == order_id for e in events)


def assert_no_duplicates(events: list[OrderEvent]) -> None:
    assert len({e.event_id for e in events}) == len(events), [e.event_id for e in events]
    trades = [f.trade_id for e in events for f in e.fills]
    assert len(set(trades)) == len(trades), trades
    finals = [(e.order.id, e.kind) for e in events if e.kind in ("filled", "canceled")]
    assert len(set(finals)) == len(finals), finals


@settings(**LONG_POLL, BORSA_ORDER_WS="auto", BORSA_ORDER_WS_LINGER_MS="500")
async def test_the_stream_brings_a_fill_long_before_the_next_poll(trading, admin, case):
    process, account, credentials, nc = trading
    order = await rest_below(nc, case, account)
    await until_metric(process, "borsa_connector_order_streams_up", 1)
    await admin.set_price(case.exchange, case.symbol, order.price * Decimal("0.98"))
    started = time.monotonic()
    events = await events_of(nc, case.exchange, account, filled(order.id), timeout=SOON)
    assert filled(order.id)(events), [e.kind for e in events]
    assert time.monotonic() - started < SOON
    (final,) = [e for e in events if e.kind == "filled"]
    (fill,) = final.fills
    assert fill.trade_id and fill.amount == Decimal("0.01") and fill.price == order.price
    currency, cost = case.fee
    assert fill.fee_currency == currency and fill.fee_cost > 0
    assert cost is None or fill.fee_cost == Decimal(cost)
    assert_no_duplicates(events)
    assert await metric(process, "borsa_connector_order_stream_updates_total") >= 1  # the trade
    # Nothing left to follow: the stream is closed once it lingered.
    await until_metric(process, "borsa_connector_order_streams", 0)
    log = process.log_path.read_text()
    assert credentials["secret"] not in log and credentials["apiKey"] not in log


@settings(**LONG_POLL, BORSA_ORDER_WS="auto")
async def test_a_partial_fill_comes_by_the_stream_too(trading, admin, case):
    process, account, _, nc = trading
    order = await rest_below(nc, case, account)
    await until_metric(process, "borsa_connector_order_streams_up", 1)
    await admin.fill_order(case.exchange, order.id, "0.004")  # a counterparty takes part of it

    def part_filled(events) -> bool:
        return any(e.kind == "updated" and e.fills for e in events)

    events = await events_of(nc, case.exchange, account, part_filled, timeout=SOON)
    (update,) = [e for e in events if e.kind == "updated" and e.fills]
    (fill,) = update.fills
    assert (fill.amount, fill.price, update.order.filled, update.order.status) == (
        Decimal("0.004"),
        order.price,
        Decimal("0.004"),
        "open",
    )
    assert fill.trade_id and fill.fee_cost > 0

    await admin.fill_order(case.exchange, order.id, "0.006")  # and then the rest
    events = await events_of(nc, case.exchange, account, filled(order.id), timeout=SOON)
    (final,) = [e for e in events if e.kind == "filled"]
    assert [f.amount for f in final.fills] == [Decimal("0.006")]  # the first part was published before
    assert_no_duplicates(events)


@settings(**LONG_POLL, BORSA_ORDER_WS="off")
async def test_without_the_stream_the_fill_waits_for_the_poll(trading, admin, case):
    process, account, _, nc = trading
    order = await rest_below(nc, case, account)
    await admin.set_price(case.exchange, case.symbol, order.price * Decimal("0.98"))
    events = await events_of(nc, case.exchange, account, filled(order.id), timeout=QUIET)
    assert [e.kind for e in events] == ["created"]
    assert await metric(process, "borsa_connector_order_streams") == 0
    filled_at_sim = [o for o in await admin.orders(case.exchange) if str(o["id"]) == order.id]
    assert filled_at_sim[0]["status"] == "filled"  # it did fill; only the poll has not come yet


# Polled every second without a stream, every minute with one.
@settings(BORSA_ORDER_POLL_MS="1000", BORSA_ORDER_WS_FALLBACK_POLL_MS="60000", BORSA_ORDER_WS="auto")
async def test_a_dropped_stream_falls_back_to_polling_and_comes_back(trading, admin, case):
    process, account, _, nc = trading
    first = await rest_below(nc, case, account, "0.97")
    second = await rest_below(nc, case, account, "0.80")  # keeps the account followed after the first fills
    await until_metric(process, "borsa_connector_order_streams_up", 1)

    await admin.drop_ws(case.exchange, refuse_ms=60_000)  # and it stays down
    await until_metric(process, "borsa_connector_order_streams_up", 0, timeout=5)
    await admin.set_price(case.exchange, case.symbol, first.price * Decimal("0.99"))
    events = await events_of(nc, case.exchange, account, filled(first.id), timeout=SOON)
    assert filled(first.id)(events), [e.kind for e in events]
    assert await metric(process, "borsa_connector_order_stream_failures_total") >= 1

    await admin.drop_ws(case.exchange, refuse_ms=0)  # the outage ends: the stream is reopened (with backoff)
    await until_metric(process, "borsa_connector_order_streams_up", 1, timeout=40)
    await admin.set_price(case.exchange, case.symbol, second.price * Decimal("0.99"))
    events = await events_of(nc, case.exchange, account, filled(second.id), timeout=SOON)
    assert filled(second.id)(events), [e.kind for e in events]
    assert_no_duplicates(events)
    assert sorted(e.kind for e in events) == ["created", "created", "filled", "filled"]
