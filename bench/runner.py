"""What one bot-runner process holds up: memory, event-loop lag and tick-to-intent latency for thousands of bots.

For each size (default 1,000, 5,000 and 10,000 bots), ONE `borsa-runner` process on a fresh migrated database
runs that many bots, half DCA and half grid, on paper API keys spread over the four exchanges and six symbols
each, next to a baseline measured in the same run: the same runner with 0 bots. So that the runner is what is
measured, this process stands in for the connectors on the bus (`market`, `watch`, `order.create`,
`order.cancel`, `ohlcv`, the simulator's markets with their precision and limits): it publishes a ticker on
every watched symbol once a second with a small random walk, answers a create at once (a limit order rests
open; a market order comes back closed, and its fill is published on BORSA_ORDERS as a connector would, so a DCA
bot's next buy becomes due). Each row settles (every bot running, each with its first order placed), then a
steady window is measured from the runner's own /metrics (histogram deltas between two scrapes) and
/proc/<pid>/status.

    .venv/bin/python bench/runner.py [--sizes 1000,5000,10000] [--seconds 20] [--runner-env NAME=VALUE]
        [--diagnose] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

from benchlib import write_readme

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
QUOTES = {"binance": "USDT", "kraken": "USD", "coinbase": "USD", "kucoin": "USDT"}
BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "LTC")
BOTS_PER_USER = 10  # each user holds one paper key per exchange
DCA_QUOTE, DCA_INTERVAL = "20", (10, 60)
GRID_SPAN, GRID_LEVELS, GRID_QUOTE = Decimal("0.10"), (4, 8), "25"
WALK_SIGMA = 0.0005  # relative step of a ticker's random walk, once a second
LEASE_MS = 30_000
GOAL_RSS_MIB, GOAL_LAG_MS, GOAL_BOTS = 1024, 50.0, 10_000
MODEL_BOTS = 2000
MARKER = "bench:runner"


# -- reading the runner ----------------------------------------------------------------------------------------
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(ops_url: str) -> dict[str, float]:
    """Every sample of the runner's /metrics, keyed `name{labels}`."""
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def buckets(sample: dict[str, float], name: str) -> list[tuple[float, float]]:
    """(upper bound in seconds, cumulative count) of a histogram, +Inf last."""
    found = []
    for key, value in sample.items():
        match = re.fullmatch(rf'{name}_bucket\{{le="([^"]+)"\}}', key)
        if match:
            found.append((float(match.group(1)), value))
    return sorted(found)


def p99_bound(before: dict, after: dict, name: str) -> tuple[float, int]:
    """(upper bound of the bucket holding the 99th percentile, in ms; observations) between two scrapes."""
    start = dict(buckets(before, name))
    delta = [(le, count - start.get(le, 0.0)) for le, count in buckets(after, name)]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return float("nan"), 0
    for le, cumulative in delta:
        if cumulative >= 0.99 * total:
            return le * 1000, int(total)
    return float("inf"), int(total)


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found.get("VmRSS", float("nan")), found.get("VmHWM", float("nan"))


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when pid is None)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- --diagnose: what blocks the runner's event loop ---------------------------------------------------------------
# Loaded into the runner as `sitecustomize` (PYTHONPATH), so the runner's code stays as it is: every garbage
# collection pause over 5 ms and every event-loop callback that runs over 20 ms, one JSON line each on stderr.
DIAGNOSE_HOOK = """
import asyncio.events, gc, json, sys, time

_gc_start = [0.0]


def _gc(phase, info):
    if phase == "start":
        _gc_start[0] = time.perf_counter()
        return
    took = time.perf_counter() - _gc_start[0]
    if took > 0.005:
        print(json.dumps({"bench_diag": "gc", "t": time.monotonic(), "ms": took * 1000, "gen": info["generation"]}),
              file=sys.stderr, flush=True)


gc.callbacks.append(_gc)
_run = asyncio.events.Handle._run


def _timed_run(self):
    started = time.perf_counter()
    _run(self)
    took = time.perf_counter() - started
    if took > 0.02:
        what = getattr(self._callback, "__self__", self._callback)
        name = what.get_name() if isinstance(what, asyncio.Task) else type(what).__name__
        print(json.dumps({"bench_diag": "slow", "t": time.monotonic(), "ms": took * 1000, "what": name}),
              file=sys.stderr, flush=True)


asyncio.events.Handle._run = _timed_run
"""


def diagnosis(log_path: Path, start: float, end: float) -> dict:
    """Full collections and slow callbacks (by task, bots together) the hook logged within the window."""
    full, slow = [], {}
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if '"bench_diag"' not in line:
            continue
        record = json.loads(line[line.index("{") :])
        if not start <= record["t"] <= end:
            continue
        if record["bench_diag"] == "gc" and record["gen"] == 2:
            full.append(record["ms"])
        elif record["bench_diag"] == "slow":
            name = "a bot's task" if record["what"].startswith("bot-") else record["what"]
            slow.setdefault(name, []).append(record["ms"])
    return {"seconds": end - start, "full_gc": sorted(full), "slow": {k: sorted(v) for k, v in slow.items()}}


# -- the stand-in connectors -----------------------------------------------------------------------------------
def market_table() -> dict[tuple[str, str], object]:
    """(exchange, unified symbol) -> the simulator's MarketSpec, for the bench's symbols."""
    from borsa_sim.markets import markets_for

    table = {}
    for exchange in EXCHANGES:
        specs = {spec.symbol: spec for spec in markets_for(exchange)}
        for base in BASES:
            symbol = f"{base}/{QUOTES[exchange]}"
            table[(exchange, symbol)] = specs[symbol]
    return table


def as_market(spec):
    """The connector's `Market` reply for a simulator market (a zero limit is no limit, as the connector says)."""
    from borsa_proto.exchange import Limits, Market, MinMax, Precision

    def limit(value: Decimal) -> Decimal | None:
        return value if value else None

    return Market(
        symbol=spec.symbol,
        market_id=spec.market_id,
        base=spec.base,
        quote=spec.quote,
        active=spec.active,
        precision=Precision(amount=spec.amount_step, price=spec.price_tick),
        limits=Limits(
            amount=MinMax(min=limit(spec.min_amount), max=limit(spec.max_amount)),
            cost=MinMax(min=limit(spec.min_cost), max=limit(spec.max_cost)),
            price=MinMax(min=limit(spec.min_price), max=limit(spec.max_price)),
        ),
        maker=spec.maker,
        taker=spec.taker,
    )


class StandIns:
    """The four connectors as a runner sees them on the bus, answered from this process at once."""

    def __init__(self, nc, table: dict) -> None:
        from borsa_proto import encode

        self.nc, self.table = nc, table
        self.markets = {key: encode(as_market(spec)) for key, spec in table.items()}
        self.rng = random.Random(7)
        self.subs: list = []
        self.tasks: list[asyncio.Task] = []
        self.reset()

    def reset(self) -> None:
        """A new row: prices back to where the bots' grids were drawn, no orders, no watchers."""
        self.prices = {key: spec.start_price for key, spec in self.table.items()}
        self.leases: dict[tuple[str, str], float] = {}
        self.orders: dict[str, bytes] = {}  # client order id -> the reply, so a repeat gets the same order
        self.next_id = 0
        self.counts = {"market": 0, "watch": 0, "create": 0, "cancel": 0, "tickers": 0, "fills": 0}

    async def start(self) -> None:
        from borsa_proto.subjects import market, ohlcv, order_cancel, order_create, watch

        for exchange in EXCHANGES:
            for subject, handler in (
                (market(exchange), self._market),
                (watch(exchange), self._watch),
                (order_create(exchange), self._create),
                (order_cancel(exchange), self._cancel),
                (ohlcv(exchange), self._ohlcv),
            ):
                self.subs.append(await self.nc.subscribe(subject, cb=self._handler(exchange, handler)))
        self.tasks.append(asyncio.create_task(self._tickers(), name="tickers"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in self.subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _handler(self, exchange: str, handler):
        from borsa_proto import BadMessage, ErrorBody, ErrorReply, encode

        async def serve(msg) -> None:
            try:
                reply = handler(exchange, msg.data)
            except (BadMessage, LookupError) as exc:
                code = "unknown_symbol" if isinstance(exc, LookupError) else "bad_request"
                if isinstance(exc, KeyError) and exc.args and exc.args[0] == "order":
                    code = "order_not_found"
                reply = encode(ErrorReply(error=ErrorBody(code=code, message=str(exc), exchange=exchange)))
            await msg.respond(reply)

        return serve

    def _spec(self, exchange: str, symbol: str):
        spec = self.table.get((exchange, symbol))
        if spec is None:
            raise LookupError(f"{symbol} is not one of the bench's markets on {exchange}")
        return spec

    def _market(self, exchange: str, data: bytes) -> bytes:
        from borsa_proto import decode
        from borsa_proto.requests import MarketRequest

        request = decode(data, MarketRequest)
        self._spec(exchange, request.symbol)
        self.counts["market"] += 1
        return self.markets[(exchange, request.symbol)]

    def _watch(self, exchange: str, data: bytes) -> bytes:
        from borsa_proto import decode, encode
        from borsa_proto.exchange import WatchReply
        from borsa_proto.requests import WatchRequest
        from borsa_proto.subjects import market_ticker

        request = decode(data, WatchRequest)
        spec = self._spec(exchange, request.symbol)
        lease = request.lease_ms or LEASE_MS
        self.leases[(exchange, spec.symbol)] = time.monotonic() + lease / 1000
        self.counts["watch"] += 1
        return encode(
            WatchReply(
                symbol=spec.symbol,
                market_id=spec.market_id,
                subject=market_ticker(exchange, spec.symbol),
                lease_ms=lease,
            )
        )

    def _create(self, exchange: str, data: bytes) -> bytes:
        from borsa_proto import decode, encode
        from borsa_proto.orders import Fee, Fill, Order, OrderEvent
        from borsa_proto.requests import OrderCreateRequest
        from borsa_proto.subjects import order_events

        request = decode(data, OrderCreateRequest)
        known = self.orders.get(request.client_order_id)
        if known is not None:
            return known
        spec = self._spec(exchange, request.symbol)
        self.next_id += 1
        now = int(time.time() * 1000)
        common = dict(
            exchange=exchange,
            account=request.account,
            id=f"o{self.next_id}",
            client_order_id=request.client_order_id,
            symbol=spec.symbol,
            market_id=spec.market_id,
            side=request.side,
            type=request.type,
            amount=request.amount,
            created_at=now,
            updated_at=now,
        )
        fill = None
        if request.type == "market":
            price = self.prices[(exchange, spec.symbol)]
            cost = request.amount * price
            fee = (cost * spec.taker).quantize(Decimal("0.00000001"))
            order = Order(
                **common,
                status="closed",
                filled=request.amount,
                remaining=Decimal(0),
                price=None,
                average=price,
                cost=cost,
                fee=Fee(cost=fee, currency=spec.quote),
            )
            fill = Fill(
                trade_id=f"t{self.next_id}",
                price=price,
                amount=request.amount,
                fee_cost=fee,
                fee_currency=spec.quote,
                timestamp=now,
            )
        else:
            order = Order(
                **common,
                status="open",
                filled=Decimal(0),
                remaining=request.amount,
                price=request.price,
                average=None,
                cost=Decimal(0),
                fee=None,
            )
        reply = encode(order)
        self.orders[request.client_order_id] = reply
        self.counts["create"] += 1
        if fill is not None:
            # What a connector's tracker publishes once it sees the fill; the runner applies it and the bot's
            # next buy becomes due.
            event = OrderEvent(event_id=f"{exchange}:{order.id}:closed", kind="filled", order=order, fills=[fill])
            self.counts["fills"] += 1
            task = asyncio.create_task(
                self.nc.publish(
                    order_events(exchange, request.account), encode(event), headers={"Nats-Msg-Id": event.event_id}
                )
            )
            self.tasks.append(task)
            task.add_done_callback(self.tasks.remove)
        return reply

    def _cancel(self, exchange: str, data: bytes) -> bytes:
        import msgspec

        from borsa_proto import decode, encode
        from borsa_proto.orders import Order
        from borsa_proto.requests import OrderCancelRequest

        request = decode(data, OrderCancelRequest)
        known = self.orders.get(request.client_order_id or "")
        if known is None:
            raise KeyError("order")
        order = decode(known, Order)
        if order.status == "open":
            order = msgspec.structs.replace(order, status="canceled", updated_at=int(time.time() * 1000))
        self.counts["cancel"] += 1
        return encode(order)

    def _ohlcv(self, exchange: str, data: bytes) -> bytes:
        from borsa_proto import encode
        from borsa_proto.exchange import OhlcvReply

        return encode(OhlcvReply(candles=[]))

    async def _tickers(self) -> None:
        """Each watched symbol once a second, the symbols spread over the second as independent polls would be."""
        from borsa_proto import encode
        from borsa_proto.exchange import Ticker
        from borsa_proto.subjects import market_ticker

        while True:
            now = time.monotonic()
            watched = [key for key, until in self.leases.items() if until > now]
            if not watched:
                await asyncio.sleep(0.1)
                continue
            for i, key in enumerate(watched):
                delay = now + i / len(watched) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                spec = self.table[key]
                price = self.prices[key] * Decimal(1 + self.rng.gauss(0, WALK_SIGMA))
                price = max(spec.price_tick, price.quantize(spec.price_tick))
                self.prices[key] = price
                ticker = Ticker(
                    symbol=spec.symbol,
                    market_id=spec.market_id,
                    bid=price - spec.price_tick,
                    ask=price + spec.price_tick,
                    last=price,
                    timestamp=int(time.time() * 1000),
                )
                await self.nc.publish(market_ticker(key[0], spec.symbol), encode(ticker))
                self.counts["tickers"] += 1
            rest = now + 1.0 - time.monotonic()
            if rest > 0:
                await asyncio.sleep(rest)


# -- the bots --------------------------------------------------------------------------------------------------
def params_for(strategy: str, spec, rng: random.Random) -> dict:
    if strategy == "dca":
        return {"quote_amount": DCA_QUOTE, "interval_seconds": rng.randint(*DCA_INTERVAL)}
    tick = spec.price_tick
    return {
        "low": str((spec.start_price * (1 - GRID_SPAN)).quantize(tick)),
        "high": str((spec.start_price * (1 + GRID_SPAN)).quantize(tick)),
        "levels": rng.randint(*GRID_LEVELS),
        "quote_per_level": GRID_QUOTE,
    }


async def insert_bots(db, n: int, table: dict) -> None:
    """Users, one paper key per user and exchange, and n running bots, each with COPY."""
    rng = random.Random(n)
    users = [(uuid.uuid4(), f"bench-{i}@example.test", "argon2-hash") for i in range(max(1, -(-n // BOTS_PER_USER)))]
    keys = {(user[0], exchange): uuid.uuid4() for user in users for exchange in EXCHANGES}
    bots = []
    for i in range(n):
        user = users[i // BOTS_PER_USER][0]
        exchange = EXCHANGES[i % len(EXCHANGES)]
        spec = table[(exchange, f"{rng.choice(BASES)}/{QUOTES[exchange]}")]
        strategy = "dca" if i % 2 == 0 else "grid"
        params = json.dumps(params_for(strategy, spec, rng))
        bots.append(
            (uuid.uuid4(), user, keys[(user, exchange)], exchange, spec.symbol, spec.market_id, strategy, params)
        )
    await db.copy_records_to_table("users", records=users, columns=["id", "email", "password_hash"])
    await db.copy_records_to_table(
        "api_keys",
        records=[(key, user, exchange, "bench paper", "paper", None, "") for (user, exchange), key in keys.items()],
        columns=["id", "user_id", "exchange_name", "label", "mode", "sealed_credentials", "key_hint"],
    )
    await db.copy_records_to_table(
        "bot_configs",
        records=[(*bot, "running") for bot in bots],
        columns=["id", "user_id", "api_key_id", "exchange_name", "symbol", "market_id", "strategy", "params", "status"],
    )


# -- one row ---------------------------------------------------------------------------------------------------
async def reset_stream(nc) -> None:
    """BORSA_ORDERS empty and without the runners' durable consumer: each row starts from nothing."""
    from nats.js.errors import NotFoundError

    from borsa_proto.subjects import ORDERS_STREAM
    from borsa_runtime.streams import ensure_orders_stream

    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(ORDERS_STREAM)
    await ensure_orders_stream(js)


async def settle(n: int, runner, db, launched: float, timeout: float) -> tuple[float, float]:
    """(seconds from launch until every bot ran, until every bot had its first order placed or was paused)."""
    running = orders = float("nan")
    deadline = launched + timeout
    while time.perf_counter() < deadline:
        if not runner.running:
            raise RuntimeError(f"the runner exited with code {runner.proc.returncode}; see {runner.log_path}")
        now = time.perf_counter() - launched
        if running != running:
            sample = await asyncio.to_thread(scrape, runner.ops_url)
            if sample.get("borsa_runner_bots", 0) >= n:
                running = now
        if running == running:
            settled = await db.fetchval(
                "SELECT (SELECT count(DISTINCT bot_id) FROM bot_intents WHERE state <> 'pending') "
                "+ (SELECT count(*) FROM bot_configs WHERE status = 'paused')"
            )
            if settled >= n:
                return running, now
        await asyncio.sleep(0.25)
    print(f"  {n} bots: not settled within {timeout:g} s; measuring anyway", file=sys.stderr)
    return running, orders


async def changes_pass(dsn: str, since: int) -> tuple[int, float]:
    """One of the runner's reads of what changed on its bots' orders, made here with its own store: (rows, CPU
    seconds this process spent on it, decoding and building the intents; the runner's loop is as busy)."""
    from borsa_runner.store import RunnerStore

    store = RunnerStore(dsn, "bench", 10.0)
    await store.open()
    try:
        await store.changes(since, [])  # warm: statement prepared, codecs loaded
        cpu = []
        for _ in range(3):
            before = time.process_time()
            rows = await store.changes(since, [])
            cpu.append(time.process_time() - before)
        return len(rows), min(cpu)
    finally:
        await store.close()


async def bench_row(n: int, args, postgres, nc, standins: StandIns) -> dict:
    import asyncpg

    from borsa_db import migrate
    from borsa_runner.settings import RunnerSettings
    from borsa_testing.processes import start_runner

    dsn = postgres.dsn(f"borsa_bench_runner_{n}")
    await migrate(dsn)
    db = await asyncpg.connect(dsn)
    row: dict = {"bots": n}
    try:
        await insert_bots(db, n, standins.table)
        await reset_stream(nc)
        standins.reset()
        launched = time.perf_counter()
        logs = args.workdir / f"runner-{n}"
        logs.mkdir()
        runner = await asyncio.to_thread(start_runner, args.nats_url, dsn, workdir=logs, env=args.runner_env)
        pid, row["log"] = runner.proc.pid, str(runner.log_path)
        try:
            row["running_s"], row["orders_s"] = await settle(n, runner, db, launched, args.settle_timeout)
            await asyncio.sleep(args.grace)
            last_change = "SELECT last_value FROM bot_changes"
            before = await asyncio.to_thread(scrape, runner.ops_url)
            cpu, window = cpu_seconds(pid), (time.monotonic(), await db.fetchval(last_change))
            started = time.perf_counter()
            await asyncio.sleep(args.seconds)
            after = await asyncio.to_thread(scrape, runner.ops_url)
            elapsed = time.perf_counter() - started
            changes = await db.fetchval(last_change) - window[1]
            row["window"] = (window[0], time.monotonic())
            row["cpu"] = (cpu_seconds(pid) - cpu) / elapsed
            row["rss"], row["hwm"] = memory_mib(pid)
            row["lag_p99"], row["lag_n"] = p99_bound(before, after, "borsa_runner_loop_lag_seconds")
            row["tick_p99"], row["tick_n"] = p99_bound(before, after, "borsa_runner_tick_to_intent_seconds")
            intents = after.get("borsa_runner_intents_total", 0) - before.get("borsa_runner_intents_total", 0)
            row["intents_s"] = intents / elapsed
            row["changes_s"] = changes / elapsed
            row["bots_gauge"] = int(after.get("borsa_runner_bots", 0))
            row["paused"] = await db.fetchval("SELECT count(*) FROM bot_configs WHERE status = 'paused'")
            # The runner reads what changed since its last read, every BORSA_RUNNER_CHANGES_MS.
            interval = RunnerSettings().changes_ms / 1000
            since = max(0, int(await db.fetchval(last_change) - row["changes_s"] * interval))
            row["reread_rows"], row["reread_cpu"] = await changes_pass(dsn, since) if n else (0, 0.0)
        finally:
            await asyncio.to_thread(runner.stop)
        if args.diagnose:
            row["diagnosis"] = diagnosis(runner.log_path, *row["window"])
    finally:
        await db.close()
        admin = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "borsa_bench_runner_{n}" WITH (FORCE)')
        finally:
            await admin.close()
    return row


async def bench(args) -> list[dict]:
    import nats

    nc = await nats.connect(args.nats_url, name="bench-stand-in-connectors")
    standins = StandIns(nc, market_table())
    await standins.start()
    rows = []
    try:
        for n in [0, *args.sizes]:
            row = await bench_row(n, args, args.postgres, nc, standins)
            rows.append(row)
            print(f"  {describe_row(row, rows[0])}", file=sys.stderr)
    finally:
        await standins.stop()
        await nc.drain()
    return rows


def describe_row(row: dict, baseline: dict) -> str:
    return (
        f"{row['bots']} bots: RSS {row['rss']:.0f} MiB (peak {row['hwm']:.0f}), lag p99 <= {row['lag_p99']:g} ms "
        f"({row['lag_n']} samples), tick-to-intent p99 <= {row['tick_p99']:g} ms ({row['tick_n']}), "
        f"{row['intents_s']:.1f} intents/s, CPU {row['cpu'] * 100:.0f} %, running after {row['running_s']:.1f} s, "
        f"first orders after {row['orders_s']:.1f} s, paused {row['paused']}, running at the end "
        f"{row['bots_gauge']:.0f}; log {row['log']}"
    )


# -- where the memory goes ---------------------------------------------------------------------------------------
def full_collection() -> tuple[float, int]:
    """(ms a full garbage collection takes, the best of five; objects the collector tracks)."""
    gc.collect()
    took = []
    for _ in range(5):
        started = time.perf_counter()
        gc.collect()
        took.append(time.perf_counter() - started)
    return min(took) * 1000, len(gc.get_objects())


def bot_model(n: int) -> dict:
    """n bots of each strategy as the runner holds them (its own Bot class, row, strategy, open intents), built in
    a fresh process: resident memory per bot, and the CPU of one tick handed to every bot."""
    import tracemalloc

    from borsa_proto.orders import OrderType, Side  # noqa: F401 - loaded before the first measurement
    from borsa_runner.bot import Bot
    from borsa_runner.market import SymbolFeed
    from borsa_runner.metrics import Metrics
    from borsa_runner.position import Holding
    from borsa_runner.store import BotRow, Intent, client_id_prefix
    from borsa_strategies.base import MarketRules, Tick

    table = market_table()
    rng = random.Random(1)

    class Runner:  # what a Bot asks of its runner when nothing is due
        def __init__(self) -> None:
            self.metrics = Metrics()
            self.writes = 0

        def save_state_later(self, bot, *state) -> None:
            self.writes += 1

    runner = Runner()
    feeds = {}
    for key, spec in table.items():
        feed = SymbolFeed(*key)
        feed.market = as_market(spec)
        feed.rules = MarketRules.from_market(feed.market)
        feeds[key] = feed

    def build(strategy: str, i: int) -> Bot:
        exchange = EXCHANGES[i % len(EXCHANGES)]
        key = (exchange, f"{rng.choice(BASES)}/{QUOTES[exchange]}")
        spec, feed = table[key], feeds[key]
        bot_id = str(uuid.uuid4())
        params = params_for(strategy, spec, rng)
        row = BotRow(
            id=bot_id,
            user_id=str(uuid.uuid4()),
            account=str(uuid.uuid4()),
            exchange=exchange,
            symbol=spec.symbol,
            market_id=spec.market_id,
            strategy=strategy,
            params=params,
            status="running",
            updated_at=None,
            strategy_state=None,
            state_version=0,
            holding=Holding(),
        )
        bot = Bot(row, runner)
        from borsa_strategies import build as build_strategy
        from borsa_strategies import parse_params

        bot.params = parse_params(strategy, params)
        bot.strategy = build_strategy(strategy, bot.params, None)
        bot.feed = feed
        feed.bots[bot_id] = bot
        feed.tick = Tick(spec.start_price, spec.start_price, spec.start_price, 0)
        # As after its first orders: a DCA bot's buy has filled (its next is not due); a grid bot rests its buys.
        from borsa_strategies.base import Context

        ctx = Context(now_ms=int(time.time() * 1000), market=feed.rules, price=spec.start_price)
        actions = bot.strategy.on_start(ctx) if strategy == "grid" else []
        if strategy == "dca":
            bot.strategy.on_start(ctx)
        prefix = client_id_prefix(bot_id)
        for seq, action in enumerate(actions, 1):
            intent = Intent(
                bot_id=bot_id,
                seq=seq,
                client_order_id=f"{prefix}{seq}",
                key=action.key,
                side=action.side,
                type=action.type,
                amount=action.amount,
                price=action.price,
                state="open",
                order_id=f"o{seq}",
            )
            bot.intents[intent.key] = intent
            bot.seen[intent.seq] = (None, Decimal(0))
        if strategy == "dca":
            bot.seen[1] = ("closed", Decimal("0.0003"))
        bot.saved_state = bot.strategy.state()
        bot.status = "running"
        return bot

    out: dict = {"bots": n}
    out["base_gc_ms"], out["base_objects"] = full_collection()
    bots: dict[str, list] = {}
    for strategy in ("dca", "grid"):
        bots[strategy] = [build(strategy, 0)]
        gc.collect()
        before = memory_mib(os.getpid())[0]
        tracemalloc.start()
        snap = tracemalloc.take_snapshot()
        bots[strategy] += [build(strategy, i) for i in range(1, n + 1)]
        gc.collect()
        after_snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        out[f"{strategy}_python_kib"] = sum(s.size_diff for s in after_snap.compare_to(snap, "filename")) / n / 1024
        out[f"{strategy}_top"] = [
            (f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}", round(s.size_diff / n))
            for s in after_snap.compare_to(snap, "lineno")[:6]
        ]
        out[f"{strategy}_rss_kib"] = (memory_mib(os.getpid())[0] - before) * 1024 / n
        # One tick to every bot, as the feed hands it over: the event loop is busy this long per bot and tick.
        rounds = 5
        started = time.perf_counter()
        for _ in range(rounds):
            received = time.perf_counter()
            for bot in bots[strategy]:
                bot.on_tick(bot.feed.tick, received)
        out[f"{strategy}_tick_us"] = (time.perf_counter() - started) / rounds / len(bots[strategy]) * 1e6
    # A full collection walks every object the bots hold: the runner's loop stands still that long.
    out["full_gc_ms"], out["objects"] = full_collection()
    return out


# -- the run -----------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    from borsa_testing.processes import start_nats, start_postgres

    servers = []
    # Postgres runs as an unprivileged user when this runs as root: its folder must be reachable.
    workdir = Path(tempfile.mkdtemp(prefix="borsa-bench-pg-"))
    workdir.chmod(0o755)
    try:
        servers.append(start_nats())
        args.nats_url = servers[-1].url
        args.workdir, args.postgres = workdir, start_postgres(workdir)
        servers.append(args.postgres)
        if args.diagnose:
            hook = workdir / "diagnose"
            hook.mkdir()
            (hook / "sitecustomize.py").write_text(DIAGNOSE_HOOK)
            args.runner_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
        rows = asyncio.run(bench(args))
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    model = None
    if args.model:
        # In a fresh process, whose memory nothing measured before has touched.
        done = subprocess.run(
            [sys.executable, __file__, "--bot-model", str(args.model)], capture_output=True, text=True, check=True
        )
        model = json.loads(done.stdout.splitlines()[-1])
    return {"rows": rows, "model": model}


def goal_met(row: dict) -> bool:
    return row["bots_gauge"] >= row["bots"] and row["rss"] <= GOAL_RSS_MIB and row["lag_p99"] <= GOAL_LAG_MS


def ms(value: float) -> str:
    return "-" if value != value else f"{value:g}"


def seconds(value: float) -> str:
    return "not within the settle time" if value != value else f"{value:.1f}"


def diagnosis_line(row: dict) -> str:
    d = row["diagnosis"]
    full = d["full_gc"]
    gc_text = (
        f"{len(full)} full garbage collections, median {full[len(full) // 2]:.0f} ms, longest {full[-1]:.0f} ms"
        if full
        else "no full garbage collection"
    )
    slow = sorted(d["slow"].items(), key=lambda item: -len(item[1]))
    slow_text = ", ".join(f"{name} {len(v)}× (longest {v[-1]:.0f} ms)" for name, v in slow) or "none"
    return f"{row['bots']:,} bots, {d['seconds']:.0f} s: {gc_text}; callbacks over 20 ms: {slow_text}."


def tables(result: dict, args: argparse.Namespace) -> str:
    from importlib.metadata import version

    from borsa_runner.settings import RunnerSettings

    rows, model = result["rows"], result["model"]
    baseline, largest = rows[0], rows[-1]
    verdict = {True: "PASS", False: "FAIL"}
    symbols = len(EXCHANGES) * len(BASES)
    settings = " ".join(f"`{k}={v}`" for k, v in sorted(args.runner_env.items()) if k != "PYTHONPATH")
    lines = [
        f"Environment: {os.cpu_count()} CPUs, Python {platform.python_version()}, nats-py {version('nats-py')}; one "
        f"`borsa-runner` process, {'settings ' + settings if settings else 'default settings'}; Postgres and NATS "
        "(JetStream) local; the connectors stood in by the bench process.",
        "",
        f"Bots half DCA (`quote_amount` {DCA_QUOTE}, `interval_seconds` {DCA_INTERVAL[0]} to {DCA_INTERVAL[1]}) and "
        f"half grid (low and high {GRID_SPAN * 100:.0f} % around the price, {GRID_LEVELS[0]} to {GRID_LEVELS[1]} "
        f"levels, `quote_per_level` {GRID_QUOTE}), on paper keys over {len(EXCHANGES)} exchanges and {symbols} "
        f"symbols, a ticker per symbol every second; measured over {args.seconds:g} s once every bot runs and has "
        f"placed its first order, and {args.grace:g} s more. p99: the upper bound of the histogram bucket that holds "
        "it; per bot: RSS above the baseline's; runner CPU: as a share of one core; start: from the process's launch "
        "to every bot running (`borsa_runner_bots`) and to every bot's first order placed; running at the end: "
        f"`borsa_runner_bots` after the window. Goal: {GOAL_BOTS:,} bots within {GOAL_RSS_MIB / 1024:g} GiB and "
        f"loop lag p99 at most {GOAL_LAG_MS:g} ms.",
        "",
        "| bots | RSS MiB | RSS per bot KiB | loop lag p99 ms | tick-to-intent p99 ms | intents/s | runner CPU "
        "| all bots running s | first orders placed s | running at the end | goal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        n = row["bots"]
        per_bot = f"{(row['rss'] - baseline['rss']) * 1024 / n:.1f}" if n else "-"
        label = "0 (baseline)" if n == 0 else f"{n:,}"
        lines.append(
            f"| {label} | {row['rss']:.0f} | {per_bot} | {ms(row['lag_p99'])} | {ms(row['tick_p99'])} | "
            f"{row['intents_s']:.1f} | {row['cpu'] * 100:.0f} % | {seconds(row['running_s'])} | "
            f"{seconds(row['orders_s'])} | {row['bots_gauge']:,} | {verdict[goal_met(row)] if n else '-'} |"
        )
    where = []
    if largest["bots"]:
        where.append(
            f"every {RunnerSettings().changes_ms} ms the runner reads what changed on its bots' intents since its last "
            f"read: at {largest['bots']:,} bots ({largest['changes_s']:.0f} changes/s) that is "
            f"{largest['reread_rows']:,} rows a read, which the runner's own `RunnerStore.changes` decodes in "
            f"{largest['reread_cpu'] * 1000:.1f} ms of CPU (timed in the bench process)"
        )
    if model:
        per_thousand = (model["full_gc_ms"] - model["base_gc_ms"]) / (2 * model["bots"] / 1000)
        where += [
            f"a full garbage collection walks every object the bots hold and stops the loop meanwhile: "
            f"{model['full_gc_ms']:.0f} ms with the model's {2 * model['bots']:,} bots ({model['objects']:,} objects "
            f"tracked) against {model['base_gc_ms']:.0f} ms without, about {per_thousand:.1f} ms more per 1,000 bots",
            f"memory: {model['dca_rss_kib']:.1f} KiB of RSS per DCA bot and {model['grid_rss_kib']:.1f} KiB per grid "
            f"bot with its resting orders, built as the runner holds them (its `Bot`, row, params, strategy and "
            f"intents); a ticker handed to a bot with nothing due takes {model['dca_tick_us']:.1f} µs (DCA) and "
            f"{model['grid_tick_us']:.1f} µs (grid) of the loop",
        ]
    if where:
        lines += ["", "Where it goes: " + "; ".join(where) + "."]
    diagnosed = [diagnosis_line(row) for row in rows if row.get("diagnosis")]
    if diagnosed:
        lines += ["", "Diagnosis (`--diagnose`; a hook in the runner times its collections and callbacks):", ""]
        lines += [f"- {line}" for line in diagnosed]
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    out = []
    for row in result["rows"][1:]:
        if row["bots"] >= GOAL_BOTS:
            out.append(
                f"{'PASS' if goal_met(row) else 'FAIL'} {row['bots']:,} bots: {row['bots_gauge']:,} running at the "
                f"end, RSS {row['rss']:.0f} MiB (goal <= {GOAL_RSS_MIB}), loop lag p99 <= {ms(row['lag_p99'])} ms "
                f"(goal <= {GOAL_LAG_MS:g})"
            )
    if not out:
        out.append(f"goal not measured: it needs a row of {GOAL_BOTS:,} bots (--sizes)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="comma-separated numbers of bots, one row each")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady window measured per row")
    parser.add_argument("--grace", type=float, default=3.0, help="seconds after the first orders before measuring")
    parser.add_argument("--settle-timeout", type=float, default=180.0, help="at most this long for a row to settle")
    parser.add_argument(
        "--runner-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the runner (BORSA_RUNNER_MAX_INFLIGHT=128); repeat for more",
    )
    parser.add_argument("--model", type=int, default=MODEL_BOTS, help="bots per kind in the memory model (0: skip)")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="log the runner's garbage-collection pauses and slow event-loop callbacks, and summarise them per row",
    )
    parser.add_argument("--write-readme", action="store_true", help="keep the table in README.md")
    parser.add_argument("--bot-model", type=int, help=argparse.SUPPRESS)  # the run's own subprocess
    args = parser.parse_args()
    if args.bot_model:
        print(json.dumps(bot_model(args.bot_model)))
        return 0
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        parser.error(f"--sizes takes comma-separated numbers of bots, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) <= 0:
        parser.error("--sizes needs at least one positive number of bots")
    args.runner_env = dict(item.partition("=")[::2] for item in args.runner_env)
    result = run(args)
    text = tables(result, args)
    print(text)
    print()
    for line in verdicts(result):
        print(line)
    if args.write_readme:
        write_readme(MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
