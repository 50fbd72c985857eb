"""The harness starts real servers: JetStream answers, Postgres takes writes, the simulator reports health."""

from __future__ import annotations

import json
import urllib.request

import asyncpg
import nats
import pytest

from borsa_testing.processes import ServerError, find_binary, start_nats

pytestmark = pytest.mark.integration


async def test_nats_server_has_jetstream(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="HARNESS", subjects=["harness.>"])
        ack = await js.publish("harness.one", b"hello", headers={"Nats-Msg-Id": "m-1"})
        again = await js.publish("harness.one", b"hello", headers={"Nats-Msg-Id": "m-1"})
        assert again.duplicate and again.seq == ack.seq
        await js.delete_stream("HARNESS")
    finally:
        await nc.close()


async def test_fresh_databases_are_separate(database_url: str, fresh_database: str) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        await conn.execute("CREATE TABLE t (v numeric)")
        await conn.execute("INSERT INTO t VALUES ($1)", __import__("decimal").Decimal("0.00012300"))
        assert str(await conn.fetchval("SELECT v FROM t")) == "0.00012300"
    finally:
        await conn.close()
    admin = await asyncpg.connect(database_url)
    try:
        assert await admin.fetchval("SELECT to_regclass('public.t')") is None
    finally:
        await admin.close()


def test_simulator_is_up(sim_url: str) -> None:
    with urllib.request.urlopen(f"{sim_url}/_sim/health") as response:
        health = json.load(response)
    assert health["status"] == "ok"
    assert set(health["exchanges"]) == {"binance", "kraken", "coinbase", "kucoin"}


def test_a_second_nats_server_gets_its_own_port(nats_url: str, tmp_path) -> None:
    server = start_nats(tmp_path)
    try:
        assert server.url != nats_url
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert server.proc.poll() is not None


def test_missing_binary_is_a_clear_error() -> None:
    with pytest.raises(ServerError, match="no-such-server not found"):
        find_binary("no-such-server")
