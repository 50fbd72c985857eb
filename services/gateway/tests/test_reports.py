"""The report endpoints end to end: events published on BORSA_ORDERS, ingested by a real borsa-reporting process,
read back through the gateway's HTTP API (real NATS, Postgres, simulator and a binance connector for prices)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import aiohttp
import asyncpg
import nats
import pytest

from borsa_proto import encode
from borsa_proto.orders import Fill, Order, OrderEvent, OrderStatus, Side
from borsa_proto.subjects import order_events
from borsa_runtime.streams import ensure_orders_stream
from borsa_testing.processes import start_gateway, start_nats, start_reporting
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import SEALING_KEY, SEALING_PUBLIC_KEY, store_key

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

T0 = 1_790_000_000_000  # 2026-09-21T14:13:20Z, ms
DAY = 86_400_000
PRICES = {"BTC/USDT": D("150"), "ETH/USDT": D("2100.5")}  # binance's, frozen at the simulator
# User A: a bot's buy, buy (fee in base) and sell on binance; a tiny ETH buy; a kraken buy the next day. And the
# same order id on another user's key. (key, order, side, amount, price, time, fee, fee currency, symbol, by the bot)
EVENTS = (
    ("binance", "o1", "buy", "1", "100", T0, "0.1", "USDT", "BTC/USDT", True),
    ("binance", "o2", "buy", "1", "120", T0 + 1000, "0.001", "BTC", "BTC/USDT", True),
    ("binance", "o3", "sell", "1.5", "130", T0 + 2000, "0.195", "USDT", "BTC/USDT", True),
    ("binance", "o4", "buy", "0.00012345", "2000.5", T0 + 3000, "0.00000001", "ETH", "ETH/USDT", False),
    ("kraken", "o5", "buy", "0.5", "30000", T0 + DAY, "7.5", "USD", "BTC/USD", False),
    ("stranger", "o1", "buy", "3", "100", T0, "0.3", "USDT", "BTC/USDT", False),
)
BIG = 1203  # fills of one order: more than two of the CSV's batches, and not a multiple of one


def iso(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def order(exchange, account, order_id, side, amount, price, created, symbol="BTC/USDT", client=None) -> Order:
    return Order(
        exchange=exchange,
        account=account,
        id=order_id,
        client_order_id=client or f"c-{order_id}",
        symbol=symbol,
        market_id=symbol.replace("/", ""),
        side=Side(side),
        type="limit",
        status=OrderStatus.CLOSED,
        amount=D(amount),
        filled=D(amount),
        remaining=D(0),
        price=D(price),
        average=D(price),
        cost=D(amount) * D(price),
        fee=None,
        created_at=created,
        updated_at=created,
    )


def fill(trade_id, price, amount, fee, currency, ts) -> Fill:
    return Fill(
        trade_id=trade_id, price=D(price), amount=D(amount), fee_cost=D(fee), fee_currency=currency, timestamp=ts
    )


async def publish(nc, o: Order, fills: list[Fill]) -> None:
    event = OrderEvent(event_id=uuid.uuid4().hex, kind="filled", order=o, fills=fills, timestamp=o.updated_at)
    await nc.jetstream().publish(
        order_events(o.exchange, o.account), encode(event), headers={"Nats-Msg-Id": event.event_id}
    )


async def register(session, url: str) -> tuple[str, str]:
    email = f"r{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": "correct horse"}
    async with session.post(f"{url}/api/v1/auth/register", json=body) as response:
        assert response.status == 201, await response.text()
        return email, (await response.json())["access_token"]


async def paper_key(db, user_id, exchange: str) -> str:
    return str(
        await db.fetchval(
            "INSERT INTO api_keys (user_id, exchange_name, label, mode) VALUES ($1, $2, 'paper', 'paper') RETURNING id",
            user_id,
            exchange,
        )
    )


async def seed(url: str, dsn: str, nats_url: str) -> dict:
    db = await asyncpg.connect(dsn)
    nc = await nats.connect(nats_url)
    try:
        await ensure_orders_stream(nc.jetstream())
        async with aiohttp.ClientSession() as session:
            users = {name: await register(session, url) for name in ("a", "b", "c")}
        ids = {n: await db.fetchval("SELECT id FROM users WHERE email = $1", e) for n, (e, _) in users.items()}
        binance, kraken = await paper_key(db, ids["a"], "binance"), await paper_key(db, ids["a"], "kraken")
        big = await paper_key(db, ids["c"], "kucoin")
        bot = await db.fetchval(
            "INSERT INTO bot_configs (user_id, api_key_id, exchange_name, symbol, market_id, strategy, params) "
            "VALUES ($1, $2, 'binance', 'BTC/USDT', 'BTCUSDT', 'dca', '{}') RETURNING id",
            ids["a"],
            uuid.UUID(binance),
        )
        stranger = await store_key(db, "binance", None, "paper")  # a user of its own, never signed in here
        keys = {"binance": binance, "kraken": kraken, "stranger": stranger}
        for key, order_id, side, amount, price, ts, fee, currency, symbol, by_bot in EVENTS:
            exchange = "kraken" if key == "kraken" else "binance"
            client = f"b{bot.hex}-{order_id}" if by_bot else None
            o = order(exchange, keys[key], order_id, side, amount, price, ts, symbol, client)
            trade = f"t{order_id[1:]}" if key != "stranger" else "s1"
            await publish(nc, o, [fill(trade, price, amount, fee, currency, ts)])
        # User C: one order filled in many pieces, for the CSV's batches.
        o = order("kucoin", big, "big", "buy", str(BIG), "1", T0, "XRP/USDT")
        pieces = [fill(f"p{i:05d}", "1", "1", "0.001", "USDT", T0 + i) for i in range(BIG)]
        await publish(nc, o, pieces)
        deadline = time.monotonic() + 30
        while await db.fetchval("SELECT count(*) FROM report_fills") < 6 + BIG:
            assert time.monotonic() < deadline, "borsa-reporting did not ingest the events"
            await asyncio.sleep(0.1)
        positions = await db.fetch(
            "SELECT exchange_name, symbol, position, cost FROM report_positions WHERE account_id = ANY($1::uuid[])",
            [uuid.UUID(binance), uuid.UUID(kraken)],
        )
    finally:
        await nc.drain()
        await db.close()
    return {
        "tokens": {n: t for n, (_, t) in users.items()},
        "binance": binance,
        "kraken": kraken,
        "stranger": stranger,
        "bot": str(bot),
        "positions": positions,
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory, database_factory, sim_factory, connector_factory):
    with ExitStack() as stack:
        server = start_nats(tmp_path_factory.mktemp("reports-nats"))
        stack.callback(server.stop)
        dsn = database_factory()
        reporting = start_reporting(
            server.url,
            dsn,
            env={"BORSA_REPORTING_BATCH_WAIT_MS": "50"},
            workdir=tmp_path_factory.mktemp("reports-reporting"),
        )
        stack.callback(reporting.stop)
        gateway = start_gateway(
            server.url,
            dsn,
            env={"BORSA_SEALING_PUBLIC_KEY": SEALING_PUBLIC_KEY, "BORSA_EXCHANGES": "binance,kraken,kucoin"},
            workdir=tmp_path_factory.mktemp("reports-gateway"),
        )
        stack.callback(gateway.stop)
        # Binance's prices come from a connector over a paused simulator; kraken's and kucoin's connectors are down.
        sim = sim_factory("--seed", "5", "--rate-limit-scale", "100", "--exchanges", "binance")

        async def freeze() -> dict:
            async with SimAdmin(sim.url) as admin:
                await admin.pause()
                for symbol, price in PRICES.items():
                    await admin.set_price("binance", symbol, price)
                return await admin.prices("binance")

        prices = asyncio.run(freeze())
        assert {s: D(str(prices[s])) for s in PRICES} == PRICES
        connector = connector_factory(
            "binance", server.url, sim.url, env={"BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": dsn}
        )
        stack.callback(connector.stop)
        data = asyncio.run(seed(gateway.url, dsn, server.url))
        yield {"url": gateway.url, **data}


@pytest.fixture
async def http(world):
    async with aiohttp.ClientSession() as session:

        async def get(user: str | None, path: str, **params):
            headers = {"Authorization": f"Bearer {world['tokens'][user]}"} if user else {}
            params = {k: str(v) for k, v in params.items()}
            async with session.get(f"{world['url']}/api/v1{path}", params=params, headers=headers) as response:
                body = await response.json() if response.content_type == "application/json" else await response.text()
                return response.status, body, response.headers

        yield get


async def ok(http, user: str, path: str, **params):
    status, body, _ = await http(user, path, **params)
    assert status == 200, (path, params, body)
    return body


def near(value: str, expected: D) -> bool:
    """Equal but for the last digits of a division that does not end (120 / 0.999)."""
    return abs(D(value) - expected) < D("1e-18")


# The bot's sell closes the first lot (1 BTC for 100.1) and 0.5 of the second (0.999 BTC for 120).
REALIZED = D("194.805") - D("100.1") - D("0.5") * (D("120") / D("0.999"))


async def test_orders_newest_first_with_filters_and_paging(world, http) -> None:
    orders = await ok(http, "a", "/orders")
    assert [(o["order_id"], o["exchange"]) for o in orders] == [
        ("o5", "kraken"),
        ("o4", "binance"),
        ("o3", "binance"),
        ("o2", "binance"),
        ("o1", "binance"),
    ]
    o4 = orders[1]
    assert (o4["symbol"], o4["amount"], o4["price"], o4["cost"]) == ("ETH/USDT", "0.00012345", "2000.5", "0.246961725")
    assert o4["account"] == world["binance"] and o4["bot_id"] is None and o4["created_ms"] == T0 + 3000
    assert all(o["bot_id"] == world["bot"] for o in orders[2:])

    def ids(rows):
        return [r["order_id"] for r in rows]

    assert ids(await ok(http, "a", "/orders", exchange="kraken")) == ["o5"]
    assert ids(await ok(http, "a", "/orders", account=world["kraken"])) == ["o5"]
    assert ids(await ok(http, "a", "/orders", symbol="ETH/USDT")) == ["o4"]
    assert ids(await ok(http, "a", "/orders", bot_id=world["bot"])) == ["o3", "o2", "o1"]
    assert ids(await ok(http, "a", "/orders", exchange="binance", symbol="BTC/USDT", limit=2, offset=1)) == ["o2", "o1"]
    # since is inclusive, until exclusive; epoch ms and ISO-8601 (with a zone, or none for UTC) alike.
    assert ids(await ok(http, "a", "/orders", since=T0 + 1000, until=T0 + 3000)) == ["o3", "o2"]
    assert ids(await ok(http, "a", "/orders", since=iso(T0 + 1000), until=iso(T0 + 3000))) == ["o3", "o2"]
    naive = iso(T0 + 3000).replace("+00:00", "")
    assert ids(await ok(http, "a", "/orders", since=naive)) == ["o5", "o4"]
    # The same instant in another zone: T0 + 1 ms at +02:00.
    zoned = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=T0 + 1)).astimezone(timezone(timedelta(hours=2)))
    assert ids(await ok(http, "a", "/orders", until=zoned.isoformat(timespec="milliseconds"))) == ["o1"]


async def test_trades_carry_fees_and_pnl_as_exact_decimal_strings(world, http) -> None:
    trades = await ok(http, "a", "/trades")
    assert [t["trade_id"] for t in trades] == ["t5", "t4", "t3", "t2", "t1"]
    by_id = {t["trade_id"]: t for t in trades}
    t2, t4 = by_id["t2"], by_id["t4"]
    assert (t2["fee_cost"], t2["fee_currency"], t2["fee_quote"], t2["fee_rate"]) == ("0.001", "BTC", "0.120", "120")
    # Never an exponent: 0.00000001 is what a spreadsheet and a person read, not 1E-8.
    assert (t4["fee_cost"], t4["fee_currency"], t4["fee_quote"], t4["fee_rate"]) == (
        "0.00000001",
        "ETH",
        "0.000020005",
        "2000.5",
    )
    assert near(by_id["t3"]["realized_pnl"], REALIZED) and by_id["t1"]["realized_pnl"] == "0"
    assert {t["exchange"] for t in trades} == {"binance", "kraken"}
    assert [t["trade_id"] for t in await ok(http, "a", "/trades", exchange="kraken")] == ["t5"]
    assert [t["trade_id"] for t in await ok(http, "a", "/trades", bot_id=world["bot"], limit=1)] == ["t3"]
    assert [t["trade_id"] for t in await ok(http, "a", "/trades", since=T0 + 2000, until=T0 + DAY)] == ["t4", "t3"]


async def test_summary_per_group_with_unrealised_pnl_from_the_connector(world, http) -> None:
    summary = await ok(http, "a", "/reports/summary")
    assert summary["group_by"] == "exchange"
    binance, kraken = summary["rows"]
    assert (binance["exchange"], binance["quote"], kraken["exchange"], kraken["quote"]) == (
        "binance",
        "USDT",
        "kraken",
        "USD",
    )
    assert (binance["orders"], binance["fills"], binance["unconverted_fees"]) == (4, 4, 0)
    assert (binance["volume"], binance["fees"]) == ("415.246961725", "0.415020005")
    assert near(binance["realized_pnl"], REALIZED)
    # Priced at the simulator's frozen prices through the binance connector; kraken's is down: 0, not a 500.
    open_lots = [p for p in world["positions"] if p["exchange_name"] == "binance" and p["position"] != 0]
    assert {p["symbol"] for p in open_lots} == set(PRICES)
    assert binance["position"] is None  # BTC and ETH do not add up
    assert D(binance["unrealized_pnl"]) == sum(p["position"] * PRICES[p["symbol"]] - p["cost"] for p in open_lots)
    assert (kraken["orders"], kraken["fills"], kraken["volume"], kraken["fees"]) == (1, 1, "15000.0", "7.5")
    assert (kraken["position"], kraken["unrealized_pnl"]) == ("0.5", "0")

    by_symbol = (await ok(http, "a", "/reports/summary", group_by="symbol", exchange="binance"))["rows"]
    assert [(r["symbol"], r["orders"], r["fills"]) for r in by_symbol] == [("BTC/USDT", 3, 3), ("ETH/USDT", 1, 1)]
    by_bot = (await ok(http, "a", "/reports/summary", group_by="bot"))["rows"]
    assert {(r["exchange"], r["bot_id"], r["orders"]) for r in by_bot} == {
        ("binance", world["bot"], 3),
        ("binance", None, 1),
        ("kraken", None, 1),
    }
    by_account = (await ok(http, "a", "/reports/summary", group_by="account", bot_id=world["bot"]))["rows"]
    assert [(r["account"], r["orders"], r["volume"]) for r in by_account] == [(world["binance"], 3, "415.0")]

    # A range inside one day reads raw rows; the kraken position, open now, still shows with no activity.
    ranged = (await ok(http, "a", "/reports/summary", since=T0, until=iso(T0 + 1500)))["rows"]
    assert [(r["exchange"], r["orders"], r["fills"], r["volume"]) for r in ranged] == [
        ("binance", 2, 2, "220"),
        ("kraken", 0, 0, "0"),
    ]
    # Whole days read the daily sums: the same totals as no range at all.
    day = datetime.fromtimestamp(T0 / 1000, UTC).date()
    wide = await ok(http, "a", "/reports/summary", since=str(day - timedelta(days=2)), until=str(day + timedelta(3)))
    assert wide == summary


async def test_trades_csv_streams_every_fill_once(world, http) -> None:
    status, text, headers = await http("a", "/reports/trades.csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="borsa-trades.csv"'
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["trade_id"] for r in rows] == ["t1", "t2", "t3", "t4", "t5"]  # oldest first
    for r in rows:
        assert datetime.fromisoformat(r["time"]) == datetime.fromtimestamp(int(r["timestamp_ms"]) / 1000, UTC)
        assert r["time"].endswith("Z")
    t4 = rows[3]
    assert (t4["exchange"], t4["symbol"], t4["amount"], t4["fee_cost"], t4["fee_quote"]) == (
        "binance",
        "ETH/USDT",
        "0.00012345",
        "0.00000001",
        "0.000020005",
    )
    assert rows[0]["bot_id"] == world["bot"] and rows[3]["bot_id"] == "" and near(rows[2]["realized_pnl"], REALIZED)
    # The JSON trades and the CSV say the same, field for field.
    trades = {t["trade_id"]: t for t in await ok(http, "a", "/trades")}
    for r in rows:
        for column in ("exchange", "account", "price", "amount", "cost", "fee_cost", "fee_quote", "realized_pnl"):
            assert r[column] == (trades[r["trade_id"]][column] or ""), column

    _, text, _ = await http("a", "/reports/trades.csv", exchange="kraken", since=iso(T0))
    assert [r["trade_id"] for r in csv.DictReader(io.StringIO(text))] == ["t5"]
    # More rows than the batches the cursor and the writer work in: every one once, in time order.
    _, text, _ = await http("c", "/reports/trades.csv")
    ids = [r["trade_id"] for r in csv.DictReader(io.StringIO(text))]
    assert ids == [f"p{i:05d}" for i in range(BIG)]


async def test_another_user_sees_nothing(world, http) -> None:
    for path in ("/orders", "/trades"):
        assert await ok(http, "b", path) == []
    assert await ok(http, "b", "/reports/summary", group_by="symbol") == {"group_by": "symbol", "rows": []}
    status, text, _ = await http("b", "/reports/trades.csv")
    assert status == 200 and text.splitlines()[0].startswith("time,timestamp_ms,exchange,")
    assert len(text.splitlines()) == 1
    # User A's key and bot are not B's to ask about; the stranger's key is not A's.
    for user, params, field in (
        ("b", {"account": world["binance"]}, "account"),
        ("b", {"bot_id": world["bot"]}, "bot_id"),
        ("a", {"account": world["stranger"]}, "account"),
        ("a", {"bot_id": str(uuid.uuid4())}, "bot_id"),
    ):
        for path in ("/orders", "/trades", "/reports/summary", "/reports/trades.csv"):
            status, body, _ = await http(user, path, **params)
            assert status == 404 and body["detail"]["code"] == "not_found", (user, path, body)
            assert body["detail"]["field"] == field
    # The stranger's order o1 (3 BTC) is in nobody's reports here.
    assert [o["amount"] for o in await ok(http, "a", "/orders", exchange="binance") if o["order_id"] == "o1"] == ["1"]
    status, body, _ = await http(None, "/orders")
    assert status == 401 and body["detail"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/orders", {"since": "yesterday"}, "since"),
        ("/trades", {"until": "2026-13-01"}, "until"),
        ("/reports/trades.csv", {"since": "1790000000000.5"}, "since"),
        ("/reports/summary", {"since": T0, "until": T0}, "since"),
        ("/orders", {"since": iso(T0 + 1), "until": T0}, "since"),
        ("/trades", {"until": "99999999999999999999"}, "until"),
        ("/orders", {"limit": 0}, "limit"),
        ("/trades", {"limit": 1001}, "limit"),
        ("/orders", {"offset": -1}, "offset"),
        ("/orders", {"bot_id": "not-a-uuid"}, "bot_id"),
        ("/reports/summary", {"group_by": "week"}, "group_by"),
    ],
)
async def test_bad_parameters_are_a_422_naming_the_field(http, path, params, field) -> None:
    status, body, _ = await http("a", path, **params)
    assert status == 422, body
    assert body["detail"]["code"] == "bad_request" and body["detail"]["field"] == field, body
    if field == "group_by":
        assert all(g in body["detail"]["message"] for g in ("exchange", "bot", "symbol", "account"))


async def test_the_widest_range_is_the_same_as_none(http) -> None:
    widest = await ok(http, "a", "/reports/summary", since="0001-01-02", until="9998-12-31T23:59:59.999Z")
    assert widest == await ok(http, "a", "/reports/summary")
    assert len(await ok(http, "a", "/trades", since=-1, until="9998-12-31T23:59:59.999+00:00")) == 5
