"""`borsa-reporting`: order events into report rows, and reports over NATS."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

import asyncpg
import structlog

from borsa_runtime.bus import GracefulShutdown, connect, run_service
from borsa_runtime.logging import configure_logging
from borsa_runtime.ops import OpsServer
from borsa_runtime.settings import SettingsError

from .consumer import Consumer
from .ingest import Ingest
from .metrics import Metrics
from .rates import Rates
from .service import ReportService
from .settings import ReportingSettings

log = structlog.get_logger("borsa.reporting")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="borsa-reporting", description="Borsa's orders, fills and PnL reports.")
    parser.add_argument("--http-port", type=int, help="port of /healthz, /readyz and /metrics (0: a free one)")
    return parser.parse_args(argv)


async def _codecs(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Reporting:
    def __init__(self, settings: ReportingSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.nc = None
        self.ready = False
        self.ops = OpsServer(self.metrics.registry, self.readiness, settings.http_host, settings.http_port)

    def readiness(self) -> dict[str, bool]:
        return {"nats_connected": bool(self.nc is not None and self.nc.is_connected), "consuming": self.ready}

    async def run(self, shutdown: GracefulShutdown) -> None:
        s = self.settings
        port = await self.ops.start()
        shutdown.on_shutdown(self.ops.stop)
        pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=6, init=_codecs)
        shutdown.on_shutdown(pool.close)
        if await pool.fetchval("SELECT to_regclass('report_fills')") is None:
            # Consuming without the tables would fail every event until it is set aside: stop before taking any.
            raise RuntimeError("the database has no reporting tables yet: run the migrations (borsa-migrate upgrade)")
        self.nc = await connect(s.nats_url, name="borsa-reporting")
        shutdown.drain_on_shutdown(self.nc)
        consumer = Consumer(
            self.nc,
            Ingest(pool, Rates(self.nc)),
            self.metrics,
            durable=s.durable,
            batch=s.batch,
            wait_ms=s.batch_wait_ms,
            ack_wait_seconds=s.ack_wait_seconds,
        )
        await consumer.start()
        shutdown.on_shutdown(consumer.stop)
        service = ReportService(self.nc, pool)
        await service.start()
        shutdown.on_shutdown(service.stop)
        await self.nc.flush()
        # What start-up made (modules, clients, pools) lives as long as the process: out of the collector's full
        # passes, which ingest's allocations (a batch of events, fills and rows) trigger again and again. In the
        # ingest bench, alternating runs: reporting's CPU 64-68 % -> 61-63 % of a core, 16.9 -> 17.6k fills/s.
        gc.freeze()
        self.ready = True
        log.info("reporting ready")
        print(f"borsa-reporting ready; ops on http://{s.http_host}:{port}", flush=True)
        await shutdown.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {}
    if args.http_port is not None:
        overrides["BORSA_REPORTING_HTTP_PORT"] = str(args.http_port)
    try:
        settings = ReportingSettings.from_env(environ={**os.environ, **overrides})
    except (SettingsError, ValueError) as exc:
        print(f"borsa-reporting: {exc}", file=sys.stderr)
        return 2
    configure_logging("reporting", settings.log_level, settings.log_format)
    if not settings.database_url:
        print("borsa-reporting: DATABASE_URL is required (reports live in Postgres)", file=sys.stderr)
        return 2
    return run_service(Reporting(settings).run)


if __name__ == "__main__":
    sys.exit(main())
