"""Connectors as a fleet: replicas share requests, watchers share polls, market rule changes are announced,
any other ccxt exchange is served, and nothing is served before markets load."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nats
import pytest

from borsa_proto import decode
from borsa_proto import requests as rq
from borsa_proto.exchange import Describe, Market, MarketEvent, MarketsReply, Ticker, WatchReply
from borsa_runtime.request import request
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin

pytestmark = pytest.mark.integration

FAST = {"BORSA_RATE_LIMIT_SCALE": "100"}


@pytest.fixture
async def nc(nats_url):
    client = await nats.connect(nats_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def own(tmp_path):
    """A NATS server of this test's own: connectors other tests left on the shared one share queue groups."""
    server = start_nats(tmp_path / "nats")
    client = await nats.connect(server.url)
    try:
        yield server.url, client
    finally:
        await client.close()
        server.stop()


def metric(ops_url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"{ops_url}/metrics") as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}} in metrics")


async def test_two_replicas_share_requests_and_none_is_answered_twice(sim_factory, connector_factory, tmp_path):
    # A NATS server of its own, so no other test's kucoin connector joins the queue group.
    server = start_nats(tmp_path)
    try:
        sim = sim_factory("--exchanges", "kucoin", "--rate-limit-scale", "100")
        replicas = [connector_factory("kucoin", server.url, sim.url, env=FAST) for _ in range(2)]
        client = await nats.connect(server.url)
        try:
            replies: dict[str, int] = {}
            inbox = client.new_inbox()
            subs = [await client.subscribe(f"{inbox}.{i}", cb=_counter(replies, str(i))) for i in range(120)]
            for i in range(120):
                await client.publish("borsa.exchange.kucoin.market", b'{"symbol": "BTC-USDT"}', reply=f"{inbox}.{i}")
            await client.flush()
            deadline = time.monotonic() + 10
            while len(replies) < 120 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # time for any duplicate to arrive
            for sub in subs:
                await sub.unsubscribe()
        finally:
            await client.close()
        assert len(replies) == 120
        assert set(replies.values()) == {1}
        served = [metric(c.ops_url, "borsa_connector_requests_total", endpoint="market", code="ok") for c in replicas]
        assert sum(served) == 120
        assert all(count > 0 for count in served), served
        for replica in replicas:
            replica.stop()
    finally:
        server.stop()


def _counter(replies: dict[str, int], key: str):
    async def count(_msg) -> None:
        replies[key] = replies.get(key, 0) + 1

    return count


async def _ticker_calls(admin: SimAdmin, exchange: str) -> int:
    stats = await admin.stats()
    endpoints = stats.get(exchange, {}).get("endpoints", {})
    return sum(v["requests"] for k, v in endpoints.items() if "Ticker" in k or "ticker" in k)


async def test_two_hundred_watchers_cost_the_exchange_what_one_does(own, sim_factory, connector_factory):
    nats_url, nc = own
    sim = sim_factory("--exchanges", "kraken", "--rate-limit-scale", "100")
    env = {**FAST, "BORSA_WATCH_INTERVAL_MS": "200", "BORSA_WATCH_LEASE_MS": "2000"}
    connector_factory("kraken", nats_url, sim.url, env=env)

    async def rate_with(watchers: int, seconds: float = 3.0) -> float:
        async with SimAdmin(sim.url) as admin:

            async def hold() -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    await asyncio.gather(
                        *(
                            request(
                                nc,
                                "borsa.exchange.kraken.watch",
                                rq.WatchRequest(symbol="XBTUSD", lease_ms=1500),
                                WatchReply,
                            )
                            for _ in range(watchers)
                        )
                    )
                    await asyncio.sleep(0.5)

            await request(
                nc, "borsa.exchange.kraken.watch", rq.WatchRequest(symbol="XBTUSD", lease_ms=1500), WatchReply
            )
            await asyncio.sleep(0.5)  # polling has started
            before = await _ticker_calls(admin, "kraken")
            await hold()
            after = await _ticker_calls(admin, "kraken")
        await asyncio.sleep(2.5)  # leases lapse; polling stops
        return (after - before) / seconds

    one = await rate_with(1)
    many = await rate_with(200)
    assert one > 0
    assert many <= one * 1.25 + 0.5, (one, many)

    async with SimAdmin(sim.url) as admin:
        quiet_before = await _ticker_calls(admin, "kraken")
        await asyncio.sleep(1.0)
        assert await _ticker_calls(admin, "kraken") == quiet_before  # no lease, no polling


async def test_market_rule_changes_are_published_with_old_and_new_values(own, sim_factory, connector_factory):
    nats_url, nc = own
    sim = sim_factory("--exchanges", "kraken", "--rate-limit-scale", "100")
    connector_factory("kraken", nats_url, sim.url, env={**FAST, "BORSA_MARKETS_REFRESH_MINUTES": "0.05"})
    events = await nc.subscribe("borsa.events.market.kraken")
    async with SimAdmin(sim.url) as admin:
        await admin._call(
            "POST",
            "/markets",
            json={"exchange": "kraken", "symbol": "XBTUSD", "price_tick": "1", "min_amount": "0.001"},
        )
    event = decode((await events.next_msg(timeout=15)).data, MarketEvent)
    assert event.kind == "changed"
    assert event.symbols == ["BTC/USD"]
    (change,) = event.changes
    assert set(change.fields) >= {"precision", "limits"}
    assert str(change.old.precision.price) == "0.1" and str(change.new.precision.price) == "1"
    assert change.new.limits.amount.min == change.new.limits.amount.min.__class__("0.001")
    market = await request(nc, "borsa.exchange.kraken.market", rq.MarketRequest(symbol="BTC/USD"), Market)
    assert str(market.precision.price) == "1"

    # A market the exchange halts: published as a change of `active`, and left out when only active ones are asked.
    async with SimAdmin(sim.url) as admin:
        await admin._call("POST", "/markets", json={"exchange": "kraken", "symbol": "ETH/USD", "active": False})
    event = decode((await events.next_msg(timeout=15)).data, MarketEvent)
    assert (event.kind, event.symbols, event.changes[0].fields) == ("changed", ["ETH/USD"], ["active"])
    listed = "borsa.exchange.kraken.markets"
    every = (await request(nc, listed, rq.MarketsRequest(quote="USD"), MarketsReply)).markets
    trading = (await request(nc, listed, rq.MarketsRequest(quote="USD", active_only=True), MarketsReply)).markets
    assert [m.active for m in every if m.symbol == "ETH/USD"] == [False]
    assert [m.symbol for m in trading] == [m.symbol for m in every if m.symbol != "ETH/USD"]


async def test_any_other_ccxt_exchange_is_served_through_the_same_path(nats_url, sim_url, connector_factory, nc):
    """binanceus has no quirks of ours: the generic ccxt implementation serves it (the simulator speaks
    Binance's dialect under /binanceus)."""
    connector_factory("binanceus", nats_url, sim_url, env=FAST)
    describe = await request(nc, "borsa.exchange.binanceus.describe", rq.DescribeRequest(), Describe)
    assert describe.id == "binanceus" and describe.markets_count >= 20
    markets = await request(nc, "borsa.exchange.binanceus.markets", rq.MarketsRequest(search="eth"), MarketsReply)
    assert "ETH/USDT" in {m.symbol for m in markets.markets}
    ticker = await request(nc, "borsa.exchange.binanceus.ticker", rq.TickerRequest(symbol="ethusdt"), Ticker)
    assert ticker.symbol == "ETH/USDT" and ticker.bid < ticker.ask


def test_unknown_exchange_is_refused_at_start(nats_url) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "borsa_connector", "--exchange", "krakken"],
        env={**os.environ, "NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown exchange 'krakken'" in result.stderr and "kraken" in result.stderr


async def test_not_ready_until_markets_load(nats_url, sim_factory, tmp_path, nc) -> None:
    sim = sim_factory("--exchanges", "kraken", "--rate-limit-scale", "100")
    async with SimAdmin(sim.url) as admin:
        await admin.add_fault(exchange="kraken", endpoint="/0/public/AssetPairs", status=503, count=2)
    env = {**os.environ, "NATS_URL": nats_url, "BORSA_SIM_URL": sim.url, "BORSA_CONNECTOR_HTTP_PORT": "0", **FAST}
    log = open(tmp_path / "connector.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "borsa_connector", "--exchange", "kraken"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        ops = None
        deadline = time.monotonic() + 30
        while ops is None and time.monotonic() < deadline:
            for line in (tmp_path / "connector.log").read_text().splitlines():
                if '"ops listening"' in line:
                    ops = json.loads(line)["url"]
            await asyncio.sleep(0.1)
        assert ops, "the ops port never opened"
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{ops}/readyz")
        assert not_ready.value.code == 503
        assert json.loads(not_ready.value.read())["checks"]["markets_loaded"] is False
        # The two failed loads are retried; then it is ready and answers.
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{ops}/readyz") as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError:
                await asyncio.sleep(0.2)
        market = await request(nc, "borsa.exchange.kraken.market", rq.MarketRequest(symbol="XBTUSD"), Market)
        assert market.market_id == "XXBTZUSD"
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
        log.close()


async def test_rate_limited_answers_carry_retry_after(own, sim_factory, connector_factory) -> None:
    """Binance's 429 says when to come back; the connector passes it on as retry_after_ms."""
    nats_url, nc = own
    from borsa_runtime.errors import RateLimited

    sim = sim_factory("--exchanges", "binance", "--rate-limit-scale", "0.01")
    connector_factory("binance", nats_url, sim.url, env={"BORSA_RATE_LIMIT_SCALE": "1000"})

    async def until_limited() -> None:
        for _ in range(200):
            await request(nc, "borsa.exchange.binance.ticker", rq.TickerRequest(symbol="BTCUSDT"), Ticker)

    with pytest.raises(RateLimited) as err:
        await until_limited()
    assert err.value.retryable
    assert err.value.retry_after_ms and err.value.retry_after_ms > 0
    assert err.value.exchange_code == "-1003"


async def test_account_clients_share_the_process_markets(sim_url) -> None:
    from borsa_connector.exchanges.registry import REGISTRY

    api = REGISTRY["kraken"]("kraken", sim_url=sim_url, rate_limit_scale=100)
    try:
        await api.start()
        async with SimAdmin(sim_url) as admin:
            before = (await admin.stats())["kraken"]["endpoints"]["GET /0/public/AssetPairs"]["requests"]
            account = await admin.create_account("kraken", {"USD": "100"})
            client = api.new_client(account["credentials"])
            try:
                await client.load_markets()  # already set: no request
                assert client.markets["BTC/USD"]["id"] == "XXBTZUSD"
                balance = await client.fetch_balance()
                assert balance["USD"]["free"] == 100
            finally:
                await client.close()
            after = (await admin.stats())["kraken"]["endpoints"]["GET /0/public/AssetPairs"]["requests"]
        assert after == before
    finally:
        await api.close()
