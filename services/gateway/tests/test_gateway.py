"""The gateway end to end: real Postgres, NATS, connectors, simulator and gateway processes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from decimal import Decimal

import aiohttp
import asyncpg
import nats
import pytest

from borsa_proto import BotChanged, decode
from borsa_proto import requests as rq
from borsa_proto.exchange import BalanceReply
from borsa_proto.orders import Order
from borsa_proto.subjects import BOTS_CHANGED, balance, order_create
from borsa_runtime.request import request
from borsa_testing.gateway import Client, new_user
from borsa_testing.leaks import BusTap, found, table_texts
from borsa_testing.processes import start_gateway
from borsa_testing.sim import SimAdmin

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CANARY = "CANARY" + secrets.token_hex(8)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def kraken_credentials(sim_url: str) -> dict:
    async with SimAdmin(sim_url) as admin:
        return (await admin.create_account("kraken", {"USD": "100000", "BTC": "1"}))["credentials"]


async def test_register_login_and_limits(stack, session) -> None:
    email = f"x{uuid.uuid4().hex[:8]}@example.com"
    anon = Client(session, stack["url"])
    await anon.call("POST", "/auth/register", {"email": email, "password": "correct horse"}, 201)
    status, data = await anon.call("POST", "/auth/register", {"email": email.upper(), "password": "correct horse"})
    assert status == 409 and data["detail"]["code"] == "conflict"
    status, data = await anon.call("POST", "/auth/register", {"email": "not-an-email", "password": "correct horse"})
    assert status == 422 and data["detail"]["field"] == "email"
    status, data = await anon.call("POST", "/auth/login", {"email": email, "password": "wrong password"})
    assert status == 401 and data["detail"]["code"] == "unauthorized"
    for _ in range(2):
        await anon.call("POST", "/auth/login", {"email": email, "password": "wrong password"}, 401)
    status, data = await anon.call("POST", "/auth/login", {"email": email, "password": "correct horse"})
    assert status == 429 and data["detail"]["code"] == "rate_limited"
    status, data = await anon.call("GET", "/bots")
    assert status == 401 and data["detail"]["code"] == "unauthorized"


async def test_failed_logins_count_across_gateway_replicas(stack, session, tmp_path) -> None:
    """The login limit lives in Postgres: guesses spread over two replicas, even at once, get 3 tries in all."""
    replica = start_gateway(stack["nats"], stack["dsn"], env=stack["gateway_env"], workdir=tmp_path)
    try:
        first, second = Client(session, stack["url"]), Client(session, replica.url)
        email = f"r{uuid.uuid4().hex[:8]}@example.com"
        right = {"email": email, "password": "correct horse"}
        wrong = {"email": email.upper(), "password": "wrong password"}  # the limit is per email, in any case
        await first.call("POST", "/auth/register", right, 201)

        results = await asyncio.gather(*(c.call("POST", "/auth/login", wrong) for c in [first, second] * 4))
        assert sorted(status for status, _ in results) == [401] * 3 + [429] * 5
        refused = next(data for status, data in results if status == 429)
        assert refused["detail"]["code"] == "rate_limited" and "too many failed logins" in refused["detail"]["message"]
        for url in (stack["url"], replica.url):  # the right password too, on either replica, with a wait
            async with session.post(f"{url}/api/v1/auth/login", json=right) as response:
                assert response.status == 429
                assert 0 < int(response.headers["Retry-After"]) <= 900
        # Only a digest of the email is kept, and only the attempts that counted.
        conn = await asyncpg.connect(stack["dsn"])
        try:
            digest = hashlib.sha256(email.lower().encode()).digest()
            assert await conn.fetchval("SELECT count(*) FROM login_failures WHERE email_digest = $1", digest) == 3
            columns = await conn.fetch(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'login_failures'"
            )
            assert sorted(c["data_type"] for c in columns) == ["bytea", "timestamp with time zone"]
        finally:
            await conn.close()

        # A success on one replica clears the count kept by the other.
        other = f"s{uuid.uuid4().hex[:8]}@example.com"
        await first.call("POST", "/auth/register", {"email": other, "password": "correct horse"}, 201)
        for _ in range(2):
            await first.call("POST", "/auth/login", {"email": other, "password": "wrong password"}, 401)
        await second.call("POST", "/auth/login", {"email": other, "password": "correct horse"}, 200)
        for _ in range(3):
            await first.call("POST", "/auth/login", {"email": other, "password": "wrong password"}, 401)
        status, _ = await second.call("POST", "/auth/login", {"email": other, "password": "wrong password"})
        assert status == 429
    finally:
        replica.stop()


async def test_exchanges_online_and_offline(stack, session) -> None:
    user = await new_user(session, stack["url"])
    _, exchanges = await user.call("GET", "/exchanges", expect=200)
    by_id = {e["id"]: e for e in exchanges}
    assert by_id["kraken"]["online"] and by_id["kucoin"]["online"]
    assert not by_id["binance"]["online"] and not by_id["coinbase"]["online"]
    # Offline, an exchange still says what a key for it needs (Coinbase: a key name and a private key).
    coinbase = {c["name"]: c["label"] for c in by_id["coinbase"]["credentials"]}
    assert (
        set(coinbase) == {"apiKey", "secret"} and "name" in coinbase["apiKey"] and "Private key" in coinbase["secret"]
    )
    assert "not answering" in by_id["coinbase"]["notes"][0]
    assert [e["id"] for e in exchanges][:2] == ["kraken", "kucoin"]  # online first
    kucoin_fields = [c["name"] for c in by_id["kucoin"]["credentials"]]
    assert kucoin_fields == ["apiKey", "secret", "password"]
    assert "password" not in [c["name"] for c in by_id["kraken"]["credentials"]]
    assert by_id["kraken"]["fees"] == {"maker": "0.0025", "taker": "0.004"}
    assert by_id["kraken"]["notes"] and by_id["kraken"]["modes"][0] == "live"
    _, markets = await user.call("GET", "/exchanges/kraken/markets?search=xbt", expect=200)
    assert {"symbol": "BTC/USD", "market_id": "XXBTZUSD"}.items() <= next(
        m for m in markets if m["symbol"] == "BTC/USD"
    ).items()
    _, in_eur = await user.call("GET", "/exchanges/kraken/markets?quote=eur", expect=200)
    _, every = await user.call("GET", "/exchanges/kraken/markets", expect=200)
    assert in_eur and {m["quote"] for m in in_eur} == {"EUR"}
    assert [m for m in every if m["quote"] == "EUR"] == in_eur and len(every) > len(in_eur)
    # Both bounds of every limit, null where the exchange sets none.
    assert all(set(m["limits"][k]) == {"min", "max"} for m in every for k in ("amount", "cost", "price"))
    status, data = await user.call("GET", "/exchanges/binance/markets")
    assert status == 503 and data["detail"]["code"] == "exchange_unavailable"


async def test_a_bot_on_a_halted_market_is_refused_naming_the_symbol(stack, session) -> None:
    user = await new_user(session, stack["url"])
    _, key = await user.call("POST", "/api-keys", {"exchange": "kraken", "label": "p", "mode": "paper"}, 201)
    bot = {"api_key_id": key["id"], "symbol": "SOL/EUR", "strategy": "dca"}
    bot["params"] = {"quote_amount": "25", "interval_seconds": 3600}

    async def sol_eur_active() -> bool:
        _, found = await user.call("GET", "/exchanges/kraken/markets?search=sol&quote=EUR", expect=200)
        return next(m["active"] for m in found if m["symbol"] == "SOL/EUR")

    async def halted(active: bool) -> None:
        async with SimAdmin(stack["sim"]) as admin:
            await admin._call("POST", "/markets", json={"exchange": "kraken", "symbol": "SOL/EUR", "active": active})
        async with asyncio.timeout(20):  # the connector reads the markets again every 3 s
            while await sol_eur_active() != active:
                await asyncio.sleep(0.5)

    await halted(False)
    try:
        status, data = await user.call("POST", "/bots", bot)
        assert status == 422, data
        assert data["detail"] == {
            "code": "invalid_order",
            "message": "SOL/EUR is not trading on kraken right now",
            "field": "symbol",
        }
    finally:
        await halted(True)
    await user.call("POST", "/bots", bot, 201)  # trading again: the same bot is taken


class Notices:
    """The gateway's `borsa.bots.changed` notices, as a runner sees them."""

    def __init__(self, nc, sub) -> None:
        self.nc, self.sub = nc, sub

    async def next(self) -> BotChanged:
        msg = await self.sub.next_msg(timeout=5)
        return decode(msg.data, BotChanged)


async def notices_of(nats_url: str) -> Notices:
    nc = await nats.connect(nats_url)
    sub = await nc.subscribe(BOTS_CHANGED)
    await nc.flush()
    return Notices(nc, sub)


async def test_kraken_key_and_bot_round_trip(stack, session) -> None:
    user = await new_user(session, stack["url"])
    credentials = await kraken_credentials(stack["sim"])
    _, key = await user.call(
        "POST", "/api-keys", {"exchange": "kraken", "label": "main", "mode": "live", "credentials": credentials}, 201
    )
    api_key = credentials["apiKey"]
    assert key["key_hint"] == f"{api_key[:4]}…{api_key[-4:]}"
    assert credentials["secret"] not in str(key)
    _, keys = await user.call("GET", "/api-keys", expect=200)
    assert [k["id"] for k in keys] == [key["id"]]
    _, bot = await user.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "XBTUSD",
            "strategy": "dca",
            "params": {"quote_amount": "25", "interval_seconds": 3600},
        },
        201,
    )
    _, read = await user.call("GET", f"/bots/{bot['id']}", expect=200)
    assert (read["exchange"], read["symbol"], read["market_id"]) == ("kraken", "BTC/USD", "XXBTZUSD")
    assert read["params"] == {"quote_amount": "25", "interval_seconds": 3600}
    _, listed = await user.call("GET", "/bots?exchange=kraken", expect=200)
    assert [b["id"] for b in listed] == [bot["id"]]
    _, none = await user.call("GET", "/bots?exchange=kucoin", expect=200)
    assert none == []
    notices = await notices_of(stack["nats"])
    _, started = await user.call("POST", f"/bots/{bot['id']}/start", expect=200)
    assert started["status"] == "running"
    _, stopped = await user.call("POST", f"/bots/{bot['id']}/stop?cancel_orders=false", expect=200)
    assert stopped["status"] == "stopped"
    await user.call("POST", f"/bots/{bot['id']}/start", expect=200)
    seen = [await notices.next() for _ in range(3)]
    assert [(n.bot_id, n.status, n.cancel_orders) for n in seen] == [
        (bot["id"], "running", None),
        (bot["id"], "stopped", False),
        (bot["id"], "running", None),
    ]
    await notices.nc.drain()
    _, patched = await user.call(
        "PATCH", f"/bots/{bot['id']}", {"params": {"quote_amount": "30", "interval_seconds": 600}}, 200
    )
    assert patched["params"]["quote_amount"] == "30"
    await user.call("DELETE", f"/api-keys/{key['id']}", expect=204)
    _, paused = await user.call("GET", f"/bots/{bot['id']}", expect=200)
    assert paused["status"] == "paused" and "API key" in paused["status_reason"]
    _, listed = await user.call("GET", "/bots", expect=200)  # the cached list saw the change too
    assert [(b["id"], b["status"]) for b in listed] == [(bot["id"], "paused")]
    status, data = await user.call("POST", f"/bots/{bot['id']}/start")
    assert status == 422 and data["detail"]["field"] == "api_key_id"


async def test_a_wrong_kraken_secret_is_refused_and_nothing_stored(stack, session) -> None:
    user = await new_user(session, stack["url"])
    credentials = await kraken_credentials(stack["sim"])
    credentials["secret"] = base64.b64encode(secrets.token_bytes(64)).decode()
    status, data = await user.call(
        "POST", "/api-keys", {"exchange": "kraken", "label": "bad", "credentials": credentials}
    )
    assert status == 422 and data["detail"]["code"] == "auth_failed"
    _, keys = await user.call("GET", "/api-keys", expect=200)
    assert keys == []


async def test_kucoin_key_without_passphrase_names_the_field(stack, session) -> None:
    user = await new_user(session, stack["url"])
    async with SimAdmin(stack["sim"]) as admin:
        credentials = (await admin.create_account("kucoin", {"USDT": "100"}))["credentials"]
    credentials.pop("password")
    status, data = await user.call(
        "POST", "/api-keys", {"exchange": "kucoin", "label": "k", "credentials": credentials}
    )
    assert status == 422
    assert data["detail"]["field"] == "credentials.password"
    assert "passphrase" in data["detail"]["message"].lower()


async def test_paper_keys_need_no_credentials_and_dca_minimum_is_explained(stack, session) -> None:
    user = await new_user(session, stack["url"])
    _, key = await user.call("POST", "/api-keys", {"exchange": "kucoin", "label": "paper", "mode": "paper"}, 201)
    assert key["key_hint"] == "" and key["mode"] == "paper"
    status, data = await user.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "btc-usdt",
            "strategy": "dca",
            "params": {"quote_amount": "0.05", "interval_seconds": 60},
        },
    )
    assert status == 422 and data["detail"]["code"] == "invalid_order"
    assert "0.1 USDT" in data["detail"]["message"] and "kucoin" in data["detail"]["message"]
    status, data = await user.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "BTC/USDT",
            "strategy": "dca",
            "params": {"quote_amount": 5, "interval_seconds": 60},
        },
    )
    assert status == 422 and data["detail"]["field"] == "params.quote_amount"
    status, data = await user.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "BTC/USDX",
            "strategy": "grid",
            "params": {"low": "1", "high": "2", "levels": 5, "quote_per_level": "10"},
        },
    )
    assert status == 422 and data["detail"]["code"] == "unknown_symbol" and "BTC/USDT" in data["detail"]["message"]
    _, strategies = await user.call("GET", "/strategies", expect=200)
    schemas = {s["name"]: s["params_schema"] for s in strategies}
    assert set(schemas) >= {"dca", "grid", "sma_cross"}
    assert set(schemas["grid"]["required"]) == {"low", "high", "levels", "quote_per_level"}


async def test_another_users_things_are_not_found(stack, session) -> None:
    owner = await new_user(session, stack["url"])
    other = await new_user(session, stack["url"])
    _, key = await owner.call("POST", "/api-keys", {"exchange": "kraken", "label": "p", "mode": "paper"}, 201)
    _, bot = await owner.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "XBTUSD",
            "strategy": "dca",
            "params": {"quote_amount": "20", "interval_seconds": 60},
        },
        201,
    )
    for method, path, body in (
        ("GET", f"/bots/{bot['id']}", None),
        ("PATCH", f"/bots/{bot['id']}", {"params": {"quote_amount": "21", "interval_seconds": 60}}),
        ("POST", f"/bots/{bot['id']}/start", None),
        ("POST", f"/bots/{bot['id']}/stop", None),
        ("DELETE", f"/bots/{bot['id']}", None),
        ("DELETE", f"/api-keys/{key['id']}", None),
    ):
        status, data = await other.call(method, path, body)
        assert status == 404 and data["detail"]["code"] == "not_found", (method, path)
    status, data = await other.call(
        "POST",
        "/bots",
        {
            "api_key_id": key["id"],
            "symbol": "XBTUSD",
            "strategy": "dca",
            "params": {"quote_amount": "20", "interval_seconds": 60},
        },
    )
    assert status == 404 and data["detail"]["field"] == "api_key_id"
    assert (await other.call("GET", "/bots", expect=200))[1] == []
    assert (await other.call("GET", "/api-keys", expect=200))[1] == []
    assert (await owner.call("GET", f"/bots/{bot['id']}", expect=200))[1]["id"] == bot["id"]


async def test_a_canary_secret_never_leaks(stack, session) -> None:
    """The secret of a stored key and of a refused one: not in logs, responses, bus traffic or the database."""
    async with BusTap(stack["nats"]) as bus:
        user = await new_user(session, stack["url"])
        async with SimAdmin(stack["sim"]) as admin:
            credentials = (await admin.create_account("kucoin", {"USDT": "100"}))["credentials"]
        # The simulator chose the secret; the passphrase carries the canary, and a refused key carries it too.
        wrong = {**credentials, "password": CANARY}
        await user.call("POST", "/api-keys", {"exchange": "kucoin", "label": "c", "credentials": wrong}, 422)
        _, key = await user.call(
            "POST", "/api-keys", {"exchange": "kucoin", "label": "ok", "credentials": credentials}, 201
        )
        # The key trades: signed requests, a claim and an order row, an order event on BORSA_ORDERS.
        nc = await nats.connect(stack["nats"])
        try:
            await request(
                nc,
                order_create("kucoin"),
                rq.OrderCreateRequest(
                    account=key["id"], client_order_id=f"canary-{uuid.uuid4().hex[:8]}", symbol="BTC/USDT",
                    side="buy", type="market", amount=Decimal("0.0001"),
                ),
                Order,
                timeout=20,
            )  # fmt: skip
        finally:
            await nc.close()
        for path in ("/api-keys", "/exchanges"):
            await user.call("GET", path, expect=200)
        await asyncio.sleep(0.5)  # the order's event and record
    tables = await table_texts(stack["dsn"])
    assert {"users", "api_keys", "connector_orders"} <= set(tables)
    logs = [stack["gateway"].log_path, *(c.log_path for c in stack["connectors"])]
    for secret in (CANARY, credentials["secret"], credentials["password"]):
        assert found(secret, answers=user.answers, bus=bus, logs=logs, tables=tables) == []
    # The search reaches what it should: the key's id is on the bus and in the connector's tables.
    assert {"bus", "table api_keys", "table connector_orders"} <= set(found(key["id"], bus=bus, tables=tables))


async def test_paper_keys_take_starting_balances_and_the_connector_starts_from_them(stack, session) -> None:
    user = await new_user(session, stack["url"])
    chosen = {"USDT": "2500.50", "BTC": "0.1"}
    _, key = await user.call(
        "POST", "/api-keys", {"exchange": "kucoin", "label": "p", "mode": "paper", "paper_balances": chosen}, 201
    )
    assert key["paper_balances"] == chosen
    _, default = await user.call("POST", "/api-keys", {"exchange": "kucoin", "label": "d", "mode": "paper"}, 201)
    assert default["paper_balances"] is None

    refused = [
        ({"mode": "live", "paper_balances": {"USD": "1"}}, "paper_balances", "only for paper keys"),
        ({"mode": "paper", "paper_balances": {"usdt": "1"}}, "paper_balances.usdt", "upper-case"),
        ({"mode": "paper", "paper_balances": {"USDT": "-1"}}, "paper_balances.USDT", "non-negative decimal string"),
        ({"mode": "paper", "paper_balances": {"USDT": "1e5"}}, "paper_balances.USDT", "non-negative decimal string"),
        ({"mode": "paper", "paper_balances": {"USDT": 5}}, "paper_balances.USDT", "string"),
    ]
    for fields, field, words in refused:
        status, data = await user.call("POST", "/api-keys", {"exchange": "kraken", "label": "x", **fields})
        assert status == 422, (fields, data)
        assert data["detail"]["field"] == field and words in data["detail"]["message"], (fields, data)
    _, keys = await user.call("GET", "/api-keys", expect=200)
    assert {k["id"]: k["paper_balances"] for k in keys} == {key["id"]: chosen, default["id"]: None}

    # The kucoin connector opens the key's paper account with exactly those balances.
    nc = await nats.connect(stack["nats"])
    try:
        reply = await request(nc, balance("kucoin"), rq.BalanceRequest(account=key["id"]), BalanceReply, timeout=15)
    finally:
        await nc.close()
    assert {c: (b.free, b.used) for c, b in reply.balances.items()} == {
        "USDT": (Decimal("2500.50"), Decimal(0)),
        "BTC": (Decimal("0.1"), Decimal(0)),
    }


async def test_a_sandbox_key_for_an_exchange_without_a_testnet_is_refused_at_creation(stack, session) -> None:
    user = await new_user(session, stack["url"])
    credentials = await kraken_credentials(stack["sim"])
    status, data = await user.call(
        "POST", "/api-keys", {"exchange": "kraken", "label": "test", "mode": "sandbox", "credentials": credentials}
    )
    assert status == 422 and data["detail"]["field"] == "mode"
    assert data["detail"]["message"] == "mode must be one of live, paper on kraken"
    _, exchanges = await user.call("GET", "/exchanges", expect=200)
    modes = {e["id"]: e["modes"] for e in exchanges}
    assert "sandbox" not in modes["kraken"] and "sandbox" in modes["binance"]
    _, keys = await user.call("GET", "/api-keys", expect=200)
    assert keys == []
