"""What the contract suite does not reach in the Kraken dialect: nonces, call counters, validate-only orders,
altnames, cl_ord_id and userref, fees in TradesHistory, held funds in BalanceEx, and canceled ClosedOrders.

Each test talks to a real `borsa-sim --exchanges kraken` process, through the real ccxt class or through raw
HTTP signed here the way Kraken documents it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
import uuid
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_sim.app import Sim
from borsa_sim.dialects.kraken import KrakenDialect
from borsa_testing.sim import SimAdmin, ccxt_client

D = Decimal
pytestmark = [pytest.mark.integration]
SIM_ARGS = ("--seed", "42", "--tick-interval", "0.25", "--exchanges", "kraken")
TXID = re.compile(r"O[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}")
TRADE_ID = re.compile(r"T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}")
TAKER, MAKER = D("0.004"), D("0.0025")  # markets.py: Kraken's first fee tier


class Raw:
    """Kraken's REST API by hand: API-Sign = b64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + body)))."""

    _last = 0

    def __init__(self, session: aiohttp.ClientSession, url: str, credentials: dict | None = None) -> None:
        self.session, self.base, self.credentials = session, f"{url}/kraken", credentials or {}

    def nonce(self) -> int:
        # Milliseconds, as ccxt sends them, kept strictly increasing (tests never mix Raw and ccxt on one key).
        Raw._last = max(Raw._last + 1, int(time.time() * 1000))
        return Raw._last

    async def public(self, method: str, **params) -> dict:
        async with self.session.get(f"{self.base}/0/public/{method}", params=params) as response:
            return await response.json()

    async def private(self, method: str, nonce: int | None = None, secret: str | None = None, **params) -> dict:
        nonce = self.nonce() if nonce is None else nonce
        path = f"/0/private/{method}"
        body = urlencode({"nonce": nonce, **params})
        key = base64.b64decode(secret or self.credentials["secret"])
        digest = hashlib.sha256((str(nonce) + body).encode()).digest()
        headers = {
            "API-Key": self.credentials["apiKey"],
            "API-Sign": base64.b64encode(hmac.new(key, path.encode() + digest, hashlib.sha512).digest()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with self.session.post(self.base + path, data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()


def result(reply: dict) -> dict:
    assert reply["error"] == [], reply
    return reply["result"]


@pytest.fixture(scope="module")
def sim_url(sim_factory) -> str:
    # Kraken's public counter (20, -1/s per IP) is far below what these tests send; its size is tested apart.
    return sim_factory(*SIM_ARGS, "--rate-limit-scale", "100").url


@pytest.fixture
async def admin(sim_url: str):
    async with SimAdmin(sim_url) as admin:
        yield admin


@pytest.fixture
async def account(admin: SimAdmin) -> dict:
    return await admin.create_account("kraken", {"USD": "100000", "BTC": "2"})


@pytest.fixture
async def raw(sim_url: str, account: dict):
    async with aiohttp.ClientSession() as session:
        yield Raw(session, sim_url, account["credentials"])


@pytest.fixture
async def ex(sim_url: str, account: dict):
    client = ccxt_client("kraken", sim_url, account["credentials"])
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def below_market(raw: Raw, pair: str = "XXBTZUSD", factor: str = "0.8") -> str:
    ticker = result(await raw.public("Ticker", pair=pair))
    return str((D(ticker["XXBTZUSD"]["c"][0]) * D(factor)).quantize(D("0.1")))


async def limit_buy(raw: Raw, volume: str = "0.01", **extra) -> tuple[str, str]:
    price = await below_market(raw)
    reply = result(
        await raw.private(
            "AddOrder", pair="XXBTZUSD", type="buy", ordertype="limit", volume=volume, price=price, **extra
        )
    )
    return reply["txid"][0], price


# -- authentication ----------------------------------------------------------------------------------------------
async def test_nonce_must_increase_per_key(raw: Raw) -> None:
    first = raw.nonce()
    assert "ZUSD" in result(await raw.private("BalanceEx", nonce=first))
    assert (await raw.private("BalanceEx", nonce=first))["error"] == ["EAPI:Invalid nonce"]
    assert (await raw.private("BalanceEx", nonce=first - 1))["error"] == ["EAPI:Invalid nonce"]
    # A badly signed request does not move the key's nonce forward.
    wrong = base64.b64encode(b"x" * 64).decode()
    assert (await raw.private("BalanceEx", nonce=first + 1000, secret=wrong))["error"] == ["EAPI:Invalid signature"]
    assert "ZUSD" in result(await raw.private("BalanceEx", nonce=first + 1))


async def test_unknown_key_and_missing_signature(raw: Raw, sim_url: str) -> None:
    stranger = Raw(raw.session, sim_url, {"apiKey": base64.b64encode(b"k" * 42).decode(), "secret": "AAAA"})
    assert (await stranger.private("BalanceEx"))["error"] == ["EAPI:Invalid key"]
    async with raw.session.post(
        f"{raw.base}/0/private/BalanceEx", data="nonce=1", headers={"API-Key": raw.credentials["apiKey"]}
    ) as response:
        assert (await response.json())["error"] == ["EAPI:Invalid signature"]


async def test_credentials_have_kraken_shapes(account: dict) -> None:
    credentials = account["credentials"]
    assert set(credentials) == {"apiKey", "secret"}
    assert len(credentials["apiKey"]) == 56
    assert len(base64.b64decode(credentials["secret"], validate=True)) == 64


# -- rate limits -------------------------------------------------------------------------------------------------
def test_counters_have_the_documented_sizes_and_decay() -> None:
    dialect = Sim(exchanges=("kraken",)).dialects["kraken"]
    assert isinstance(dialect, KrakenDialect)
    rest = dialect.rest_counter
    assert (rest.maximum, rest.decay_per_s) == (15, 0.33)
    assert (dialect.engine_counter.maximum, dialect.engine_counter.decay_per_s) == (60, 1.0)
    assert (dialect.public_counter.maximum, dialect.public_counter.decay_per_s) == (20, 1.0)
    assert all(rest.hit("key", 1, now=100.0) is None for _ in range(15))
    assert rest.hit("key", 1, now=100.0) is not None
    # 0.33 a second: a unit is back after about three seconds, and the counter is empty after 46.
    assert rest.hit("key", 1, now=102.0) is not None
    assert rest.hit("key", 1, now=103.1) is None
    assert rest.level("key", now=150.0) == 0


async def test_call_counter_per_key_counts_trade_history_double(sim_factory) -> None:
    strict = sim_factory(*SIM_ARGS, "--rate-limit-scale", "0.1")  # REST counter: 2 (its costliest call)
    async with SimAdmin(strict.url) as admin, aiohttp.ClientSession() as session:
        one = Raw(session, strict.url, (await admin.create_account("kraken", {"USD": "10"}))["credentials"])
        other = Raw(session, strict.url, (await admin.create_account("kraken", {"USD": "10"}))["credentials"])
        assert result(await one.private("TradesHistory"))["count"] == 0
        assert (await one.private("BalanceEx"))["error"] == ["EAPI:Rate limit exceeded"]
        assert "ZUSD" in result(await other.private("BalanceEx"))  # the counter is per API key
        # The counter decays: the same key gets through again once a unit has drained.
        for _ in range(100):
            reply = await one.private("BalanceEx")
            if not reply["error"]:
                break
            assert reply["error"] == ["EAPI:Rate limit exceeded"]
            await asyncio.sleep(0.2)
        assert "ZUSD" in result(reply)


async def test_trading_engine_counter_is_per_pair(sim_factory) -> None:
    strict = sim_factory(*SIM_ARGS, "--rate-limit-scale", "0.05")  # engine counter: 3 orders per pair
    async with SimAdmin(strict.url) as admin, aiohttp.ClientSession() as session:
        raw = Raw(session, strict.url, (await admin.create_account("kraken", {"USD": "100000"}))["credentials"])
        order = {"type": "buy", "ordertype": "limit", "volume": "0.01", "price": "1000.0", "validate": "true"}
        for _ in range(3):
            result(await raw.private("AddOrder", pair="XXBTZUSD", **order))
        assert (await raw.private("AddOrder", pair="XBTUSD", **order))["error"] == ["EOrder:Rate limit exceeded"]
        result(await raw.private("AddOrder", pair="XETHZUSD", **order))
        client = ccxt_client("kraken", strict.url, raw.credentials)
        try:
            with pytest.raises(E.DDoSProtection):
                await client.private_post_addorder({"pair": "XXBTZUSD", **order})
        finally:
            await client.close()
        await admin.reset_limits()
        result(await raw.private("AddOrder", pair="XXBTZUSD", **order))


async def test_public_counter_answers_too_many_requests(sim_factory) -> None:
    documented = sim_factory(*SIM_ARGS)
    async with SimAdmin(documented.url) as admin, aiohttp.ClientSession() as session:
        raw = Raw(session, documented.url)
        replies = [await raw.public("Time") for _ in range(40)]
        refused = [r for r in replies if r["error"]]
        assert refused and refused[0]["error"] == ["EGeneral:Too many requests"]
        assert len(refused) < 40 - 15  # a burst of about twenty goes through first
        await admin.reset_limits()
        assert result(await raw.public("Time"))["unixtime"] > 1_600_000_000
        assert (await admin.stats())["kraken"]["totals"]["rate_limited"] == len(refused)


# -- orders --------------------------------------------------------------------------------------------------------
async def test_validate_only_checks_and_places_nothing(raw: Raw, admin: SimAdmin, account: dict) -> None:
    price = await below_market(raw)
    order = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": price}
    reply = result(await raw.private("AddOrder", validate="true", **order))
    assert reply == {"descr": {"order": f"buy 0.01000000 XBTUSD @ limit {price}"}}
    too_big = {**order, "volume": "100.00000000"}
    assert (await raw.private("AddOrder", validate="true", **too_big))["error"] == ["EOrder:Insufficient funds"]
    tiny = {**order, "volume": "0.00001"}
    assert (await raw.private("AddOrder", validate="true", **tiny))["error"] == ["EOrder:Order minimum not met"]
    assert await admin.orders("kraken", account["account_id"]) == []
    balances = result(await raw.private("BalanceEx"))
    assert D(balances["ZUSD"]["hold_trade"]) == 0


async def test_pair_by_altname_or_id(raw: Raw) -> None:
    for pair in ("XBTUSD", "XXBTZUSD"):
        assert list(result(await raw.public("Ticker", pair=pair))) == ["XXBTZUSD"]
        assert list(result(await raw.public("Depth", pair=pair, count=3))["XXBTZUSD"]) == ["asks", "bids"]
        assert "XXBTZUSD" in result(await raw.public("OHLC", pair=pair, interval=60))
        assert list(result(await raw.public("AssetPairs", pair=pair))) == ["XXBTZUSD"]
    price = await below_market(raw)
    placed = result(
        await raw.private("AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="0.01", price=price)
    )
    txid = placed["txid"][0]
    order = result(await raw.private("QueryOrders", txid=txid))[txid]
    assert order["descr"]["pair"] == "XBTUSD"
    assert (await raw.public("Ticker", pair="BTCUSDX"))["error"] == ["EQuery:Unknown asset pair"]


async def test_order_and_trade_ids_have_kraken_shapes(ex) -> None:
    order = await ex.create_order("BTC/USD", "market", "buy", 0.001)
    assert TXID.fullmatch(order["id"])
    trades = await ex.fetch_my_trades("BTC/USD")
    assert trades and all(TRADE_ID.fullmatch(t["id"]) and t["order"] == order["id"] for t in trades)


async def test_cancel_by_cl_ord_id(ex, raw: Raw) -> None:
    price = float(await below_market(raw))
    cid = str(uuid.uuid4())  # Kraken also takes a UUID
    order = await ex.create_order("BTC/USD", "limit", "buy", 0.01, price, {"clientOrderId": cid})
    await ex.cancel_order(None, "BTC/USD", {"clientOrderId": cid})
    fetched = await ex.fetch_order(order["id"])
    assert (fetched["status"], fetched["clientOrderId"]) == ("canceled", cid)
    with pytest.raises(E.OrderNotFound):
        await ex.cancel_order(None, "BTC/USD", {"clientOrderId": cid})
    # Once closed, the id may be used again.
    again = await ex.create_order("BTC/USD", "limit", "buy", 0.01, price, {"clientOrderId": cid})
    assert (await ex.fetch_open_orders("BTC/USD", params={"clientOrderId": cid}))[0]["id"] == again["id"]


async def test_cancel_by_userref_cancels_every_order_with_it(raw: Raw) -> None:
    first, _ = await limit_buy(raw, userref="77")
    second, _ = await limit_buy(raw, userref="77")
    await limit_buy(raw, userref="78")
    assert set(result(await raw.private("OpenOrders", userref="77"))["open"]) == {first, second}
    assert result(await raw.private("CancelOrder", txid="77")) == {"count": 2}
    assert len(result(await raw.private("OpenOrders"))["open"]) == 1


async def test_client_order_id_rules(raw: Raw) -> None:
    price = await below_market(raw)
    order = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": price}
    too_long = await raw.private("AddOrder", cl_ord_id="x" * 19, **order)
    assert too_long["error"] == ["EGeneral:Invalid arguments:cl_ord_id"]
    both = await raw.private("AddOrder", cl_ord_id="borsa-1", userref="5", **order)
    assert both["error"] == ["EGeneral:Invalid arguments:cl_ord_id"]
    txid = result(await raw.private("AddOrder", cl_ord_id="a" * 18, **order))["txid"][0]
    assert result(await raw.private("QueryOrders", txid=txid))[txid]["cl_ord_id"] == "a" * 18


async def test_fees_are_charged_in_the_quote_currency(ex, admin: SimAdmin, account: dict) -> None:
    order = await ex.create_order("BTC/USD", "market", "buy", 0.01)
    history = result(await ex.private_post_tradeshistory())
    assert history["count"] >= 1
    trades = [t for t in history["trades"].values() if t["ordertxid"] == order["id"]]
    assert all(t["pair"] == "XXBTZUSD" and t["maker"] is False for t in trades)
    cost, fee = sum(D(t["cost"]) for t in trades), sum(D(t["fee"]) for t in trades)
    assert fee == cost * TAKER
    assert sum(D(t["vol"]) for t in trades) == D("0.01")
    queried = result(await ex.private_post_queryorders({"txid": order["id"], "trades": True}))[order["id"]]
    assert queried["oflags"] == "fciq"
    assert set(queried["trades"]) == {k for k, t in history["trades"].items() if t["ordertxid"] == order["id"]}
    balances = await admin.balances("kraken", account["account_id"])
    assert D(balances["USD"]["total"]) == D("100000") - cost - fee
    assert D(balances["BTC"]["total"]) == D("2.01")
    parsed = await ex.fetch_my_trades("BTC/USD")
    assert {t["fee"]["currency"] for t in parsed} == {"USD"}


async def test_market_buy_by_cost(ex) -> None:
    order = await ex.create_market_buy_order_with_cost("BTC/USD", 100)
    fetched = await ex.fetch_order(order["id"])
    assert fetched["status"] == "closed"
    assert 0 < fetched["cost"] <= 100
    with pytest.raises(E.InvalidOrder):  # viqc is for market buys only
        await ex.create_order("BTC/USD", "market", "sell", 10, None, {"cost": 10})


async def test_balance_ex_holds_funds_of_open_orders(raw: Raw) -> None:
    txid, price = await limit_buy(raw, volume="0.01")
    balances = result(await raw.private("BalanceEx"))
    assert D(balances["ZUSD"]["balance"]) == D("100000")
    assert D(balances["ZUSD"]["hold_trade"]) == D("0.01") * D(price) * (1 + TAKER)  # cost plus the worst fee
    sell = result(
        await raw.private("AddOrder", pair="XBTUSD", type="sell", ordertype="limit", volume="0.5", price="999999.0")
    )
    assert D(result(await raw.private("BalanceEx"))["XXBT"]["hold_trade"]) == D("0.5")
    result(await raw.private("CancelOrder", txid=txid))
    result(await raw.private("CancelOrder", txid=sell["txid"][0]))
    balances = result(await raw.private("BalanceEx"))
    assert D(balances["ZUSD"]["hold_trade"]) == 0 and D(balances["XXBT"]["hold_trade"]) == 0


async def test_closed_orders_include_canceled_ones(raw: Raw) -> None:
    txid, _ = await limit_buy(raw)
    assert result(await raw.private("CancelOrder", txid=txid)) == {"count": 1}
    assert (await raw.private("CancelOrder", txid=txid))["error"] == ["EOrder:Unknown order"]
    market = result(await raw.private("AddOrder", pair="XXBTZUSD", type="sell", ordertype="market", volume="0.01"))
    closed = result(await raw.private("ClosedOrders"))
    assert closed["count"] == 2
    canceled, filled = closed["closed"][txid], closed["closed"][market["txid"][0]]
    assert (canceled["status"], canceled["reason"], canceled["vol_exec"]) == (
        "canceled",
        "User requested",
        "0.00000000",
    )
    assert canceled["closetm"] >= canceled["opentm"]
    assert (filled["status"], filled["vol_exec"]) == ("closed", "0.01000000")
    assert txid not in result(await raw.private("OpenOrders"))["open"]


async def test_unknown_orders(raw: Raw) -> None:
    assert (await raw.private("QueryOrders", txid="OQCLML-BW3P3-BUCMWZ"))["error"] == ["EOrder:Invalid order"]
    assert (await raw.private("QueryOrders"))["error"] == ["EGeneral:Invalid arguments"]
    assert (await raw.private("CancelOrder", txid="OQCLML-BW3P3-BUCMWZ"))["error"] == ["EOrder:Unknown order"]


async def test_malformed_parameters_with_a_good_signature(raw: Raw) -> None:
    bad = {"pair": "XXBTZUSD", "type": "buy", "ordertype": "limit", "volume": "lots", "price": "1000.0"}
    assert (await raw.private("AddOrder", **bad))["error"] == ["EGeneral:Invalid arguments:volume"]
    assert (await raw.private("AddOrder", **{**bad, "volume": "0.01", "price": "cheap"}))["error"] == [
        "EGeneral:Invalid arguments:price"
    ]
    assert (await raw.private("AddOrder", **{**bad, "volume": "0.01", "ordertype": "stop-loss"}))["error"] == [
        "EGeneral:Invalid arguments:ordertype"
    ]
    assert (await raw.private("ClosedOrders", ofs="first"))["error"] == ["EGeneral:Invalid arguments"]


# -- market data -------------------------------------------------------------------------------------------------
async def test_markets_and_currencies_through_ccxt(ex) -> None:
    btc, doge = ex.markets["BTC/USD"], ex.markets["DOGE/USD"]
    assert (btc["id"], btc["altname"], btc["wsId"], btc["baseId"]) == ("XXBTZUSD", "XBTUSD", "XBT/USD", "BTC")
    assert (doge["base"], doge["altname"]) == ("DOGE", "XDGUSD")
    assert btc["margin"] is False
    assert {"BTC", "DOGE", "USD", "EUR"} <= set(ex.currencies)
    assert ex.currencies["BTC"]["id"] == "XXBT"
    assert await ex.fetch_time() > 1_600_000_000_000
    fee = await ex.fetch_trading_fee("BTC/USD")
    assert (D(str(fee["maker"])), D(str(fee["taker"]))) == (MAKER, TAKER)


async def test_candles_use_kraken_intervals(raw: Raw) -> None:
    for interval, frame in ((1, 60), (60, 3600), (1440, 86400), (21600, 15 * 86400)):
        reply = result(await raw.public("OHLC", pair="XBTUSD", interval=interval))
        rows = reply["XXBTZUSD"]
        assert rows and all(r[0] % frame == 0 and len(r) == 8 for r in rows)
        assert reply["last"] in (rows[-1][0], rows[-2][0] if len(rows) > 1 else None)
    rows = result(await raw.public("OHLC", pair="XBTUSD", interval=1))["XXBTZUSD"]
    since = rows[-5][0]
    newer = result(await raw.public("OHLC", pair="XBTUSD", interval=1, since=since))["XXBTZUSD"]
    assert newer and all(r[0] > since for r in newer)
    assert (await raw.public("OHLC", pair="XBTUSD", interval=2))["error"] == ["EGeneral:Invalid arguments"]


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (500, E.ExchangeNotAvailable),
        (502, E.ExchangeNotAvailable),
        (503, E.ExchangeNotAvailable),
        (504, E.RequestTimeout),
    ],
)
async def test_bare_http_statuses_raise_what_they_raise_in_production(ex, admin: SimAdmin, status, raised) -> None:
    await admin.add_fault(exchange="kraken", status=status, count=1)
    with pytest.raises(raised):
        await ex.fetch_ticker("BTC/USD")
    assert (await ex.fetch_ticker("BTC/USD"))["symbol"] == "BTC/USD"
