"""`borsa-runner`: runs its share of the bots whose status is running, until they are stopped."""

from __future__ import annotations

import argparse
import os
import sys

import structlog

from borsa_runtime.bus import GracefulShutdown, connect, run_service
from borsa_runtime.logging import configure_logging
from borsa_runtime.ops import OpsServer
from borsa_runtime.settings import SettingsError

from .metrics import Metrics
from .runner import Runner
from .settings import RunnerSettings
from .store import RunnerStore, new_runner_id

log = structlog.get_logger("borsa.runner")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="borsa-runner", description="Run Borsa's bots.")
    parser.add_argument("--http-port", type=int, help="port of /healthz, /readyz and /metrics (0: a free one)")
    return parser.parse_args(argv)


class RunnerProcess:
    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runner: Runner | None = None
        self.nc = None
        self.ops = OpsServer(self.metrics.registry, self.readiness, settings.http_host, settings.http_port)

    def readiness(self) -> dict[str, bool]:
        return {
            "nats_connected": bool(self.nc is not None and self.nc.is_connected),
            "running": bool(self.runner is not None and self.runner.ready),
        }

    async def run(self, shutdown: GracefulShutdown) -> None:
        settings = self.settings
        port = await self.ops.start()
        shutdown.on_shutdown(self.ops.stop)
        runner_id = settings.replica_id or new_runner_id()
        store = RunnerStore(settings.database_url, runner_id, settings.lease_seconds)
        await store.open()
        if await store.pool.fetchval("SELECT to_regclass('bot_leases')") is None:
            raise RuntimeError("the database has no bot runner tables yet: run the migrations (borsa-migrate upgrade)")
        shutdown.on_shutdown(store.close)
        self.nc = await connect(settings.nats_url, name="borsa-runner")
        shutdown.drain_on_shutdown(self.nc)
        self.runner = Runner(settings, self.nc, store, self.metrics)
        await self.runner.start()
        shutdown.on_shutdown(self.runner.stop)  # before the drain: bots stop and leases go back first
        await self.nc.flush()
        log.info("runner ready", runner=runner_id, share=self.runner.share)
        print(f"borsa-runner {runner_id} ready; ops on http://{settings.http_host}:{port}", flush=True)
        await shutdown.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {}
    if args.http_port is not None:
        overrides["BORSA_RUNNER_HTTP_PORT"] = str(args.http_port)
    try:
        settings = RunnerSettings.from_env(environ={**os.environ, **overrides})
    except (SettingsError, ValueError) as exc:
        print(f"borsa-runner: {exc}", file=sys.stderr)
        return 2
    configure_logging("bot-runner", settings.log_level, settings.log_format)
    if not settings.database_url:
        print("borsa-runner: DATABASE_URL is required (bots, leases and intents live in Postgres)", file=sys.stderr)
        return 2
    return run_service(RunnerProcess(settings).run)


if __name__ == "__main__":
    sys.exit(main())
