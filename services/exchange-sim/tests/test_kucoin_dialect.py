"""The kucoin dialect beyond the contract suite, through the real ccxt kucoin class or raw HTTP: passphrase and
timestamp checks, both order families, candle layout, funds orders, fees, malformed requests and the 30 s pools."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_testing.plugin import DEFAULT_SIM_ARGS
from borsa_testing.sim import SimAdmin, ccxt_client

pytestmark = [pytest.mark.integration]

D = Decimal
SYMBOL, MARKET_ID = "BTC/USDT", "BTC-USDT"


@pytest.fixture(scope="module")
def sim_url(sim_factory) -> str:
    return sim_factory(*DEFAULT_SIM_ARGS, "--exchanges", "kucoin").url


@pytest.fixture
async def admin(sim_url: str):
    async with SimAdmin(sim_url) as admin:
        yield admin


@pytest.fixture
async def account(admin: SimAdmin) -> dict:
    return await admin.create_account("kucoin", {"USDT": "100000", "BTC": "1"})


@pytest.fixture
async def classic(sim_url: str, account: dict):
    client = ccxt_client("kucoin", sim_url, account["credentials"])
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def hf(sim_url: str, account: dict):
    client = ccxt_client("kucoin", sim_url, account["credentials"], hf=True)
    try:
        yield client
    finally:
        await client.close()


def _b64_hmac(secret: str, payload: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()


def signed_headers(credentials: dict, method: str, path: str, body: str = "", offset_ms: int = 0) -> dict:
    """KuCoin v2 signing, written out independently of ccxt."""
    stamp = str(int(time.time() * 1000) + offset_ms)
    return {
        "KC-API-KEY": credentials["apiKey"],
        "KC-API-TIMESTAMP": stamp,
        "KC-API-KEY-VERSION": "2",
        "KC-API-PASSPHRASE": _b64_hmac(credentials["secret"], credentials["password"]),
        "KC-API-SIGN": _b64_hmac(credentials["secret"], stamp + method + path + body),
        "Content-Type": "application/json",
    }


async def raw(sim_url: str, method: str, path: str, body: str = "", headers: dict | None = None) -> tuple:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{sim_url}/kucoin{path}", data=body, headers=headers or {}) as response,
    ):
        return response.status, await response.json(content_type=None), dict(response.headers)


async def signed(sim_url: str, credentials: dict, method: str, path: str, body: str = "", offset_ms: int = 0):
    return await raw(sim_url, method, path, body, signed_headers(credentials, method, path, body, offset_ms))


async def endpoints(admin: SimAdmin) -> set[str]:
    return set((await admin.stats())["kucoin"]["endpoints"])


# -- authentication -------------------------------------------------------------------------------------------
async def test_wrong_passphrase_is_an_authentication_error(sim_url, account) -> None:
    client = ccxt_client("kucoin", sim_url, {**account["credentials"], "password": "not-the-passphrase"})
    try:
        with pytest.raises(E.AuthenticationError, match="400004"):
            await client.fetch_balance()
    finally:
        await client.close()


async def test_auth_errors_are_kucoins_own(sim_url, account) -> None:
    creds = account["credentials"]
    status, body, _ = await raw(sim_url, "GET", "/api/v1/accounts")
    assert (status, body["code"]) == (401, "400001")
    status, body, _ = await signed(sim_url, {**creds, "apiKey": "0" * 24}, "GET", "/api/v1/accounts")
    assert (status, body) == (401, {"code": "400003", "msg": "KC-API-KEY not exists"})
    status, body, _ = await signed(sim_url, {**creds, "password": "nope"}, "GET", "/api/v1/accounts")
    assert (status, body) == (401, {"code": "400004", "msg": "Invalid KC-API-PASSPHRASE"})
    status, body, _ = await signed(sim_url, {**creds, "secret": str(uuid.uuid4())}, "GET", "/api/v1/accounts")
    assert (status, body["code"]) == (401, "400004")  # the passphrase is HMAC-ed with the secret, checked first
    headers = signed_headers(creds, "GET", "/api/v1/accounts?type=trade")
    status, body, _ = await raw(sim_url, "GET", "/api/v1/accounts?type=main", headers=headers)
    assert (status, body) == (401, {"code": "400005", "msg": "Signature verification failed"})
    headers = {**signed_headers(creds, "GET", "/api/v1/accounts"), "KC-API-KEY-VERSION": "1"}
    status, body, _ = await raw(sim_url, "GET", "/api/v1/accounts", headers=headers)
    assert (status, body["code"]) == (401, "400004")


async def test_the_signature_covers_the_json_body(sim_url, account) -> None:
    creds = account["credentials"]
    body = json.dumps({"clientOid": "x1", "side": "buy", "symbol": MARKET_ID, "type": "limit", "size": "0.001"})
    headers = signed_headers(creds, "POST", "/api/v1/orders", body)
    status, reply, _ = await raw(sim_url, "POST", "/api/v1/orders", body.replace("0.001", "0.002"), headers)
    assert (status, reply["code"]) == (401, "400005")


@pytest.mark.parametrize(("offset_ms", "accepted"), [(-4000, True), (4000, True), (-6000, False), (6000, False)])
async def test_the_timestamp_must_be_within_5_seconds(sim_url, account, offset_ms, accepted) -> None:
    status, body, _ = await signed(sim_url, account["credentials"], "GET", "/api/v1/accounts", offset_ms=offset_ms)
    if accepted:
        assert (status, body["code"]) == (200, "200000")
    else:
        assert (status, body) == (401, {"code": "400002", "msg": "KC-API-TIMESTAMP Invalid"})


async def test_a_stale_ccxt_client_gets_invalid_nonce(classic) -> None:
    await classic.load_markets()
    classic.options["timeDifference"] = 6000
    with pytest.raises(E.InvalidNonce):
        await classic.fetch_balance()


async def test_credentials_have_kucoins_format(account) -> None:
    creds = account["credentials"]
    assert set(creds) == {"apiKey", "secret", "password"}
    assert len(creds["apiKey"]) == 24 and int(creds["apiKey"], 16) >= 0
    assert str(uuid.UUID(creds["secret"])) == creds["secret"]
    assert len(creds["password"]) >= 12


# -- order families -------------------------------------------------------------------------------------------
async def test_hf_family_end_to_end(hf, admin, account) -> None:
    await hf.load_markets()
    assert hf.options["hf"] is True
    price = D(str((await hf.fetch_ticker(SYMBOL))["last"]))
    limit = (price * D("0.8")).quantize(D("0.1"))
    cid = "hf-" + uuid.uuid4().hex[:20]
    order = await hf.create_order(SYMBOL, "limit", "buy", 0.001, float(limit), {"clientOrderId": cid})
    assert order["clientOrderId"] == cid
    by_id = await hf.fetch_order(order["id"], SYMBOL)
    assert (by_id["status"], by_id["clientOrderId"], by_id["price"]) == ("open", cid, float(limit))
    by_cid = await hf.fetch_order(None, SYMBOL, {"clientOrderId": cid})
    assert by_cid["id"] == order["id"]
    assert [o["id"] for o in await hf.fetch_open_orders(SYMBOL)] == [order["id"]]
    await hf.cancel_order(order["id"], SYMBOL)
    assert (await hf.fetch_order(order["id"], SYMBOL))["status"] == "canceled"
    assert order["id"] in [o["id"] for o in await hf.fetch_closed_orders(SYMBOL)]

    second = await hf.create_order(SYMBOL, "limit", "buy", 0.001, float(limit), {"clientOrderId": cid})
    await hf.cancel_order(None, SYMBOL, {"clientOrderId": cid})
    assert (await hf.fetch_order(second["id"], SYMBOL))["status"] == "canceled"

    market = await hf.create_order(SYMBOL, "market", "sell", 0.002)
    trades = await hf.fetch_my_trades(SYMBOL)
    assert trades and all(t["order"] == market["id"] and isinstance(t["info"]["tradeId"], int) for t in trades)
    assert sum(D(str(t["amount"])) for t in trades) == D("0.002")

    used = await endpoints(admin)
    for path in (
        "POST /api/v1/hf/orders",
        "GET /api/v1/hf/orders/{orderId}",
        "GET /api/v1/hf/orders/client-order/{clientOid}",
        "GET /api/v1/hf/orders/active",
        "GET /api/v1/hf/orders/done",
        "DELETE /api/v1/hf/orders/{orderId}",
        "DELETE /api/v1/hf/orders/client-order/{clientOid}",
        "GET /api/v1/hf/fills",
    ):
        assert path in used, path


async def test_an_hf_order_opens_the_hf_account_for_later_sessions(sim_url, hf, account) -> None:
    fresh = ccxt_client("kucoin", sim_url, account["credentials"])
    try:
        await fresh.load_markets()
        assert fresh.options["hf"] is False
        await hf.load_markets()
        await hf.create_order(SYMBOL, "market", "buy", 0.001)
        later = ccxt_client("kucoin", sim_url, account["credentials"])
        try:
            await later.load_markets()
            assert later.options["hf"] is True
            balance = await later.fetch_balance()  # now GET /api/v1/accounts?type=trade_hf
            assert D(str(balance["BTC"]["total"])) > D("1")
        finally:
            await later.close()
    finally:
        await fresh.close()


async def test_the_families_do_not_see_each_others_orders(classic, hf) -> None:
    await classic.load_markets()
    await hf.load_markets()
    price = D(str((await classic.fetch_ticker(SYMBOL))["last"]))
    limit = float((price * D("0.8")).quantize(D("0.1")))
    mine = await classic.create_order(SYMBOL, "limit", "buy", 0.001, limit)
    theirs = await hf.create_order(SYMBOL, "limit", "buy", 0.001, limit)
    with pytest.raises(E.OrderNotFound):
        await classic.fetch_order(theirs["id"], SYMBOL)
    with pytest.raises(E.OrderNotFound):
        await hf.fetch_order(mine["id"], SYMBOL)
    assert [o["id"] for o in await classic.fetch_open_orders(SYMBOL)] == [mine["id"]]
    assert [o["id"] for o in await hf.fetch_open_orders(SYMBOL)] == [theirs["id"]]
    balance = await classic.fetch_balance()
    assert D(str(balance["USDT"]["used"])) > 2 * D("0.001") * D(str(limit))  # both reserve the same funds


async def test_classic_family_by_client_id(classic, admin) -> None:
    await classic.load_markets()
    price = D(str((await classic.fetch_ticker(SYMBOL))["last"]))
    cid = "classic_" + uuid.uuid4().hex[:30]
    assert len(cid) == 38
    order = await classic.create_order(
        SYMBOL, "limit", "sell", 0.001, float((price * D("1.2")).quantize(D("0.1"))), {"clientOrderId": cid}
    )
    assert (await classic.fetch_order(None, SYMBOL, {"clientOrderId": cid}))["id"] == order["id"]
    await classic.cancel_order(None, SYMBOL, {"clientOrderId": cid})
    fetched = await classic.fetch_order(order["id"], SYMBOL)
    assert fetched["status"] == "canceled"
    with pytest.raises(E.OrderNotFound):
        await classic.cancel_order(order["id"], SYMBOL)  # order_not_exist_or_not_allow_to_cancel
    used = await endpoints(admin)
    assert "DELETE /api/v1/order/client-order/{clientOid}" in used
    assert "GET /api/v1/order/client-order/{clientOid}" in used


async def test_duplicate_open_client_id_is_126044_and_free_again_once_closed(hf) -> None:
    await hf.load_markets()
    price = D(str((await hf.fetch_ticker(SYMBOL))["last"]))
    limit = float((price * D("0.8")).quantize(D("0.1")))
    cid = "dup-" + uuid.uuid4().hex[:8]
    first = await hf.create_order(SYMBOL, "limit", "buy", 0.001, limit, {"clientOrderId": cid})
    with pytest.raises(E.InvalidOrder, match="126044"):
        await hf.create_order(SYMBOL, "limit", "buy", 0.001, limit, {"clientOrderId": cid})
    await hf.cancel_order(first["id"], SYMBOL)
    again = await hf.create_order(SYMBOL, "limit", "buy", 0.001, limit, {"clientOrderId": cid})
    assert (await hf.fetch_order(None, SYMBOL, {"clientOrderId": cid}))["id"] == again["id"]


# -- market data ----------------------------------------------------------------------------------------------
async def test_candles_are_t_o_c_h_l_v_turnover_and_ccxt_reorders_them(sim_url, classic) -> None:
    await classic.load_markets()
    now_s = int(time.time())
    status, body, _ = await raw(
        sim_url, "GET", f"/api/v1/market/candles?symbol={MARKET_ID}&type=1min&startAt={now_s - 600}&endAt={now_s}"
    )
    assert status == 200
    rows = body["data"]
    assert rows and all(len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows)
    stamps = [int(r[0]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first, in seconds
    for _start, o, c, h, low, v, turnover in rows:
        assert D(low) <= min(D(o), D(c)) <= max(D(o), D(c)) <= D(h)
        assert D(turnover) >= 0 and D(v) >= 0
    parsed = await classic.fetch_ohlcv(SYMBOL, "1m", since=(now_s - 600) * 1000)
    by_time = {int(r[0]) * 1000: r for r in rows}
    assert [c[0] for c in parsed] == sorted(c[0] for c in parsed)
    closed = [c for c in parsed if c[0] // 1000 + 60 <= now_s]  # the current minute's candle moves meanwhile
    assert closed
    for ts, o, h, low, c, v in closed:
        row = by_time[ts]
        assert [D(str(x)) for x in (o, c, h, low, v)] == [D(x) for x in row[1:6]]
    monthly = await classic.fetch_ohlcv(SYMBOL, "1M", limit=2)
    assert monthly and all(len(c) == 6 for c in monthly)


async def test_fees_come_from_all_tickers_when_ccxt_asks_for_them(sim_url) -> None:
    client = ccxt_client("kucoin", sim_url, fetchMarkets={"types": ["spot"], "fetchTickersFees": True})
    try:
        client.fees["trading"].update(maker=0.5, taker=0.5)  # so that ccxt's defaults cannot pass for parsed fees
        markets = await client.load_markets()
        assert (markets[SYMBOL]["maker"], markets[SYMBOL]["taker"]) == (0.001, 0.001)
    finally:
        await client.close()


async def test_trading_fee_from_trade_fees(classic, admin) -> None:
    await classic.load_markets()
    fee = await classic.fetch_trading_fee(SYMBOL)
    assert (fee["symbol"], fee["maker"], fee["taker"]) == (SYMBOL, 0.001, 0.001)
    assert "GET /api/v1/trade-fees" in await endpoints(admin)


async def test_book_without_limit_is_the_private_full_book(classic, admin) -> None:
    await classic.load_markets()
    book = await classic.fetch_order_book(SYMBOL)
    assert len(book["bids"]) > 20 and book["nonce"] is not None
    assert "GET /api/v3/market/orderbook/level2" in await endpoints(admin)


async def test_fetch_time_and_status(classic) -> None:
    assert await classic.fetch_time() > 1_600_000_000_000
    assert (await classic.fetch_status())["status"] == "ok"


# -- orders by funds, and malformed orders --------------------------------------------------------------------
async def test_market_buy_by_funds(classic) -> None:
    await classic.load_markets()
    order = await classic.create_market_buy_order_with_cost(SYMBOL, 500)
    fetched = await classic.fetch_order(order["id"], SYMBOL)
    assert fetched["status"] == "closed"
    assert fetched["info"]["funds"] == "500" and fetched["info"]["size"] == "0"
    cost, fee = D(str(fetched["cost"])), D(str(fetched["fee"]["cost"]))
    assert D("499") < cost <= D("500")
    assert fee == cost * D("0.001") and fetched["fee"]["currency"] == "USDT"


async def test_malformed_signed_orders_get_400100(sim_url, account) -> None:
    creds = account["credentials"]
    order = {"clientOid": "m1", "side": "buy", "symbol": MARKET_ID, "type": "limit", "size": "0.001", "price": "100"}
    cases = [
        ("{not json", "400100"),
        ("[1, 2]", "400100"),
        (json.dumps({**order, "size": "lots"}), "400100"),
        (json.dumps({**order, "size": True}), "400100"),
        (json.dumps({**order, "price": None}), "400100"),
        (json.dumps({**order, "side": "hold"}), "400100"),
        (json.dumps({**order, "type": "stop"}), "400100"),
        (json.dumps({**order, "timeInForce": "DAY"}), "400100"),
        (json.dumps({k: v for k, v in order.items() if k != "clientOid"}), "400100"),
        (json.dumps({**order, "clientOid": "x" * 41}), "400100"),
        (json.dumps({**order, "clientOid": "no spaces"}), "400100"),
        (json.dumps({**order, "type": "market", "funds": "10", "price": None}), "400100"),
        (json.dumps({**order, "type": "market", "size": None, "funds": "10.0000001"}), "400100"),
        (json.dumps({**order, "symbol": "BTC/USDT"}), "400100"),
    ]
    for body, code in cases:
        status, reply, _ = await signed(sim_url, creds, "POST", "/api/v1/orders", body)
        assert (status, reply["code"]) == (400, code), (body, reply)
        assert "msg" in reply
    headers = {**signed_headers(creds, "POST", "/api/v1/orders", "size=1"), "Content-Type": "text/plain"}
    status, reply, _ = await raw(sim_url, "POST", "/api/v1/orders", "size=1", headers)
    assert (status, reply["code"]) == (415, "415000")
    status, reply, _ = await signed(sim_url, creds, "GET", "/api/v1/orders?status=sideways")
    assert (status, reply["code"]) == (400, "400100")
    status, reply, _ = await signed(sim_url, creds, "GET", "/api/v1/orders?pageSize=501")
    assert reply == {"code": "400100", "msg": "pageSize should not greater than 500"}


async def test_ccxt_maps_the_order_errors(classic) -> None:
    await classic.load_markets()
    with pytest.raises(E.BadRequest, match="Funds increment invalid"):
        await classic.private_post_orders(
            {"clientOid": "f1", "side": "buy", "symbol": MARKET_ID, "type": "market", "funds": "10.0000001"}
        )
    with pytest.raises(E.InvalidOrder, match="600101"):
        await classic.private_post_orders(
            {"clientOid": "f2", "side": "buy", "symbol": MARKET_ID, "type": "market", "funds": "0.05"}
        )
    with pytest.raises(E.BadRequest, match="clientOidIsRequired"):
        await classic.private_post_orders({"side": "buy", "symbol": MARKET_ID, "type": "limit", "size": "1"})
    with pytest.raises(E.InsufficientFunds):
        await classic.create_order(SYMBOL, "market", "buy", 100)
    with pytest.raises(E.OrderNotFound):
        await classic.cancel_order("5c35c02703aa673ceec2a168", SYMBOL)
    with pytest.raises(E.ExchangeError, match="900001"):
        await classic.public_get_market_stats({"symbol": "NOPE-USDT"})


async def test_balances_reserve_funds_and_other_account_types_are_empty(sim_url, classic, account) -> None:
    await classic.load_markets()
    await classic.create_order(SYMBOL, "limit", "buy", 0.01, 10000)
    balance = await classic.fetch_balance()
    assert D(str(balance["USDT"]["used"])) == D("100.1")  # price x size plus the taker fee it may cost
    assert D(str(balance["USDT"]["free"])) + D(str(balance["USDT"]["used"])) == D("100000")
    status, body, _ = await signed(sim_url, account["credentials"], "GET", "/api/v1/accounts?type=main")
    assert (status, body["data"]) == (200, [])
    status, body, _ = await signed(sim_url, account["credentials"], "GET", "/api/v1/accounts?currency=BTC")
    assert [(e["currency"], e["type"], e["balance"]) for e in body["data"]] == [("BTC", "trade", "1")]


# -- rate limits ----------------------------------------------------------------------------------------------
async def test_the_public_pool_answers_429000_with_gateway_headers(sim_factory) -> None:
    strict = sim_factory(*DEFAULT_SIM_ARGS, "--exchanges", "kucoin", "--rate-limit-scale", "0.01")
    path = f"/api/v1/market/stats?symbol={MARKET_ID}"  # weight 15 of the public pool's 2000 x 0.01 = 20
    status, _, headers = await raw(strict.url, "GET", path)
    assert status == 200
    assert (headers["gw-ratelimit-limit"], headers["gw-ratelimit-remaining"]) == ("20", "5")
    assert 0 < int(headers["gw-ratelimit-reset"]) <= 30_000
    status, body, headers = await raw(strict.url, "GET", path)
    assert (status, body) == (429, {"code": "429000", "msg": "Too Many Requests"})
    assert headers["gw-ratelimit-remaining"] == "5"
    async with SimAdmin(strict.url) as admin:
        account = await admin.create_account("kucoin", {"USDT": "100"})
        # The Spot pool is counted per account, apart from the exhausted public pool.
        status, body, _ = await signed(strict.url, account["credentials"], "GET", "/api/v1/hf/accounts/opened")
        assert (status, body["data"]) == (200, False)
        client = ccxt_client("kucoin", strict.url)
        try:
            with pytest.raises(E.RateLimitExceeded):
                await client.public_get_market_stats({"symbol": MARKET_ID})
        finally:
            await client.close()
        await admin.reset_limits()
    status, _, _ = await raw(strict.url, "GET", path)
    assert status == 200


async def test_unknown_paths_get_the_gateway_404(sim_url) -> None:
    status, body, _ = await raw(sim_url, "GET", "/api/v1/nowhere")
    assert (status, body["code"]) == (404, "404")
