"""Real-server fixtures, registered for every package through the pytest11 entry point.

Session fixtures start one nats-server, one Postgres cluster and one simulator per test run, on free
loopback ports, and tear them down at the end. `NATS_URL`, `DATABASE_URL` and `BORSA_SIM_URL` make them use
servers that are already running instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .processes import (
    ConnectorProcess,
    RunnerProcess,
    SimServer,
    start_connector,
    start_nats,
    start_postgres,
    start_runner,
    start_sim,
    stop_together,
)

# Limits a hundredfold: tests share one loopback IP, and only the rate-limit tests (which start their own
# simulator with a small scale) are about the limits.
DEFAULT_SIM_ARGS = ("--seed", "42", "--tick-interval", "0.25", "--rate-limit-scale", "100")


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `nats-server -js` (or `NATS_URL`)."""
    if os.environ.get("NATS_URL"):
        yield os.environ["NATS_URL"]
        return
    server = start_nats(tmp_path_factory.mktemp("nats"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin DSN on a real Postgres cluster (or `DATABASE_URL`)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    # Not under tmp_path: pytest's folder is private to root, and Postgres runs as an unprivileged user.
    workdir = Path(tempfile.mkdtemp(prefix="borsa-pg-"))
    server = start_postgres(workdir)
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _admin(database_url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _create_database(database_url: str) -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    _admin(database_url, f'CREATE DATABASE "{name}"')
    base, _, _ = database_url.rpartition("/")
    return name, f"{base}/{name}"


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards; yields its DSN."""
    name, dsn = _create_database(database_url)
    try:
        yield dsn
    finally:
        _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated_database(fresh_database: str) -> str:
    """A new database with Borsa's schema migrated to head (borsa_db.migrate), dropped afterwards; its DSN."""
    from borsa_db import migrate

    asyncio.run(migrate(fresh_database))
    return fresh_database


@pytest.fixture(scope="session")
def database_factory(database_url: str) -> Iterator[Callable[[], str]]:
    """Make migrated databases that outlive one test (for module-scoped services); all dropped at the end."""
    from borsa_db import migrate

    names: list[str] = []

    def make() -> str:
        name, dsn = _create_database(database_url)
        names.append(name)
        asyncio.run(migrate(dsn))
        return dsn

    try:
        yield make
    finally:
        for name in names:
            _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sim_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SimServer]]:
    """Start extra simulators with their own arguments (`sim_factory("--rate-limit-scale", "0.01")`)."""
    started: list[SimServer] = []

    def start(*args: str) -> SimServer:
        server = start_sim(*args, workdir=Path(tmp_path_factory.mktemp("sim")))
        started.append(server)
        return server

    try:
        yield start
    finally:
        stop_together(started)


@pytest.fixture(scope="session")
def connector_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ConnectorProcess]]:
    """Start `borsa-connector` processes (`connector_factory("kraken", nats_url, sim_url, env={...})`); all are
    stopped at the end of the run."""
    started: list[ConnectorProcess] = []

    def start(exchange: str, nats_url: str, sim_url: str | None, env: dict[str, str] | None = None):
        process = start_connector(
            exchange, nats_url, sim_url, env=env, workdir=Path(tmp_path_factory.mktemp(f"connector-{exchange}"))
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        stop_together(started)


@pytest.fixture(scope="session")
def runner_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RunnerProcess]]:
    """Start `borsa-runner` processes (`runner_factory(nats_url, database_url, env={...})`); all are stopped at the
    end of the run."""
    started: list[RunnerProcess] = []

    def start(nats_url: str, database_url: str, env: dict[str, str] | None = None) -> RunnerProcess:
        process = start_runner(nats_url, database_url, env=env, workdir=Path(tmp_path_factory.mktemp("runner")))
        started.append(process)
        return process

    try:
        yield start
    finally:
        stop_together(started)


@pytest.fixture(scope="session")
def sim_url(sim_factory: Callable[..., SimServer]) -> str:
    """The shared simulator (or `BORSA_SIM_URL`): seed 42, a price step every 0.25 s, generous limits, and
    binanceus served with Binance's dialect."""
    if os.environ.get("BORSA_SIM_URL"):
        return os.environ["BORSA_SIM_URL"]
    # binanceus (another ccxt class) speaks Binance's dialect: the generic connector path is tested with it.
    return sim_factory(*DEFAULT_SIM_ARGS, "--alias", "binanceus=binance").url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that names no server tier is a unit test, so `-m unit` selects exactly the fast tier."""
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in ("integration", "contract", "e2e")):
            item.add_marker(pytest.mark.unit)
