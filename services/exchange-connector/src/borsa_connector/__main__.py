"""`borsa-connector --exchange <ccxt id>`: serve one exchange on the bus."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time

import structlog

from borsa_proto import encode
from borsa_proto.exchange import MarketChange, MarketEvent
from borsa_proto.subjects import market_events
from borsa_runtime.bus import GracefulShutdown, connect, run_service
from borsa_runtime.logging import configure_logging, log_context
from borsa_runtime.ops import OpsServer
from borsa_runtime.settings import SettingsError
from borsa_runtime.streams import ensure_orders_stream

from .accounts import AccountStore
from .exchanges.registry import resolve_exchange
from .metrics import Metrics
from .order_store import OrderStore, new_instance_id
from .order_streams import OrderStreams
from .orders import OrderDesk
from .service import ConnectorService
from .settings import ConnectorSettings
from .tracker import OrderTracker
from .watch import WatchManager

log = structlog.get_logger("borsa.connector")
LOAD_RETRY_SECONDS = (1, 2, 5, 10, 30)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="borsa-connector", description="Serve one exchange on the Borsa bus.")
    parser.add_argument("--exchange", help="ccxt exchange id (binance, kraken, coinbase, kucoin, or any other)")
    parser.add_argument("--http-port", type=int, help="port of /healthz, /readyz and /metrics (0: a free one)")
    return parser.parse_args(argv)


class Connector:
    def __init__(self, settings: ConnectorSettings) -> None:
        self.settings = settings
        exchange_id, api_class = resolve_exchange(settings.exchange)
        self.metrics = Metrics()
        self.api = api_class(
            exchange_id,
            sim_url=settings.sim_url,
            timeout_ms=settings.request_timeout_ms,
            rate_limit_scale=settings.rate_limit_scale,
            rate_share=settings.rate_share,
            on_throttle=self.metrics.observe_throttle,
        )
        self.accounts = AccountStore(
            self.api,
            database_url=settings.database_url,
            sealing_key=settings.sealing_key,
            max_clients=settings.account_clients_max,
            recheck_seconds=settings.account_recheck_seconds,
            registry=self.metrics.registry,
        )
        self.api.accounts = self.accounts
        self.nc = None
        self.serving = False  # the bus endpoints exist and the server knows them
        self.ops = OpsServer(self.metrics.registry, self.readiness, settings.http_host, settings.http_port)

    def readiness(self) -> dict[str, bool]:
        return {
            "markets_loaded": self.api.ready,
            "nats_connected": bool(self.nc is not None and self.nc.is_connected),
            "serving": self.serving,
        }

    def log_keys(self) -> None:
        """Whether stored API keys can be served, and for which public key they must be sealed."""
        public_key = self.settings.sealing_public_key
        if public_key is None:
            log.warning("no BORSA_SEALING_KEY: market data only; credential verbs answer that keys cannot be opened")
        else:
            log.info("api keys open with this sealing key", sealing_public_key=public_key)
        if not self.settings.database_url:
            log.warning("no DATABASE_URL: stored API keys cannot be read")

    async def load_markets(self, shutdown: GracefulShutdown) -> None:
        """Markets first: nothing is served before they load. An exchange that is down is retried, not fatal."""
        attempt = 0
        while not shutdown.requested:
            try:
                await self.api.start()
                log.info("markets loaded", markets=len(self.api.markets()))
                return
            except Exception as exc:
                delay = LOAD_RETRY_SECONDS[min(attempt, len(LOAD_RETRY_SECONDS) - 1)]
                log.warning("market load failed; retrying", error=str(exc), retry_in_s=delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def start_orders(self, shutdown: GracefulShutdown) -> None:
        """Orders need the database (the durable record of every create) and JetStream (their events)."""
        if not self.settings.database_url:
            return
        instance = new_instance_id(self.api.id)
        store = OrderStore(self.settings.database_url, self.api.id, instance)
        await store.start()
        shutdown.on_shutdown(store.close)
        js = self.nc.jetstream()
        await ensure_orders_stream(js)
        tracker = OrderTracker(
            js,
            self.api,
            self.accounts,
            store,
            interval_s=self.settings.order_poll_ms / 1000,
            fallback_s=self.settings.order_ws_fallback_poll_ms / 1000,
        )
        tracker.streams = OrderStreams(
            self.api,
            self.accounts,
            tracker.poke,
            told=tracker.told,
            enabled=self.api.ws_orders_enabled(self.settings.order_ws),
            linger_s=self.settings.order_ws_linger_ms / 1000,
            registry=self.metrics.registry,
        )
        desk = OrderDesk(
            self.api, self.accounts, store, tracker, request_timeout_s=self.settings.request_timeout_ms / 1000
        )
        tracker.desk = desk
        self.api.desk = desk
        await tracker.start()
        shutdown.on_shutdown(tracker.stop)
        shutdown.on_shutdown(desk.drain)  # runs before the tracker stops and the store closes
        log.info("orders recorded and tracked", instance=instance, order_streams=tracker.streams.enabled)

    async def refresh_loop(self) -> None:
        period = self.settings.markets_refresh_minutes * 60
        while True:
            await asyncio.sleep(period)
            try:
                changes = await self.api.refresh_markets()
            except Exception as exc:
                log.warning("market refresh failed; keeping the loaded markets", error=str(exc))
                continue
            if changes:
                await self.publish_changes(changes)

    async def publish_changes(self, changes: list) -> None:
        for change in changes:
            self.metrics.market_changes.labels(self.api.id, change.kind).inc()
            event = MarketEvent(
                exchange=self.api.id,
                kind=change.kind,
                timestamp=int(time.time() * 1000),
                symbols=[change.symbol],
                changes=[
                    MarketChange(
                        symbol=change.symbol,
                        kind=change.kind,
                        fields=list(change.fields),
                        old=change.old,
                        new=change.new,
                    )
                ],
            )
            await self.nc.publish(market_events(self.api.id), encode(event))
            log.info("market changed", symbol=change.symbol, kind=change.kind, fields=list(change.fields))

    async def run(self, shutdown: GracefulShutdown) -> None:
        with log_context(exchange=self.api.id):
            port = await self.ops.start()
            shutdown.on_shutdown(self.ops.stop)
            shutdown.on_shutdown(self.api.close)
            shutdown.on_shutdown(self.accounts.close)
            log.info("ops listening", url=f"http://{self.settings.http_host}:{port}")
            self.log_keys()
            self.nc = await connect(self.settings.nats_url, name=f"borsa-connector-{self.api.id}")
            shutdown.drain_on_shutdown(self.nc)
            await self.load_markets(shutdown)
            if shutdown.requested:
                return
            await self.start_orders(shutdown)
            watcher = WatchManager(
                self.nc,
                self.api,
                self.metrics,
                interval_ms=self.settings.watch_interval_ms,
                lease_ms=self.settings.watch_lease_ms,
                replica_id=self.settings.replica_id,
            )
            await watcher.start()
            service = ConnectorService(self.nc, self.api, watcher, self.metrics, self.accounts)
            await service.start()
            shutdown.on_shutdown(service.stop)
            shutdown.on_shutdown(watcher.stop)
            # A PING round trip: the server has our subscriptions before anyone is told we are ready.
            await self.nc.flush()
            self.serving = True
            refresher = asyncio.create_task(self.refresh_loop())
            log.info("connector ready", exchange=self.api.id, markets=len(self.api.markets()))
            print(f"borsa-connector {self.api.id} ready; ops on http://{self.settings.http_host}:{port}", flush=True)
            await shutdown.wait()
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {}
    if args.exchange:
        overrides["BORSA_EXCHANGE"] = args.exchange
    if args.http_port is not None:
        overrides["BORSA_CONNECTOR_HTTP_PORT"] = str(args.http_port)
    try:
        settings = ConnectorSettings.from_env(environ={**os.environ, **overrides})
    except (SettingsError, ValueError) as exc:
        print(f"borsa-connector: {exc}", file=sys.stderr)
        return 2
    configure_logging("exchange-connector", settings.log_level, settings.log_format)
    if not settings.exchange:
        print("borsa-connector: --exchange (or BORSA_EXCHANGE) is required", file=sys.stderr)
        return 2
    try:
        connector = Connector(settings)
    except ValueError as exc:
        print(f"borsa-connector: {exc}", file=sys.stderr)
        return 2
    return run_service(connector.run)


if __name__ == "__main__":
    sys.exit(main())
