"""The whole platform for the browser tests, once per module: Postgres (a fresh migrated database), a NATS of its
own, the simulator (Kraken, KuCoin, Binance), Kraken and KuCoin connectors, a bot runner, reporting, the gateway;
and a real Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from borsa_runtime.sealing import generate_keypair
from borsa_testing.processes import GatewayProcess, start_gateway, start_nats, start_reporting

ROOT = Path(__file__).resolve().parents[4]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Orders looked up quickly and the runner's scans short: a started bot buys within a second or two.
CONNECTOR_ENV = {
    "BORSA_RATE_LIMIT_SCALE": "100",
    "BORSA_ORDER_POLL_MS": "300",
    "BORSA_WATCH_INTERVAL_MS": "250",
    "BORSA_REQUEST_TIMEOUT_MS": "5000",
}
RUNNER_ENV = {
    "BORSA_RUNNER_LEASE_SECONDS": "3",
    "BORSA_RUNNER_SCAN_MS": "500",
    "BORSA_RUNNER_CHANGES_MS": "100",
    "BORSA_REQUEST_TIMEOUT_MS": "5000",
}
REPORTING_ENV = {"BORSA_REPORTING_BATCH_WAIT_MS": "50"}


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion on a thread of its own: Playwright's sync API owns this thread's loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@dataclass
class Platform:
    url: str
    sim_url: str
    nats_url: str
    database_url: str
    gateway: GatewayProcess
    processes: list = field(default_factory=list)
    """Every Borsa process of the platform (gateway, connectors, runner, reporting), each with its log_path."""


@pytest.fixture(scope="module")
def platform(tmp_path_factory, database_factory, sim_factory, connector_factory, runner_factory) -> Iterator[Platform]:
    # A NATS of the module's own: connectors other modules left on a shared one would join the queue groups.
    nats_server = start_nats(tmp_path_factory.mktemp("ui-nats"))
    started = []
    try:
        dsn = database_factory()
        private, public = generate_keypair()
        sim = sim_factory(
            "--seed",
            "11",
            "--tick-interval",
            "0.25",
            "--rate-limit-scale",
            "100",
            "--exchanges",
            "kraken,kucoin,binance",
        )
        env = {**CONNECTOR_ENV, "BORSA_SEALING_KEY": private, "DATABASE_URL": dsn}
        started += [connector_factory(ex, nats_server.url, sim.url, env=env) for ex in ("kraken", "kucoin")]
        started.append(runner_factory(nats_server.url, dsn, env=RUNNER_ENV))
        started.append(
            start_reporting(nats_server.url, dsn, env=REPORTING_ENV, workdir=tmp_path_factory.mktemp("ui-reporting"))
        )
        gateway = start_gateway(
            nats_server.url,
            dsn,
            env={"BORSA_SEALING_PUBLIC_KEY": public, "BORSA_EXCHANGES": "binance,kraken,coinbase,kucoin"},
            workdir=tmp_path_factory.mktemp("ui-gateway"),
        )
        started.insert(0, gateway)
        yield Platform(gateway.url, sim.url, nats_server.url, dsn, gateway, processes=list(started))
    finally:
        for process in started:
            process.stop()
        nats_server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            yield browser
        finally:
            browser.close()
