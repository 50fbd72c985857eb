"""The connector contract, one suite for all four exchanges: every market subject of DESIGN section 2 and
every error code reachable without credentials, through real NATS, real connector processes, the real ccxt
classes and the simulator."""

from __future__ import annotations

import json
import urllib.request
from decimal import Decimal

import nats
import pytest

from borsa_proto import requests as rq
from borsa_proto.exchange import Describe, Market, MarketsReply, OhlcvReply, Ticker, WatchReply
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_sim.markets import markets_for
from borsa_testing.sim import SimAdmin

pytestmark = [pytest.mark.integration, pytest.mark.contract]

CASES = {
    "binance": {"symbol": "BTC/USDT", "id": "BTCUSDT", "spellings": ["btc/usdt", "BTCUSDT", "btcusdt", "BTC-USDT"]},
    "kraken": {
        "symbol": "BTC/USD",
        "id": "XXBTZUSD",
        "spellings": ["btc/usd", "XBTUSD", "XXBTZUSD", "BTC-USD", "xbt/usd", "xbtusd"],
    },
    "coinbase": {"symbol": "BTC/USD", "id": "BTC-USD", "spellings": ["btc/usd", "BTC-USD", "btcusd", "btc_usd"]},
    "kucoin": {"symbol": "BTC/USDT", "id": "BTC-USDT", "spellings": ["btc/usdt", "BTC-USDT", "btcusdt"]},
}
EXCHANGES = list(CASES)
TIMEOUT_ENV = {"BORSA_REQUEST_TIMEOUT_MS": "1500", "BORSA_RATE_LIMIT_SCALE": "100"}


@pytest.fixture(scope="module")
def stack(nats_url, sim_factory, connector_factory):
    """One simulator and one connector per exchange, shared by the module."""
    sim = sim_factory("--seed", "7", "--rate-limit-scale", "100", "--tick-interval", "0.25")
    connectors = {ex: connector_factory(ex, nats_url, sim.url, env=TIMEOUT_ENV) for ex in EXCHANGES}
    return {"nats": nats_url, "sim": sim.url, "connectors": connectors}


@pytest.fixture
async def nc(stack):
    client = await nats.connect(stack["nats"])
    try:
        yield client
    finally:
        await client.close()


def subject(exchange: str, verb: str) -> str:
    return f"borsa.exchange.{exchange}.{verb}"


@pytest.fixture(params=EXCHANGES)
def ex(request) -> str:
    return request.param


async def test_describe(nc, ex) -> None:
    reply = await request(nc, subject(ex, "describe"), rq.DescribeRequest(), Describe)
    assert reply.id == ex
    assert reply.mode == "sim"
    assert reply.status == "ok"
    assert reply.markets_count == len(markets_for(ex))
    names = [c.name for c in reply.required_credentials]
    assert names[:2] == ["apiKey", "secret"]
    assert ("password" in names) == (ex == "kucoin")
    assert all(c.label for c in reply.required_credentials)
    assert "paper" in reply.modes
    assert reply.notes


async def test_markets_carry_the_exchange_rules_as_tick_sizes(nc, ex) -> None:
    reply = await request(nc, subject(ex, "markets"), rq.MarketsRequest(), MarketsReply)
    specs = {s.symbol: s for s in markets_for(ex)}
    assert {m.symbol for m in reply.markets} == set(specs)
    for market in reply.markets:
        spec = specs[market.symbol]
        assert market.market_id == spec.market_id
        assert market.precision.price == spec.price_tick
        assert market.precision.amount == spec.amount_step
        assert market.limits.amount.min == spec.min_amount


async def test_markets_search_and_quote_filters(nc, ex) -> None:
    reply = await request(nc, subject(ex, "markets"), rq.MarketsRequest(search="btc"), MarketsReply)
    assert reply.markets
    assert all("BTC" in m.symbol for m in reply.markets)
    quote = CASES[ex]["symbol"].split("/")[1]
    reply = await request(nc, subject(ex, "markets"), rq.MarketsRequest(quote=quote.lower()), MarketsReply)
    assert reply.markets and all(m.quote == quote for m in reply.markets)


async def test_a_search_by_any_spelling_finds_the_market(nc, ex) -> None:
    case = CASES[ex]
    for spelling in case["spellings"]:
        reply = await request(nc, subject(ex, "markets"), rq.MarketsRequest(search=spelling), MarketsReply)
        assert case["symbol"] in [m.symbol for m in reply.markets], spelling


async def test_every_spelling_resolves_to_one_market(nc, ex) -> None:
    case = CASES[ex]
    for spelling in case["spellings"]:
        market = await request(nc, subject(ex, "market"), rq.MarketRequest(symbol=spelling), Market)
        assert (market.symbol, market.market_id) == (case["symbol"], case["id"]), spelling


async def test_unknown_symbol_suggests_close_matches(nc, ex) -> None:
    with pytest.raises(E.UnknownSymbol) as err:
        await request(nc, subject(ex, "market"), rq.MarketRequest(symbol="BTC/USDX"), Market)
    message = err.value.message
    assert "not listed" in message
    suggested = message.split("did you mean ", 1)[1].rstrip("?").split(", ")
    assert 1 <= len(suggested) <= 5
    assert any(s.startswith("BTC/") for s in suggested)


async def test_ticker(nc, ex) -> None:
    case = CASES[ex]
    ticker = await request(nc, subject(ex, "ticker"), rq.TickerRequest(symbol=case["id"].lower()), Ticker)
    assert (ticker.symbol, ticker.market_id) == (case["symbol"], case["id"])
    assert Decimal(0) < ticker.bid < ticker.ask
    assert ticker.timestamp > 1_600_000_000_000


async def test_ohlcv(nc, ex) -> None:
    reply = await request(
        nc, subject(ex, "ohlcv"), rq.OhlcvRequest(symbol=CASES[ex]["symbol"], timeframe="1h", limit=5), OhlcvReply
    )
    assert reply.symbol == CASES[ex]["symbol"]
    assert 1 <= len(reply.candles) <= 5
    for ts, o, h, low, c, _ in reply.candles:
        assert ts % 3_600_000 == 0
        assert low <= min(o, c) <= max(o, c) <= h


async def test_ohlcv_since_starts_at_the_candle_asked_for(nc, ex) -> None:
    symbol, verb = CASES[ex]["symbol"], subject(ex, "ohlcv")
    latest = await request(nc, verb, rq.OhlcvRequest(symbol=symbol, timeframe="1h", limit=6), OhlcvReply)
    since = latest.candles[-5][0]  # four hours before the newest candle
    reply = await request(nc, verb, rq.OhlcvRequest(symbol=symbol, timeframe="1h", since=since, limit=2), OhlcvReply)
    times = [c[0] for c in reply.candles]
    assert 1 <= len(times) <= 2 and times == sorted(times)
    assert all(t >= since for t in times), (since, times)
    assert times[0] <= since + 3_600_000, (since, times)  # from that candle (or, on Kraken, the one after it)


async def test_ohlcv_rejects_a_timeframe_the_exchange_lacks(nc, ex) -> None:
    with pytest.raises(E.BadRequest, match=r"timeframe '7m'.*use one of"):
        await request(nc, subject(ex, "ohlcv"), rq.OhlcvRequest(symbol=CASES[ex]["symbol"], timeframe="7m"), OhlcvReply)


@pytest.mark.parametrize(
    ("verb", "payload", "needle"),
    [
        ("ticker", b"{not json", "not valid JSON"),
        ("market", b"{}", "symbol"),
        ("ticker", b'{"symbol": 42}', "$.symbol"),
        ("ohlcv", b'{"symbol": "BTC/USD", "timeframe": "1h", "limit": -1}', "limit"),
        ("teleport", b"{}", "unknown verb 'teleport'"),
        ("order.explode", b"{}", "unknown verb"),
    ],
)
async def test_bad_requests_name_the_problem(nc, ex, verb, payload, needle) -> None:
    reply = await nc.request(subject(ex, verb), payload, timeout=5)
    body = json.loads(reply.data)["error"]
    assert body["code"] == "bad_request"
    assert needle in body["message"]
    assert reply.headers["Nats-Service-Error-Code"] == "bad_request"


async def test_trading_verbs_answer_not_supported_yet(nc, ex) -> None:
    with pytest.raises(E.NotSupported):
        await request(nc, subject(ex, "balance"), rq.BalanceRequest(account="acc-1"), Describe)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 503}, E.ExchangeUnavailable),
        ({"status": 429}, E.RateLimited),
        ({"timeout": True}, E.NetworkError),
    ],
)
async def test_exchange_failures_become_typed_errors(nc, stack, ex, fault, error) -> None:
    async with SimAdmin(stack["sim"]) as admin:
        await admin.add_fault(exchange=ex, count=1, **fault)
        try:
            with pytest.raises(error) as err:
                await request(
                    nc, subject(ex, "ticker"), rq.TickerRequest(symbol=CASES[ex]["symbol"]), Ticker, timeout=10
                )
        finally:
            await admin.clear_faults(ex)
    assert err.value.exchange == ex
    assert err.value.retryable
    # The connector is still there and answers the next request.
    assert (await request(nc, subject(ex, "ticker"), rq.TickerRequest(symbol=CASES[ex]["symbol"]), Ticker)).symbol


async def test_watch_publishes_tickers_for_the_lease(nc, ex) -> None:
    lease = await request(nc, subject(ex, "watch"), rq.WatchRequest(symbol=CASES[ex]["id"], lease_ms=5000), WatchReply)
    assert lease.symbol == CASES[ex]["symbol"]
    assert lease.subject == f"borsa.market.{ex}.ticker.{CASES[ex]['symbol'].replace('/', '_')}"
    sub = await nc.subscribe(lease.subject)
    message = await sub.next_msg(timeout=10)
    assert json.loads(message.data)["symbol"] == CASES[ex]["symbol"]
    await sub.unsubscribe()


async def test_discovery_lists_the_four_connectors(nc) -> None:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$SRV.INFO.exchange-connector", b"", reply=inbox)
    seen = {}
    try:
        while len(seen) < len(EXCHANGES):
            info = json.loads((await sub.next_msg(timeout=5)).data)
            seen[info["metadata"]["exchange"]] = info
    finally:
        await sub.unsubscribe()
    assert set(seen) >= set(EXCHANGES)
    kraken = seen["kraken"]
    assert kraken["name"] == "exchange-connector"
    assert "borsa.exchange.kraken.ticker" in {e["subject"] for e in kraken["endpoints"]}


def test_ops_endpoints(stack) -> None:
    for connector in stack["connectors"].values():
        with urllib.request.urlopen(f"{connector.ops_url}/healthz") as response:
            assert json.load(response)["status"] == "alive"
        with urllib.request.urlopen(f"{connector.ops_url}/readyz") as response:
            assert json.load(response) == {
                "ready": True,
                "checks": {"markets_loaded": True, "nats_connected": True, "serving": True},
            }
        with urllib.request.urlopen(f"{connector.ops_url}/metrics") as response:
            text = response.read().decode()
        labels = f'code="ok",endpoint="describe",exchange="{connector.exchange}"'
        assert f"borsa_connector_requests_total{{{labels}}}" in text
        assert "borsa_connector_request_seconds_bucket" in text
        assert "borsa_connector_rate_budget_wait_seconds" in text


async def test_no_input_killed_a_connector(stack) -> None:
    """Errors never kill the process: after all of the above, every connector is still alive."""
    for connector in stack["connectors"].values():
        assert connector.proc.poll() is None
