"""A tiny connector-like service for the drain test: one slow endpoint, stopped by SIGTERM.

Run as `python slow_service.py <nats url> <exchange>`; it announces `test.<exchange>.ready`, and
`test.<exchange>.started` when a request is being handled.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from nats import micro

from borsa_proto import Ticker, TickerRequest, subjects
from borsa_runtime import GracefulShutdown, configure_logging, connect, handler, run_service


async def main(shutdown: GracefulShutdown) -> None:
    url, exchange = sys.argv[1], sys.argv[2]
    nc = await connect(url, "slow-service")
    shutdown.drain_on_shutdown(nc)

    async def ticker(request: TickerRequest) -> Ticker:
        await nc.publish(f"test.{exchange}.started", b"")
        await asyncio.sleep(1.0)
        return Ticker(
            symbol=request.symbol, market_id="BTCUSDT", bid=Decimal("1"), ask=Decimal("2"), last=None, timestamp=1
        )

    service = await micro.add_service(
        nc, name=subjects.SERVICE_NAME, version="0.0.1", metadata={subjects.SERVICE_METADATA_EXCHANGE: exchange}
    )
    await service.add_endpoint(name="ticker", subject=subjects.ticker(exchange), handler=handler(TickerRequest, ticker))
    await nc.publish(f"test.{exchange}.ready", b"")
    await shutdown.wait()


if __name__ == "__main__":
    configure_logging("slow-service", "info", "json")
    raise SystemExit(run_service(main))
