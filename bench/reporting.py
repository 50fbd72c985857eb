"""What reporting costs: fills per second from BORSA_ORDERS into Postgres, and summary latency over a million fills.

1. Ingest. BORSA_ORDERS is filled beforehand (not timed) with order events carrying `--fills` fills (one or two per
   event: an order filled at once, an order filled in two trades, or a partial fill then the rest in a second
   event) for `--accounts` accounts on the four exchanges, two symbols each, most orders placed by a bot, fees in
   quote, in base or in BNB / KCS (converted through the ticker stand-in below). Then the real `borsa-reporting`
   process consumes the stream with a fresh durable consumer, once per `BORSA_REPORTING_BATCH` value, into empty
   report tables: timed from the moment its durable consumer exists until JetStream holds every event acknowledged
   (each is acknowledged only after its batch committed). The baseline, measured in the same run: asyncpg
   `copy_records_to_table` of the same fill rows (the 19 columns of `report_fills`) into a plain table with the same
   columns and no index. Then the same events go through `Ingest.apply` in this process, statement by statement,
   to show where a batch's time goes (and, when the goal is missed, once more under cProfile).
2. Summary. `--summary-fills` fills (default 1,000,000) of one user (80 API keys: 20 on each exchange, 10 symbols,
   50 bots, and orders placed by hand on every key and symbol) over 90 days, generated here with FIFO PnL computed
   by reporting's own `Book`, COPYed into report_fills, report_orders and report_positions, and report_daily summed
   from them in SQL. Then `borsa.reports.summary` over NATS to the `borsa-reporting` process, for each group_by,
   over everything and over a range whose ends are not on day boundaries, one request in flight. Unrealised PnL
   asks the connectors for tickers: this process answers `borsa.exchange.*.ticker` with fixed prices, as a
   connector would. The same again with `plan_cache_mode=force_custom_plan` in the process's DATABASE_URL (no
   code change). Each case is then run in this process through `queries.summary` with every statement timed; a
   case that misses its goal gets the plans of its slowest statements (custom and generic).

    .venv/bin/python bench/reporting.py [--fills 100000] [--accounts 2000] [--batches 1000,5000,10000] [--rounds 2]
        [--summary-fills 1000000] [--requests 200] [--warmup 20] [--write-readme]
    .venv/bin/python bench/reporting.py --fills 20000 --summary-fills 100000    # a smoke run, about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import asyncpg
import msgspec
import nats
from benchlib import percentile, write_readme
from nats.js.errors import NotFoundError

from borsa_db import migrate
from borsa_proto import encode
from borsa_proto.exchange import Ticker
from borsa_proto.orders import Fee, Fill, Order, OrderEvent, OrderStatus, Side
from borsa_proto.reports import ReportRequest, SummaryReply
from borsa_proto.subjects import ORDERS_STREAM, order_events, parse_order_events, reports
from borsa_reporting import queries
from borsa_reporting.events import decode_event
from borsa_reporting.fifo import Book, Trade, lots_to_json
from borsa_reporting.ingest import Ingest, Prepared
from borsa_reporting.rates import Rates
from borsa_reporting.service import Prices
from borsa_runtime.request import request
from borsa_runtime.streams import ensure_orders_stream
from borsa_testing.processes import start_nats, start_postgres, start_reporting

MARKER = "bench:reporting"
GOAL_RATIO, GOAL_FILLS_PER_S, GOAL_P99_MS = 0.5, 20_000, 100.0
POLL_SECONDS = 0.1  # how often the ingest run asks JetStream whether every event is acknowledged
QUOTES = {"binance": "USDT", "kraken": "USD", "coinbase": "USD", "kucoin": "USDT"}
EXCHANGES = tuple(QUOTES)
# base: (reference price, price tick, amount step, a typical order's amount)
BASES = {
    "BTC": ("67250.10", "0.01", "0.00001", "0.015"),
    "ETH": ("3480.55", "0.01", "0.0001", "0.4"),
    "SOL": ("152.37", "0.01", "0.001", "6"),
    "XRP": ("0.5234", "0.0001", "0.1", "1500"),
    "DOGE": ("0.12345", "0.00001", "1", "6000"),
    "LTC": ("81.42", "0.01", "0.001", "9"),
    "ADA": ("0.4521", "0.0001", "0.1", "1500"),
    "DOT": ("6.873", "0.001", "0.01", "100"),
    "LINK": ("14.92", "0.001", "0.01", "50"),
    "AVAX": ("35.61", "0.01", "0.01", "20"),
}
FEE_ASSETS = {"binance": ("BNB", Decimal("583.20")), "kucoin": ("KCS", Decimal("9.874"))}
FEE_RATE, FEE_ASSET_RATE = Decimal("0.001"), Decimal("0.00075")
FEE_STEP = Decimal("0.00000001")
DAY_MS = 86_400_000
INGEST_T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SUMMARY_T0 = 1_759_276_800_000  # 2025-10-01 00:00 UTC
SUMMARY_DAYS = 90
# A range whose ends fall inside days: 10 d 5 h 17 min 13 s and 80 d 13 h 41 min 7 s after the first day.
RANGE = (SUMMARY_T0 + 10 * DAY_MS + 19_033_000, SUMMARY_T0 + 80 * DAY_MS + 49_267_000)
SUMMARY_SHAPE = {"accounts_per_exchange": 20, "symbols": 10, "bots": 50, "by_hand": 0.1}
GROUPS = ("exchange", "account", "symbol", "bot")
BREAKDOWN_RUNS = 7
CUSTOM_PLANS = "plan_cache_mode=force_custom_plan"
FILL_COLUMNS = (
    "exchange_name",
    "account_id",
    "trade_id",
    "order_id",
    "client_order_id",
    "bot_id",
    "symbol",
    "base",
    "quote",
    "side",
    "price",
    "amount",
    "cost",
    "fee_cost",
    "fee_currency",
    "fee_quote",
    "fee_rate",
    "realized_pnl",
    "timestamp_ms",
)
ORDER_COLUMNS = (
    "exchange_name",
    "account_id",
    "order_id",
    "client_order_id",
    "bot_id",
    "symbol",
    "market_id",
    "side",
    "type",
    "status",
    "amount",
    "filled",
    "price",
    "average",
    "cost",
    "fee_cost",
    "fee_currency",
    "created_ms",
    "updated_ms",
)
POSITION_COLUMNS = (
    "exchange_name",
    "account_id",
    "bot_key",
    "symbol",
    "base",
    "quote",
    "lots",
    "position",
    "cost",
    "last_ms",
    "last_trade",
)


# -- market data, shared by both parts ---------------------------------------------------------------------------
def market_id(exchange: str, base: str, quote: str) -> str:
    return f"{base}-{quote}" if exchange in ("coinbase", "kucoin") else f"{base}{quote}"


def places(step: str) -> int:
    return -Decimal(step).as_tuple().exponent


class Market:
    """One symbol's price walk and order sizes, decimals as the exchange would give them."""

    def __init__(self, base: str, rng: random.Random) -> None:
        ref, tick, step, typical = BASES[base]
        self.ref, self.typical = float(ref), float(typical)
        self.price_places, self.amount_places = places(tick), places(step)
        self.step = Decimal(step)
        self.phase = rng.uniform(0, 2 * math.pi)

    def price(self, ms: int, rng: random.Random) -> Decimal:
        swing = 0.08 * math.sin(ms / (7 * DAY_MS) + self.phase) + rng.gauss(0, 0.002)
        return Decimal(f"{self.ref * (1 + swing):.{self.price_places}f}")

    def amount(self, rng: random.Random) -> Decimal:
        return Decimal(f"{self.typical * rng.uniform(0.2, 1.8):.{self.amount_places}f}") or self.step

    def down(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.step, rounding=ROUND_DOWN)


def ticker_price(symbol: str) -> Decimal:
    """The stand-in connector's fixed price of a symbol (its reference price; the fee assets' rate)."""
    base = symbol.split("/", 1)[0]
    if base in BASES:
        return Decimal(BASES[base][0])
    return next((rate for asset, rate in FEE_ASSETS.values() if asset == base), Decimal(1))


async def stand_in_tickers(nc, served: list[int]):
    """Answer `borsa.exchange.<ex>.ticker` as a connector would, at fixed prices."""

    async def answer(msg) -> None:
        symbol = json.loads(msg.data)["symbol"]
        price = ticker_price(symbol)
        served[0] += 1
        reply = Ticker(
            symbol=symbol,
            market_id=symbol.replace("/", ""),
            bid=price,
            ask=price,
            last=price,
            timestamp=int(time.time() * 1000),
        )
        await msg.respond(encode(reply))

    return await nc.subscribe("borsa.exchange.*.ticker", cb=answer)


# -- measuring processes ---------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process; with `children`, also its reaped children and its living ones (Postgres:
    the postmaster and its backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat(pid)
    if fields is None:
        return float("nan")
    total = int(fields[11]) + int(fields[12])
    if children:
        total += int(fields[13]) + int(fields[14])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                child = _stat(int(entry.name))
                if child is not None and child[1] == str(pid):
                    total += int(child[11]) + int(child[12]) + int(child[13]) + int(child[14])
    return total / tick


def scrape(ops_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        match = re.match(r"^(borsa_reporting_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if match:
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


class TimedConn:
    """An asyncpg connection whose statements are timed one by one (everything else passes through)."""

    def __init__(self, conn, record) -> None:
        self._conn, self._record = conn, record

    def __getattr__(self, name):
        return getattr(self._conn, name)

    async def _timed(self, method: str, sql: str, args, kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return await getattr(self._conn, method)(sql, *args, **kwargs)
        finally:
            # Wall time, and this process's CPU in it (asyncpg encoding the arguments, decoding the rows).
            self._record(sql, args, time.perf_counter() - start, time.process_time() - cpu)

    async def fetch(self, sql, *args, **kwargs):
        return await self._timed("fetch", sql, args, kwargs)

    async def fetchrow(self, sql, *args, **kwargs):
        return await self._timed("fetchrow", sql, args, kwargs)

    async def fetchval(self, sql, *args, **kwargs):
        return await self._timed("fetchval", sql, args, kwargs)

    async def execute(self, sql, *args, **kwargs):
        return await self._timed("execute", sql, args, kwargs)

    async def copy_records_to_table(self, table, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return await self._conn.copy_records_to_table(table, **kwargs)
        finally:
            self._record(f"COPY {table}", (), time.perf_counter() - start, time.process_time() - cpu)


class TimedPool:
    """A pool whose connections time their statements (Ingest keeps the one it acquires)."""

    def __init__(self, pool, record) -> None:
        self.pool, self.record = pool, record

    async def acquire(self):
        return TimedConn(await self.pool.acquire(), self.record)

    async def release(self, conn) -> None:
        await self.pool.release(conn._conn)


async def jsonb_codec(conn) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# -- 1. ingest ---------------------------------------------------------------------------------------------------
@dataclass
class Events:
    messages: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(subject, Nats-Msg-Id, payload)."""
    rows: list[tuple] = field(default_factory=list)
    """Each fill once, as a report_fills row (the COPY baseline)."""
    orders: int = 0


@dataclass
class Group:
    exchange: str
    account: uuid.UUID
    base: str
    market: Market
    bot: uuid.UUID | None
    held: Decimal = Decimal(0)
    orders: int = 0
    last_ms: int = 0

    @property
    def quote(self) -> str:
        return QUOTES[self.exchange]

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def fee_of(group: Group, side: str, price: Decimal, amount: Decimal, rng: random.Random):
    """(fee cost, currency, fee in quote, rate): mostly quote, base on some buys, BNB / KCS where they exist."""
    roll = rng.random()
    if group.exchange in FEE_ASSETS and roll < 0.25:
        asset, rate = FEE_ASSETS[group.exchange]
        cost = (price * amount * FEE_ASSET_RATE / rate).quantize(FEE_STEP) or FEE_STEP
        return cost, asset, cost * rate, rate
    if side == "buy" and roll < 0.45:
        cost = (amount * FEE_RATE).quantize(FEE_STEP) or FEE_STEP
        return cost, group.base, cost * price, price
    cost = (price * amount * FEE_RATE).quantize(FEE_STEP)
    return cost, group.quote, cost, Decimal(1)


def ingest_events(n_fills: int, n_accounts: int, seed: int = 1) -> Events:
    """Order events carrying exactly `n_fills` fills, in time order, over `n_accounts` keys with two symbols each."""
    rng = random.Random(seed)
    markets = {base: Market(base, rng) for base in BASES}
    groups = []
    for i in range(n_accounts):
        exchange, account = EXCHANGES[i % len(EXCHANGES)], new_uuid(rng)
        for base in rng.sample(list(BASES), 2):
            bot = new_uuid(rng) if rng.random() < 0.8 else None
            groups.append(Group(exchange, account, base, markets[base], bot))
    out, fills, clock, trade_seq = Events(), 0, INGEST_T0, 0
    while fills < n_fills:
        g = rng.choice(groups)
        # Each group's fills in time order (an order's second fill may come later than the next order's start).
        clock = max(clock + rng.randint(1, 40), g.last_ms + 1)
        side = "sell" if g.market.down(g.held) > 0 else "buy"
        amount = g.market.down(g.held) if side == "sell" else g.market.amount(rng)
        price = g.market.price(clock, rng)
        roll = rng.random()
        shape = "one" if roll < 0.5 or n_fills - fills < 2 else ("two" if roll < 0.75 else "split")
        parts = [amount] if shape == "one" else [g.market.down(amount * Decimal("0.4")), None]
        if len(parts) == 2:
            parts[0] = parts[0] or g.market.step
            parts[1] = amount - parts[0]
            if parts[1] <= 0:
                parts, shape = [amount], "one"
        g.orders += 1
        order_id = f"{g.exchange[:2]}{out.orders:09d}"
        client_order_id = f"b{g.bot.hex}-{g.orders}" if g.bot else f"web-{rng.getrandbits(48):012x}"
        order_fills, total_fee, fee_currency = [], Decimal(0), None
        for n, part in enumerate(parts):
            trade_seq += 1
            ts = clock + n * rng.randint(5, 900)
            fee, currency, fee_quote, rate = fee_of(g, side, price, part, rng)
            order_fills.append(
                Fill(
                    trade_id=f"t{trade_seq:010d}",
                    price=price,
                    amount=part,
                    fee_cost=fee,
                    fee_currency=currency,
                    timestamp=ts,
                )
            )
            if currency == g.base:
                g.held -= fee
            total_fee, fee_currency = total_fee + fee, currency
            out.rows.append(
                (
                    g.exchange,
                    g.account,
                    order_fills[-1].trade_id,
                    order_id,
                    client_order_id,
                    g.bot,
                    g.symbol,
                    g.base,
                    g.quote,
                    side,
                    price,
                    part,
                    price * part,
                    fee,
                    currency,
                    fee_quote,
                    rate,
                    Decimal(0),
                    ts,
                )
            )
        g.held += amount if side == "buy" else -amount
        g.last_ms = order_fills[-1].timestamp
        fills += len(parts)
        out.orders += 1

        closed = Order(
            exchange=g.exchange,
            account=str(g.account),
            id=order_id,
            client_order_id=client_order_id,
            symbol=g.symbol,
            market_id=market_id(g.exchange, g.base, g.quote),
            side=Side(side),
            type="limit",
            status=OrderStatus.CLOSED,
            amount=amount,
            filled=amount,
            remaining=Decimal(0),
            price=price,
            average=price,
            cost=price * amount,
            fee=Fee(cost=total_fee, currency=fee_currency),
            created_at=clock,
            updated_at=order_fills[-1].timestamp,
        )
        subject = order_events(g.exchange, str(g.account))
        if shape == "split":
            first = msgspec.structs.replace(
                closed,
                status=OrderStatus.OPEN,
                filled=parts[0],
                remaining=amount - parts[0],
                cost=price * parts[0],
                fee=None,
                updated_at=order_fills[0].timestamp,
            )
            events = [("updated", first, order_fills[:1]), ("filled", closed, order_fills[1:])]
        else:
            events = [("filled", closed, order_fills)]
        for kind, o, carried in events:
            event_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
            event = OrderEvent(event_id=event_id, kind=kind, order=o, fills=carried, timestamp=o.updated_at)
            out.messages.append((subject, event_id, encode(event)))
    return out


async def prefill(nc, events: Events) -> int:
    """Publish every event, as fast as the connection goes (core publish; the stream captures them); the stream's
    last sequence."""
    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(ORDERS_STREAM)
    await ensure_orders_stream(js)
    for i, (subject, msg_id, payload) in enumerate(events.messages):
        await nc.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        if i % 2000 == 1999:
            await nc.flush()
    await nc.flush()
    deadline = time.monotonic() + 120
    while True:
        state = (await js.stream_info(ORDERS_STREAM)).state
        if state.messages >= len(events.messages):
            return state.last_seq
        if time.monotonic() > deadline:
            raise SystemExit(f"BORSA_ORDERS holds {state.messages} events of {len(events.messages)} published")
        await asyncio.sleep(0.1)


async def truncate_reports(db) -> None:
    await db.execute("TRUNCATE report_orders, report_fills, report_positions, report_daily")


async def copy_baseline(ctx, rows: list[tuple]) -> dict:
    """One COPY of the fill rows into a plain table with report_fills' columns: its seconds, and the CPU seconds
    Postgres and this process (asyncpg encoding the rows) spent on it."""
    db = ctx.db
    await db.execute("DROP TABLE IF EXISTS bench_raw_fills")
    await db.execute("CREATE TABLE bench_raw_fills (LIKE report_fills)")
    await db.execute("CHECKPOINT")
    pg, own = cpu_seconds(ctx.pg_pid, children=True), time.process_time()
    start = time.perf_counter()
    await db.copy_records_to_table("bench_raw_fills", records=rows, columns=FILL_COLUMNS)
    seconds = time.perf_counter() - start
    pg, own = cpu_seconds(ctx.pg_pid, children=True) - pg, time.process_time() - own
    await db.execute("DROP TABLE bench_raw_fills")
    return {"seconds": seconds, "pg_cpu_s": pg, "own_cpu_s": own}


async def ingest_run(ctx, batch: int, label: str) -> dict:
    """One borsa-reporting process through the whole stream, with a fresh durable consumer."""
    js, db = ctx.nc.jetstream(), ctx.db
    await truncate_reports(db)
    await db.execute("CHECKPOINT")
    durable = f"bench-{label}"
    env = {
        "BORSA_REPORTING_BATCH": str(batch),
        "BORSA_REPORTING_DURABLE": durable,
        "LOG_LEVEL": "warning",
    }
    workdir = Path(tempfile.mkdtemp(prefix="borsa-bench-reporting-"))
    spawn = time.perf_counter()
    starting = asyncio.create_task(asyncio.to_thread(start_reporting, ctx.nats_url, ctx.dsn, env=env, workdir=workdir))
    first = None
    while first is None:
        try:
            await js.consumer_info(ORDERS_STREAM, durable)
            first = time.perf_counter()
        except NotFoundError:
            if starting.done():
                await starting  # raises if it failed
            await asyncio.sleep(0.005)
    process = await starting
    ready = time.perf_counter()
    pid = process.proc.pid
    cpu_ready = cpu_seconds(pid)
    pg_ready, nats_ready = cpu_seconds(ctx.pg_pid, children=True), cpu_seconds(ctx.nats_pid)
    try:
        deadline = time.monotonic() + 1800
        while True:
            info = await js.consumer_info(ORDERS_STREAM, durable)
            if info.ack_floor.stream_seq >= ctx.last_seq:
                end = time.perf_counter()
                break
            if process.proc.poll() is not None:
                raise SystemExit(f"borsa-reporting exited with {process.proc.returncode}; see {process.log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"borsa-reporting did not get through the stream; see {process.log_path}")
            # Not more often: each consumer_info costs nats-server about 3 ms with the stream this full (every
            # 10 ms it took 60 % of the server's CPU in the run, from the process measured).
            await asyncio.sleep(POLL_SECONDS)
        cpu_end = cpu_seconds(pid)
        pg_end, nats_end = cpu_seconds(ctx.pg_pid, children=True), cpu_seconds(ctx.nats_pid)
        metrics = await asyncio.to_thread(scrape, process.ops_url)
    finally:
        await asyncio.to_thread(process.stop)
        with contextlib.suppress(Exception):
            await js.delete_consumer(ORDERS_STREAM, durable)
    stored = await db.fetchval("SELECT count(*) FROM report_fills")
    if stored != ctx.fills:
        raise SystemExit(f"report_fills holds {stored} rows, {ctx.fills} expected")
    shutil.rmtree(workdir, ignore_errors=True)
    after_ready = end - ready
    batches = metrics.get("borsa_reporting_batch_seconds_count", 0)
    return {
        "batch": batch,
        "seconds": end - first,
        "rate": ctx.fills / (end - first),
        "from_spawn": end - spawn,
        "batches": int(batches),
        "batch_ms": 1000 * metrics.get("borsa_reporting_batch_seconds_sum", 0) / batches if batches else float("nan"),
        "in_transactions": metrics.get("borsa_reporting_batch_seconds_sum", 0) / (end - first),
        "recomputed": int(metrics.get("borsa_reporting_recomputed_groups_total", 0)),
        "cpu": (cpu_end - cpu_ready) / after_ready,
        "pg_cpu": (pg_end - pg_ready) / after_ready,
        "nats_cpu": (nats_end - nats_ready) / after_ready,
        # CPU microseconds per fill in each process while it consumed (from ready to the last acknowledgement).
        "cpu_us": {
            "borsa-reporting": 1e6 * (cpu_end - cpu_ready) / ctx.fills,
            "Postgres": 1e6 * (pg_end - pg_ready) / ctx.fills,
            "nats-server": 1e6 * (nats_end - nats_ready) / ctx.fills,
        },
    }


def statement_kind(sql: str) -> str:
    flat = " ".join(sql.split())
    for pattern, name in (
        ("WITH fills AS", "write all"),
        ("CREATE TEMP TABLE", "staging tables"),
        ("COPY reporting_keys", "stage fill keys"),
        ("FOR UPDATE", "lock groups"),
        ("JOIN reporting_keys", "find known fills"),
        ("COPY reporting_fills", "stage fills"),
        ("COPY reporting_orders", "stage orders"),
        ("COPY reporting_positions", "stage positions"),
        ("ORDER BY timestamp_ms, trade_id", "recompute: read fills"),
        ("UPDATE report_fills f", "recompute: fills"),
        ("UPDATE report_daily d", "recompute: daily"),
        ("UPDATE report_positions SET", "recompute: group"),
        ("FROM report_daily", "daily sums"),
        ("FROM report_fills x", "edge days: fills"),
        ("FROM report_orders x", "edge days: orders"),
        ("FROM report_positions d", "positions"),
    ):
        if pattern in flat:
            return name
    return flat[:40]


async def ingest_breakdown(ctx, events: Events, batch: int) -> dict:
    """The same events through `Ingest.apply` in this process, each statement timed: where a batch's time goes."""
    await truncate_reports(ctx.db)
    sql: dict[str, list[float]] = {}

    def record(statement, _args, seconds, cpu) -> None:
        spent = sql.setdefault(statement_kind(statement), [0.0, 0.0])
        spent[0] += seconds
        spent[1] += cpu

    pool = await asyncpg.create_pool(ctx.dsn, min_size=1, max_size=2, init=jsonb_codec)
    ingest = Ingest(TimedPool(pool, record), Rates(ctx.nc))
    decoding = applying = 0.0
    n = 0
    try:
        for i in range(0, len(events.messages), batch):
            chunk = events.messages[i : i + batch]
            start = time.perf_counter()
            decoded = []
            for subject, _, payload in chunk:  # as the service's consumer does with each event as it arrives
                exchange, account = parse_order_events(subject)
                decoded.append(Prepared(exchange, account, decode_event(payload)))
            middle = time.perf_counter()
            await ingest.apply_prepared(decoded)
            decoding += middle - start
            applying += time.perf_counter() - middle
            n += 1
    finally:
        await ingest.close()
        await pool.close()
    total_sql = sum(wall for wall, _ in sql.values())
    return {
        "batch": batch,
        "batches": n,
        "decode_ms": 1000 * decoding / n,
        "apply_ms": 1000 * applying / n,
        "sql_ms": {k: (1000 * wall / n, 1000 * cpu / n) for k, (wall, cpu) in sql.items()},
        "sql_cpu_ms": 1000 * sum(cpu for _, cpu in sql.values()) / n,
        "python_ms": 1000 * (applying - total_sql) / n,
        "rate": ctx.fills / (decoding + applying),
    }


async def ingest_profile(ctx, events: Events, batch: int, top: int = 20) -> str:
    """The in-process pass again under cProfile: the functions the time goes to (slowed by the profiler)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        await ingest_breakdown(ctx, events, batch)
    finally:
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return text[text.index("   ncalls") :].rstrip() if "   ncalls" in text else text


async def bench_ingest(ctx, args) -> dict:
    print(f"ingest: generating {args.fills} fills", file=sys.stderr)
    events = await asyncio.to_thread(ingest_events, args.fills, args.accounts)
    # Out of the collector's sight: the events held here must not slow down the in-process breakdown.
    gc.collect()
    gc.freeze()
    ctx.fills = len(events.rows)
    start = time.perf_counter()
    ctx.last_seq = await prefill(ctx.nc, events)
    published = time.perf_counter() - start
    copies, runs = [], []
    for r in range(args.rounds):
        for batch in args.batches:
            print(f"ingest: round {r + 1}, COPY, then borsa-reporting with batch {batch}", file=sys.stderr)
            copies.append(await copy_baseline(ctx, events.rows))
            runs.append({**await ingest_run(ctx, batch, f"{batch}-{r}"), "round": r + 1})
    best = max(runs, key=lambda x: x["rate"])
    print(f"ingest: in-process breakdown at batch {best['batch']}", file=sys.stderr)
    breakdown = await ingest_breakdown(ctx, events, best["batch"])
    fastest = min(copies, key=lambda c: c["seconds"])
    copy_rate = ctx.fills / fastest["seconds"]
    passed = best["rate"] >= GOAL_RATIO * copy_rate and best["rate"] >= GOAL_FILLS_PER_S
    profile = "" if passed else await ingest_profile(ctx, events, best["batch"])
    await ctx.nc.jetstream().delete_stream(ORDERS_STREAM)  # part 2's process must not consume it
    return {
        "fills": ctx.fills,
        "events": len(events.messages),
        "orders": events.orders,
        "accounts": args.accounts,
        "groups": 2 * args.accounts,
        "published_per_s": len(events.messages) / published,
        "copy_rates": [ctx.fills / c["seconds"] for c in copies],
        "copy_rate": copy_rate,
        "copy_cpu_us": {k: 1e6 * fastest[k] / ctx.fills for k in ("pg_cpu_s", "own_cpu_s")},
        "runs": runs,
        "best": best,
        "ratio": best["rate"] / copy_rate,
        "pass": passed,
        "breakdown": breakdown,
        "profile": profile,
    }


# -- 2. summary --------------------------------------------------------------------------------------------------
async def load_summary_data(db, n_fills: int, seed: int = 2) -> dict:
    """One user's fills, orders and positions, COPYed; daily sums computed from them in SQL."""
    rng = random.Random(seed)
    shape = SUMMARY_SHAPE
    user = await db.fetchval(
        "INSERT INTO users (email, password_hash) VALUES ('bench@borsa.local', 'argon2-hash') RETURNING id"
    )
    markets = {base: Market(base, rng) for base in list(BASES)[: shape["symbols"]]}
    bases = list(markets)
    accounts: list[tuple[str, uuid.UUID]] = []
    for exchange in EXCHANGES:
        for _ in range(shape["accounts_per_exchange"]):
            key = await db.fetchval(
                "INSERT INTO api_keys (user_id, exchange_name, label, mode) VALUES ($1, $2, 'bench', 'paper') "
                "RETURNING id",
                user,
                exchange,
            )
            accounts.append((exchange, key))
    # (exchange, account, bot, base, share of the fills)
    by_hand = [(ex, acc, None, base) for ex, acc in accounts for base in bases]
    bots = [(*rng.choice(accounts), new_uuid(rng), rng.choice(bases)) for _ in range(shape["bots"])]
    plan = [(*g, shape["by_hand"] / len(by_hand)) for g in by_hand]
    plan += [(*g, (1 - shape["by_hand"]) / len(bots)) for g in bots]
    counts = [max(1, int(n_fills * share)) for *_, share in plan]
    counts[-1] += n_fills - sum(counts)
    span = SUMMARY_DAYS * DAY_MS
    fills: list[tuple] = []
    orders: list[tuple] = []
    positions: list[tuple] = []
    totals = {"fills": 0, "orders": 0}
    trade_seq = order_seq = 0

    async def flush(force: bool = False) -> None:
        if force or len(fills) >= 100_000:
            await db.copy_records_to_table("report_fills", records=fills, columns=FILL_COLUMNS)
            await db.copy_records_to_table("report_orders", records=orders, columns=ORDER_COLUMNS)
            totals["fills"] += len(fills)
            totals["orders"] += len(orders)
            fills.clear()
            orders.clear()

    for (exchange, account, bot, base, _), count in zip(plan, counts, strict=True):
        market, quote = markets[base], QUOTES[exchange]
        symbol, native = f"{base}/{quote}", market_id(exchange, base, quote)
        times = sorted(rng.randrange(SUMMARY_T0, SUMMARY_T0 + span) for _ in range(count))
        book, last, i, seq = Book(), (0, ""), 0, 0
        while i < len(times):
            parts = 2 if rng.random() < 0.3 and i + 1 < len(times) else 1
            side = "sell" if market.down(book.position) > 0 else "buy"
            amount = market.down(book.position) if side == "sell" else market.amount(rng)
            price = market.price(times[i], rng)
            split = [amount] if parts == 1 else [market.down(amount * Decimal("0.4")) or market.step, None]
            if parts == 2:
                split[1] = amount - split[0]
                if split[1] <= 0:
                    split = [amount]
            seq += 1
            order_seq += 1
            order_id = f"o{order_seq:09d}"
            client_order_id = f"b{bot.hex}-{seq}" if bot else f"web-{order_seq:012x}"
            total_fee = Decimal(0)
            for part in split:
                trade_seq += 1
                ts, trade_id = times[i], f"t{trade_seq:010d}"
                fee = (price * part * FEE_RATE).quantize(FEE_STEP)
                realized = book.apply(Trade(side, price, part, fee_quote=fee))
                fills.append(
                    (
                        exchange,
                        account,
                        trade_id,
                        order_id,
                        client_order_id,
                        bot,
                        symbol,
                        base,
                        quote,
                        side,
                        price,
                        part,
                        price * part,
                        fee,
                        quote,
                        fee,
                        Decimal(1),
                        realized,
                        ts,
                    )
                )
                total_fee += fee
                last = (ts, trade_id)
                i += 1
            created = max(SUMMARY_T0, times[i - len(split)] - rng.randint(0, 60_000))
            orders.append(
                (
                    exchange,
                    account,
                    order_id,
                    client_order_id,
                    bot,
                    symbol,
                    native,
                    side,
                    "limit",
                    "closed",
                    amount,
                    amount,
                    price,
                    price,
                    price * amount,
                    total_fee,
                    quote,
                    created,
                    last[0],
                )
            )
        positions.append(
            (
                exchange,
                account,
                str(bot) if bot else "",
                symbol,
                base,
                quote,
                json.dumps(lots_to_json(book.lots)),
                book.position,
                book.cost,
                last[0],
                last[1],
            )
        )
        await flush()
    await flush(force=True)
    await db.copy_records_to_table("report_positions", records=positions, columns=POSITION_COLUMNS)
    await db.execute(
        """
        INSERT INTO report_daily (exchange_name, account_id, bot_key, symbol, day, quote, orders, fills, volume, fees,
            unconverted, realized_pnl)
        SELECT e, a, b, s, day, max(q), sum(o), sum(f), sum(v), sum(fee), sum(u), sum(p) FROM (
            SELECT exchange_name AS e, account_id AS a, coalesce(bot_id::text, '') AS b, symbol AS s,
                (to_timestamp(timestamp_ms / 1000.0) AT TIME ZONE 'UTC')::date AS day, quote AS q, 0 AS o,
                count(*) AS f, sum(cost) AS v, sum(coalesce(fee_quote, 0)) AS fee,
                count(*) FILTER (WHERE fee_quote IS NULL) AS u, sum(realized_pnl) AS p
            FROM report_fills GROUP BY 1, 2, 3, 4, 5, 6
            UNION ALL
            SELECT exchange_name, account_id, coalesce(bot_id::text, ''), symbol,
                (to_timestamp(created_ms / 1000.0) AT TIME ZONE 'UTC')::date,
                split_part(split_part(symbol, '/', 2), ':', 1), count(*), 0, 0, 0, 0, 0
            FROM report_orders GROUP BY 1, 2, 3, 4, 5, 6
        ) x GROUP BY e, a, b, s, day
        """
    )
    await db.execute("VACUUM ANALYZE")
    summed = await db.fetchval("SELECT sum(fills) FROM report_daily")
    if summed != totals["fills"]:
        raise SystemExit(f"report_daily sums {summed} fills, report_fills holds {totals['fills']}")
    return {
        "user": str(user),
        "fills": totals["fills"],
        "orders": totals["orders"],
        "daily": await db.fetchval("SELECT count(*) FROM report_daily"),
        "groups": len(plan),
        "open": sum(1 for p in positions if p[7] != 0),
        "accounts": len(accounts),
        "bots": len(bots),
        "symbols": len(bases),
    }


def cases(user: str) -> list[tuple[str, str, ReportRequest]]:
    out = []
    for group_by in GROUPS:
        out.append((group_by, "all", ReportRequest(user_id=user, group_by=group_by)))
        out.append((group_by, "range", ReportRequest(user_id=user, group_by=group_by, since=RANGE[0], until=RANGE[1])))
    return out


async def summary_breakdown(ctx, req: ReportRequest, warmup: int) -> dict:
    """The same summary in this process through `queries.summary`, every statement timed, on one connection that
    has run it `warmup` times first (as the service's pooled connections have: Postgres may have switched its
    prepared statements to generic plans by then); the median of a few runs."""
    from borsa_reporting.service import filters

    runs = []
    conn = await asyncpg.connect(ctx.summary_dsn)
    prices = Prices(ctx.nc)
    try:
        for i in range(warmup + BREAKDOWN_RUNS):
            statements: list[tuple[str, str, tuple, float]] = []

            def record(sql, args, seconds, _cpu, statements=statements) -> None:
                statements.append((statement_kind(sql), sql, args, seconds))

            timed = TimedConn(conn, record)
            start = time.perf_counter()
            await queries.summary(timed, filters(req), req.group_by, prices)
            if i >= warmup:
                runs.append((time.perf_counter() - start, statements))
    finally:
        await conn.close()
    runs.sort(key=lambda r: r[0])
    total, statements = runs[len(runs) // 2]
    sql: dict[str, float] = {}
    for kind, _, _, seconds in statements:
        sql[kind] = sql.get(kind, 0.0) + seconds
    return {
        "total_ms": 1000 * total,
        "sql_ms": {k: 1000 * v for k, v in sql.items()},
        "python_ms": 1000 * (total - sum(sql.values())),
        "slowest": sorted(statements, key=lambda s: s[3], reverse=True)[:2],
    }


async def explain(dsn: str, sql: str, args: tuple) -> list[tuple[str, str]]:
    """The statement's plan with its parameters (a custom plan) and as a generic prepared plan, each run."""
    conn = await asyncpg.connect(dsn)
    try:
        custom = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE bench_plan AS {sql}")
        placeholders = ", ".join(f"${i + 1}" for i in range(len(args)))
        generic = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_plan({placeholders})", *args)
    finally:
        await conn.close()
    return [("custom plan", "\n".join(r[0] for r in custom)), ("generic plan", "\n".join(r[0] for r in generic))]


async def request_cases(ctx, args, user: str, dsn: str, label: str) -> dict[tuple[str, str], dict]:
    """Every case over NATS to one borsa-reporting process on `dsn`."""
    workdir = Path(tempfile.mkdtemp(prefix="borsa-bench-reporting-"))
    process = await asyncio.to_thread(start_reporting, ctx.nats_url, dsn, env={"LOG_LEVEL": "warning"}, workdir=workdir)
    out = {}
    try:
        for group_by, span, req in cases(user):
            print(f"summary ({label}): group_by {group_by}, {span}", file=sys.stderr)
            latencies, errors, reply, error = [], 0, None, ""
            for i in range(args.warmup + args.requests):
                start = time.perf_counter()
                try:
                    reply = await request(ctx.nc, reports("summary"), req, SummaryReply, timeout=30)
                except Exception as exc:
                    errors += 1
                    error = str(exc)
                    continue
                if i >= args.warmup:
                    latencies.append(time.perf_counter() - start)
            out[(group_by, span)] = {
                "rows": len(reply.rows) if reply else 0,
                "reply_kb": len(encode(reply)) / 1024 if reply else 0.0,
                "p50": 1000 * percentile(latencies, 50),
                "p99": 1000 * percentile(latencies, 99),
                "mean": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
                "errors": errors,
                "error": error,
            }
    finally:
        await asyncio.to_thread(process.stop)
        shutil.rmtree(workdir, ignore_errors=True)
    return out


async def bench_summary(ctx, args) -> dict:
    ctx.summary_dsn = ctx.postgres.dsn("borsa_bench_summary")
    await migrate(ctx.summary_dsn)
    db = await asyncpg.connect(ctx.summary_dsn)
    try:
        print(f"summary: loading {args.summary_fills} fills", file=sys.stderr)
        start = time.perf_counter()
        data = await load_summary_data(db, args.summary_fills)
        data["load_seconds"] = time.perf_counter() - start
    finally:
        await db.close()
    as_is = await request_cases(ctx, args, data["user"], ctx.summary_dsn, "as configured")
    # The same service with its Postgres sessions planning every statement for its parameters: asyncpg takes the
    # DSN's query parameters as session settings, so this needs no change to borsa-reporting.
    custom = await request_cases(ctx, args, data["user"], f"{ctx.summary_dsn}?{CUSTOM_PLANS}", CUSTOM_PLANS)
    rows = []
    for group_by, span, req in cases(data["user"]):
        row = {"group_by": group_by, "span": span, **as_is[(group_by, span)]}
        row["custom"] = custom[(group_by, span)]
        row["breakdown"] = await summary_breakdown(ctx, req, args.warmup)
        row["pass"] = not row["errors"] and row["p99"] <= GOAL_P99_MS
        if not row["pass"]:
            row["explain"] = [
                (sql, await explain(ctx.summary_dsn, sql, sql_args))
                for _, sql, sql_args, _ in row["breakdown"]["slowest"]
            ]
        rows.append(row)
    return {"data": data, "rows": rows, "pass": all(r["pass"] for r in rows)}


# -- running -----------------------------------------------------------------------------------------------------
@dataclass
class Context:
    postgres: object
    nats_url: str
    nats_pid: int
    dsn: str
    nc: object = None
    db: object = None
    fills: int = 0
    last_seq: int = 0
    summary_dsn: str = ""
    served: list = field(default_factory=lambda: [0])

    @property
    def pg_pid(self) -> int:
        return self.postgres.proc.pid


async def bench(ctx: Context, args) -> dict:
    ctx.nc = await nats.connect(ctx.nats_url, name="bench-reporting")
    ctx.db = await asyncpg.connect(ctx.dsn)
    stand_in = await stand_in_tickers(ctx.nc, ctx.served)
    load = os.getloadavg()[0]
    try:
        server = ctx.nc.connected_server_version
        versions = {
            "postgres": await ctx.db.fetchval("SHOW server_version"),
            "nats": f"{server.major}.{server.minor}.{server.patch}",
        }
        result = {"versions": versions, "ingest": None, "summary": None}
        if args.fills:
            result["ingest"] = await bench_ingest(ctx, args)
        if args.summary_fills:
            result["summary"] = await bench_summary(ctx, args)
        result["tickers_served"] = ctx.served[0]
        result["load"] = (load, os.getloadavg()[0])
        return result
    finally:
        await stand_in.unsubscribe()
        await ctx.db.close()
        await ctx.nc.close()


def run(args: argparse.Namespace) -> dict:
    servers = []
    # Postgres runs as an unprivileged user when this runs as root: its folder must be reachable.
    workdir = Path(tempfile.mkdtemp(prefix="borsa-bench-pg-"))
    workdir.chmod(0o755)
    try:
        servers.append(start_nats())
        postgres = start_postgres(workdir)
        servers.append(postgres)
        ctx = Context(postgres, servers[0].url, servers[0].proc.pid, postgres.dsn("borsa_bench_ingest"))
        asyncio.run(migrate(ctx.dsn))
        return asyncio.run(bench(ctx, args))
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _ms(values: dict[str, float], key: str) -> str:
    return f"{values.get(key, 0.0):.1f}"


def cpu_ceiling(ingest: dict) -> str:
    """What the best run's CPU per fill allows on this machine, next to what the goal would allow."""
    used = ingest["best"]["cpu_us"]
    total = sum(used.values())
    cores = os.cpu_count() or 1
    copy = ingest["copy_cpu_us"]
    goal_rate = GOAL_RATIO * ingest["copy_rate"]
    parts = ", ".join(f"{name} {us:.1f}" for name, us in used.items())
    return (
        f"CPU per fill in the best run, microseconds: {parts}; {total:.1f} in all, so {cores} cores hold at most "
        f"{cores * 1e6 / total:,.0f} fills/s at that cost however well the three overlap. COPY spends "
        f"{copy['pg_cpu_s']:.1f} of Postgres and {copy['own_cpu_s']:.1f} of the bench process per row; half its "
        f"rate, {goal_rate:,.0f} fills/s, leaves {cores * 1e6 / goal_rate:.1f} microseconds of CPU per fill for "
        "the three processes together (delivery and acknowledgement, decoding, FIFO, orders, daily sums and four "
        "indexes included)."
    )


def tables(result: dict, args: argparse.Namespace) -> str:
    verdict = {True: "PASS", False: "FAIL"}
    v = result["versions"]
    lines = [
        f"Environment: {os.cpu_count()} CPUs, Python {platform.python_version()}, Postgres {v['postgres']} "
        "(as the test harness starts it: fsync, synchronous_commit and full_page_writes off, shared_buffers 128MB), "
        f"nats-server {v['nats']} (JetStream, file store); every process on this machine; load average (1 min) "
        f"{result['load'][0]:.2f} at the start, {result['load'][1]:.2f} at the end.",
    ]
    ingest = result["ingest"]
    if ingest:
        lines += [
            "",
            f"Ingest: {ingest['fills']:,} fills in {ingest['events']:,} order events ({ingest['orders']:,} orders; "
            f"{ingest['accounts']:,} accounts on 4 exchanges, {ingest['groups']:,} account and symbol groups), "
            f"published beforehand at {ingest['published_per_s']:,.0f} events/s. borsa-reporting: the real process "
            "with a fresh durable consumer on the pre-filled stream, from the moment its consumer exists until "
            "JetStream holds every event acknowledged (after its batch committed); `BORSA_REPORTING_BATCH` counts "
            "events; mean batch: one batch's transaction (its `borsa_reporting_batch_seconds`), in transactions: "
            "their share of the time (the rest: fetching, decoding, acknowledging); CPU as a share of one core "
            "while it consumes. Baseline: one asyncpg `copy_records_to_table` of the same fill rows (report_fills' "
            f"19 columns) into a plain table without indexes. {args.rounds} round(s), alternating. Goal: at least "
            f"{GOAL_RATIO:g} of COPY's rate and at least {GOAL_FILLS_PER_S:,} fills/s.",
            "",
            "| path | round | fills/s | vs COPY (best) | seconds | from spawn s | batches | mean batch ms "
            "| in transactions | reporting CPU | Postgres CPU | nats CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, rate in enumerate(ingest["copy_rates"]):
            lines.append(
                f"| COPY (baseline) | {i + 1} | {rate:,.0f} | {rate / ingest['copy_rate']:.2f} | "
                f"{ingest['fills'] / rate:.2f} | | | | | | | |"
            )
        for r in sorted(ingest["runs"], key=lambda x: (x["batch"], x["round"])):
            lines.append(
                f"| borsa-reporting, batch {r['batch']} | {r['round']} | {r['rate']:,.0f} | "
                f"{r['rate'] / ingest['copy_rate']:.2f} | {r['seconds']:.2f} | {r['from_spawn']:.2f} | "
                f"{r['batches']} | {r['batch_ms']:.1f} | {r['in_transactions'] * 100:.0f} % | {r['cpu'] * 100:.0f} % | "
                f"{r['pg_cpu'] * 100:.0f} % | {r['nats_cpu'] * 100:.0f} % |"
            )
        best, b = ingest["best"], ingest["breakdown"]
        lines += [
            "",
            f"Best: batch {best['batch']}, {best['rate']:,.0f} fills/s = {ingest['ratio']:.2f} x COPY's "
            f"{ingest['copy_rate']:,.0f} fills/s: {verdict[ingest['pass']]}. (Groups computed again for fills out "
            f"of order: {sum(r['recomputed'] for r in ingest['runs'])}; the events are in time order.)",
            "",
            cpu_ceiling(ingest),
            "",
            f"Where a batch's time goes: the same events through `Ingest.apply_prepared` in the bench process (no "
            "JetStream; decoding and preparing each event, which the service does as events arrive, timed apart), "
            f"batch {b['batch']}, {b['batches']} batches, {b['rate']:,.0f} fills/s; ms per batch; for each "
            "statement its wall time and, in brackets, the CPU this process spent in it (asyncpg encoding the "
            f"arguments and decoding the rows; {b['sql_cpu_ms']:.1f} ms in all), the rest is Postgres:",
            "",
            "| decode and prepare | Python in apply | "
            + " | ".join(b["sql_ms"])
            + " | apply total |\n|"
            + "---:|" * (len(b["sql_ms"]) + 3),
            f"| {b['decode_ms']:.1f} | {b['python_ms']:.1f} | "
            + " | ".join(f"{wall:.1f} ({cpu:.1f})" for wall, cpu in b["sql_ms"].values())
            + f" | {b['apply_ms']:.1f} |",
        ]
    summary = result["summary"]
    if summary:
        d = summary["data"]
        kinds = ("daily sums", "edge days: fills", "edge days: orders", "positions")
        since = datetime.fromtimestamp(RANGE[0] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        until = datetime.fromtimestamp(RANGE[1] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines += [
            "",
            f"Summary: one user, {d['fills']:,} fills and {d['orders']:,} orders over {SUMMARY_DAYS} days "
            f"({d['accounts']} API keys on 4 exchanges, {d['symbols']} symbols, {d['bots']} bots and orders placed "
            f"by hand on every key and symbol: {d['groups']:,} groups, {d['open']:,} with a position open; "
            f"{d['daily']:,} daily rows), loaded in {d['load_seconds']:.0f} s. `borsa.reports.summary` over NATS to "
            f"the borsa-reporting process, one request in flight, {args.requests} requests per case after "
            f"{args.warmup} warm-up; range: {since} to {until} UTC. Unrealised PnL: this process answers "
            f"the ticker requests at fixed prices ({result['tickers_served']:,} answered). Goal: p99 at most "
            f"{GOAL_P99_MS:g} ms, for the service as configured. Next to it, the same process with "
            f"`{CUSTOM_PLANS}` as a query parameter of its DATABASE_URL (asyncpg makes it a session setting), so "
            "that Postgres plans each statement for its parameters instead of switching a pooled connection's "
            "prepared statements to generic plans after their fifth run.",
            "",
            "| group_by | range | rows | reply KiB | p50 ms | p99 ms | mean ms | errors | goal "
            "| custom plans p50 / p99 ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for r in summary["rows"]:
            c = r["custom"]
            lines.append(
                f"| {r['group_by']} | {r['span']} | {r['rows']} | {r['reply_kb']:.1f} | {r['p50']:.1f} | "
                f"{r['p99']:.1f} | {r['mean']:.1f} | {r['errors']} | {verdict[r['pass']]} | "
                f"{c['p50']:.1f} / {c['p99']:.1f} |"
            )
        lines += [
            "",
            "Where a summary's time goes: the same case through `queries.summary` in the bench process on one "
            f"connection that ran it {args.warmup} times first (as pooled connections have), median of "
            f"{BREAKDOWN_RUNS} runs, ms by statement (each one round trip to Postgres; the edge days are the raw "
            "fills and orders of the partial days at the ends of a range); Python: the rest (summing, unrealised "
            "PnL, prices cached by the service's `Prices`).",
            "",
            "| group_by | range | in-process ms | " + " | ".join(kinds) + " | Python |",
            "|---|---|---:|" + "---:|" * len(kinds) + "---:|",
        ]
        for r in summary["rows"]:
            br = r["breakdown"]
            lines.append(
                f"| {r['group_by']} | {r['span']} | {br['total_ms']:.1f} | "
                + " | ".join(_ms(br["sql_ms"], k) for k in kinds)
                + f" | {br['python_ms']:.1f} |"
            )
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    out = []
    ingest = result["ingest"]
    if ingest:
        best = ingest["best"]
        out.append(
            f"{'PASS' if ingest['pass'] else 'FAIL'} ingest: {best['rate']:,.0f} fills/s at batch {best['batch']} = "
            f"{ingest['ratio']:.2f} x COPY ({ingest['copy_rate']:,.0f} fills/s); goal >= {GOAL_RATIO:g} x and >= "
            f"{GOAL_FILLS_PER_S:,} fills/s"
        )
    summary = result["summary"]
    if summary:
        worst = max(summary["rows"], key=lambda r: r["p99"])
        errors = sum(r["errors"] for r in summary["rows"])
        out.append(
            f"{'PASS' if summary['pass'] else 'FAIL'} summary over {summary['data']['fills']:,} fills: worst p99 "
            f"{worst['p99']:.1f} ms ({worst['group_by']}, {worst['span']}), {errors} failed requests; goal p99 <= "
            f"{GOAL_P99_MS:g} ms"
        )
    return out


def details(result: dict) -> list[str]:
    """For the goals missed: the ingest profile, the plans of the slowest statements, the request errors."""
    out = []
    if result["ingest"] and result["ingest"]["profile"]:
        out += ["", "Ingest in this process under cProfile, by own time:", result["ingest"]["profile"]]
    for r in (result["summary"] or {}).get("rows", []):
        if r.get("error"):
            out += ["", f"{r['group_by']} / {r['span']}: {r['errors']} failed requests, e.g.: {r['error']}"]
        for n, (sql, plans) in enumerate(r.get("explain", ()), 1):
            out += ["", f"{r['group_by']} / {r['span']}: slowest statement {n}", " ".join(sql.split())]
            for name, plan in plans:
                out += [f"-- {name}:", plan]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=100_000, help="ingest: fills on BORSA_ORDERS (0: skip)")
    parser.add_argument("--accounts", type=int, default=2000, help="ingest: accounts the fills are spread over")
    parser.add_argument("--batches", default="1000,5000,10000", help="ingest: BORSA_REPORTING_BATCH values to try")
    parser.add_argument("--rounds", type=int, default=2, help="ingest: runs of every batch value (and of COPY)")
    parser.add_argument("--summary-fills", type=int, default=1_000_000, help="summary: fills loaded (0: skip)")
    parser.add_argument("--requests", type=int, default=200, help="summary: timed requests per case")
    parser.add_argument("--warmup", type=int, default=20, help="summary: requests per case before timing")
    parser.add_argument("--write-readme", action="store_true", help="keep the tables in README.md")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b]
    if not args.batches or any(not 1 <= b <= 10_000 for b in args.batches):
        parser.error("--batches takes numbers from 1 to 10000")
    if (args.fills and args.accounts < 1) or args.rounds < 1 or args.requests < 1:
        parser.error("--accounts, --rounds and --requests must be at least 1")
    result = run(args)
    text = tables(result, args)
    print(text)
    print()
    for line in verdicts(result):
        print(line)
    for line in details(result):
        print(line)
    if args.write_readme:
        write_readme(MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
