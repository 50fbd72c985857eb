"""Requests per second the exchange simulator serves per exchange, for a public and a signed endpoint.

The REAL ccxt clients run in another process than the simulator, so the figures include ccxt's own
signing and parsing. The baseline, measured in the same run by the same client process, is a bare aiohttp
GET of the simulator's health endpoint: the cost of HTTP alone on this machine.

    .venv/bin/python bench/sim.py [--seconds 3] [--concurrency 8] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import urllib.request

from benchlib import percentile, timed_loop, write_readme

EXCHANGES = ("binance", "kraken", "coinbase", "kucoin")
SYMBOLS = {"binance": "BTC/USDT", "kraken": "BTC/USD", "coinbase": "BTC/USD", "kucoin": "BTC/USDT"}
BALANCES = {
    "binance": {"USDT": "1000"},
    "kraken": {"USD": "1000"},
    "coinbase": {"USD": "1000"},
    "kucoin": {"USDT": "1000"},
}


async def _measure(make_call, concurrency: int, seconds: float) -> dict:
    results = await asyncio.gather(*(timed_loop(make_call(i), seconds) for i in range(concurrency)))
    latencies = [x for lat, _ in results for x in lat]
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "errors": sum(e for _, e in results),
    }


async def client_main(config: dict) -> dict:
    """Runs in the client process: one ccxt client per worker (signed calls need their own nonce sequence)."""
    import aiohttp

    from borsa_testing.sim import ccxt_client

    url, exchange, seconds, concurrency = config["url"], config["exchange"], config["seconds"], config["concurrency"]
    clients = [ccxt_client(exchange, url, creds) for creds in config["credentials"]]
    try:
        await asyncio.gather(*(c.load_markets() for c in clients))
        symbol = SYMBOLS[exchange]
        public = await _measure(lambda i: lambda: clients[i].fetch_ticker(symbol), concurrency, seconds)
        signed = await _measure(lambda i: lambda: clients[i].fetch_balance(), concurrency, seconds)
        async with aiohttp.ClientSession() as session:

            async def health() -> None:
                async with session.get(f"{url}/_sim/health") as response:
                    await response.read()

            baseline = await _measure(lambda i: health, concurrency, seconds)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {"public": public, "signed": signed, "baseline": baseline}


def admin(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/_sim{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def run(seconds: float, concurrency: int) -> list[dict]:
    from borsa_testing.processes import start_sim

    # Limits raised a thousandfold: this measures serving speed, not the rate limiter's refusals.
    sim = start_sim("--rate-limit-scale", "1000", "--seed", "1")
    rows = []
    try:
        for exchange in EXCHANGES:
            creds = [
                admin(sim.url, "/accounts", {"exchange": exchange, "balances": BALANCES[exchange]})["credentials"]
                for _ in range(concurrency)
            ]
            config = {
                "url": sim.url,
                "exchange": exchange,
                "seconds": seconds,
                "concurrency": concurrency,
                "credentials": creds,
            }
            out = subprocess.run(
                [sys.executable, __file__, "--client", json.dumps(config)], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            for endpoint, label in (
                ("public", "fetch_ticker (public)"),
                ("signed", "fetch_balance (signed)"),
                ("baseline", "baseline: GET /_sim/health"),
            ):
                rows.append({"exchange": exchange, "endpoint": label, **result[endpoint]})
    finally:
        sim.stop()
    return rows


def table(rows: list[dict], seconds: float, concurrency: int) -> str:
    lines = [
        f"Simulator throughput, {concurrency} concurrent ccxt clients in another process, {seconds:g} s per row:",
        "",
        "| exchange | endpoint | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['exchange']} | {r['endpoint']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-readme", action="store_true", help="keep the table in README.md")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client_main(json.loads(args.client)))))
        return 0
    rows = run(args.seconds, args.concurrency)
    text = table(rows, args.seconds, args.concurrency)
    print(text)
    if args.write_readme:
        write_readme("bench:sim", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
