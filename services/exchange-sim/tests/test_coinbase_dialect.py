"""What the contract suite does not reach in the coinbase dialect: each JWT check, market buys by funds, the
create-order failure envelope, order and fill listings, v2/v3 balances and the rate limits. Everything runs
against a real coinbase-only simulator, through the real ccxt class or raw HTTP."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from decimal import Decimal

import aiohttp
import pytest
from ccxt.base import errors as E
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from borsa_sim.dialects.coinbase_auth import new_credentials
from borsa_testing.sim import SimAdmin, ccxt_client

pytestmark = [pytest.mark.integration]

D = Decimal
SYMBOL, PRODUCT = "BTC/USD", "BTC-USD"
V3 = "/api/v3/brokerage"


@pytest.fixture(scope="module")
def sim_url(sim_factory) -> str:
    # Generous limits, as the shared simulator has: tests share one loopback IP; the limits have their own test.
    return sim_factory(
        "--exchanges", "coinbase", "--seed", "42", "--tick-interval", "0.25", "--rate-limit-scale", "100"
    ).url


@pytest.fixture
async def admin(sim_url):
    async with SimAdmin(sim_url) as admin:
        yield admin


@pytest.fixture
async def account(admin) -> dict:
    return await admin.create_account("coinbase", {"USD": "100000", "BTC": "2"})


@pytest.fixture
async def ex(sim_url, account):
    client = ccxt_client("coinbase", sim_url, account["credentials"])
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


# -- raw, signed HTTP ----------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(credentials: dict, uri: str, *, signer: str | None = None, alg: str = "ES256", **claims) -> str:
    """A CDP token as Coinbase's SDKs build it; `signer` signs with another PEM, `claims` override any claim."""
    now = int(time.time())
    key = credentials["apiKey"]
    header = {"alg": alg, "kid": key, "nonce": secrets.token_hex(16), "typ": "JWT"}
    body = {"iss": "cdp", "aud": ["retail_rest_api_proxy"], "nbf": now, "exp": now + 120, "sub": key, "uri": uri}
    body.update(claims)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    private = serialization.load_pem_private_key((signer or credentials["secret"]).encode(), password=None)
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def uri_for(sim_url: str, method: str, path: str) -> str:
    return f"{method} {sim_url.removeprefix('http://')}/coinbase{path.split('?')[0]}"


async def call(sim_url: str, method: str, path: str, credentials: dict | None = None, body=None, **jwt) -> tuple:
    headers = {"Content-Type": "application/json"}
    if credentials is not None:
        uri = jwt.pop("uri", None) or uri_for(sim_url, method, path)
        headers["Authorization"] = "Bearer " + make_jwt(credentials, uri, **jwt)
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{sim_url}/coinbase{path}", data=data, headers=headers) as response,
    ):
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def limit_order(side: str, size: str, price: str, cid: str | None = None, product: str = PRODUCT, **extra) -> dict:
    config = {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": False, **extra}}
    return {
        "client_order_id": cid or str(uuid.uuid4()),
        "product_id": product,
        "side": side,
        "order_configuration": config,
    }


async def last_price(ex) -> Decimal:
    return D(str((await ex.fetch_ticker(SYMBOL))["last"]))


# -- authentication ------------------------------------------------------------------------------------------------
async def test_a_valid_token_is_accepted(sim_url, account) -> None:
    status, body = await call(sim_url, "GET", f"{V3}/accounts", account["credentials"])
    assert status == 200
    assert {a["currency"] for a in body["accounts"]} >= {"USD", "BTC"}


async def test_credentials_are_cdp_keys(account) -> None:
    credentials = account["credentials"]
    assert credentials["apiKey"].startswith("organizations/")
    assert "/apiKeys/" in credentials["apiKey"]
    assert credentials["secret"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(credentials["secret"].encode(), password=None)
    assert isinstance(key.curve, ec.SECP256R1)


@pytest.mark.parametrize(
    ("case", "jwt"),
    [
        ("expired", {"nbf": -600, "exp": -480}),  # nbf and exp: seconds from now
        ("not yet valid", {"nbf": 600, "exp": 720}),
        ("other path", {"uri": "GET 127.0.0.1:1/coinbase/api/v3/brokerage/orders/historical/batch"}),
        ("sub is not kid", {"sub": f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"}),
        ("another key signed it", {"signer": new_credentials()["secret"]}),
        ("wrong algorithm", {"alg": "EdDSA"}),
    ],
)
async def test_each_jwt_check_rejects(sim_url, account, case, jwt) -> None:
    now = int(time.time())
    jwt = {k: now + v if k in ("nbf", "exp") else v for k, v in jwt.items()}
    status, body = await call(sim_url, "GET", f"{V3}/accounts", account["credentials"], **jwt)
    assert status == 401, case
    assert body["error"] == "unauthorized"
    assert body["error_details"]


async def test_the_uri_claim_names_method_host_and_path(sim_url, account) -> None:
    path = f"{V3}/accounts"
    wrong_method = uri_for(sim_url, "POST", path)
    assert (await call(sim_url, "GET", path, account["credentials"], uri=wrong_method))[0] == 401
    unprefixed = f"GET {sim_url.removeprefix('http://')}{path}"  # the path without the /coinbase prefix
    assert (await call(sim_url, "GET", path, account["credentials"], uri=unprefixed))[0] == 401
    # ccxt keeps the scheme of a local URL in the claim ("GET http://127.0.0.1:P/..."); it is stripped.
    with_scheme = f"GET {sim_url}/coinbase{path}"
    assert (await call(sim_url, "GET", path, account["credentials"], uri=with_scheme))[0] == 200


async def test_unknown_key_and_missing_or_garbage_tokens(sim_url, account) -> None:
    stranger = {**account["credentials"], "apiKey": f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"}
    assert (await call(sim_url, "GET", f"{V3}/accounts", stranger))[0] == 401
    assert (await call(sim_url, "GET", f"{V3}/accounts"))[0] == 401
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim_url}/coinbase{V3}/accounts", headers={"Authorization": "Bearer not.a.jwt"}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"


async def test_expired_token_through_ccxt_on_v2_and_v3(sim_url, account) -> None:
    client = ccxt_client("coinbase", sim_url, account["credentials"])
    try:
        await client.load_markets()
        client.seconds = lambda: int(time.time()) - 300  # the token ccxt signs expired three minutes ago
        with pytest.raises(E.AuthenticationError):
            await client.fetch_balance()  # GET /v2/accounts
        with pytest.raises(E.AuthenticationError):
            await client.fetch_open_orders(SYMBOL)  # GET /api/v3/brokerage/orders/historical/batch
    finally:
        await client.close()
    status, body = await call(
        sim_url, "GET", "/v2/accounts", account["credentials"], nbf=int(time.time()) - 600, exp=int(time.time()) - 480
    )
    assert status == 401
    assert body["errors"][0]["id"] == "expired_token"


async def test_legacy_hmac_keys_are_rejected(sim_url) -> None:
    # A short key and secret make ccxt sign the legacy way (CB-ACCESS-KEY/SIGN/TIMESTAMP). The simulator, like
    # Advanced Trade today, accepts CDP keys only, so it never verifies an HMAC signature: it refuses it.
    client = ccxt_client("coinbase", sim_url, {"apiKey": "a" * 16, "secret": "b" * 32})
    try:
        with pytest.raises(E.AuthenticationError):
            await client.load_markets()  # its signed transaction_summary call already fails
    finally:
        await client.close()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sim_url}/coinbase{V3}/accounts", headers={"CB-ACCESS-KEY": "a" * 16}) as response,
    ):
        assert response.status == 401
        assert "legacy" in (await response.json())["error_details"]


# -- orders --------------------------------------------------------------------------------------------------------
async def test_market_buy_by_quote_size(sim_url, account) -> None:
    client = ccxt_client("coinbase", sim_url, account["credentials"], createMarketBuyOrderRequiresPrice=False)
    try:
        await client.load_markets()
        order = await client.create_order(SYMBOL, "market", "buy", 250)  # amount = the funds to spend
        fetched = await client.fetch_order(order["id"], SYMBOL)
        assert fetched["status"] == "closed"
        assert fetched["info"]["order_configuration"] == {"market_market_ioc": {"quote_size": "250"}}
        assert fetched["info"]["size_in_quote"] is True
        trades = [t for t in await client.fetch_my_trades(SYMBOL) if t["order"] == order["id"]]
        assert trades and all(t["info"]["size_in_quote"] for t in trades)
        spent = sum(D(t["info"]["size"]) for t in trades)  # fills of a quote-sized order report quote
        top = max(D(str(t["price"])) for t in trades)
        assert D(250) - top * D("0.00000001") < spent <= 250  # all of it, up to one amount step
        assert sum(D(str(t["amount"])) for t in trades) == D(str(fetched["filled"]))
        with_cost = await client.create_market_buy_order_with_cost(SYMBOL, 100)
        config = (await client.fetch_order(with_cost["id"], SYMBOL))["info"]["order_configuration"]
        assert config == {"market_market_ioc": {"quote_size": "100"}}
    finally:
        await client.close()


async def test_create_failures_use_the_success_false_envelope(sim_url, ex, account) -> None:
    credentials, price = account["credentials"], await last_price(ex)
    limit = format((price * D("0.9")).quantize(D("0.01")), "f")
    status, body = await call(sim_url, "POST", f"{V3}/orders", credentials, limit_order("BUY", "5", limit))
    assert status == 200
    assert body["success"] is False
    assert body["order_id"] == ""
    assert body["error_response"]["error"] == "INSUFFICIENT_FUND"
    assert body["error_response"]["preview_failure_reason"] == "PREVIEW_INSUFFICIENT_FUND"
    assert body["order_configuration"]["limit_limit_gtc"]["base_size"] == "5"
    with pytest.raises(E.InsufficientFunds):
        await ex.create_order(SYMBOL, "limit", "buy", 5, float(limit))
    cases = {
        "PREVIEW_INVALID_PRICE_PRECISION": limit_order("BUY", "0.001", limit + "5"),
        "PREVIEW_INVALID_SIZE_PRECISION": limit_order("BUY", "0.0010000001", limit),
        "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL": limit_order("BUY", "0.00001", limit),
        "PREVIEW_INVALID_PRODUCT_ID": limit_order("BUY", "0.001", limit, product="NOPE-USD"),
        "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY": limit_order("BUY", "0.001", format(price * 2, "f"), post_only=True),
    }
    for reason, order in cases.items():
        status, body = await call(sim_url, "POST", f"{V3}/orders", credentials, order)
        assert (status, body["success"], body["error_response"]["preview_failure_reason"]) == (200, False, reason)
    # ccxt maps no other preview reason: a plain ExchangeError.
    with pytest.raises(E.ExchangeError) as caught:
        await ex.v3PrivatePostBrokerageOrders(cases["PREVIEW_INVALID_PRICE_PRECISION"])
    assert type(caught.value) is E.ExchangeError


async def test_malformed_create_requests_are_bad_requests(sim_url, ex, account) -> None:
    credentials = account["credentials"]
    status, body = await call(sim_url, "POST", f"{V3}/orders", credentials, "{not json")
    assert (status, body["error"]) == (400, "INVALID_ARGUMENT")
    missing = {"product_id": PRODUCT, "side": "BUY", "order_configuration": {"limit_limit_gtc": {}}}
    status, body = await call(sim_url, "POST", f"{V3}/orders", credentials, missing)
    assert (status, body["error"]) == (400, "INVALID_ARGUMENT")
    status, body = await call(
        sim_url, "POST", f"{V3}/orders", credentials, {**limit_order("BUY", "1", "1"), "side": "UP"}
    )
    assert (status, body["error"]) == (400, "unknown")
    with pytest.raises(E.BadRequest):
        await ex.v3PrivatePostBrokerageOrders({"client_order_id": "x", "product_id": PRODUCT, "side": "BUY"})


async def test_client_order_id_is_idempotent_even_after_the_order_closed(sim_url, ex, admin, account) -> None:
    credentials, price = account["credentials"], await last_price(ex)
    request = limit_order("BUY", "0.001", format((price * D("0.8")).quantize(D("0.01")), "f"), cid="borsa-1")
    first = (await call(sim_url, "POST", f"{V3}/orders", credentials, request))[1]
    await ex.cancel_order(first["success_response"]["order_id"], SYMBOL)
    again = (await call(sim_url, "POST", f"{V3}/orders", credentials, request))[1]
    assert again["success"] is True
    assert again["success_response"] == first["success_response"]
    mine = [o for o in await admin.orders("coinbase", account["account_id"]) if o["client_order_id"] == "borsa-1"]
    assert [o["status"] for o in mine] == ["canceled"]


async def test_cancel_results_and_unknown_orders(sim_url, ex, account) -> None:
    price = await last_price(ex)
    order = await ex.create_order(SYMBOL, "limit", "buy", 0.001, float((price * D("0.8")).quantize(D("0.01"))))
    ghost = str(uuid.uuid4())
    status, body = await call(
        sim_url, "POST", f"{V3}/orders/batch_cancel", account["credentials"], {"order_ids": [order["id"], ghost]}
    )
    assert status == 200
    assert body["results"] == [
        {"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON", "order_id": order["id"]},
        {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": ghost},
    ]
    with pytest.raises(E.BadRequest):  # ccxt: any result with success false
        await ex.cancel_order(order["id"], SYMBOL)  # DUPLICATE_CANCEL_REQUEST
    status, body = await call(sim_url, "GET", f"{V3}/orders/historical/{ghost}", account["credentials"])
    assert (status, body["error"]) == (404, "NOT_FOUND")
    assert body["message"] == "order with this orderID was not found"


async def test_historical_batch_filters_by_status(sim_url, ex, account) -> None:
    price = await last_price(ex)
    low = float((price * D("0.8")).quantize(D("0.01")))
    resting = await ex.create_order(SYMBOL, "limit", "buy", 0.001, low)
    cancelled = await ex.create_order(SYMBOL, "limit", "buy", 0.002, low)
    await ex.cancel_order(cancelled["id"], SYMBOL)
    filled = await ex.create_order(SYMBOL, "market", "sell", 0.001)
    credentials, batch = account["credentials"], f"{V3}/orders/historical/batch"

    async def ids(query: str) -> list[str]:
        status, body = await call(sim_url, "GET", f"{batch}?{query}", credentials)
        assert status == 200, body
        return [o["order_id"] for o in body["orders"]]

    assert await ids("order_status=OPEN") == [resting["id"]]
    assert await ids("order_status=FILLED") == [filled["id"]]
    assert await ids("order_status=CANCELLED") == [cancelled["id"]]
    # Repeated parameters combine; the newest order comes first.
    assert await ids("order_status=OPEN&order_status=CANCELLED") == [cancelled["id"], resting["id"]]
    assert await ids(f"product_ids={PRODUCT}&order_side=SELL") == [filled["id"]]
    assert await ids("product_ids=ETH-USD") == []
    status, body = await call(sim_url, "GET", f"{batch}?limit=1", credentials)
    assert body["has_next"] is True and len(body["orders"]) == 1
    status, rest = await call(sim_url, "GET", f"{batch}?limit=5&cursor={body['cursor']}", credentials)
    assert [o["order_id"] for o in body["orders"] + rest["orders"]] == [filled["id"], cancelled["id"], resting["id"]]
    status, body = await call(sim_url, "GET", f"{batch}?order_status=SOMETIMES", credentials)
    assert (status, body["error"]) == (400, "unknown")
    assert [o["id"] for o in await ex.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert [o["id"] for o in await ex.fetch_closed_orders(SYMBOL)] == [filled["id"]]
    assert [o["id"] for o in await ex.fetch_canceled_orders(SYMBOL)] == [cancelled["id"]]


async def test_fills_carry_the_commission_in_quote(sim_url, ex, admin, account) -> None:
    order = await ex.create_order(SYMBOL, "market", "sell", 0.01)
    status, body = await call(
        sim_url, "GET", f"{V3}/orders/historical/fills?order_ids={order['id']}", account["credentials"]
    )
    assert status == 200 and body["fills"]
    for fill in body["fills"]:
        cost = D(fill["price"]) * D(fill["size"])
        assert D(fill["commission"]) == cost * D("0.012")  # taker
        assert (fill["liquidity_indicator"], fill["side"], fill["size_in_quote"]) == ("TAKER", "SELL", False)
    trades = [t for t in await ex.fetch_my_trades(SYMBOL) if t["order"] == order["id"]]
    assert {(t["fee"]["currency"], t["side"], t["takerOrMaker"]) for t in trades} == {("USD", "sell", "taker")}
    fetched = await ex.fetch_order(order["id"], SYMBOL)
    assert D(str(fetched["fee"]["cost"])) == sum(D(f["commission"]) for f in body["fills"])
    assert fetched["fee"]["currency"] == "USD"


async def test_balances_show_holds_on_v2_and_v3(sim_url, ex, account) -> None:
    price = (await last_price(ex) * D("0.8")).quantize(D("0.01"))
    await ex.create_order(SYMBOL, "limit", "buy", 0.1, float(price))
    hold = D("0.1") * price * D("1.012")  # the order's worst cost, taker fee included
    status, body = await call(sim_url, "GET", "/v2/accounts?limit=250", account["credentials"])
    assert status == 200
    usd = next(w for w in body["data"] if w["currency"]["code"] == "USD")
    assert D(usd["hold"]["value"]) == hold
    assert D(usd["available_balance"]["value"]) == D(100000) - hold
    assert D(usd["balance"]["amount"]) == D(100000)
    assert body["pagination"]["next_uri"] is None
    v2, v3 = await ex.fetch_balance(), await ex.fetch_balance({"v3": True})
    for balance in (v2, v3):
        assert D(str(balance["USD"]["used"])) == hold
        assert D(str(balance["USD"]["total"])) == D(100000)
        assert D(str(balance["BTC"]["free"])) == D(2)
    status, page = await call(sim_url, "GET", "/v2/accounts?limit=2", account["credentials"])
    assert len(page["data"]) == 2 and page["pagination"]["next_uri"].startswith("/v2/accounts?limit=2&starting_after=")


async def test_load_markets_and_fees(sim_url, ex, admin) -> None:
    market = ex.market(SYMBOL)
    assert (market["maker"], market["taker"]) == (0.006, 0.012)  # from transaction_summary's fee_tier
    assert market["precision"] == {"amount": 1e-08, "price": 0.01}
    endpoints = (await admin.stats())["coinbase"]["endpoints"]
    for path in ("/v2/currencies", "/v2/currencies/crypto", "/v2/exchange-rates", f"{V3}/market/products"):
        assert endpoints[f"GET {path}"]["errors"] == 0, path
    assert endpoints[f"GET {V3}/transaction_summary"]["requests"] >= 1
    assert await ex.fetch_time() > 1_600_000_000_000
    assert (await ex.fetch_time({"method": "v3PublicGetBrokerageTime"})) > 1_600_000_000_000


async def test_candles_are_strings_newest_first_and_capped(sim_url) -> None:
    now = int(time.time())
    path = f"{V3}/market/products/{PRODUCT}/candles?granularity=FIVE_MINUTE&start={now - 3000}&end={now}"
    status, body = await call(sim_url, "GET", path)
    starts = [int(c["start"]) for c in body["candles"]]
    assert status == 200 and starts == sorted(starts, reverse=True)
    assert all(s % 300 == 0 for s in starts)
    assert all(isinstance(c[k], str) for c in body["candles"] for k in ("open", "high", "low", "close", "volume"))
    too_many = f"{V3}/market/products/{PRODUCT}/candles?granularity=ONE_MINUTE&start={now - 86400}&end={now}"
    status, body = await call(sim_url, "GET", too_many)
    assert (status, body["error"]) == (400, "INVALID_ARGUMENT")


# -- rate limits ---------------------------------------------------------------------------------------------------
async def test_private_limit_is_per_user_and_public_limit_per_ip(sim_factory) -> None:
    strict = sim_factory("--exchanges", "coinbase", "--rate-limit-scale", "0.1").url  # 3/s private, 1/s public
    async with SimAdmin(strict) as admin:
        alice = (await admin.create_account("coinbase", {"USD": "10"}))["credentials"]
        bob = (await admin.create_account("coinbase", {"USD": "10"}))["credentials"]
        for _ in range(100):
            status, body = await call(strict, "GET", f"{V3}/accounts", alice)
            if status == 429:
                break
        assert status == 429
        assert body == {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}
        assert (await call(strict, "GET", f"{V3}/accounts", bob))[0] == 200  # bob has his own budget
        for _ in range(100):
            status, _ = await call(strict, "GET", f"{V3}/market/products/{PRODUCT}/ticker?limit=1")
            if status == 429:
                break
        assert status == 429
        await admin.reset_limits()
        assert (await call(strict, "GET", f"{V3}/accounts", alice))[0] == 200
        assert (await call(strict, "GET", f"{V3}/market/products/{PRODUCT}/ticker?limit=1"))[0] == 200
        client = ccxt_client("coinbase", strict, alice)

        async def hammer() -> None:
            for _ in range(100):
                await client.fetch_open_orders(SYMBOL)

        try:
            await admin.reset_limits()
            await client.load_markets()
            await admin.reset_limits()
            with pytest.raises(E.RateLimitExceeded):
                await hammer()
        finally:
            await client.close()
