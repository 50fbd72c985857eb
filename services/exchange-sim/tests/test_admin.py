"""The simulator's admin API (`/_sim/`) and its command line, against real simulator processes."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import aiohttp
import pytest

from borsa_testing.sim import SimAdmin, ccxt_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def paused_sims(sim_factory):
    """Two simulators with the same seed and one with another, all with the clock stopped."""
    args = ("--tick-interval", "3600", "--exchanges", "kraken,binance")
    return (
        sim_factory("--seed", "5", *args).url,
        sim_factory("--seed", "5", *args).url,
        sim_factory("--seed", "6", *args).url,
    )


async def test_same_seed_same_prices_after_the_same_steps(paused_sims) -> None:
    prices = []
    for url in paused_sims:
        async with SimAdmin(url) as admin:
            await admin._call("POST", "/prices", json={"paused": True, "steps": 25})
            prices.append(await admin.prices("kraken"))
    assert prices[0] == prices[1]
    assert prices[0] != prices[2]


async def test_same_seed_same_candles(paused_sims) -> None:
    """The walk's history is the same sequence; its timestamps follow each simulator's own start time."""
    history = []
    for url in paused_sims[:2]:
        async with SimAdmin(url) as admin:
            started = (await admin.health())["started_at"]
        client = ccxt_client("kraken", url)
        try:
            await client.load_markets()
            series = await client.fetch_ohlcv("BTC/USD", "1m", limit=100)
        finally:
            await client.close()
        # Minutes before the start are the seeded history; later ones hold the live walk.
        history.append([c[1:] for c in series if c[0] < started - started % 60_000][-50:])
    assert history[0] == history[1]
    assert len(history[0]) == 50


async def test_account_creation_validates_its_input(sim_url) -> None:
    async with aiohttp.ClientSession() as session:
        for body, field in (
            ({"exchange": "bitstamp", "balances": {}}, "exchange"),
            ({"exchange": "kraken", "balances": {"USD": "-5"}}, "balances.USD"),
            ({"exchange": "kraken", "balances": {"USD": "lots"}}, "balances.USD"),
            ({"exchange": "kraken", "balances": ["USD"]}, "balances"),
        ):
            async with session.post(f"{sim_url}/_sim/accounts", json=body) as response:
                assert response.status == 400
                error = (await response.json())["error"]
                assert error["field"] == field
                assert error["message"]
        async with session.post(f"{sim_url}/_sim/accounts", data="not json") as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "body"


async def test_accounts_get_credentials_in_each_exchange_format(sim_url) -> None:
    async with SimAdmin(sim_url) as admin:
        binance = (await admin.create_account("binance", {"USDT": "1"}))["credentials"]
        kraken = (await admin.create_account("kraken", {"USD": "1"}))["credentials"]
        coinbase = (await admin.create_account("coinbase", {"USD": "1"}))["credentials"]
        kucoin = (await admin.create_account("kucoin", {"USDT": "1"}))["credentials"]
    assert len(binance["apiKey"]) == 64 and binance["apiKey"].isalnum()
    assert len(kraken["secret"]) == 88
    assert coinbase["apiKey"].startswith("organizations/") and "/apiKeys/" in coinbase["apiKey"]
    assert coinbase["secret"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert kucoin["password"] and len(kucoin["apiKey"]) == 24


async def test_faults_are_validated_listed_and_cleared(sim_url) -> None:
    async with aiohttp.ClientSession() as session:
        for body in ({"exchange": "kraken"}, {"status": 200}, {"status": 503, "phase": "later"}, {"bogus": 1}):
            async with session.post(f"{sim_url}/_sim/faults", json=body) as response:
                assert response.status == 400, body
                assert "fault" in (await response.json())["error"]["message"]
    async with SimAdmin(sim_url) as admin:
        await admin.add_fault(exchange="kucoin", endpoint="/api/v1/timestamp", status=503)
        assert len((await admin._call("GET", "/faults"))["faults"]) == 1
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{sim_url}/kucoin/api/v1/timestamp") as response:
                assert response.status == 503
            async with session.get(f"{sim_url}/kraken/0/public/Time") as response:
                assert response.status == 200
        await admin.clear_faults()
        assert (await admin._call("GET", "/faults"))["faults"] == []


async def test_latency_fault_delays_without_failing(sim_url) -> None:
    async with SimAdmin(sim_url) as admin:
        await admin.add_fault(exchange="binance", endpoint="/api/v3/time", latency_ms=300, count=1)
        async with aiohttp.ClientSession() as session, session.get(f"{sim_url}/binance/api/v3/time") as response:
            assert response.status == 200
        stats = await admin.stats()
    assert stats["binance"]["endpoints"]["GET /api/v3/time"]["faults"] == 1


async def test_orders_and_stats_say_what_happened(sim_factory) -> None:
    url = sim_factory("--exchanges", "binance").url
    async with SimAdmin(url) as admin:
        account = await admin.create_account("binance", {"USDT": "10000"})
        client = ccxt_client("binance", url, account["credentials"])
        try:
            await client.load_markets()
            order = await client.create_order("BTC/USDT", "market", "buy", 0.01)
        finally:
            await client.close()
        (recorded,) = await admin.orders("binance", account["account_id"])
        assert recorded["id"] == order["id"]
        assert recorded["status"] == "filled"
        assert sum(float(f["amount"]) for f in recorded["fills"]) == pytest.approx(0.01)
        stats = await admin.stats()
        assert stats["binance"]["endpoints"]["POST /api/v3/order"]["requests"] == 1
        balances = await admin.balances("binance", account["account_id"])
        assert float(balances["BTC"]["total"]) > 0


async def test_price_admin_rejects_unknown_symbols(sim_url) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"exchange": "kraken", "symbol": "NOPE/USD", "price": "1"}
        async with session.post(f"{sim_url}/_sim/prices", json=body) as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "symbol"


@pytest.mark.parametrize("exchange", ["binance", "kraken", "coinbase", "kucoin"])
async def test_scripted_candles_reach_ccxt_as_the_last_closed_closes(sim_url, exchange) -> None:
    symbol = "BTC/USDT" if exchange in ("binance", "kucoin") else "BTC/USD"
    async with SimAdmin(sim_url) as admin:
        price = Decimal((await admin.prices(exchange))[symbol])
        closes = [(price * Decimal(f)).quantize(Decimal("0.1")) for f in ("0.98", "0.97", "1.01", "1.04")]
        scripted = await admin.script_candles(exchange, symbol, closes)
    client = ccxt_client(exchange, sim_url)
    try:
        await client.load_markets()
        series = await client.fetch_ohlcv(symbol, "1m", limit=20)
    finally:
        await client.close()
    by_time = {c[0]: c for c in series}
    for (ts, close), wanted in zip(scripted["candles"], closes, strict=True):
        candle = by_time[ts]
        assert Decimal(str(candle[4])) == Decimal(close) == wanted
        assert Decimal(str(candle[2])) >= Decimal(close) >= Decimal(str(candle[3]))  # high >= close >= low
    # each scripted candle opens where the one before it closed
    assert Decimal(str(by_time[scripted["candles"][-1][0]][1])) == closes[-2]


async def test_scripted_candles_validate_their_input(sim_url) -> None:
    async with aiohttp.ClientSession() as session:
        for body, field in (
            ({"exchange": "kraken", "symbol": "NOPE/USD", "closes": ["1"]}, "symbol"),
            ({"exchange": "kraken", "symbol": "BTC/USD", "closes": []}, "closes"),
            ({"exchange": "kraken", "symbol": "BTC/USD", "closes": ["-1"]}, "closes"),
            ({"exchange": "kraken", "symbol": "BTC/USD", "closes": ["x"]}, "closes"),
            ({"exchange": "nope", "symbol": "BTC/USD", "closes": ["1"]}, "exchange"),
        ):
            async with session.post(f"{sim_url}/_sim/candles", json=body) as response:
                assert response.status == 400, body
                assert (await response.json())["error"]["field"] == field


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port"),
        (["--rate-limit-scale", "0"], "--rate-limit-scale"),
        (["--exchanges", "binance,ftx"], "ftx"),
    ],
)
def test_command_line_rejects_bad_arguments(args, message) -> None:
    result = subprocess.run([sys.executable, "-m", "borsa_sim", *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


PARTIAL = {"binance": "BTC/USDT", "kraken": "BTC/USD", "coinbase": "BTC/USD", "kucoin": "BTC/USDT"}


@pytest.mark.parametrize("exchange", sorted(PARTIAL))
async def test_a_resting_order_fills_in_parts_on_demand(sim_url, exchange) -> None:
    symbol = PARTIAL[exchange]
    base, quote = symbol.split("/")
    async with SimAdmin(sim_url) as admin:
        account = await admin.create_account(exchange, {quote: "100000", base: "1"})
        client = ccxt_client(exchange, sim_url, account["credentials"])
        try:
            await client.load_markets()
            last = (await client.fetch_ticker(symbol))["last"]
            price = client.price_to_precision(symbol, last * 0.8)
            placed = await client.create_order(symbol, "limit", "buy", 0.01, float(price))

            part = await admin.fill_order(exchange, placed["id"], "0.004")
            assert (part["status"], Decimal(part["filled"]), len(part["fills"])) == ("open", Decimal("0.004"), 1)
            # The exchange's own REST shows the order partly filled, and the trade.
            seen = await client.fetch_order(placed["id"], symbol)
            assert (seen["status"], float(seen["filled"]), float(seen["remaining"])) == ("open", 0.004, 0.006)
            (trade,) = await client.fetch_my_trades(symbol)
            assert float(trade["amount"]) == 0.004 and float(trade["price"]) == float(price)

            async with aiohttp.ClientSession() as session:
                for amount in ("0.007", "0.00400000001", "x", "-0.001"):  # beyond what is left, off the step, ...
                    body = {"exchange": exchange, "order_id": placed["id"], "amount": amount}
                    async with session.post(f"{sim_url}/_sim/orders/fill", json=body) as response:
                        assert response.status == 400, amount
                        assert (await response.json())["error"]["field"] == "amount"
            rest = await admin.fill_order(exchange, placed["id"], "0.006")
            assert (rest["status"], Decimal(rest["filled"]), len(rest["fills"])) == ("filled", Decimal("0.01"), 2)
            assert (await client.fetch_order(placed["id"], symbol))["status"] == "closed"
            async with aiohttp.ClientSession() as session:
                for order_id, status in ((placed["id"], 409), ("no-such-order", 404)):
                    body = {"exchange": exchange, "order_id": order_id, "amount": "0.001"}
                    async with session.post(f"{sim_url}/_sim/orders/fill", json=body) as response:
                        assert response.status == status
                        assert (await response.json())["error"]["field"] == "order_id"
        finally:
            await client.close()
