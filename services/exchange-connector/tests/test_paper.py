"""Paper accounts: orders filled by the connector against the exchange's own order book and ticker, with the
market's precision, limits and fees, balances in Postgres, and nothing sent to the exchange's private API.

Real Postgres (migrated), a real simulator and the real ccxt classes behind `CcxtExchangeAPI`. The module runs its
own simulator, paused, so an order book only moves when a test sets a price (exact expectations), and so its
request counts are this module's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from decimal import Decimal as D
from decimal import localcontext

import asyncpg
import pytest

from borsa_connector import paper_fills as pf
from borsa_connector.accounts import AccountStore
from borsa_connector.exchanges.registry import resolve_exchange
from borsa_connector.paper import DEFAULT_STARTING_BALANCES, PaperClient
from borsa_connector.paper_ledger import PaperLedger
from borsa_runtime import errors as E
from borsa_sim.app import Sim
from borsa_testing.sim import SimAdmin

pytestmark = [pytest.mark.integration, pytest.mark.contract]

ZERO = D(0)


@pytest.fixture(scope="module")
def sim(sim_factory) -> str:
    url = sim_factory("--seed", "5", "--tick-interval", "0.25", "--rate-limit-scale", "100").url

    async def pause() -> None:
        async with SimAdmin(url) as admin:
            await admin.pause(True)

    asyncio.run(pause())
    return url


@pytest.fixture(scope="module")
def dsn(database_factory) -> str:
    """One migrated database for the module: every test uses keys of its own."""
    return database_factory()


@pytest.fixture
async def pool(dsn):
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        try:  # a failed test may leave a connection checked out: never hang the run on it
            await asyncio.wait_for(pool.close(), 10)
        except TimeoutError:
            pool.terminate()


@pytest.fixture
async def exchange_api(sim):
    """`await exchange_api("kraken")`: a started CcxtExchangeAPI on the module's simulator, closed afterwards."""
    started = []

    async def start(name: str):
        exchange_id, cls = resolve_exchange(name)
        api = cls(exchange_id, sim_url=sim, rate_limit_scale=100)
        await api.start()
        started.append(api)
        return api

    try:
        yield start
    finally:
        for api in started:
            await api.close()


async def paper_key(pool, exchange: str, balances: dict[str, str] | None) -> str:
    """A paper row in api_keys as the gateway writes it; returns its id (the bus's `account`)."""
    user = await pool.fetchval(
        "INSERT INTO users (email, password_hash) VALUES ($1, 'argon2-hash') RETURNING id",
        f"{uuid.uuid4().hex}@example.test",
    )
    key = await pool.fetchval(
        "INSERT INTO api_keys (user_id, exchange_name, label, mode, paper_balances) "
        "VALUES ($1, $2, 'paper', 'paper', $3::jsonb) RETURNING id",
        user,
        exchange,
        None if balances is None else json.dumps(balances),
    )
    return str(key)


async def paper_account(pool, api, balances: dict[str, str]) -> PaperClient:
    key = await paper_key(pool, api.id, balances)
    return PaperClient(api, key, pool, {c: D(v) for c, v in balances.items()}, quote_max_age_s=0)


async def set_price(sim: str, exchange: str, symbol: str, price: str) -> None:
    async with SimAdmin(sim) as admin:
        await admin.set_price(exchange, symbol, price)


async def book_side(api, symbol: str, side: str) -> list[tuple[D, D]]:
    """The levels an order of `side` takes, read independently of the paper code, best first."""
    book = await api.public.fetch_order_book(symbol, 100)
    return [(D(str(p)), D(str(s))) for p, s, *_ in book["asks" if side == "buy" else "bids"]]


def take(levels: list[tuple[D, D]], amount: D) -> list[tuple[D, D]]:
    taken, left = [], amount
    for price, size in levels:
        if left == 0:
            break
        taken.append((price, min(size, left)))
        left -= min(size, left)
    assert left == 0, "the book is too thin for this test's order"
    return taken


def fee(cost: D, rate: D) -> D:
    return (cost * rate).quantize(D("1e-12"))


async def balances(paper: PaperClient) -> dict[str, tuple[D, D]]:
    raw = await paper.fetch_balance()
    for currency, row in raw["total"].items():
        assert row == raw["free"][currency] + raw["used"][currency]
        assert not isinstance(row, float)
    return {c: (raw["free"][c], raw["used"][c]) for c in raw["free"]}


# -- market orders ------------------------------------------------------------------------------------------------


async def test_market_buy_and_sell_fill_against_the_book_with_the_taker_fee_in_quote(sim, pool, exchange_api):
    api = await exchange_api("kraken")
    await set_price(sim, "kraken", "BTC/USD", "60000")
    market = api.market("BTC/USD")
    paper = await paper_account(pool, api, {"USD": "200000"})
    asks = await book_side(api, "BTC/USD", "buy")
    expected = take(asks, D("1.5"))
    assert len(expected) >= 2, "the order should walk more than one level"

    with localcontext() as ctx:
        ctx.prec = 60
        order = await paper.create_order("BTC/USD", "market", "buy", "1.5", None, {"clientOrderId": "mb-1"})
        cost = sum((p * s for p, s in expected), ZERO)
        fees = sum((fee(p * s, market.taker) for p, s in expected), ZERO)
        assert market.taker == D("0.004")  # the market's own rate, not ccxt's exchange-wide default
        assert (order["status"], order["filled"], order["remaining"]) == ("closed", D("1.5"), ZERO)
        assert order["clientOrderId"] == "mb-1" and order["type"] == "market" and order["price"] is None
        assert order["cost"] == cost and order["fee"] == {"cost": fees, "currency": "USD"}
        assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in order["trades"]] == [
            (p, s, "taker") for p, s in expected
        ]
        assert all(t["fee"]["currency"] == "USD" and t["order"] == order["id"] for t in order["trades"])
        assert await balances(paper) == {"USD": (D(200000) - cost - fees, ZERO), "BTC": (D("1.5"), ZERO)}

        bids = await book_side(api, "BTC/USD", "sell")
        sold = take(bids, D("0.4"))
        sell = await paper.create_order("BTC/USD", "market", "sell", D("0.4"), None, {"clientOrderId": "ms-1"})
        proceeds = sum((p * s for p, s in sold), ZERO)
        sell_fees = sum((fee(p * s, market.taker) for p, s in sold), ZERO)
        assert sell["status"] == "closed" and sell["cost"] == proceeds
        assert sell["fee"] == {"cost": sell_fees, "currency": "USD"}
        usd = D(200000) - cost - fees + proceeds - sell_fees
        assert await balances(paper) == {"USD": (usd, ZERO), "BTC": (D("1.1"), ZERO)}

    trades = await paper.fetch_my_trades("BTC/USD")
    assert [t["order"] for t in trades] == [order["id"]] * len(expected) + [sell["id"]] * len(sold)
    closed = await paper.fetch_closed_orders("BTC/USD")
    assert [o["id"] for o in closed] == [order["id"], sell["id"]]
    assert await paper.fetch_open_orders() == []


# -- limit orders -------------------------------------------------------------------------------------------------


async def test_limit_orders_rest_hold_funds_and_fill_as_maker_when_the_market_crosses(sim, pool, exchange_api):
    api = await exchange_api("binance")
    await set_price(sim, "binance", "BTC/USDT", "60000")
    market = api.market("BTC/USDT")
    maker = market.maker
    paper = await paper_account(pool, api, {"USDT": "1000", "BTC": "0.02"})

    buy = await paper.create_order("BTC/USDT", "limit", "buy", "0.01", "59000.00", {"clientOrderId": "lb-1"})
    sell = await paper.create_order("BTC/USDT", "limit", "sell", "0.02", "62000.00", {"clientOrderId": "ls-1"})
    held = D("590") + fee(D("590"), maker)
    assert (buy["status"], buy["filled"], buy["trades"]) == ("open", ZERO, [])
    assert sell["status"] == "open" and sell["info"]["reserved"] == D("0.02")
    assert await balances(paper) == {"USDT": (D(1000) - held, held), "BTC": (ZERO, D("0.02"))}
    assert [o["id"] for o in await paper.fetch_open_orders("BTC/USDT")] == [buy["id"], sell["id"]]
    assert await paper.match() == []  # the market has not reached either

    await set_price(sim, "binance", "BTC/USDT", "58000")
    assert await paper.match() == [buy["id"]]
    filled = await paper.fetch_order(buy["id"], "BTC/USDT")
    assert (filled["status"], filled["filled"], filled["average"], filled["cost"]) == (
        "closed",
        D("0.01"),
        D(59000),
        D(590),
    )
    assert filled["fee"] == {"cost": fee(D("590"), maker), "currency": "USDT"}
    assert [(t["price"], t["takerOrMaker"]) for t in filled["trades"]] == [(D(59000), "maker")]
    assert await balances(paper) == {"USDT": (D(1000) - held, ZERO), "BTC": (D("0.01"), D("0.02"))}
    assert await paper.match() == []  # filled once

    await set_price(sim, "binance", "BTC/USDT", "63000")
    assert await paper.match() == [sell["id"]]
    proceeds = D("1240") - fee(D("1240"), maker)
    assert await balances(paper) == {"USDT": (D(1000) - held + proceeds, ZERO), "BTC": (D("0.01"), ZERO)}
    assert await paper.fetch_open_orders() == []


async def test_a_limit_order_that_crosses_fills_as_taker_up_to_its_price_and_rests_the_rest(sim, pool, exchange_api):
    api = await exchange_api("kucoin")
    await set_price(sim, "kucoin", "ETH/USDT", "3000")
    market = api.market("ETH/USDT")
    paper = await paper_account(pool, api, {"USDT": "100000"})
    asks = await book_side(api, "ETH/USDT", "buy")
    best, size = asks[0]
    assert asks[1][0] > best
    amount = size + D("0.5")

    order = await paper.create_order("ETH/USDT", "limit", "buy", amount, best, {"clientOrderId": "x-1"})

    with localcontext() as ctx:
        ctx.prec = 60
        taker_cost = best * size
        held = best * D("0.5") + fee(best * D("0.5"), market.maker)
        assert (order["status"], order["filled"], order["remaining"]) == ("open", size, D("0.5"))
        assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in order["trades"]] == [(best, size, "taker")]
        assert order["fee"]["cost"] == fee(taker_cost, market.taker)
        spent = taker_cost + fee(taker_cost, market.taker)
        assert await balances(paper) == {"USDT": (D(100000) - spent - held, held), "ETH": (size, ZERO)}


async def test_cancel_releases_the_reservation_and_a_closed_order_cannot_be_canceled(sim, pool, exchange_api):
    api = await exchange_api("coinbase")
    await set_price(sim, "coinbase", "ETH/USD", "3000")
    paper = await paper_account(pool, api, {"USD": "5000", "ETH": "1"})
    start = await balances(paper)
    buy = await paper.create_order("ETH/USD", "limit", "buy", "1", "2500", {"clientOrderId": "c-1"})
    sell = await paper.create_order("ETH/USD", "limit", "sell", "0.5", "3500", {"clientOrderId": "c-2"})
    assert (await balances(paper))["USD"][1] > 0 and (await balances(paper))["ETH"][1] == D("0.5")

    canceled = await paper.cancel_order(buy["id"], "ETH/USD")
    assert canceled["status"] == "canceled" and canceled["info"]["reserved"] == 0
    by_client_id = await paper.cancel_order(None, "ETH/USD", {"clientOrderId": "c-2"})
    assert by_client_id["id"] == sell["id"] and by_client_id["status"] == "canceled"
    assert await balances(paper) == start

    with pytest.raises(E.InvalidOrder, match="already canceled"):
        await paper.cancel_order(buy["id"], "ETH/USD")
    with pytest.raises(E.OrderNotFound):
        await paper.cancel_order("no-such-order", "ETH/USD")
    with pytest.raises(E.OrderNotFound):
        await paper.fetch_order(buy["id"], "BTC/USD")  # another market's order book
    assert [o["status"] for o in await paper.fetch_closed_orders()] == ["canceled", "canceled"]
    assert await balances(paper) == start


# -- refusals -----------------------------------------------------------------------------------------------------


async def test_insufficient_funds_and_market_rules_are_refused_and_change_nothing(sim, pool, exchange_api):
    api = await exchange_api("kucoin")
    await set_price(sim, "kucoin", "BTC/USDT", "60000")
    paper = await paper_account(pool, api, {"USDT": "100"})

    with pytest.raises(E.InsufficientFunds) as buy:
        await paper.create_order("BTC/USDT", "market", "buy", "0.01", None, {"clientOrderId": "f-1"})
    assert "USDT" in buy.value.message and "100 USDT is free" in buy.value.message
    with pytest.raises(E.InsufficientFunds) as resting:
        await paper.create_order("BTC/USDT", "limit", "buy", "0.002", "50000", {"clientOrderId": "f-2"})
    assert "needs 100.1 USDT (cost 100 + fee 0.1 USDT) and 100 USDT is free" in resting.value.message
    with pytest.raises(E.InsufficientFunds) as sell:
        await paper.create_order("BTC/USDT", "market", "sell", "0.001", None, {"clientOrderId": "f-3"})
    assert "needs 0.001 BTC" in sell.value.message and "0 BTC is free" in sell.value.message
    with pytest.raises(E.InvalidOrder, match="amount"):
        await paper.create_order("BTC/USDT", "limit", "buy", "0.0000001", "50000", {"clientOrderId": "f-4"})
    with pytest.raises(E.InvalidOrder, match="price is required"):
        await paper.create_order("BTC/USDT", "limit", "buy", "0.001", None, {"clientOrderId": "f-5"})
    with pytest.raises(E.BadRequest, match="never a float"):
        await paper.create_order("BTC/USDT", "limit", "buy", 0.001, "50000", {"clientOrderId": "f-6"})

    assert await balances(paper) == {"USDT": (D(100), ZERO)}  # rolled back: not even an empty BTC row
    assert await paper.fetch_open_orders() == [] and await paper.fetch_closed_orders() == []
    assert await paper.fetch_my_trades() == []


async def test_a_second_create_with_the_same_client_order_id_is_refused_as_a_duplicate(sim, pool, exchange_api):
    api = await exchange_api("binance")
    await set_price(sim, "binance", "ETH/USDT", "3000")
    paper = await paper_account(pool, api, {"USDT": "100000"})
    first = await paper.create_order("ETH/USDT", "market", "buy", "0.5", None, {"clientOrderId": "dup-1"})

    with pytest.raises(E.InvalidOrder, match="duplicate clientOrderId 'dup-1'"):
        await paper.create_order("ETH/USDT", "market", "buy", "0.5", None, {"clientOrderId": "dup-1"})
    results = await asyncio.gather(
        *(paper.create_order("ETH/USDT", "limit", "buy", "0.1", "2000", {"clientOrderId": "dup-2"}) for _ in range(6)),
        return_exceptions=True,
    )

    placed = [r for r in results if isinstance(r, dict)]
    assert len(placed) == 1
    assert all(isinstance(r, E.InvalidOrder) and "duplicate" in r.message for r in results if r not in placed)
    assert (await balances(paper))["ETH"] == (D("0.5"), ZERO)
    found = await paper.fetch_order(None, "ETH/USDT", {"clientOrderId": "dup-1"})
    assert found["id"] == first["id"] and found["filled"] == D("0.5")
    assert len(await paper.fetch_open_orders()) == 1


class RacingLedger(PaperLedger):
    """Once it has read its balances, waits (at most 0.1 s) until `racers` orders have read theirs: without the row
    locks they would all read the same free balance at once and overspend it; with them, the others wait."""

    def __init__(self, *args, racers: int) -> None:
        super().__init__(*args)
        self.racers, self.arrived, self.all_in = racers, 0, asyncio.Event()

    async def lock(self, conn, currencies):
        locked = await super().lock(conn, currencies)
        self.arrived += 1
        if self.arrived >= self.racers:
            self.all_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_in.wait(), 0.1)
        return locked


async def test_concurrent_orders_cannot_overspend(sim, pool, exchange_api):
    api = await exchange_api("binance")
    await set_price(sim, "binance", "BTC/USDT", "60000")
    maker = api.market("BTC/USDT").maker
    each = D("50") + fee(D("50"), maker)  # 0.001 BTC at 50000, maker fee held too
    key = await paper_key(pool, "binance", {"USDT": str(each * 2)})
    paper = PaperClient(api, key, pool, {"USDT": each * 2})
    paper.ledger = RacingLedger(pool, key, "binance", {"USDT": each * 2}, racers=4)  # the pool's four connections

    results = await asyncio.gather(
        *(
            paper.create_order("BTC/USDT", "limit", "buy", "0.001", "50000", {"clientOrderId": f"cc-{i}"})
            for i in range(8)
        ),
        return_exceptions=True,
    )

    assert sum(isinstance(r, dict) for r in results) == 2
    assert all(isinstance(r, E.InsufficientFunds) for r in results if not isinstance(r, dict)), results
    assert await balances(paper) == {"USDT": (ZERO, each * 2), "BTC": (ZERO, ZERO)}
    assert len(await paper.fetch_open_orders("BTC/USDT")) == 2


# -- durability and the account store ----------------------------------------------------------------------------


async def test_state_survives_a_new_client_and_starting_balances_are_set_only_once(sim, dsn, pool, exchange_api):
    api = await exchange_api("kraken")
    await set_price(sim, "kraken", "ETH/USD", "3000")
    paper = await paper_account(pool, api, {"USD": "10000"})
    bought = await paper.create_order("ETH/USD", "market", "buy", "1", None, {"clientOrderId": "r-1"})
    resting = await paper.create_order("ETH/USD", "limit", "buy", "1", "2000", {"clientOrderId": "r-2"})
    before = await balances(paper)
    trades = await paper.fetch_my_trades()

    other_pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        # Another process, another pool, even other starting balances: what was traded stays as it is.
        again = PaperClient(api, paper.account_id, other_pool, {"USD": D("5"), "EUR": D("7")}, quote_max_age_s=0)
        after = await balances(again)
        assert {c: v for c, v in after.items() if c != "EUR"} == before
        assert after["EUR"] == (D(7), ZERO)  # a currency added to the starting set is added
        assert await again.fetch_my_trades() == trades
        assert [o["id"] for o in await again.fetch_open_orders()] == [resting["id"]]
        assert [o["id"] for o in await again.fetch_closed_orders()] == [bought["id"]]
        await set_price(sim, "kraken", "ETH/USD", "1900")
        assert await again.match() == [resting["id"]]
        assert (await again.fetch_order(resting["id"]))["status"] == "closed"
        assert (await balances(again))["ETH"] == (D(2), ZERO)
    finally:
        await other_pool.close()


async def test_the_account_store_serves_paper_keys_with_their_starting_balances(sim, dsn, pool, exchange_api):
    api = await exchange_api("kucoin")
    store = AccountStore(api, database_url=dsn, sealing_key=None)  # paper keys need no sealing key
    api.accounts = store
    try:
        chosen = await paper_key(pool, "kucoin", {"USDT": "2500", "BTC": "0.1"})
        default = await paper_key(pool, "kucoin", None)
        async with store.lease(chosen) as lease:
            assert getattr(lease.client, "paper", False) and lease.account.mode == "paper"
        reply = await api.balance(chosen)
        assert {c: (b.free, b.used, b.total) for c, b in reply.balances.items()} == {
            "BTC": (D("0.1"), ZERO, D("0.1")),
            "USDT": (D(2500), ZERO, D(2500)),
        }
        reply = await api.balance(default)
        assert {c: b.free for c, b in reply.balances.items()} == DEFAULT_STARTING_BALANCES
        assert (await api.check_account(default)).ok
    finally:
        await store.close()


async def test_paper_arithmetic_matches_its_pure_functions(sim, pool, exchange_api):
    """The stored order equals what paper_fills plans for the same book: one arithmetic, not two."""
    api = await exchange_api("coinbase")
    await set_price(sim, "coinbase", "SOL/USD", "150")
    market = api.market("SOL/USD")
    paper = await paper_account(pool, api, {"USD": "1000000"})
    asks = await book_side(api, "SOL/USD", "buy")
    amount = asks[0][1] + asks[1][1]
    plan = pf.plan_order(
        "buy", "market", amount, None, asks, step=market.precision.amount, taker=market.taker, maker=market.maker
    )

    order = await paper.create_order("SOL/USD", "market", "buy", amount, None, {"clientOrderId": "pf-1"})

    assert order["cost"] == plan.cost and order["fee"]["cost"] == plan.fee and order["filled"] == plan.filled


async def test_every_exchange_fills_with_its_own_precision_and_the_exchange_sees_nothing_private(
    sim, pool, exchange_api
):
    """One market per exchange, each with other steps, ticks and fees (and a BTC quote on KuCoin). Last in the
    module, so its look at the simulator's request counts covers every paper call the module made."""
    cases = {
        "binance": ("DOGE/USDT", "0.12", "1000000"),
        "kraken": ("XRP/USD", "0.55", "1000000"),
        "coinbase": ("SHIB/USD", "0.000025", "1000000"),
        "kucoin": ("ETH/BTC", "0.05", "100"),
    }
    for exchange, (symbol, price, funds) in cases.items():
        api = await exchange_api(exchange)
        await set_price(sim, exchange, symbol, price)
        market = api.market(symbol)
        paper = await paper_account(pool, api, {market.quote: funds})
        asks = await book_side(api, symbol, "buy")
        # Three levels' worth and a bit, on the amount step: several fills, the last one partial.
        amount = sum((s for _, s in asks[:3]), ZERO) + market.precision.amount * 7
        expected = take(asks, amount)
        with localcontext() as ctx:
            ctx.prec = 60
            order = await paper.create_order(symbol, "market", "buy", amount, None, {"clientOrderId": f"{exchange}-1"})
            cost = sum((p * s for p, s in expected), ZERO)
            fees = sum((fee(p * s, market.taker) for p, s in expected), ZERO)
            assert order["status"] == "closed", exchange
            assert order["cost"] == cost and order["fee"] == {"cost": fees, "currency": market.quote}, exchange
            for trade in order["trades"]:
                assert trade["amount"] % market.precision.amount == 0, (exchange, trade)
                assert trade["price"] % market.precision.price == 0, (exchange, trade)
            assert await balances(paper) == {
                market.quote: (D(funds) - cost - fees, ZERO),
                market.base: (amount, ZERO),
            }, exchange

    private = {
        name: {
            f"{m} {path}" for m, path, _, is_private, _ in Sim(exchanges=(name,)).dialects[name].routes if is_private
        }
        for name in cases
    }
    async with SimAdmin(sim) as admin:
        stats = await admin.stats()
        assert await admin.orders() == []  # no order ever reached the exchange
    for name in cases:
        seen = {endpoint for endpoint, counts in stats[name]["endpoints"].items() if counts["requests"]}
        assert seen, name
        assert not seen & private[name], f"{name} got private requests: {sorted(seen & private[name])}"
        assert any("book" in e.lower() or "depth" in e.lower() for e in seen), (name, seen)
