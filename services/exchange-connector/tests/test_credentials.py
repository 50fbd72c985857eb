"""API keys on the connector: `credentials.check` for keys about to be stored and for stored ones, `balance`
through one cached client per stored key, revocation notices, and secrets that never leave the process.

Real NATS, Postgres (migrated with borsa_db), simulator and connector processes, and the real ccxt classes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import urllib.request
import uuid
from decimal import Decimal

import asyncpg
import nats
import pytest

from borsa_proto import requests as rq
from borsa_proto.exchange import BalanceReply, CredentialsCheckReply, Describe, Market
from borsa_proto.orders import Order
from borsa_proto.subjects import account_revoked, balance, credentials_check, describe, market, order_create
from borsa_runtime import errors as E
from borsa_runtime.request import request
from borsa_runtime.sealing import generate_keypair, seal, to_wire
from borsa_testing.processes import start_nats
from borsa_testing.sim import SimAdmin
from borsa_testing.trading import SEALING_KEY, sealed, store_key

pytestmark = [pytest.mark.integration, pytest.mark.contract]

PRIVATE = SEALING_KEY
FAST = {"BORSA_RATE_LIMIT_SCALE": "100", "BORSA_REQUEST_TIMEOUT_MS": "3000"}


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    """A NATS server of this module's own: connectors started by other modules must not answer for ours."""
    server = start_nats(tmp_path_factory.mktemp("nats-credentials"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    return sim_factory("--exchanges", "kraken,kucoin,binance", "--rate-limit-scale", "100", "--seed", "11").url


@pytest.fixture(scope="module")
def checkers(tmp_path_factory, sim, connector_factory):
    """For keys about to be stored (no database needed): a NATS server of their own and one connector per
    exchange, shared by the module."""
    server = start_nats(tmp_path_factory.mktemp("nats-checks"))
    started = [
        connector_factory(exchange, server.url, sim, env={"BORSA_SEALING_KEY": PRIVATE, **FAST})
        for exchange in ("kraken", "kucoin", "binance")
    ]
    try:
        yield server.url
    finally:
        for process in started:
            process.stop()
        server.stop()


@pytest.fixture
async def checks(checkers):
    client = await nats.connect(checkers)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def connector(bus, sim, connector_factory, migrated_database):
    """Start a connector of `exchange` holding the sealing key and reading the test's database; stopped after the
    test, so no connector of an earlier test (and its dropped database) answers in the queue group."""
    started = []

    def start(exchange: str = "kraken", **env: str | None):  # None: unset (empty), not inherited
        base = {"BORSA_SEALING_KEY": PRIVATE, "DATABASE_URL": migrated_database, **FAST}
        process = connector_factory(exchange, bus, sim, env={k: v or "" for k, v in {**base, **env}.items()})
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
async def nc(bus):
    client = await nats.connect(bus)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def db(migrated_database):
    conn = await asyncpg.connect(migrated_database)
    try:
        yield conn
    finally:
        await conn.close()


async def sim_account(sim: str, exchange: str, balances: dict[str, str]) -> dict:
    async with SimAdmin(sim) as admin:
        return await admin.create_account(exchange, balances)


async def check(nc, exchange: str, **fields) -> CredentialsCheckReply:
    return await request(
        nc, credentials_check(exchange), rq.CredentialsCheckRequest(**fields), CredentialsCheckReply, timeout=15
    )


async def get_balance(nc, exchange: str, account: str) -> BalanceReply:
    return await request(nc, balance(exchange), rq.BalanceRequest(account=account), BalanceReply, timeout=15)


async def final_log(process) -> str:
    """The connector's whole log: the harness's log pump writes it buffered, complete once the process ends."""
    process.stop()
    size, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        await asyncio.sleep(0.05)
        now = process.log_path.stat().st_size
        if now != size:
            size, stable_since = now, time.monotonic()
    return process.log_path.read_text()


async def balance_or_refusal(nc, account: str) -> BalanceReply | None:
    """The balance, or None once the connector answers unknown_account."""
    try:
        return await get_balance(nc, "kraken", account)
    except E.UnknownAccount:
        return None


def metric(ops_url: str, name: str) -> float:
    with urllib.request.urlopen(f"{ops_url}/metrics") as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name}{{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def sim_balances(account: dict) -> dict[str, dict[str, Decimal]]:
    """The simulator's balances in the bus's shape: non-zero currencies, keyed by the unified code."""
    codes = {"XXBT": "BTC", "XBT": "BTC", "ZUSD": "USD"}
    out = {}
    for asset, value in account["balances"].items():
        row = value if isinstance(value, dict) else {"free": value, "used": "0", "total": value}
        numbers = {k: Decimal(str(row[k])) for k in ("free", "used", "total") if k in row}
        if any(numbers.values()):
            out[codes.get(asset, asset)] = numbers
    return out


# -- keys about to be stored ---------------------------------------------------------------------------------
async def test_a_simulator_kraken_key_passes_the_check(checks, sim):
    account = await sim_account(sim, "kraken", {"USD": "1000"})
    reply = await check(checks, "kraken", sealed_credentials=sealed(account["credentials"]), mode="live")
    assert reply == CredentialsCheckReply(ok=True, balances_visible=True)


async def test_a_wrong_kraken_secret_is_auth_failed(checks, sim):
    account = await sim_account(sim, "kraken", {"USD": "1000"})
    wrong = {**account["credentials"], "secret": base64.b64encode(secrets.token_bytes(64)).decode()}
    with pytest.raises(E.AuthFailed) as refused:
        await check(checks, "kraken", sealed_credentials=sealed(wrong), mode="live")
    assert refused.value.message.startswith("kraken refused this API key: ")
    assert refused.value.exchange == "kraken"
    assert wrong["secret"] not in refused.value.message
    assert account["credentials"]["apiKey"] not in refused.value.message


async def test_a_kraken_secret_that_is_not_base64_is_bad_request(checks, sim):
    account = await sim_account(sim, "kraken", {"USD": "1"})
    with pytest.raises(E.BadRequest, match="secret for kraken must be base64"):
        await check(
            checks,
            "kraken",
            sealed_credentials=sealed({**account["credentials"], "secret": "not base64!"}),
            mode="live",
        )


async def test_kucoin_needs_its_passphrase(checks, sim):
    account = await sim_account(sim, "kucoin", {"USDT": "500"})
    assert set(account["credentials"]) == {"apiKey", "secret", "password"}
    without = {k: v for k, v in account["credentials"].items() if k != "password"}
    with pytest.raises(E.BadRequest) as missing:
        await check(checks, "kucoin", sealed_credentials=sealed(without), mode="live")
    assert missing.value.message == "password (API passphrase) is required for kucoin"
    # The full key passes, and a wrong passphrase is the exchange's refusal.
    ok = await check(checks, "kucoin", sealed_credentials=sealed(account["credentials"]), mode="live")
    assert ok.ok and ok.balances_visible
    with pytest.raises(E.AuthFailed, match=r"^kucoin refused this API key: "):
        await check(checks, "kucoin", sealed_credentials=sealed({**without, "password": "not-the-one"}), mode="live")


async def test_fields_ccxt_does_not_use_are_refused(checks, sim):
    # ccxt's constructor would take `urls` from the same dict: a sealed key must not point the client elsewhere.
    account = await sim_account(sim, "kraken", {"USD": "1"})
    hostile = {**account["credentials"], "urls": "http://attacker.invalid"}
    with pytest.raises(E.BadRequest, match="urls is not a credential kraken uses; it takes apiKey, secret"):
        await check(checks, "kraken", sealed_credentials=sealed(hostile), mode="live")


async def test_paper_needs_no_credentials_and_sandbox_needs_a_testnet(checks, sim):
    assert await check(checks, "kraken", sealed_credentials=sealed({}), mode="paper") == CredentialsCheckReply(ok=True)
    account = await sim_account(sim, "kraken", {"USD": "1"})
    with pytest.raises(E.NotSupported, match="kraken has no sandbox"):
        await check(checks, "kraken", sealed_credentials=sealed(account["credentials"]), mode="sandbox")


async def test_a_binance_sandbox_key_is_checked_against_the_testnet_paths(checks, sim):
    # set_sandbox_mode swaps in testnet.binance.vision/api/v3, and the simulator rewrite keeps its path.
    account = await sim_account(sim, "binance", {"USDT": "100"})
    reply = await check(checks, "binance", sealed_credentials=sealed(account["credentials"]), mode="sandbox")
    assert reply == CredentialsCheckReply(ok=True, balances_visible=True)


async def test_credentials_sealed_for_another_key_are_bad_request(checks):
    _, other_public = generate_keypair()
    foreign = to_wire(seal({"apiKey": "a", "secret": "c2VjcmV0"}, other_public))
    with pytest.raises(E.BadRequest, match="do not open with the kraken connector's key"):
        await check(checks, "kraken", sealed_credentials=foreign, mode="live")
    with pytest.raises(E.BadRequest, match="not valid base64"):
        await check(checks, "kraken", sealed_credentials="%%%", mode="live")


# -- stored keys ---------------------------------------------------------------------------------------------
async def test_a_stored_account_answers_balance_and_its_check(connector, sim, nc, db):
    connector("kraken")
    account = await sim_account(sim, "kraken", {"USD": "1000", "BTC": "0.5", "ETH": "0"})
    key = await store_key(db, "kraken", account["credentials"])
    reply = await get_balance(nc, "kraken", key)
    got = {code: {"free": b.free, "used": b.used, "total": b.total} for code, b in reply.balances.items()}
    assert got == sim_balances(account)
    assert set(reply.balances) == {"USD", "BTC"}  # ETH holds nothing
    assert reply.balances["USD"].total == Decimal("1000")
    assert await check(nc, "kraken", account=key) == CredentialsCheckReply(ok=True, balances_visible=True)


async def test_the_same_account_reuses_one_client(connector, sim, nc, db):
    process = connector("kraken")
    account = await sim_account(sim, "kraken", {"USD": "250"})
    key = await store_key(db, "kraken", account["credentials"])
    async with SimAdmin(sim) as admin:
        before = (await admin.stats())["kraken"]["endpoints"]
        for _ in range(3):
            await get_balance(nc, "kraken", key)
        await check(nc, "kraken", account=key)
        after = (await admin.stats())["kraken"]["endpoints"]

    def calls(stats: dict, endpoint: str) -> int:
        return stats.get(endpoint, {}).get("requests", 0)

    # No client of this process loaded markets again: they are shared from the public client.
    for endpoint in ("GET /0/public/Assets", "GET /0/public/AssetPairs"):
        assert calls(after, endpoint) == calls(before, endpoint), endpoint
    assert calls(after, "POST /0/private/BalanceEx") - calls(before, "POST /0/private/BalanceEx") == 4
    assert metric(process.ops_url, "borsa_connector_account_clients_opened_total") == 1
    assert metric(process.ops_url, "borsa_connector_account_clients") == 1
    opened = [line for line in (await final_log(process)).splitlines() if "account client opened" in line]
    assert len(opened) == 1 and key in opened[0]


async def test_concurrent_first_requests_build_one_client(connector, sim, nc, db):
    process = connector("kraken")
    account = await sim_account(sim, "kraken", {"USD": "5"})
    key = await store_key(db, "kraken", account["credentials"])
    replies = await asyncio.gather(*(get_balance(nc, "kraken", key) for _ in range(10)))
    assert all(r.balances["USD"].total == Decimal("5") for r in replies)
    assert metric(process.ops_url, "borsa_connector_account_clients_opened_total") == 1


async def test_a_revocation_notice_makes_the_next_request_read_the_row_again(connector, sim, nc, db):
    process = connector("kraken")
    account = await sim_account(sim, "kraken", {"USD": "42"})
    key = await store_key(db, "kraken", account["credentials"])
    assert (await get_balance(nc, "kraken", key)).balances["USD"].total == Decimal("42")
    await db.execute("UPDATE api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1", uuid.UUID(key))
    # Until the notice arrives the cached client serves (the row is read again every few minutes regardless).
    assert (await get_balance(nc, "kraken", key)).balances["USD"].total == Decimal("42")
    await nc.publish(account_revoked("kraken"), json.dumps({"account": key}).encode())
    await nc.flush()
    deadline = time.monotonic() + 5
    while await balance_or_refusal(nc, key) is not None:
        assert time.monotonic() < deadline, "the revocation notice was not honoured"
        await asyncio.sleep(0.05)
    with pytest.raises(E.UnknownAccount, match=f"^API key {key} was revoked; add the key again to use it$"):
        await get_balance(nc, "kraken", key)
    with pytest.raises(E.UnknownAccount):
        await check(nc, "kraken", account=key)
    assert metric(process.ops_url, "borsa_connector_account_clients") == 0
    assert "account client dropped" in await final_log(process)


async def test_a_missed_notice_is_caught_by_the_periodic_re_read(connector, sim, nc, db):
    # Revocation notices are at most once: a replica that was reconnecting misses one. The row is read again.
    process = connector("kraken", BORSA_ACCOUNT_RECHECK_SECONDS="1")
    account = await sim_account(sim, "kraken", {"USD": "3"})
    key = await store_key(db, "kraken", account["credentials"])
    await get_balance(nc, "kraken", key)
    await asyncio.sleep(1.1)
    await get_balance(nc, "kraken", key)  # re-read, unchanged: the same client goes on
    assert metric(process.ops_url, "borsa_connector_account_clients_opened_total") == 1
    await db.execute("UPDATE api_keys SET status = 'revoked', revoked_at = now() WHERE id = $1", uuid.UUID(key))
    await asyncio.sleep(1.1)
    with pytest.raises(E.UnknownAccount, match="was revoked"):
        await get_balance(nc, "kraken", key)
    assert metric(process.ops_url, "borsa_connector_account_clients") == 0


async def test_every_replica_hears_the_revocation(connector, sim, nc, db):
    replicas = [connector("kraken"), connector("kraken")]
    account = await sim_account(sim, "kraken", {"USD": "7"})
    key = await store_key(db, "kraken", account["credentials"])
    deadline = time.monotonic() + 10
    while not all(metric(r.ops_url, "borsa_connector_account_clients") == 1 for r in replicas):
        await get_balance(nc, "kraken", key)  # the queue group spreads these over both replicas
        assert time.monotonic() < deadline, "both replicas should have served the account"
    await nc.publish(account_revoked("kraken"), json.dumps({"account": key}).encode())
    await nc.flush()
    deadline = time.monotonic() + 5
    while any(metric(r.ops_url, "borsa_connector_account_clients") != 0 for r in replicas):
        assert time.monotonic() < deadline, "every replica drops the revoked key's client"
        await asyncio.sleep(0.05)


async def test_accounts_of_another_exchange_or_unknown_are_unknown_account(connector, sim, nc, db):
    connector("kraken")
    kucoin = await sim_account(sim, "kucoin", {"USDT": "1"})
    other = await store_key(db, "kucoin", kucoin["credentials"])
    with pytest.raises(E.UnknownAccount, match=f"API key {other} belongs to kucoin, not kraken"):
        await get_balance(nc, "kraken", other)
    with pytest.raises(E.UnknownAccount, match=f"API key {other} belongs to kucoin"):
        await check(nc, "kraken", account=other)
    missing = str(uuid.uuid4())
    with pytest.raises(E.UnknownAccount, match=f"no API key {missing} is stored"):
        await get_balance(nc, "kraken", missing)
    with pytest.raises(E.UnknownAccount, match="must be the id of a stored API key"):
        await get_balance(nc, "kraken", "acc-7")


async def test_a_stored_paper_account_needs_no_client(connector, nc, db):
    process = connector("kraken")
    key = await store_key(db, "kraken", None, mode="paper")
    assert await check(nc, "kraken", account=key) == CredentialsCheckReply(ok=True)
    # Its balances are the connector's own (paper mode): the default starting set, no exchange call.
    assert (await get_balance(nc, "kraken", key)).balances["USD"].free == Decimal("10000")
    assert metric(process.ops_url, "borsa_connector_account_clients_opened_total") == 0


# -- without a key or a database -----------------------------------------------------------------------------
async def test_without_a_sealing_key_market_data_is_served_and_keys_are_refused_clearly(connector, sim, nc, db):
    connector("kraken", BORSA_SEALING_KEY=None)
    assert (await request(nc, market("kraken"), rq.MarketRequest(symbol="XBTUSD"), Market)).symbol == "BTC/USD"
    account = await sim_account(sim, "kraken", {"USD": "1"})
    with pytest.raises(E.NotSupported, match=r"holds no sealing key \(BORSA_SEALING_KEY\)"):
        await check(nc, "kraken", sealed_credentials=sealed(account["credentials"]), mode="live")
    key = await store_key(db, "kraken", account["credentials"])
    with pytest.raises(E.NotSupported, match="holds no sealing key"):
        await get_balance(nc, "kraken", key)
    # Paper keys need nothing opened.
    assert (await check(nc, "kraken", sealed_credentials=sealed({}), mode="paper")).ok


async def test_without_a_database_stored_keys_are_refused_clearly(connector, nc):
    connector("kraken", DATABASE_URL=None)
    assert (await request(nc, describe("kraken"), rq.DescribeRequest(), Describe)).id == "kraken"
    with pytest.raises(E.NotSupported, match="has no DATABASE_URL"):
        await get_balance(nc, "kraken", str(uuid.uuid4()))


async def test_a_database_that_is_down_is_retryable(connector, nc, free_dsn):
    connector("kraken", DATABASE_URL=free_dsn)
    with pytest.raises(E.ExchangeUnavailable, match="cannot read stored API keys right now") as down:
        await get_balance(nc, "kraken", str(uuid.uuid4()))
    assert down.value.retryable
    assert "hunter2" not in down.value.message
    create = rq.OrderCreateRequest(
        account=str(uuid.uuid4()), client_order_id="c-1", symbol="XBTUSD", side="buy", type="market", amount=Decimal(1)
    )
    with pytest.raises(E.ExchangeUnavailable, match="right now") as unrecorded:
        await request(nc, order_create("kraken"), create, Order, timeout=15)
    assert unrecorded.value.retryable and "hunter2" not in unrecorded.value.message


@pytest.fixture
def free_dsn() -> str:
    """A DSN with a password on a port where nothing listens."""
    from borsa_testing.processes import free_port

    return f"postgresql://borsa:hunter2@127.0.0.1:{free_port()}/borsa"


# -- secrets stay in the process -----------------------------------------------------------------------------
async def test_a_canary_secret_never_appears_in_logs_or_replies(connector, sim, nc, db):
    process = connector("kraken", LOG_LEVEL="debug")
    account = await sim_account(sim, "kraken", {"USD": "10"})
    canary = base64.b64encode(b"CANARY-" + secrets.token_bytes(57)).decode()
    canary_key = {**account["credentials"], "secret": canary}
    replies: list[bytes] = []

    async def raw(subject: str, body: dict) -> None:
        replies.append((await nc.request(subject, json.dumps(body).encode(), timeout=15)).data)

    await raw(credentials_check("kraken"), {"sealed_credentials": sealed(canary_key), "mode": "live"})
    await raw(
        credentials_check("kraken"),
        {"sealed_credentials": sealed({"apiKey": "x", "secret": canary[:20] + "!"}), "mode": "live"},
    )
    stored = await store_key(db, "kraken", canary_key)
    await raw(balance("kraken"), {"account": stored})
    await raw(credentials_check("kraken"), {"account": stored})
    good = await store_key(db, "kraken", account["credentials"])
    await raw(balance("kraken"), {"account": good})
    await raw(credentials_check("kraken"), {"sealed_credentials": sealed(account["credentials"]), "mode": "live"})

    codes = [json.loads(r).get("error", {}).get("code") for r in replies]
    assert codes == ["auth_failed", "bad_request", "auth_failed", "auth_failed", None, None]
    log = await final_log(process)
    assert "account client opened" in log
    for value in (canary, canary[:20], account["credentials"]["secret"], account["credentials"]["apiKey"], PRIVATE):
        assert value not in log
        assert all(value.encode() not in r for r in replies)
