"""What the exchange connector costs over calling the exchange directly: ticker round trip, watchers, start-up.

1. Ticker round trip, one request in flight: NATS -> connector process -> simulator, next to the same ccxt
   `fetch_ticker` made directly against the simulator from this process, interleaved in the same run.
2. Watchers: the simulator's ticker request rate while 1, 10, 100 and 1000 watchers hold a lease on one symbol;
   the baseline is the one-watcher rate (one poll per interval, however many watch).
3. Start-up: connector process start to ready (markets loaded), and its resident memory then.

    .venv/bin/python bench/connector_market.py [--samples 300] [--budget 15] [--window 8] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchlib import percentile, write_readme

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
SYMBOLS = {"binance": "BTC/USDT", "kraken": "BTC/USD", "coinbase": "BTC/USD", "kucoin": "BTC/USDT"}
# Limits raised a thousandfold on both sides: the rate limiters are not what is measured.
SCALE = "1000"
WARMUP = 20
GOAL_P50_MS, GOAL_P99_MS, GOAL_GROWTH = 1.0, 5.0, 0.05
WATCH_EXCHANGE, WATCH_SYMBOL, WATCH_ENDPOINT = "kraken", "XBTUSD", "GET /0/public/Ticker"
WATCH_INTERVAL_MS = 250
WATCHERS = (1, 10, 100, 1000)
LEASE_MS, RENEW_SECONDS = 3000, 1.0  # each lease renewed three times per lease: none lapses under load
MARKER = "bench:connector"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rate_wait(ops_url: str, exchange: str) -> tuple[float, float]:
    """(sum of seconds, count) of the connector's rate-budget wait histogram: time spent in ccxt's throttler."""
    with urllib.request.urlopen(f"{ops_url}/metrics") as response:
        text = response.read().decode()
    found = {}
    for part in ("sum", "count"):
        pattern = rf'^borsa_connector_rate_budget_wait_seconds_{part}{{exchange="{exchange}"}} (\S+)$'
        match = re.search(pattern, text, re.M)
        found[part] = float(match.group(1)) if match else 0.0
    return found["sum"], found["count"]


async def timed(call) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


# -- 1. ticker round trip ------------------------------------------------------------------------------------
async def ticker_round_trips(nc, sim_url: str, connector, samples: int, budget: float) -> dict:
    from borsa_proto.exchange import Ticker
    from borsa_proto.requests import TickerRequest
    from borsa_proto.subjects import ticker as ticker_subject
    from borsa_runtime.request import request
    from borsa_testing.sim import ccxt_client

    exchange, symbol = connector.exchange, SYMBOLS[connector.exchange]
    client = ccxt_client(exchange, sim_url)
    payload, subject = TickerRequest(symbol=symbol), ticker_subject(exchange)

    async def direct() -> None:
        await client.fetch_ticker(symbol)

    async def bus() -> None:
        await request(nc, subject, payload, Ticker)

    try:
        await client.load_markets()
        for _ in range(WARMUP):
            await direct()
        warm_until = time.perf_counter() + 3
        for _ in range(WARMUP):
            await bus()
            if time.perf_counter() > warm_until:
                break
        waited_before = rate_wait(connector.ops_url, exchange)
        # Interleaved, so that both paths see the same machine; the connector path stops at the time budget.
        direct_s, bus_s = [], []
        deadline = time.perf_counter() + budget
        while len(direct_s) < samples or (len(bus_s) < samples and time.perf_counter() < deadline):
            if len(direct_s) < samples:
                direct_s.append(await timed(direct))
            if len(bus_s) < samples and time.perf_counter() < deadline:
                bus_s.append(await timed(bus))
        waited_after = rate_wait(connector.ops_url, exchange)
    finally:
        await client.close()
    calls = waited_after[1] - waited_before[1]
    row = {"exchange": exchange, "n_direct": len(direct_s), "n_bus": len(bus_s)}
    for name, values in (("direct", direct_s), ("bus", bus_s)):
        row[f"{name}_p50"] = percentile(values, 50) * 1000
        row[f"{name}_p99"] = percentile(values, 99) * 1000
    row["added_p50"] = row["bus_p50"] - row["direct_p50"]
    row["added_p99"] = row["bus_p99"] - row["direct_p99"]
    row["wait_ms"] = (waited_after[0] - waited_before[0]) / calls * 1000 if calls else float("nan")
    row["pass"] = row["added_p50"] <= GOAL_P50_MS and row["added_p99"] <= GOAL_P99_MS
    return row


# -- 2. watchers ---------------------------------------------------------------------------------------------
async def hold_leases(nc, n: int, stop: asyncio.Event, tally: dict) -> None:
    """N watchers renewing their leases together every RENEW_SECONDS, as N bots on one symbol would."""
    from borsa_proto.exchange import WatchReply
    from borsa_proto.requests import WatchRequest
    from borsa_proto.subjects import exchange_subject
    from borsa_runtime.request import request

    subject = exchange_subject(WATCH_EXCHANGE, "watch")
    payload = WatchRequest(symbol=WATCH_SYMBOL, lease_ms=LEASE_MS)
    while not stop.is_set():
        started = time.perf_counter()
        results = await asyncio.gather(
            *(request(nc, subject, payload, WatchReply) for _ in range(n)), return_exceptions=True
        )
        tally["renewals"] += len(results)
        tally["errors"] += sum(isinstance(r, Exception) for r in results)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, RENEW_SECONDS - (time.perf_counter() - started)))


async def ticker_count(admin) -> int:
    stats = await admin.stats()
    return stats.get(WATCH_EXCHANGE, {}).get("endpoints", {}).get(WATCH_ENDPOINT, {}).get("requests", 0)


async def next_poll(admin, timeout: float = 10.0) -> tuple[int, float]:
    """The count and time just after the next poll: both ends of a window on a poll, so no partial interval."""
    first = await ticker_count(admin)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
        count = await ticker_count(admin)
        if count > first:
            return count, time.perf_counter()
    raise RuntimeError(f"no {WATCH_EXCHANGE} ticker poll reached the simulator within {timeout:g}s")


async def watcher_rates(nc, sim_url: str, window: float) -> list[dict]:
    from borsa_testing.sim import SimAdmin

    rows = []
    async with SimAdmin(sim_url) as admin:
        for n in WATCHERS:
            tally, stop = {"renewals": 0, "errors": 0}, asyncio.Event()
            holder = asyncio.create_task(hold_leases(nc, n, stop, tally))
            try:
                await asyncio.sleep(2 * RENEW_SECONDS)
                renewed_before, started = tally["renewals"], time.perf_counter()
                count_0, t_0 = await next_poll(admin)
                await asyncio.sleep(window)
                count_1, t_1 = await next_poll(admin)
                renewals_per_s = (tally["renewals"] - renewed_before) / (time.perf_counter() - started)
            finally:
                stop.set()
                await holder
            rate = (count_1 - count_0) / (t_1 - t_0)
            rows.append({"watchers": n, "rate": rate, "renewals_per_s": renewals_per_s, "errors": tally["errors"]})
    return rows


# -- 3. start-up ---------------------------------------------------------------------------------------------
def start_connector_timed(exchange: str, nats_url: str, sim_url: str, env: dict, started: list):
    from borsa_testing.processes import start_connector

    begin = time.perf_counter()
    connector = start_connector(exchange, nats_url, sim_url, env=env)
    ready_s = time.perf_counter() - begin
    started.append(connector)
    return connector, {"process": f"connector {exchange}", "ready_s": ready_s, "rss": rss_mib(connector.proc.pid)}


def import_baseline() -> dict:
    """A bare interpreter that imports ccxt and nothing else: the floor under any ccxt-based process."""
    code = "import sys, ccxt.async_support; print('ready', flush=True); sys.stdin.read()"
    begin = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        row = {"process": "baseline: python -c 'import ccxt.async_support'", "ready_s": time.perf_counter() - begin}
        row["rss"] = rss_mib(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(10)
    return row


# -- the run -------------------------------------------------------------------------------------------------
async def bench(nats_url: str, sim_url: str, args: argparse.Namespace, started: list) -> dict:
    import nats

    nc = await nats.connect(nats_url, name="bench-connector-market")
    tickers, startups = [], [import_baseline()]
    try:
        env = {"BORSA_RATE_LIMIT_SCALE": SCALE}
        for exchange in EXCHANGES:
            connector, startup = await asyncio.to_thread(
                start_connector_timed, exchange, nats_url, sim_url, env, started
            )
            tickers.append(await ticker_round_trips(nc, sim_url, connector, args.samples, args.budget))
            startup["rss_after"] = rss_mib(connector.proc.pid)
            startups.append(startup)
            await asyncio.to_thread(connector.stop)
        env = {**env, "BORSA_WATCH_INTERVAL_MS": str(WATCH_INTERVAL_MS)}
        await asyncio.to_thread(start_connector_timed, WATCH_EXCHANGE, nats_url, sim_url, env, started)
        watchers = await watcher_rates(nc, sim_url, args.window)
    finally:
        await nc.close()
    return {"tickers": tickers, "watchers": watchers, "startups": startups}


def run(args: argparse.Namespace) -> dict:
    from borsa_testing.processes import start_nats, start_sim

    servers, connectors = [], []
    try:
        servers.append(start_nats())
        servers.append(start_sim("--rate-limit-scale", SCALE, "--seed", "1"))
        return asyncio.run(bench(servers[0].url, servers[1].url, args, connectors))
    finally:
        for process in [*connectors, *reversed(servers)]:
            process.stop()


def tables(result: dict, args: argparse.Namespace) -> str:
    import ccxt

    verdict = {True: "PASS", False: "MISS"}
    lines = [
        f"Environment: {os.cpu_count()} CPUs, Python {platform.python_version()}, ccxt {ccxt.__version__}; "
        f"simulator `--rate-limit-scale {SCALE}`, connectors `BORSA_RATE_LIMIT_SCALE={SCALE}`.",
        "",
        f"Ticker round trip, one request in flight, after {WARMUP} warm-up calls; direct: the ccxt class in the "
        f"bench process; via connector: NATS request to the connector process (at most {args.budget:g} s of "
        f"samples). Goal: added p50 at most {GOAL_P50_MS:g} ms, added p99 at most {GOAL_P99_MS:g} ms.",
        "",
        "| exchange | samples direct / via | direct p50 ms | direct p99 ms | via connector p50 ms "
        "| via connector p99 ms | added p50 ms | added p99 ms | rate-budget wait, mean ms | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["tickers"]:
        lines.append(
            f"| {r['exchange']} | {r['n_direct']} / {r['n_bus']} | {r['direct_p50']:.2f} | {r['direct_p99']:.2f} | "
            f"{r['bus_p50']:.2f} | {r['bus_p99']:.2f} | {r['added_p50']:+.2f} | {r['added_p99']:+.2f} | "
            f"{r['wait_ms']:.2f} | {verdict[r['pass']]} |"
        )
    base = result["watchers"][0]["rate"]
    expected = 1000 / WATCH_INTERVAL_MS
    lines += [
        "",
        f"Watchers of {WATCH_EXCHANGE} {WATCH_SYMBOL} (connector `BORSA_WATCH_INTERVAL_MS={WATCH_INTERVAL_MS}`, "
        f"one poll per interval is {expected:g} req/s): the simulator's ticker requests over {args.window:g} s, "
        f"while every lease ({LEASE_MS} ms) is renewed together every {RENEW_SECONDS:g} s.",
        "",
        "| watchers | simulator ticker req/s | vs 1 watcher | lease renewals/s | renewal errors |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in result["watchers"]:
        lines.append(
            f"| {r['watchers']} | {r['rate']:.2f} | {(r['rate'] / base - 1) * 100:+.1f} % | "
            f"{r['renewals_per_s']:.0f} | {r['errors']} |"
        )
    growth = result["watchers"][-1]["rate"] / base - 1
    lines += [
        "",
        f"Growth from {WATCHERS[0]} to {WATCHERS[-1]} watchers: {growth * 100:+.1f} % "
        f"(goal: at most {GOAL_GROWTH * 100:g} %): {verdict[growth <= GOAL_GROWTH]}.",
        "",
        "Start-up: process start to `ready` (markets loaded), resident memory (VmRSS) then and after the ticker run.",
        "",
        "| process | start to ready s | RSS at ready MiB | RSS after ticker run MiB |",
        "|---|---:|---:|---:|",
    ]
    for r in result["startups"]:
        after = f"{r['rss_after']:.0f}" if "rss_after" in r else "-"
        lines.append(f"| {r['process']} | {r['ready_s']:.2f} | {r['rss']:.0f} | {after} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="ticker round trips per exchange and path")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds of connector samples per exchange")
    parser.add_argument("--window", type=float, default=8.0, help="seconds each watcher count is held")
    parser.add_argument("--write-readme", action="store_true", help="keep the tables in README.md")
    args = parser.parse_args()
    text = tables(run(args), args)
    print(text)
    if args.write_readme:
        write_readme(MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
