"""`borsa-sim`: run the exchange simulator."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog
from aiohttp import web

from borsa_runtime.logging import configure_logging
from borsa_runtime.settings import Settings

from .app import Sim, create_app
from .markets import EXCHANGES

log = structlog.get_logger("borsa_sim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="borsa-sim",
        description="A local exchange speaking the REST dialects of Binance, Kraken, Coinbase and KuCoin.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port to listen on; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the price walks (same seed, same prices)")
    parser.add_argument(
        "--rate-limit-scale",
        type=float,
        default=1.0,
        help="multiply every documented rate limit by this (0.01 makes them easy to reach)",
    )
    parser.add_argument("--tick-interval", type=float, default=1.0, help="seconds between price-walk steps")
    parser.add_argument(
        "--ban-seconds",
        type=float,
        default=120.0,
        help="how long Binance's 418 ban lasts (the real one starts at 2 minutes)",
    )
    parser.add_argument(
        "--exchanges", default=",".join(EXCHANGES), help=f"comma-separated subset of {','.join(EXCHANGES)}"
    )
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="ID=EXCHANGE",
        help="also serve EXCHANGE's dialect under another ccxt id (binanceus=binance); repeatable",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.rate_limit_scale <= 0:
        parser.error("--rate-limit-scale must be greater than 0")
    if args.tick_interval <= 0:
        parser.error("--tick-interval must be greater than 0")
    chosen = tuple(x.strip() for x in args.exchanges.split(",") if x.strip())
    unknown = [x for x in chosen if x not in EXCHANGES]
    if unknown or not chosen:
        parser.error(f"--exchanges must be a subset of {','.join(EXCHANGES)}; unknown: {','.join(unknown)}")
    args.exchanges = chosen
    aliases = {}
    for item in args.alias:
        alias, _, target = item.partition("=")
        if not alias or target not in chosen:
            parser.error(f"--alias must be ID=EXCHANGE with EXCHANGE one of {','.join(chosen)}, not {item!r}")
        aliases[alias.strip()] = target
    args.alias = aliases
    return args


async def serve(args: argparse.Namespace) -> None:
    sim = Sim(
        seed=args.seed,
        rate_limit_scale=args.rate_limit_scale,
        tick_interval=args.tick_interval,
        exchanges=args.exchanges,
        ban_seconds=args.ban_seconds,
        aliases=args.alias,
    )
    runner = web.AppRunner(create_app(sim), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # the real port when --port 0
    url = f"http://{args.host}:{port}"
    # The first line on stdout is the URL: fixtures and `make run` read it.
    print(f"borsa-sim listening on {url}", flush=True)
    log.info(
        "sim_started", url=url, seed=args.seed, exchanges=list(args.exchanges), rate_limit_scale=args.rate_limit_scale
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("sim_stopping")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env()
    configure_logging("exchange-sim", settings.log_level, settings.log_format)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
