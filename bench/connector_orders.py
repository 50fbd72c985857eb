"""What the exchange connector costs on the order path: round trip, throughput, and memory per stored key.

1. Round trip, one request in flight: a limit buy far below the market (so it rests) then its cancel, through
   NATS -> connector process -> simulator, next to the same ccxt calls made directly against the simulator from
   this process, interleaved in the same run, each path on its own account of the same kind. The connector path
   includes everything an order costs there: the Postgres record written before it is sent, its events on
   JetStream and its tracking. The direct path makes the same exchange calls the connector makes (a cancel answer
   without status or amount is followed by fetch_order, as the connector does).
2. Throughput: 50 concurrent clients, each on its own account, each looping create -> cancel, through the
   connector and directly, in alternating rounds; orders per second (one order = created and canceled).
3. Memory: one Binance connector on its own simulator; resident memory (VmRSS) after 1 account has traded, then
   after 100, 250 and 500 (each account: one balance request and one order created and canceled, so its ccxt
   client is built and used); MB per extra account, and how often the simulator served `GET
   /api/v3/exchangeInfo` (markets loaded once per connector, not once per key).

    .venv/bin/python bench/connector_orders.py [--exchanges binance,kraken,coinbase,kucoin] [--samples 300]
        [--budget 30] [--seconds 6] [--clients 50] [--accounts 500] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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

from benchlib import percentile, write_readme
from connector_market import rate_wait, rss_mib

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
# Limits raised a thousandfold on both sides: the rate limiters are not what is measured.
SCALE = "1000"
WARMUP = 20
ROUNDS = 3
WARMUP_SECONDS = 1.0
GOAL_P50_MS, GOAL_P99_MS, GOAL_MB_PER_ACCOUNT = 1.0, 5.0, 1.0
AMOUNT = Decimal("0.001")  # BTC; at 70 % of the market that is over 40 in quote, above every minimum cost
BELOW_MARKET = Decimal("0.7")  # a buy this far below the market rests until canceled
QUOTE_FUNDS, BASE_FUNDS = "100000000", "10"
MEMORY_EXCHANGE, MARKETS_ENDPOINT = "binance", "GET /api/v3/exchangeInfo"
MEMORY_STEPS = (1, 100, 250, 500)
MEMORY_CONCURRENCY = 25
SETTLE_SECONDS = 4.0  # the tracker's passes over freshly canceled orders (at most one a second per account) end
LIVE_MARKETS = 2000  # about as many spot markets as live Binance lists
MARKER = "bench:connector-orders"


def new_cid() -> str:
    """16 hex characters: fits every exchange's client order id rules (Kraken's are the shortest, 18)."""
    return uuid.uuid4().hex[:16]


def metric(ops_url: str, name: str, exchange: str) -> float:
    with urllib.request.urlopen(f"{ops_url}/metrics") as response:
        text = response.read().decode()
    match = re.search(rf'^{name}{{exchange="{exchange}"}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else float("nan")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when pid is None)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


async def timed(call) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


# -- the two paths -------------------------------------------------------------------------------------------
class Direct:
    """One account's ccxt client in this process, making the exchange calls the connector makes."""

    def __init__(self, exchange: str, sim_url: str, credentials: dict[str, str]) -> None:
        from borsa_connector.exchanges.registry import REGISTRY
        from borsa_testing.sim import ccxt_client
        from borsa_testing.trading import SYMBOLS

        self.symbol = SYMBOLS[exchange]
        self.param = REGISTRY[exchange].quirks.get("client_order_id_param", "clientOrderId")
        self.client = ccxt_client(exchange, sim_url, credentials)

    async def create(self, amount: Decimal, price: Decimal) -> str:
        raw = await self.client.create_order(
            self.symbol, "limit", "buy", format(amount, "f"), format(price, "f"), {self.param: new_cid()}
        )
        return str(raw["id"])

    async def cancel(self, order_id: str) -> None:
        raw = await self.client.cancel_order(order_id, self.symbol)
        if raw is None or raw.get("status") is None or raw.get("amount") is None:
            await self.client.fetch_order(order_id, self.symbol)  # the connector's rule, so the same calls

    async def close(self) -> None:
        await self.client.close()


class Bus:
    """One stored key, through the connector on NATS."""

    def __init__(self, nc, exchange: str, account: str) -> None:
        from borsa_proto.subjects import order_cancel, order_create
        from borsa_testing.trading import SYMBOLS

        self.nc, self.exchange, self.account, self.symbol = nc, exchange, account, SYMBOLS[exchange]
        self.create_subject, self.cancel_subject = order_create(exchange), order_cancel(exchange)

    async def create(self, amount: Decimal, price: Decimal) -> str:
        from borsa_proto.orders import Order
        from borsa_proto.requests import OrderCreateRequest
        from borsa_runtime.request import request

        payload = OrderCreateRequest(
            account=self.account,
            client_order_id=new_cid(),
            symbol=self.symbol,
            side="buy",
            type="limit",
            amount=amount,
            price=price,
        )
        order = await request(self.nc, self.create_subject, payload, Order, timeout=20)
        if order.status != "open":
            raise RuntimeError(f"a resting limit order came back {order.status}")
        return order.id

    async def cancel(self, order_id: str) -> None:
        from borsa_proto.orders import Order
        from borsa_proto.requests import OrderCancelRequest
        from borsa_runtime.request import request

        payload = OrderCancelRequest(account=self.account, symbol=self.symbol, id=order_id)
        order = await request(self.nc, self.cancel_subject, payload, Order, timeout=20)
        if order.status != "canceled":
            raise RuntimeError(f"a canceled order came back {order.status}")

    async def market(self) -> None:
        """A request the connector answers from memory (`market`): its own request path with no work behind it."""
        from borsa_proto.exchange import Market
        from borsa_proto.requests import MarketRequest
        from borsa_proto.subjects import market
        from borsa_runtime.request import request

        await request(self.nc, market(self.exchange), MarketRequest(symbol=self.symbol), Market, timeout=20)


async def round_trip(path, amount: Decimal, price: Decimal) -> tuple[float, float]:
    """(create seconds, cancel seconds)."""
    start = time.perf_counter()
    order_id = await path.create(amount, price)
    middle = time.perf_counter()
    await path.cancel(order_id)
    return middle - start, time.perf_counter() - middle


# -- setup ---------------------------------------------------------------------------------------------------
async def new_accounts(admin, db, exchange: str, n: int) -> list[tuple[str, dict]]:
    """N funded simulator accounts, each stored as an API key: [(Borsa account id, credentials)]."""
    from borsa_testing.trading import QUOTES, store_key

    out = []
    for _ in range(n):
        made = await admin.create_account(exchange, {QUOTES[exchange]: QUOTE_FUNDS, "BTC": BASE_FUNDS})
        out.append((await store_key(db, exchange, made["credentials"]), made["credentials"]))
    return out


async def resting_price(direct: Direct) -> Decimal:
    """A buy price far below the market, on the market's price precision."""
    await direct.client.load_markets()
    ticker = await direct.client.fetch_ticker(direct.symbol)
    return Decimal(direct.client.price_to_precision(direct.symbol, ticker["last"] * float(BELOW_MARKET)))


# -- 1. round trip -------------------------------------------------------------------------------------------
async def round_trips(direct: Direct, bus: Bus, price: Decimal, connector, samples: int, budget: float) -> dict:
    exchange = connector.exchange
    times: dict[str, list[tuple[float, float]]] = {"direct": [], "bus": []}
    errors = {"direct": 0, "bus": 0}
    answered: list[float] = []  # the connector's floor: two requests answered from memory per pair

    async def sample(name: str, path) -> None:
        """A failed round trip is counted and reported, not timed: the run goes on."""
        try:
            times[name].append(await round_trip(path, AMOUNT, price))
        except Exception as exc:
            errors[name] += 1
            if errors[name] == 1:
                print(f"  {exchange} {name} round trip failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    for _ in range(WARMUP):
        await sample("direct", direct)
        await sample("bus", bus)
    for name in times:  # warm-up done: start counting
        times[name].clear()
        errors[name] = 0
    waited_before = rate_wait(connector.ops_url, exchange)
    deadline = time.perf_counter() + budget
    # Interleaved, so that both paths see the same machine.
    while len(times["bus"]) + errors["bus"] < samples and time.perf_counter() < deadline:
        await sample("direct", direct)
        answered.append(await timed(bus.market) + await timed(bus.market))  # in the state the pair finds
        await sample("bus", bus)
    waited_after = rate_wait(connector.ops_url, exchange)
    calls = waited_after[1] - waited_before[1]
    row = {"exchange": exchange, "samples": len(times["bus"]), "errors": errors}
    for name, pairs in times.items():
        for part, values in (
            ("create", [c for c, _ in pairs]),
            ("cancel", [k for _, k in pairs]),
            ("rt", [c + k for c, k in pairs]),
        ):
            row[f"{name}_{part}_p50"] = percentile(values, 50) * 1000
            row[f"{name}_{part}_p99"] = percentile(values, 99) * 1000
    for part in ("create", "cancel", "rt"):
        for pct in ("p50", "p99"):
            row[f"added_{part}_{pct}"] = row[f"bus_{part}_{pct}"] - row[f"direct_{part}_{pct}"]
    row["memory_pair_p50"] = percentile(answered, 50) * 1000
    row["wait_ms"] = (waited_after[0] - waited_before[0]) / calls * 1000 if calls else float("nan")
    row["pass"] = row["added_rt_p50"] <= GOAL_P50_MS and row["added_rt_p99"] <= GOAL_P99_MS and not errors["bus"]
    return row


ECHO_PROCESS = """
import asyncio, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    async def echo(msg):
        await msg.respond(msg.data)
    await nc.subscribe("bench.echo.process", cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def floors(nc, dsn: str, n: int = 1000) -> dict:
    """What one hop costs on this machine, for reading the added latency: a NATS request/reply between two
    connections of this process, and one statement through an asyncpg pool as the connector's stores use it (the
    pool runs its reset query on every release) and with that reset skipped."""
    import asyncpg
    import nats

    responder = await nats.connect(nc.connected_url.geturl())
    out = {}
    try:

        async def echo(msg) -> None:
            await msg.respond(msg.data)

        await responder.subscribe("bench.echo", cb=echo)
        await responder.flush()
        payload = b"x" * 300
        lat = [await timed(lambda: nc.request("bench.echo", payload, timeout=5)) for _ in range(n + 100)][100:]
        out["nats_p50"] = percentile(lat, 50) * 1000
        # The same with the responder in a process of its own, as the connector is: what any request to another
        # process costs here, whatever that process does with it.
        echo = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ECHO_PROCESS, nc.connected_url.geturl(), stdout=asyncio.subprocess.PIPE
        )
        try:
            await asyncio.wait_for(echo.stdout.readline(), 30)
            lat = [await timed(lambda: nc.request("bench.echo.process", payload, timeout=5)) for _ in range(n + 100)]
            out["nats_process_p50"] = percentile(lat[100:], 50) * 1000
        finally:
            echo.kill()
            await echo.wait()

        async def no_reset(_connection) -> None:
            pass

        for name, options in (("pg_p50", {}), ("pg_noreset_p50", {"reset": no_reset})):
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, **options)
            try:
                lat = [await timed(lambda p=pool: p.fetchval("SELECT 1")) for _ in range(n + 100)][100:]
            finally:
                await pool.close()
            out[name] = percentile(lat, 50) * 1000
    finally:
        await responder.close()
    return out


# -- 2. throughput -------------------------------------------------------------------------------------------
async def _loop(path, price: Decimal, seconds: float, tally: dict) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            await round_trip(path, AMOUNT, price)
            tally["orders"] += 1
        except Exception as exc:
            tally["errors"] += 1
            tally.setdefault("first_error", f"{type(exc).__name__}: {exc}")


async def _measure(paths: list, price: Decimal, seconds: float) -> dict:
    tally = {"orders": 0, "errors": 0}
    started = time.perf_counter()
    await asyncio.gather(*(_loop(p, price, seconds, tally) for p in paths))
    # The last orders finish after the deadline: count the time they really took.
    return {**tally, "elapsed": time.perf_counter() - started}


async def throughput(directs: list[Direct], buses: list[Bus], price: Decimal, seconds: float, pid: int) -> dict:
    for paths in (directs, buses):
        await _measure(paths, price, WARMUP_SECONDS)
    runs: dict[str, list[dict]] = {"direct": [], "bus": []}
    for _ in range(ROUNDS):  # alternating rounds: whatever else the machine does weighs on both paths alike
        for name, paths in (("direct", directs), ("bus", buses)):
            # Where the exchange work runs: this process (direct) or the connector (via); its CPU while serving.
            worker = None if name == "direct" else pid
            cpu, machine = cpu_seconds(worker), machine_busy()
            sample = await _measure(paths, price, seconds / ROUNDS)
            sample["cpu"] = cpu_seconds(worker) - cpu
            busy, total = (after - before for after, before in zip(machine_busy(), machine, strict=True))
            sample["machine"] = busy / total * (os.cpu_count() or 1) * sample["elapsed"]  # core-seconds
            runs[name].append(sample)
    row = {}
    for name, samples in runs.items():
        orders, elapsed, cpu, machine = (sum(s[k] for s in samples) for k in ("orders", "elapsed", "cpu", "machine"))
        row[f"{name}_ops"] = orders / elapsed
        row[f"{name}_machine"] = machine / elapsed  # cores busy, all processes
        row[f"{name}_busy"] = cpu / elapsed
        row[f"{name}_cpu_ms"] = cpu / orders * 1000 if orders else float("nan")
        row[f"{name}_errors"] = sum(s["errors"] for s in samples)
        first = next((s["first_error"] for s in samples if "first_error" in s), None)
        if first:
            print(f"  {name} errors, first: {first}", file=sys.stderr)
    return row


# -- one exchange: round trip and throughput -----------------------------------------------------------------
async def bench_exchange(nc, db, admin, exchange: str, env: dict, args, started: list) -> dict:
    from borsa_testing.processes import start_connector

    connector = await asyncio.to_thread(start_connector, exchange, args.nats_url, args.sim_url, env=env)
    started.append(connector)
    # Each path its own simulator accounts: Kraken refuses a nonce not above the key's last one, so two clients
    # (this process and the connector, whose tracker polls in the background) cannot share a key.
    n = max(1, args.clients)
    accounts = await new_accounts(admin, db, exchange, 2 * n)
    directs = [Direct(exchange, args.sim_url, credentials) for _, credentials in accounts[:n]]
    buses = [Bus(nc, exchange, account) for account, _ in accounts[n:]]
    try:
        for direct in directs:
            await direct.client.load_markets()
        price = await resting_price(directs[0])
        trips = await round_trips(directs[0], buses[0], price, connector, args.samples, args.budget)
        rates = await throughput(directs, buses, price, args.seconds, connector.proc.pid)
        # What the accounts' order streams brought, and how much of it needed no tracking pass.
        for key, name in (("stream_updates", "updates_total"), ("stream_known", "updates_known_total")):
            rates[key] = metric(connector.ops_url, f"borsa_connector_order_stream_{name}", exchange)
    finally:
        await asyncio.gather(*(d.close() for d in directs), return_exceptions=True)
        await asyncio.to_thread(connector.stop)
    trips.update(rates, exchange=exchange, clients=n)
    return trips


async def bench_orders(args, started: list) -> list[dict]:
    import asyncpg
    import nats

    from borsa_testing.sim import SimAdmin
    from borsa_testing.trading import SEALING_KEY

    env = {"BORSA_RATE_LIMIT_SCALE": SCALE, "BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": args.dsn}
    nc = await nats.connect(args.nats_url, name="bench-connector-orders")
    db = await asyncpg.connect(args.dsn)
    rows = []
    try:
        args.floors = await floors(nc, args.dsn)
        async with SimAdmin(args.sim_url) as admin:
            for exchange in args.exchanges:
                print(f"{exchange}: round trips and throughput", file=sys.stderr)
                rows.append(await bench_exchange(nc, db, admin, exchange, env, args, started))
    finally:
        await db.close()
        await nc.close()
    return rows


# -- 3. memory -----------------------------------------------------------------------------------------------
async def bench_memory(args, sim_url: str, started: list) -> dict:
    import asyncpg
    import nats

    from borsa_proto.exchange import BalanceReply, Ticker
    from borsa_proto.requests import BalanceRequest, TickerRequest
    from borsa_proto.subjects import balance, ticker
    from borsa_runtime.request import request
    from borsa_testing.processes import start_connector
    from borsa_testing.sim import SimAdmin
    from borsa_testing.trading import SEALING_KEY, SYMBOLS

    exchange = MEMORY_EXCHANGE
    env = {"BORSA_RATE_LIMIT_SCALE": SCALE, "BORSA_SEALING_KEY": SEALING_KEY, "DATABASE_URL": args.memory_dsn}
    print(f"{exchange}: memory for {args.accounts} accounts", file=sys.stderr)
    nc = await nats.connect(args.nats_url, name="bench-connector-memory")
    db = await asyncpg.connect(args.memory_dsn)
    try:
        async with SimAdmin(sim_url) as admin:
            connector = await asyncio.to_thread(start_connector, exchange, args.nats_url, sim_url, env=env)
            started.append(connector)
            pid = connector.proc.pid
            rss_ready = rss_mib(pid)
            accounts = await new_accounts(admin, db, exchange, args.accounts)
            # The price from the connector's own ticker: no other client loads markets from this simulator.
            last = (await request(nc, ticker(exchange), TickerRequest(symbol=SYMBOLS[exchange]), Ticker)).last
            price = (last * BELOW_MARKET).quantize(Decimal("0.01"))

            async def use(account: str) -> None:
                await request(nc, balance(exchange), BalanceRequest(account=account), BalanceReply, timeout=20)
                await round_trip(Bus(nc, exchange, account), AMOUNT, price)

            steps = [s for s in MEMORY_STEPS if s < args.accounts] + [args.accounts]
            rss, done = {}, 0
            semaphore = asyncio.Semaphore(MEMORY_CONCURRENCY)

            async def limited(account: str) -> None:
                async with semaphore:
                    await use(account)

            for step in steps:
                await asyncio.gather(*(limited(a) for a, _ in accounts[done:step]))
                done = step
                await asyncio.sleep(SETTLE_SECONDS)
                rss[step] = rss_mib(pid)
            clients = metric(connector.ops_url, "borsa_connector_account_clients", exchange)
            stats = await admin.stats()
        loads = stats.get(exchange, {}).get("endpoints", {}).get(MARKETS_ENDPOINT, {}).get("requests", 0)
    finally:
        await db.close()
        await nc.close()
    first, last_step = steps[0], steps[-1]
    per_account_mb = (rss[last_step] - rss[first]) * 1024 * 1024 / (last_step - first) / 1e6 if last_step > first else 0
    return {
        "exchange": exchange,
        "rss_ready": rss_ready,
        "rss": rss,
        "clients": clients,
        "market_loads": loads,
        "per_account_mb": per_account_mb,
        "pass": per_account_mb <= GOAL_MB_PER_ACCOUNT and loads == 1,
    }


def client_model(sim_url: str, n: int = 40) -> dict:
    """What one account client costs, built in this process as the connector builds them (`account_client`):

    - resident memory per client once it has made one signed request (that is when ccxt opens its HTTP session and
      its own SSL context, loading the CA bundle), and the same when every client reuses the public client's SSL
      context;
    - Python memory (tracemalloc) per client, with the simulator's markets and with LIVE_MARKETS markets shaped like
      them (about what live Binance lists); for the latter also a client holding its own copy of them (ccxt
      `set_markets`) and one holding them by reference (ccxt `set_markets_from_exchange`).
    """
    import copy
    import gc
    import tracemalloc

    from borsa_connector.exchanges.registry import REGISTRY
    from borsa_testing.sim import SimAdmin
    from borsa_testing.trading import QUOTES, SYMBOLS

    async def model() -> dict:
        api = REGISTRY[MEMORY_EXCHANGE](MEMORY_EXCHANGE, sim_url=sim_url, rate_limit_scale=float(SCALE))
        credentials = {"apiKey": "k" * 64, "secret": "s" * 64}
        out = {"sim_markets": 0}
        try:
            await api.start()
            public = api.public
            out["sim_markets"] = len(public.markets)
            await public.fetch_ticker(SYMBOLS[MEMORY_EXCHANGE])  # the public client's session and SSL context
            async with SimAdmin(sim_url) as admin:
                keys = [
                    (await admin.create_account(MEMORY_EXCHANGE, {QUOTES[MEMORY_EXCHANGE]: "100"}))["credentials"]
                    for _ in range(2 * (n + 1))
                ]

            async def rss_per_client(keys: list[dict], share_ssl: bool) -> float:
                async def build(i: int):
                    client = api.account_client(keys[i], "live", f"rss-{share_ssl}-{i}")
                    if share_ssl:
                        client.ssl_context = public.ssl_context  # ccxt makes its own only when this is None
                    await client.fetch_balance()
                    return client

                clients = [await build(0)]
                gc.collect()
                before = rss_mib(os.getpid())
                clients += [await build(i) for i in range(1, n + 1)]
                gc.collect()
                size = (rss_mib(os.getpid()) - before) * 1024 * 1024
                closing.extend(clients)  # kept open: memory freed here would be reused by the next measurement
                return size / n / 1e6

            closing: list = []
            out["rss_shared_ssl_mb"] = await rss_per_client(keys[n + 1 :], share_ssl=True)
            out["rss_mb"] = await rss_per_client(keys[: n + 1], share_ssl=False)

            def per_client(build) -> float:
                clients = [build(0)]  # the first one warms up whatever is built once
                gc.collect()
                tracemalloc.start()
                before = tracemalloc.take_snapshot()
                clients += [build(i) for i in range(1, n + 1)]
                gc.collect()
                after = tracemalloc.take_snapshot()
                tracemalloc.stop()
                size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
                closing.extend(clients)
                return size / n / 1e6

            def built(i: int):  # as the connector builds them, whatever it does with the markets
                return api.account_client(credentials, "live", f"model-{i}")

            def copied(i: int):  # holding its own copy of the markets
                client = api.account_client(credentials, "live", f"copied-{i}")
                client.set_markets(public.markets, public.currencies)
                return client

            def shared(i: int):  # holding the public client's markets by reference
                return api.account_client(credentials, "live", f"shared-{i}").set_markets_from_exchange(public)

            out["sim_mb"] = per_client(built)
            markets = list(public.markets.values())
            many = {}
            for i in range(LIVE_MARKETS):
                market = copy.deepcopy(markets[i % len(markets)])
                market.update(symbol=f"C{i}/USDT", id=f"C{i}USDT", base=f"C{i}", baseId=f"C{i}")
                many[market["symbol"]] = market
            public.set_markets(many, public.currencies)
            out["live_mb"] = per_client(built)
            out["live_copied_mb"] = per_client(copied)
            out["live_shared_mb"] = per_client(shared)
            await asyncio.gather(*(c.close() for c in closing), return_exceptions=True)
        finally:
            await api.close()
        return out

    return asyncio.run(model())


# -- the run -------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    from borsa_db import migrate
    from borsa_testing.processes import start_nats, start_postgres, start_sim

    servers, connectors = [], []
    # Postgres runs as an unprivileged user when this runs as root: its folder must be reachable.
    workdir = Path(tempfile.mkdtemp(prefix="borsa-bench-pg-"))
    workdir.chmod(0o755)
    try:
        servers.append(start_nats())
        args.nats_url = servers[-1].url
        postgres = start_postgres(workdir)
        servers.append(postgres)
        args.dsn = postgres.dsn("borsa_bench_orders")
        # The memory connector gets its own database: it must not adopt the orders the other connectors left.
        args.memory_dsn = postgres.dsn("borsa_bench_memory")
        for dsn in (args.dsn, args.memory_dsn):
            asyncio.run(migrate(dsn))
        result = {"orders": [], "memory": None}
        if args.exchanges:
            servers.append(start_sim("--rate-limit-scale", SCALE, "--seed", "1"))
            args.sim_url = servers[-1].url
            result["orders"] = asyncio.run(bench_orders(args, connectors))
            servers.pop().stop()
        if args.accounts:
            # Its own simulator, so that every markets load it counts is this connector's.
            servers.append(start_sim("--rate-limit-scale", SCALE, "--seed", "2", "--exchanges", MEMORY_EXCHANGE))
            result["memory"] = asyncio.run(bench_memory(args, servers[-1].url, connectors))
            # After the count of markets loads was read: this loads them once more. In a fresh process, whose
            # memory no earlier client has touched (freed memory would be reused and hide what a client costs).
            model = subprocess.run(
                [sys.executable, __file__, "--client-model", servers[-1].url],
                capture_output=True,
                text=True,
                check=True,
            )
            result["memory"]["model"] = json.loads(model.stdout.splitlines()[-1])
        return result
    finally:
        for process in [*connectors, *reversed(servers)]:
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def tables(result: dict, args: argparse.Namespace) -> str:
    import ccxt

    verdict = {True: "PASS", False: "FAIL"}
    lines = [
        f"Environment: {os.cpu_count()} CPUs, Python {platform.python_version()}, ccxt {ccxt.__version__}; "
        f"simulator `--rate-limit-scale {SCALE}`, connectors `BORSA_RATE_LIMIT_SCALE={SCALE}`, other settings "
        "default (order poll 2 s); Postgres and NATS (JetStream) local.",
    ]
    orders = result["orders"]
    if orders:
        lines += [
            "",
            f"Create a limit buy at {BELOW_MARKET * 100:.0f} % of the market (it rests) then cancel it, one request "
            f"in flight, interleaved, after {WARMUP} warm-up round trips each, each path on its own simulator account "
            "of the same kind (Kraken's nonces forbid two clients on one key); direct: the "
            "ccxt class in the bench process making the exchange calls the connector makes; via connector: NATS "
            "requests `order.create` then `order.cancel` (Postgres record before the send, JetStream event, "
            f"tracking). At most {args.budget:g} s of samples. Goal on the round trip: added p50 at most "
            f"{GOAL_P50_MS:g} ms, added p99 at most {GOAL_P99_MS:g} ms. Floors measured in the same run: a NATS "
            f"request/reply between two connections of the bench process, p50 {args.floors['nats_p50']:.2f} ms, and "
            f"to a bare echo responder in a process of its own, p50 {args.floors['nats_process_p50']:.2f} ms (a pair's "
            f"two requests to the connector cost at least twice that, before any work); one "
            f"Postgres statement through an asyncpg pool, p50 {args.floors['pg_p50']:.2f} ms "
            f"({args.floors['pg_noreset_p50']:.2f} ms when the pool skips its reset query on release). Two "
            "requests answered from memory: two `market` requests to the same connector right before each pair, "
            "timed together; what a pair's two requests cost before the connector does any of their work.",
            "",
            "| exchange | samples | direct create / cancel p50 ms | via create / cancel p50 ms "
            "| direct round trip p50 / p99 ms | via round trip p50 / p99 ms | added p50 ms | added p99 ms "
            "| two requests answered from memory p50 ms | rate-budget wait, mean ms | failed direct / via | goal |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in orders:
            lines.append(
                f"| {r['exchange']} | {r['samples']} | {r['direct_create_p50']:.2f} / {r['direct_cancel_p50']:.2f} | "
                f"{r['bus_create_p50']:.2f} / {r['bus_cancel_p50']:.2f} | "
                f"{r['direct_rt_p50']:.2f} / {r['direct_rt_p99']:.2f} | "
                f"{r['bus_rt_p50']:.2f} / {r['bus_rt_p99']:.2f} | "
                f"{r['added_rt_p50']:+.2f} | {r['added_rt_p99']:+.2f} | {r['memory_pair_p50']:.2f} | "
                f"{r['wait_ms']:.2f} | "
                f"{r['errors']['direct']} / {r['errors']['bus']} | {verdict[r['pass']]} |"
            )
        lines += [
            "",
            f"Orders per second, {args.clients} concurrent clients, each on its own account looping create then "
            f"cancel (an order counts once it is canceled); {args.seconds:g} s per path in {ROUNDS} alternating "
            f"rounds after {WARMUP_SECONDS:g} s of warm-up; direct: {args.clients} ccxt clients in the bench process. "
            "CPU: of the process holding the ccxt clients (the bench process direct, the connector via), per order "
            f"and as a share of one core; machine: cores busy in all processes (of {os.cpu_count()}); stream "
            "updates: what the accounts' private order streams brought over the whole run (round trips included), "
            "and how many of them repeated what the connector had already published (no tracking pass).",
            "",
            "| exchange | direct orders/s | via connector orders/s | via / direct | CPU per order direct / via ms "
            "| CPU busy direct / via | machine cores busy direct / via | errors direct / via | stream updates "
            "/ without a pass |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in orders:
            lines.append(
                f"| {r['exchange']} | {r['direct_ops']:.0f} | {r['bus_ops']:.0f} | "
                f"{r['bus_ops'] / r['direct_ops']:.2f} | {r['direct_cpu_ms']:.2f} / {r['bus_cpu_ms']:.2f} | "
                f"{r['direct_busy'] * 100:.0f} % / {r['bus_busy'] * 100:.0f} % | "
                f"{r['direct_machine']:.2f} / {r['bus_machine']:.2f} | {r['direct_errors']} / {r['bus_errors']} | "
                f"{r['stream_updates']:,.0f} / {r['stream_known']:,.0f} |"
            )
    memory = result["memory"]
    if memory:
        steps = sorted(memory["rss"])
        lines += [
            "",
            f"Memory of one {memory['exchange']} connector (`BORSA_ACCOUNT_CLIENTS_MAX` default 500) on its own "
            "simulator: resident memory (VmRSS) once the given number of stored keys have each made one balance "
            f"request and one order (created and canceled), {SETTLE_SECONDS:g} s after the last, while each key's "
            "order stream (a ccxt.pro client of its own) still lingers (`BORSA_ORDER_WS_LINGER_MS`, default 30 s); "
            f"RSS at ready: {memory['rss_ready']:.0f} MiB.",
            "",
            "| accounts | " + " | ".join(str(s) for s in steps) + " |",
            "|---|" + "---:|" * len(steps),
            "| RSS MiB | " + " | ".join(f"{memory['rss'][s]:.1f}" for s in steps) + " |",
            "",
            f"Per extra account: {memory['per_account_mb']:.2f} MB (10^6 bytes; goal at most "
            f"{GOAL_MB_PER_ACCOUNT:g} MB); cached account clients: {memory['clients']:.0f}; markets loaded from the "
            f"simulator (`{MARKETS_ENDPOINT}`): {memory['market_loads']} (goal: 1): {verdict[memory['pass']]}.",
        ]
        model = memory.get("model")
        if model:
            lines += [
                "",
                "Where it goes: account clients built in the bench process as the connector builds them "
                f"(`account_client`), {memory['exchange']}. Resident memory per client after one signed request: "
                f"{model['rss_mb']:.2f} MB; {model['rss_shared_ssl_mb']:.2f} MB when each client reuses the public "
                "client's `ssl_context` (otherwise ccxt builds one per client, loading the CA bundle). "
                f"Markets: the simulator lists {model['sim_markets']}, live Binance about {LIVE_MARKETS}; "
                f"Python memory (tracemalloc) per client as built: {model['sim_mb']:.2f} MB with the simulator's "
                "markets, "
                f"{model['live_mb']:.2f} MB with {LIVE_MARKETS} markets of the same shape (a client holding its own "
                f"copy of them, ccxt `set_markets`: {model['live_copied_mb']:.2f} MB; holding them by reference, "
                f"`set_markets_from_exchange`: {model['live_shared_mb']:.2f} MB).",
            ]
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    out = []
    for r in result["orders"]:
        out.append(
            f"{'PASS' if r['pass'] else 'FAIL'} {r['exchange']} round trip: added p50 {r['added_rt_p50']:+.2f} ms "
            f"(goal <= {GOAL_P50_MS:g}), added p99 {r['added_rt_p99']:+.2f} ms (goal <= {GOAL_P99_MS:g}), "
            f"failed direct / via: {r['errors']['direct']} / {r['errors']['bus']}"
        )
    memory = result["memory"]
    if memory:
        out.append(
            f"{'PASS' if memory['pass'] else 'FAIL'} memory: {memory['per_account_mb']:.2f} MB per extra account "
            f"(goal <= {GOAL_MB_PER_ACCOUNT:g}), markets loaded {memory['market_loads']} time(s) (goal 1)"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exchanges",
        default=",".join(EXCHANGES),
        help="comma-separated exchanges for the round trip and throughput ('' to skip them)",
    )
    parser.add_argument("--samples", type=int, default=300, help="round trips per exchange and path")
    parser.add_argument("--budget", type=float, default=30.0, help="at most this many seconds of round trips")
    parser.add_argument("--seconds", type=float, default=6.0, help="throughput: seconds per path and exchange")
    parser.add_argument("--clients", type=int, default=50, help="throughput: concurrent clients, one account each")
    parser.add_argument("--accounts", type=int, default=500, help="memory: stored keys on one connector (0: skip)")
    parser.add_argument("--write-readme", action="store_true", help="keep the tables in README.md")
    parser.add_argument("--client-model", metavar="SIM_URL", help=argparse.SUPPRESS)  # the run's own subprocess
    args = parser.parse_args()
    if args.client_model:
        print(json.dumps(client_model(args.client_model)))
        return 0
    args.exchanges = [e for e in args.exchanges.split(",") if e]
    unknown = sorted(set(args.exchanges) - set(EXCHANGES))
    if unknown:
        parser.error(f"--exchanges takes {', '.join(EXCHANGES)}; got {', '.join(unknown)}")
    if args.accounts == 1 or args.accounts < 0:
        parser.error(f"--accounts must be 0 (skip) or at least 2, got {args.accounts}")
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
