"""borsa-reporting against real NATS (JetStream) and Postgres: events in, report rows and reports out."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal as D
from pathlib import Path

import asyncpg
import nats
import pytest

from borsa_proto import encode
from borsa_proto.orders import Fill, Order, OrderEvent, OrderStatus, Side
from borsa_proto.reports import ReportRequest, SummaryReply, TradesReply
from borsa_proto.subjects import ORDERS_STREAM, order_events, reports
from borsa_reporting import events
from borsa_reporting.ingest import Ingest
from borsa_reporting.rates import Rates
from borsa_runtime.request import request
from borsa_runtime.streams import ensure_orders_stream
from borsa_testing.processes import ReportingProcess, start_nats, start_reporting
from borsa_testing.trading import store_key

pytestmark = [pytest.mark.integration]

ENV = {"BORSA_REPORTING_ACK_WAIT_SECONDS": "2", "BORSA_REPORTING_BATCH_WAIT_MS": "50"}
T0 = 1_790_000_000_000  # a fixed time, ms


@pytest.fixture(scope="module")
def servers(tmp_path_factory, database_factory):
    server = start_nats(Path(tmp_path_factory.mktemp("reporting-nats")))
    try:
        yield server.url, database_factory()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def reporting(servers, tmp_path_factory):
    started: list[ReportingProcess] = []

    def start() -> ReportingProcess:
        process = start_reporting(*servers, env=ENV, workdir=Path(tmp_path_factory.mktemp("reporting")))
        started.append(process)
        return process

    start()
    yield start
    for process in started:
        process.stop()


@pytest.fixture
async def db(servers):
    conn = await asyncpg.connect(servers[1])
    yield conn
    await conn.close()


@pytest.fixture
async def nc(servers):
    client = await nats.connect(servers[0])
    await ensure_orders_stream(client.jetstream())
    yield client
    await client.drain()


class Account:
    def __init__(self, exchange: str, key: str, user: str) -> None:
        self.exchange, self.key, self.user = exchange, key, user


async def account(db, exchange: str = "binance") -> Account:
    key = await store_key(db, exchange, None, "paper")
    user = await db.fetchval("SELECT user_id FROM api_keys WHERE id = $1", uuid.UUID(key))
    return Account(exchange, key, str(user))


def order(acc: Account, order_id: str, side: str, amount: str, filled: str, status: str, **kw) -> Order:
    return Order(
        exchange=acc.exchange,
        account=acc.key,
        id=order_id,
        client_order_id=kw.get("client_order_id", f"c-{order_id}"),
        symbol=kw.get("symbol", "BTC/USDT"),
        market_id=kw.get("market_id", "BTCUSDT"),
        side=Side(side),
        type="limit",
        status=OrderStatus(status),
        amount=D(amount),
        filled=D(filled),
        remaining=D(amount) - D(filled),
        price=D(kw.get("price", "100")),
        average=D(kw["average"]) if "average" in kw else None,
        cost=D(filled) * D(kw.get("price", "100")),
        fee=None,
        created_at=kw.get("created", T0),
        updated_at=kw.get("updated", T0),
    )


def fill(trade_id: str, price: str, amount: str, fee: str, currency: str, ts: int) -> Fill:
    return Fill(
        trade_id=trade_id, price=D(price), amount=D(amount), fee_cost=D(fee), fee_currency=currency, timestamp=ts
    )


async def publish(nc, acc: Account, kind: str, o: Order, fills: list[Fill], msg_id: str | None = None) -> None:
    event = OrderEvent(event_id=msg_id or uuid.uuid4().hex, kind=kind, order=o, fills=fills, timestamp=T0)
    await nc.jetstream().publish(
        order_events(acc.exchange, acc.key), encode(event), headers={"Nats-Msg-Id": event.event_id}
    )


async def summary(nc, acc: Account, group_by: str = "symbol", **kw) -> SummaryReply:
    req = ReportRequest(user_id=acc.user, group_by=group_by, **kw)
    return await request(nc, reports("summary"), req, SummaryReply, timeout=10)


async def until_fills(db, acc: Account, n: int, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetch(
            "SELECT * FROM report_fills WHERE account_id = $1 ORDER BY timestamp_ms, trade_id", uuid.UUID(acc.key)
        )
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


# The hand-computed case: two buys (fees in quote, then in base) and a sell over both lots.
BUY1 = ("o1", "buy", "1", [("t1", "100", "1", "0.1", "USDT", T0)])
BUY2 = ("o2", "buy", "1", [("t2", "120", "1", "0.001", "BTC", T0 + 1000)])
SELL = ("o3", "sell", "1.5", [("t3", "130", "1.5", "0.195", "USDT", T0 + 2000)])
# lot 1: 1 BTC at 100.1; lot 2: 0.999 BTC at 120/0.999. The sell closes lot 1 and 0.5 of lot 2.
REALIZED = D("194.805") - D("100.1") - D("0.5") * (D("120") / D("0.999"))


def near(value: D, expected: D) -> bool:
    """Equal but for the last digits of a division that does not end (120 / 0.999)."""
    return abs(value - expected) < D("1e-18")


def pnls(rows) -> list:
    return [r["realized_pnl"] if r["realized_pnl"] == 0 or not near(r["realized_pnl"], REALIZED) else "R" for r in rows]


async def publish_case(nc, acc: Account, order_of=None, sequence=(BUY1, BUY2, SELL)) -> None:
    for order_id, side, amount, fills in sequence:
        o = order(acc, order_id, side, amount, amount, "closed", price=fills[0][1])
        await publish(nc, acc, "filled", o, [fill(*f) for f in fills])


async def test_pnl_fees_and_volume_on_a_hand_computed_case(reporting, db, nc) -> None:
    acc = await account(db)
    await publish_case(nc, acc)
    rows = await until_fills(db, acc, 3)
    assert pnls(rows) == [0, 0, "R"]
    assert [r["fee_quote"] for r in rows] == [D("0.1"), D("0.120"), D("0.195")]
    assert rows[1]["fee_rate"] == D("120")  # a base fee is converted at the fill's own price
    (row,) = (await summary(nc, acc)).rows
    assert (row.exchange, row.symbol, row.quote) == ("binance", "BTC/USDT", "USDT")
    assert (row.orders, row.fills) == (3, 3)
    assert row.volume == D("415")
    assert row.fees == D("0.415")
    assert near(row.realized_pnl, REALIZED)
    assert row.position == D("0.499")


async def test_events_twice_out_of_order_leave_the_same_rows(reporting, db, nc) -> None:
    acc = await account(db)
    # The sell first, then the buys, and every event a second time under another message id.
    await publish_case(nc, acc, sequence=(SELL, BUY2, BUY1))
    await publish_case(nc, acc, sequence=(BUY1, SELL, BUY2))
    rows = await until_fills(db, acc, 3)
    await asyncio.sleep(1.0)  # the duplicates have been through too
    rows = await until_fills(db, acc, 3)
    assert len(rows) == 3
    assert pnls(rows) == [0, 0, "R"]
    (row,) = (await summary(nc, acc)).rows
    assert (row.orders, row.fills, row.volume) == (3, 3, D("415")) and near(row.realized_pnl, REALIZED)
    position = await db.fetchrow(
        "SELECT position, lots FROM report_positions WHERE account_id = $1", uuid.UUID(acc.key)
    )
    assert position["position"] == D("0.499")


async def test_an_order_moves_forward_only(reporting, db, nc) -> None:
    acc = await account(db)
    opened = order(acc, "o9", "buy", "2", "0", "open")
    part = order(acc, "o9", "buy", "2", "1", "open", updated=T0 + 5)
    done = order(acc, "o9", "buy", "2", "2", "closed", updated=T0 + 9)
    await publish(
        nc,
        acc,
        "filled",
        done,
        [fill("a", "100", "1", "0", "USDT", T0 + 1), fill("b", "100", "1", "0", "USDT", T0 + 9)],
    )
    await publish(nc, acc, "updated", part, [fill("a", "100", "1", "0", "USDT", T0 + 1)])
    await publish(nc, acc, "created", opened, [])
    await until_fills(db, acc, 2)
    await asyncio.sleep(1.0)
    row = await db.fetchrow("SELECT status, filled FROM report_orders WHERE account_id = $1", uuid.UUID(acc.key))
    assert (row["status"], row["filled"]) == ("closed", D("2"))


async def test_a_crash_before_the_ack_leaves_the_same_rows(reporting, servers, db, nc) -> None:
    acc = await account(db)
    first = reporting()  # a second consumer on the durable: which of the two gets the events does not matter
    await publish_case(nc, acc)
    first.kill()  # whatever it had fetched and not acknowledged is delivered again after the ack wait
    rows = await until_fills(db, acc, 3, timeout=30)
    await asyncio.sleep(3.0)  # past the ack wait: anything delivered again has been applied again
    rows = await until_fills(db, acc, 3)
    assert len(rows) == 3
    (row,) = (await summary(nc, acc)).rows
    assert (row.orders, row.fills, row.volume, row.fees) == (3, 3, D("415"), D("0.415"))
    assert near(row.realized_pnl, REALIZED)


async def test_a_fee_in_a_third_asset_without_a_rate_is_counted_unconverted(reporting, db, nc) -> None:
    acc = await account(db)
    o = order(acc, "b1", "buy", "1", "1", "closed")
    await publish(nc, acc, "filled", o, [fill("x1", "100", "1", "0.0002", "BNB", T0)])
    (stored,) = await until_fills(db, acc, 1)
    assert stored["fee_quote"] is None and stored["fee_rate"] is None
    (row,) = (await summary(nc, acc)).rows
    assert (row.fees, row.unconverted_fees, row.volume) == (D("0"), 1, D("100"))


async def test_reports_filter_by_time_and_are_scoped_to_their_user(reporting, db, nc) -> None:
    acc, other = await account(db), await account(db)
    await publish_case(nc, acc)
    await until_fills(db, acc, 3)
    # Only the first buy's time: one order and one fill.
    (row,) = (await summary(nc, acc, since=T0, until=T0 + 500)).rows
    assert (row.orders, row.fills, row.volume) == (3, 1, D("100"))
    assert (await summary(nc, other)).rows == []
    trades = await request(nc, reports("trades"), ReportRequest(user_id=acc.user), TradesReply, timeout=10)
    assert [t.trade_id for t in trades.trades] == ["t3", "t2", "t1"]  # newest first
    assert {t.exchange for t in trades.trades} == {"binance"}
    empty = await request(nc, reports("trades"), ReportRequest(user_id=other.user), TradesReply, timeout=10)
    assert empty.trades == []


async def test_a_nats_restart_loses_nothing_and_counts_nothing_twice(servers, tmp_path) -> None:
    """NATS stops (its JetStream store on disk) and starts again on the same port: the consumer carries on."""
    workdir = tmp_path / "nats"
    server = start_nats(workdir)
    dsn = servers[1]  # the module's database; this test's own NATS and reporting process
    process = start_reporting(server.url, dsn, env=ENV, workdir=tmp_path)
    db = await asyncpg.connect(dsn)
    try:
        client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        await ensure_orders_stream(client.jetstream())
        acc = await account(db)
        await publish_case(client, acc, sequence=(BUY1, BUY2))
        await until_fills(db, acc, 2)
        await client.close()
        server.stop()
        server = start_nats(workdir, port=server.port)
        client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        await publish_case(client, acc, sequence=(SELL, BUY1))  # one new event, one already counted
        rows = await until_fills(db, acc, 3, timeout=30)
        await asyncio.sleep(1.0)
        rows = await until_fills(db, acc, 3)
        assert pnls(rows) == [0, 0, "R"]
        (row,) = (await summary(client, acc)).rows
        assert (row.orders, row.fills, row.volume, row.fees) == (3, 3, D("415"), D("0.415"))
        await client.drain()
    finally:
        await db.close()
        process.stop()
        server.stop()


async def test_an_undecodable_event_is_set_aside_and_the_rest_go_on(reporting, db, nc) -> None:
    acc = await account(db)
    subject = order_events(acc.exchange, acc.key)
    bad = b'{"event_id": "x", "order": {"amount": 1.5}}'
    await nc.jetstream().publish(subject, bad, headers={"Nats-Msg-Id": uuid.uuid4().hex})
    await publish_case(nc, acc)
    rows = await until_fills(db, acc, 3)
    assert pnls(rows) == [0, 0, "R"]
    deadline = time.monotonic() + 10
    while (info := await nc.jetstream().consumer_info(ORDERS_STREAM, "borsa-reporting")).num_ack_pending:
        assert time.monotonic() < deadline, info  # terminated, not left to come back
        await asyncio.sleep(0.1)


def view(acc: Account, o: Order, fills: list[Fill]) -> tuple[str, str, events.OrderEvent]:
    """An event as the consumer hands it to Ingest."""
    payload = encode(OrderEvent(event_id=uuid.uuid4().hex, kind="filled", order=o, fills=fills, timestamp=T0))
    return acc.exchange, acc.key, events.decode_event(payload)


def case_events(acc: Account, sequence=(BUY1, BUY2, SELL)) -> list:
    return [
        view(acc, order(acc, order_id, side, amount, amount, "closed", price=fills[0][1]), [fill(*f) for f in fills])
        for order_id, side, amount, fills in sequence
    ]


async def test_two_writers_on_a_new_group_at_once_leave_the_rows_one_would(servers, db) -> None:
    """Replicas: both find the group missing and insert it; the second to commit fails, tries again, finds it."""
    acc = await account(db)
    pools = [await asyncpg.create_pool(servers[1], min_size=1, max_size=1) for _ in range(2)]
    writers = [Ingest(pool, Rates(None)) for pool in pools]
    try:
        first, second = case_events(acc, (BUY1,)), case_events(acc, (BUY2, SELL))
        await asyncio.gather(writers[0].apply(first), writers[1].apply(second))
    finally:
        for writer, pool in zip(writers, pools, strict=True):
            await writer.close()
            await pool.close()
    # Whichever committed first, the other found the group and went on from it (or, with the first buy last,
    # computed the group again): the three fills in time order.
    assert pnls(await until_fills(db, acc, 3)) == [0, 0, "R"]
    assert (await db.fetchval("SELECT count(*) FROM report_positions WHERE account_id = $1", uuid.UUID(acc.key))) == 1
    daily = await db.fetchrow(
        "SELECT sum(orders) AS orders, sum(fills) AS fills, sum(volume) AS volume FROM report_daily "
        "WHERE account_id = $1",
        uuid.UUID(acc.key),
    )
    assert (daily["orders"], daily["fills"], daily["volume"]) == (3, 3, D("415"))


async def test_a_lost_database_connection_costs_one_try(servers, db) -> None:
    acc = await account(db)
    name = f"ingest-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(servers[1], min_size=1, max_size=2, server_settings={"application_name": name})
    ingest = Ingest(pool, Rates(None))
    try:
        first, second, third = case_events(acc)
        await ingest.apply([first])
        await db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", name)
        # The server ends the session: asyncpg reads it as the next statement fails or while idle (out of step).
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
            await ingest.apply([second])
        await ingest.apply([second, third])
    finally:
        await ingest.close()
        await pool.close()
    assert pnls(await until_fills(db, acc, 3)) == [0, 0, "R"]
