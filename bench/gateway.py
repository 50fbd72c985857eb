"""Requests per second one gateway process serves for a user's list of 100 bots, next to its trivial /ping.

The gateway runs as `borsa-gateway` (one uvicorn worker) against real NATS and Postgres; the user registers
through the API and their key and bots are inserted straight into Postgres, so no connector is needed. The
load comes from this process: N keep-alive aiohttp workers per endpoint, a warm-up first, then the two
endpoints in alternating rounds for the same total time each.

    .venv/bin/python bench/gateway.py [--seconds 5] [--concurrency 16] [--bots 100] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time

from benchlib import percentile, timed_loop, write_readme

API = "/api/v1"
WARMUP_SECONDS = 1.0
ROUNDS = 5
GOAL_RATIO = 0.5
PARAMS = json.dumps({"quote_amount": "25", "interval_seconds": 3600})
MARKER = "bench:gateway"


class BadResponse(Exception):
    """A response that is not the expected one: counted as an error, not as a request served."""


async def _measure(call, concurrency: int, seconds: float) -> dict:
    started = time.perf_counter()
    results = await asyncio.gather(*(timed_loop(call, seconds) for _ in range(concurrency)))
    # The last requests finish after the deadline: count the time they really took.
    return {
        "elapsed": time.perf_counter() - started,
        "latencies": [x for lat, _ in results for x in lat],
        "errors": sum(e for _, e in results),
    }


def _summary(samples: list[dict]) -> dict:
    latencies = [x for s in samples for x in s["latencies"]]
    return {
        "rps": len(latencies) / sum(s["elapsed"] for s in samples),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": sum(s["errors"] for s in samples),
    }


async def seed(url: str, dsn: str, session, bots: int) -> str:
    """A registered user with one paper kraken key and `bots` DCA bots on it; returns their access token."""
    import asyncpg

    body = {"email": "bench@example.com", "password": "correct horse battery"}
    async with session.post(f"{url}{API}/auth/register", json=body) as response:
        if response.status != 201:
            raise RuntimeError(f"register answered {response.status}: {await response.text()}")
        token = (await response.json())["access_token"]
    conn = await asyncpg.connect(dsn)
    try:
        user_id = await conn.fetchval("SELECT id FROM users WHERE email = $1", body["email"])
        key_id = await conn.fetchval(
            "INSERT INTO api_keys (user_id, exchange_name, label, mode, sealed_credentials, key_hint) "
            "VALUES ($1, 'kraken', 'bench', 'paper', NULL, '') RETURNING id",
            user_id,
        )
        await conn.executemany(
            "INSERT INTO bot_configs (user_id, api_key_id, exchange_name, symbol, market_id, strategy, params) "
            "VALUES ($1, $2, 'kraken', 'BTC/USD', 'XXBTZUSD', 'dca', $3::jsonb)",
            [(user_id, key_id, PARAMS)] * bots,
        )
    finally:
        await conn.close()
    return token


async def bench(url: str, dsn: str, args: argparse.Namespace) -> list[dict]:
    import aiohttp
    import msgspec

    # One connection per worker, kept alive: what is measured is serving, not connecting.
    connector = aiohttp.TCPConnector(limit=args.concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        token = await seed(url, dsn, session, args.bots)
        headers = {"Authorization": f"Bearer {token}"}
        decode_bots = msgspec.json.Decoder(list[dict]).decode

        async def bots() -> None:
            async with session.get(f"{url}{API}/bots", headers=headers) as response:
                body = await response.read()
                if response.status != 200:
                    raise BadResponse(response.status)
            if len(decode_bots(body)) != args.bots:
                raise BadResponse("wrong number of bots")

        async def ping() -> None:
            async with session.get(f"{url}{API}/ping") as response:
                await response.read()
                if response.status != 200:
                    raise BadResponse(response.status)

        endpoints = ((f"GET {API}/ping (baseline)", ping), (f"GET {API}/bots ({args.bots} bots)", bots))
        for _, call in endpoints:
            await _measure(call, args.concurrency, WARMUP_SECONDS)
        # Interleaved in short rounds, so that whatever else the machine does weighs on both endpoints alike.
        samples = {name: [] for name, _ in endpoints}
        for _ in range(ROUNDS):
            for name, call in endpoints:
                samples[name].append(await _measure(call, args.concurrency, args.seconds / ROUNDS))
        return [{"endpoint": name, **_summary(samples[name])} for name, _ in endpoints]


def run(args: argparse.Namespace) -> list[dict]:
    from borsa_db import migrate
    from borsa_testing.processes import start_gateway, start_nats, start_postgres

    started = []
    try:
        nats = start_nats()
        started.append(nats)
        postgres = start_postgres()
        started.append(postgres)
        dsn = postgres.dsn("borsa_bench")
        asyncio.run(migrate(dsn))
        gateway = start_gateway(nats.url, dsn)
        started.append(gateway)
        return asyncio.run(bench(gateway.url, dsn, args))
    finally:
        for process in reversed(started):
            process.stop()


def table(rows: list[dict], args: argparse.Namespace) -> str:
    import fastapi
    import pydantic
    import uvicorn

    ping, bots = rows
    ratio = bots["rps"] / ping["rps"]
    verdict = "PASS" if ratio >= GOAL_RATIO else "MISS"
    lines = [
        f"Environment: {os.cpu_count()} CPUs, Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"pydantic {pydantic.__version__}, uvicorn {uvicorn.__version__}; one gateway process, one worker.",
        "",
        f"Gateway throughput, {args.concurrency} concurrent keep-alive aiohttp clients in the bench process, "
        f"{args.seconds:g} s per row in {ROUNDS} alternating rounds after {WARMUP_SECONDS:g} s of warm-up; every "
        f"/bots answer is checked to be 200 with {args.bots} bots:",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['endpoint']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |")
    lines += [
        "",
        f"/bots over /ping: {ratio:.2f} (goal: at least {GOAL_RATIO:g}, half of the trivial endpoint's "
        f"throughput): {verdict}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of load per endpoint")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive clients")
    parser.add_argument("--bots", type=int, default=100, help="bots the user has")
    parser.add_argument("--write-readme", action="store_true", help="keep the table in README.md")
    args = parser.parse_args()
    text = table(run(args), args)
    print(text)
    if args.write_readme:
        write_readme(MARKER, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
