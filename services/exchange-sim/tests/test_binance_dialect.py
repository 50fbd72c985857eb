"""What the contract suite does not reach in the binance dialect: the 429-then-418 ban, request weights, the
unfilled-order limit, timestamp windows, client order id rules, quoteOrderQty and the exact exchangeInfo."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_testing.sim import SimAdmin, ccxt_client

D = Decimal
pytestmark = [pytest.mark.integration]
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def sim_url(sim_factory) -> str:
    return sim_factory("--exchanges", "binance", "--seed", "42", "--tick-interval", "0.25").url


@pytest.fixture
async def account(sim_url) -> dict:
    async with SimAdmin(sim_url) as admin:
        return await admin.create_account("binance", {"USDT": "100000", "BTC": "2"})


@pytest.fixture
async def ex(sim_url, account):
    client = ccxt_client("binance", sim_url, account["credentials"])
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


def signed_at(credentials: dict, timestamp: int, **params) -> str:
    """A query string signed as Binance expects: HMAC-SHA256 hex of everything before &signature=."""
    query = urlencode({"timestamp": timestamp, **params})
    signature = hmac.new(credentials["secret"].encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def raw(url: str, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, object]:
    async with aiohttp.ClientSession() as session, session.request(method, url + path, headers=headers) as r:
        return r.status, dict(r.headers), await r.json(content_type=None)


def used_weight(ex) -> int:
    return int(ex.last_response_headers["X-MBX-USED-WEIGHT-1M"])


# -- rate limits -------------------------------------------------------------------------------------------------
async def test_429_then_418_ban_with_retry_after(sim_factory) -> None:
    sim = sim_factory("--exchanges", "binance", "--rate-limit-scale", "0.01", "--ban-seconds", "2")
    ticker = "/binance/api/v3/ticker/24hr?symbol=BTCUSDT"  # weight 2 of 60 per minute
    answers = []
    for _ in range(300):
        status, headers, body = await raw(sim.url, "GET", ticker)
        answers.append((status, headers, body))
        if status == 418:
            break
    statuses = [a[0] for a in answers]
    assert statuses[-1] == 418, statuses
    # Five more requests after the first 429 are still answered 429; the one after that is banned.
    assert statuses[-7:-1] == [429] * 6, statuses
    for _, headers, body in answers[-7:-1]:
        assert body["code"] == -1003
        assert "request weight" in body["msg"]
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) <= 60
    _, headers, body = answers[-1]
    assert body["code"] == -1003 and "banned" in body["msg"]
    assert 1 <= int(headers["Retry-After"]) <= 2
    # While banned even the lightest request is refused, and ccxt sees DDoSProtection.
    status, headers, _ = await raw(sim.url, "GET", "/binance/api/v3/time")
    assert status == 418 and int(headers["Retry-After"]) <= 2
    client = ccxt_client("binance", sim.url)
    try:
        with pytest.raises(E.DDoSProtection, match="418"):
            await client.fetch_time()
    finally:
        await client.close()
    await asyncio.sleep(2.5)  # --ban-seconds 2
    status, _, _ = await raw(sim.url, "GET", "/binance/api/v3/time")
    assert status != 418
    async with SimAdmin(sim.url) as admin:
        await admin.reset_limits()
    assert (await raw(sim.url, "GET", ticker))[0] == 200


async def test_used_weight_header_grows_with_endpoint_weights(ex) -> None:
    symbol = {"symbol": "BTCUSDT"}
    calls = [
        (ex.public_get_time, {}, 1),
        (ex.public_get_exchangeinfo, {}, 20),
        (ex.public_get_ticker_24hr, symbol, 2),
        (ex.public_get_ticker_24hr, {}, 80),
        (ex.public_get_depth, symbol, 5),
        (ex.public_get_depth, {**symbol, "limit": 500}, 25),
        (ex.public_get_depth, {**symbol, "limit": 1000}, 50),
        (ex.public_get_depth, {**symbol, "limit": 5000}, 250),
        (ex.public_get_klines, {**symbol, "interval": "1m"}, 2),
        (ex.private_get_account, {}, 20),
        (ex.private_get_openorders, symbol, 6),
        (ex.private_get_openorders, {}, 80),
        (ex.private_get_allorders, symbol, 20),
        (ex.private_get_mytrades, symbol, 20),
    ]
    await ex.public_get_ping()
    for method, params, weight in calls:
        before = used_weight(ex)
        await method(params)
        after = used_weight(ex)
        # A new minute starts the count again at this request's weight.
        assert after - before == weight or after == weight, (method.__name__, params, before, after)
    order = await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000)
    for call, weight in (
        (lambda: ex.fetch_order(order["id"], SYMBOL), 4),
        (lambda: ex.cancel_order(order["id"], SYMBOL), 1),
    ):
        before = used_weight(ex)
        await call()
        after = used_weight(ex)
        assert after - before == weight or after == weight


async def test_order_rate_limit_is_per_account_and_apart_from_weight(sim_factory) -> None:
    # Scale 0.05: 5 unfilled orders per 10 s per account, 300 request weight per minute per IP.
    sim = sim_factory("--exchanges", "binance", "--rate-limit-scale", "0.05")
    async with SimAdmin(sim.url) as admin:
        first = await admin.create_account("binance", {"USDT": "100000"})
        second = await admin.create_account("binance", {"USDT": "100000"})
    ex = ccxt_client("binance", sim.url, first["credentials"])
    other = ccxt_client("binance", sim.url, second["credentials"])
    try:
        await ex.load_markets()
        refused = None
        # A 10-second window may turn over once while this runs, so allow two windows' worth of orders.
        for _ in range(11):
            try:
                await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000)
            except E.DDoSProtection as exc:
                refused = exc
                break
            assert int(ex.last_response_headers["X-MBX-ORDER-COUNT-10S"]) <= 5
            assert int(ex.last_response_headers["X-MBX-ORDER-COUNT-1D"]) >= 1
        assert refused is not None, "no -1015 after 11 orders"
        assert '"code":-1015' in str(refused) and "Too many new orders" in str(refused)
        headers = ex.last_response_headers
        assert headers["X-MBX-ORDER-COUNT-10S"] == "5"
        assert 1 <= int(headers["Retry-After"]) <= 10
        # Request weight is a different budget: far from spent, and market data still flows.
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) < 300
        assert (await ex.fetch_ticker(SYMBOL))["symbol"] == SYMBOL
        # Unfilled orders are counted per account: another account on the same IP still trades.
        order = await other.create_order(SYMBOL, "limit", "buy", 0.001, 30000)
        assert order["status"] == "open"
    finally:
        await ex.close()
        await other.close()


async def test_an_order_that_trades_at_once_does_not_count(ex) -> None:
    await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000)
    resting = int(ex.last_response_headers["X-MBX-ORDER-COUNT-10S"])
    await ex.create_order(SYMBOL, "market", "buy", 0.001)
    after = int(ex.last_response_headers["X-MBX-ORDER-COUNT-10S"])
    assert after in (resting, 0)  # 0 when a new 10-second window began in between


# -- timestamps and signatures ---------------------------------------------------------------------------------
async def test_stale_timestamp_beyond_recv_window(ex, sim_url, account) -> None:
    ex.options["timeDifference"] = 3_000  # within ccxt's recvWindow of 10 s
    assert "USDT" in await ex.fetch_balance()
    ex.options["timeDifference"] = 30_000
    with pytest.raises(E.InvalidNonce, match="outside of the recvWindow"):
        await ex.fetch_balance()
    # Without recvWindow Binance allows 5000 ms.
    credentials, now = account["credentials"], int(time.time() * 1000)
    headers = {"X-MBX-APIKEY": credentials["apiKey"]}
    status, _, body = await raw(
        sim_url, "GET", f"/binance/api/v3/account?{signed_at(credentials, now - 3_000)}", headers
    )
    assert status == 200, body
    status, _, body = await raw(
        sim_url, "GET", f"/binance/api/v3/account?{signed_at(credentials, now - 6_000)}", headers
    )
    assert (status, body["code"]) == (400, -1021)
    too_wide = signed_at(credentials, now, recvWindow=70_000)
    status, _, body = await raw(sim_url, "GET", f"/binance/api/v3/account?{too_wide}", headers)
    assert (status, body["code"]) == (400, -1131)


async def test_timestamp_in_the_future(ex) -> None:
    ex.options["timeDifference"] = -500  # Binance tolerates up to 1000 ms ahead
    assert "USDT" in await ex.fetch_balance()
    ex.options["timeDifference"] = -5_000
    with pytest.raises(E.InvalidNonce, match="ahead of the server"):
        await ex.fetch_balance()


async def test_signature_covers_the_raw_query_and_the_key_must_exist(sim_url, account) -> None:
    credentials = account["credentials"]
    query = signed_at(credentials, int(time.time() * 1000), symbol="BTCUSDT")
    headers = {"X-MBX-APIKEY": credentials["apiKey"]}
    assert (await raw(sim_url, "GET", f"/binance/api/v3/openOrders?{query}", headers))[0] == 200
    tampered = query.replace("symbol=BTCUSDT", "symbol=ETHUSDT")
    status, _, body = await raw(sim_url, "GET", f"/binance/api/v3/openOrders?{tampered}", headers)
    assert (status, body["code"]) == (400, -1022)
    status, _, body = await raw(sim_url, "GET", f"/binance/api/v3/openOrders?{query}")
    assert (status, body["code"]) == (401, -2014)
    status, _, body = await raw(sim_url, "GET", f"/binance/api/v3/openOrders?{query}", {"X-MBX-APIKEY": "A" * 64})
    assert (status, body["code"]) == (401, -2015)
    unsigned = query.rpartition("&signature=")[0]
    status, _, body = await raw(sim_url, "GET", f"/binance/api/v3/openOrders?{unsigned}", headers)
    assert (status, body["code"]) == (400, -1102)


async def test_a_rejected_key_after_a_success_is_ddos_protection_in_ccxt(sim_url, account) -> None:
    """ccxt reads -2015 as a temporary ban once a private call has succeeded (hasAlreadyAuthenticatedSuccessfully)."""
    client = ccxt_client("binance", sim_url, account["credentials"])
    try:
        await client.fetch_balance()
        client.apiKey = "B" * 64
        with pytest.raises(E.DDoSProtection, match="-2015"):
            await client.fetch_balance()
    finally:
        await client.close()


# -- orders -----------------------------------------------------------------------------------------------------
async def test_new_client_order_id_rules(ex) -> None:
    for bad in ("has space", "semi;colon", "x" * 37):
        with pytest.raises(E.BadRequest, match="-1100"):
            await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000, {"clientOrderId": bad})
    longest = "A-b_" + "9" * 32
    order = await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000, {"clientOrderId": longest})
    assert order["clientOrderId"] == longest
    with pytest.raises(E.InvalidOrder, match="Duplicate order sent"):
        await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000, {"clientOrderId": longest})
    canceled = await ex.cancel_order(None, SYMBOL, {"clientOrderId": longest})
    assert canceled["id"] == order["id"] and canceled["status"] == "canceled"
    assert canceled["info"]["origClientOrderId"] == longest


async def test_quote_order_qty_market_buy_spends_the_quote_amount(ex) -> None:
    before = await ex.fetch_balance()
    order = await ex.create_order(SYMBOL, "market", "buy", None, None, {"cost": 250})
    assert order["info"]["origQuoteOrderQty"] == "250.00000000"
    assert order["status"] == "closed"
    cost, filled, average = D(str(order["cost"])), D(str(order["filled"])), D(str(order["average"]))
    market = ex.market(SYMBOL)
    # Spends up to the amount, short of it by less than one more step at the price paid.
    assert D(250) - average * D(str(market["precision"]["amount"])) < cost <= D(250)
    assert D(order["info"]["cummulativeQuoteQty"]) == cost
    after = await ex.fetch_balance()
    assert D(str(before["USDT"]["free"])) - D(str(after["USDT"]["free"])) == cost
    # Binance takes the fee out of what a buy receives.
    assert D(str(after["BTC"]["free"])) - D(str(before["BTC"]["free"])) == filled * (1 - D("0.001"))


async def test_quote_order_qty_market_sell(ex) -> None:
    order = await ex.create_order(SYMBOL, "market", "sell", None, None, {"quoteOrderQty": 500})
    assert order["status"] == "closed"
    assert D(order["info"]["cummulativeQuoteQty"]) <= D(500)
    assert order["info"]["origQuoteOrderQty"] == "500.00000000"


async def test_fetch_order_by_client_id_after_it_filled(ex) -> None:
    cid = "filled-then-found"
    order = await ex.create_order(SYMBOL, "market", "buy", 0.002, None, {"clientOrderId": cid})
    found = await ex.fetch_order(None, SYMBOL, {"clientOrderId": cid})
    assert found["id"] == order["id"]
    assert found["status"] == "closed"
    assert found["filled"] == 0.002
    # A closed order's client id may be used again; the lookup then finds the newest order.
    again = await ex.create_order(SYMBOL, "limit", "buy", 0.001, 30000, {"clientOrderId": cid})
    assert (await ex.fetch_order(None, SYMBOL, {"clientOrderId": cid}))["id"] == again["id"]
    with pytest.raises(E.OrderNotFound):
        await ex.cancel_order(order["id"], SYMBOL)  # filled: Binance answers -2011 Unknown order sent.


async def test_unknown_parameters_and_bad_values_get_binance_codes(sim_url) -> None:
    cases = [
        ("/binance/api/v3/depth?symbol=BTCUSDT&colour=red", -1104),
        ("/binance/api/v3/klines?symbol=BTCUSDT&interval=2m", -1120),
        ("/binance/api/v3/depth?symbol=BTCUSDT&limit=-5", -1100),
        ("/binance/api/v3/depth?symbol=XYZUSDT", -1121),
        ("/binance/api/v3/depth", -1102),
    ]
    for path, code in cases:
        status, _, body = await raw(sim_url, "GET", path)
        assert (status, body["code"]) == (400, code), (path, body)


# -- market data --------------------------------------------------------------------------------------------------
async def test_exchange_info_filters_are_exact(sim_url) -> None:
    status, _, info = await raw(sim_url, "GET", '/binance/api/v3/exchangeInfo?symbols=["BTCUSDT","ETHBTC","PEPEUSDT"]')
    assert status == 200
    assert info["rateLimits"] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert list(symbols) == ["BTCUSDT", "ETHBTC", "PEPEUSDT"]
    btc = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
    assert (symbols["BTCUSDT"]["status"], symbols["BTCUSDT"]["baseAsset"], symbols["BTCUSDT"]["quoteAsset"]) == (
        "TRADING",
        "BTC",
        "USDT",
    )
    assert btc["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "10000000.00000000",
        "tickSize": "0.01000000",
    }
    assert btc["LOT_SIZE"] == {
        "filterType": "LOT_SIZE",
        "minQty": "0.00001000",
        "maxQty": "9000.00000000",
        "stepSize": "0.00001000",
    }
    assert btc["MARKET_LOT_SIZE"]["stepSize"] == "0.00001000"
    assert (btc["NOTIONAL"]["minNotional"], btc["NOTIONAL"]["maxNotional"]) == ("5.00000000", "9000000.00000000")
    eth_btc = {f["filterType"]: f for f in symbols["ETHBTC"]["filters"]}
    assert eth_btc["PRICE_FILTER"]["tickSize"] == "0.00000001"
    assert eth_btc["PRICE_FILTER"]["maxPrice"] == "10.00000000"
    assert eth_btc["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert eth_btc["LOT_SIZE"]["maxQty"] == "9000000000.00000000"
    assert eth_btc["NOTIONAL"]["minNotional"] == "0.00010000"
    # A tick finer than Binance's 8 decimals keeps its digits rather than printing as zero.
    pepe = {f["filterType"]: f for f in symbols["PEPEUSDT"]["filters"]}
    assert pepe["PRICE_FILTER"]["tickSize"] == "0.00000000001"
    assert pepe["LOT_SIZE"]["stepSize"] == "100000.00000000"


async def test_klines_layout(ex) -> None:
    rows = await ex.public_get_klines({"symbol": "BTCUSDT", "interval": "5m", "limit": 3})
    assert len(rows) == 3
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int) and row[0] % 300_000 == 0
        assert row[6] == row[0] + 300_000 - 1
        assert all(isinstance(v, str) for v in row[1:6])
        assert isinstance(row[8], int)
    with pytest.raises(E.BadRequest, match="-1120"):
        await ex.fetch_ohlcv(SYMBOL, "3d")


async def test_fetch_tickers_for_some_symbols(ex) -> None:
    tickers = await ex.fetch_tickers(["BTC/USDT", "ETH/BTC"])
    assert set(tickers) == {"BTC/USDT", "ETH/BTC"}
