"""Request budgets against the simulator at the documented limits (scale 1): real ccxt clients, one Budgets per
exchange, no connector process. The simulator's counters are the judge: zero 429 and 418, limits used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import ccxt.async_support as ccxt_async
import pytest

from borsa_connector.budget import Budgets
from borsa_runtime.errors import RateLimited
from borsa_testing.sim import SimAdmin, ccxt_client

pytestmark = pytest.mark.integration

FUNDS = {"USDT": "100000000", "USD": "100000000", "BTC": "100"}
SYMBOLS = {"binance": "BTC/USDT", "kraken": "BTC/USD", "coinbase": "BTC/USD", "kucoin": "BTC/USDT"}
RATE_LIMIT_MS = {"binance": 50, "kraken": 1000, "coinbase": 34, "kucoin": 7.5}


@pytest.fixture(scope="module")
def sim(sim_factory):
    exchanges = "binance,kraken,coinbase,kucoin"
    return sim_factory("--exchanges", exchanges, "--rate-limit-scale", "1", "--seed", "5", "--tick-interval", "1")


class Exchange:
    """One exchange as a connector process sees it: a public client with markets, a Budgets, account clients."""

    def __init__(self, exchange: str, sim_url: str, **budget_options) -> None:
        self.id, self.sim_url = exchange, sim_url
        self.budgets = Budgets(exchange, RATE_LIMIT_MS[exchange], **budget_options)
        self.public = ccxt_client(exchange, sim_url)
        self.budgets.attach(self.public)
        self.clients = [self.public]

    def account(self, credentials: dict, account: str, *, budgeted: bool = True):
        client = ccxt_client(self.id, self.sim_url, credentials)
        if self.public.markets:
            client.set_markets(self.public.markets, self.public.currencies)
        if budgeted:
            self.budgets.attach(client, account)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self.clients))


@pytest.fixture
async def exchanges(sim) -> AsyncIterator:
    opened: list[Exchange] = []

    async def open_exchange(exchange: str, *, load_markets: bool = True, sim_url: str | None = None, **options):
        ex = Exchange(exchange, sim_url or sim.url, **options)
        opened.append(ex)
        if load_markets:
            await ex.public.load_markets()
        return ex

    yield open_exchange
    for ex in opened:
        await ex.close()


async def new_account(sim_url: str, exchange: str) -> dict:
    async with SimAdmin(sim_url) as admin:
        return await admin.create_account(exchange, FUNDS)


async def resting_buy(ex: Exchange) -> tuple[str, float, float]:
    """A limit buy at half the price: it rests, so every order stays in Binance's unfilled-order count."""
    symbol = SYMBOLS[ex.id]
    last = (await ex.public.fetch_ticker(symbol))["last"]
    price = float(ex.public.price_to_precision(symbol, last * 0.5))
    amount = float(ex.public.amount_to_precision(symbol, 25 / price))
    return symbol, amount, price


def rate_limited(stats: dict, exchange: str) -> int:
    return stats.get(exchange, {}).get("totals", {}).get("rate_limited", 0)


def requests_to(stats: dict, exchange: str, endpoint: str) -> int:
    return stats.get(exchange, {}).get("endpoints", {}).get(endpoint, {}).get("requests", 0)


async def flood(call, seconds: float, tasks: int) -> tuple[int, float]:
    """`tasks` loops calling `call` until `seconds` have passed; (calls made, seconds it took)."""
    start = time.monotonic()
    deadline = start + seconds
    done = 0

    async def loop() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await call()
            done += 1

    await asyncio.gather(*(loop() for _ in range(tasks)))
    return done, time.monotonic() - start


async def test_three_binance_accounts_use_their_order_limit_without_a_429(sim, exchanges) -> None:
    binance = await exchanges("binance")
    symbol, amount, price = await resting_buy(binance)
    accounts = [await new_account(sim.url, "binance") for _ in range(3)]
    clients = [binance.account(a["credentials"], a["account_id"]) for a in accounts]
    async with SimAdmin(sim.url) as admin:
        before = await admin.stats()
        results = await asyncio.gather(
            *(flood(lambda c=c: c.create_order(symbol, "limit", "buy", amount, price), 6, 4) for c in clients)
        )
        after = await admin.stats()
        placed = [len(await admin.orders("binance", a["account_id"])) for a in accounts]
    assert rate_limited(after, "binance") == rate_limited(before, "binance")  # no 429, no 418
    for (sent, seconds), count in zip(results, placed, strict=True):
        assert count == sent
        # Binance allows 100 orders per 10 s per account: at least 80% of that was used.
        assert count / (10 * seconds) >= 0.8, f"{count} orders in {seconds:.1f} s"


async def test_binance_weights_are_the_ones_binance_counts(sim, exchanges) -> None:
    binance = await exchanges("binance")
    account = await new_account(sim.url, "binance")
    client = binance.account(account["credentials"], account["account_id"])
    symbol = SYMBOLS["binance"]

    def used() -> int:
        return int(binance.public.last_response_headers["X-MBX-USED-WEIGHT-1M"])

    for _ in range(3):  # the exchange's count restarts every minute: retry a sequence that straddled one
        minute = time.time() // 60
        await binance.public.fetch_time()
        exchange_before, ours_before = used(), binance.budgets.snapshot()["pools"]["ip:default/weight"]["spent"]
        await binance.public.fetch_ticker(symbol)
        await binance.public.fetch_order_book(symbol)
        await binance.public.fetch_tickers()
        await client.fetch_balance()
        await client.fetch_open_orders(symbol)
        await client.fetch_my_trades(symbol)
        await binance.public.fetch_time()
        if time.time() // 60 == minute:
            break
    ours = binance.budgets.snapshot()["pools"]["ip:default/weight"]["spent"] - ours_before
    assert ours == used() - exchange_before == 2 + 5 + 80 + 20 + 6 + 20 + 1


async def fill_order_window(client, symbol: str, amount: float, price: float) -> None:
    while True:
        await client.create_order(symbol, "limit", "buy", amount, price)


async def test_binance_retry_after_is_honoured(sim, exchanges) -> None:
    binance = await exchanges("binance")
    symbol, amount, price = await resting_buy(binance)
    account = await new_account(sim.url, "binance")
    # Another program on the same key (no budget) fills the account's 10 s order window.
    rogue = binance.account(account["credentials"], account["account_id"], budgeted=False)
    ours = binance.account(account["credentials"], account["account_id"])
    async with SimAdmin(sim.url) as admin:
        for _ in range(3):
            await asyncio.sleep(5.2 - time.time() % 10 if time.time() % 10 < 5 else 15.2 - time.time() % 10)
            # ccxt's binance raises DDoSProtection for a 429 as well as a 418.
            with pytest.raises(ccxt_async.DDoSProtection, match="429"):
                await fill_order_window(rogue, symbol, amount, price)
            with pytest.raises(ccxt_async.DDoSProtection, match="-1015"):
                await ours.create_order(symbol, "limit", "buy", amount, price)
            retry_after = int(ours.last_response_headers["Retry-After"])
            if retry_after >= 2:  # a pause of a second or less is waited, not refused: try a fresh window
                break
        stats = await admin.stats()
        with pytest.raises(RateLimited) as refused:
            binance.budgets.check(account["account_id"])
        assert 1000 < refused.value.retry_after_ms <= retry_after * 1000
        with pytest.raises(RateLimited):
            await ours.create_order(symbol, "limit", "buy", amount, price)
        assert requests_to(await admin.stats(), "binance", "POST /api/v3/order") == requests_to(
            stats, "binance", "POST /api/v3/order"
        )  # refused here, not sent
        binance.budgets.check()  # the IP's pools are not paused: only this account's orders
        await binance.public.fetch_time()
        await asyncio.sleep(refused.value.retry_after_ms / 1000)
        binance.budgets.check(account["account_id"])
        order = await ours.create_order(symbol, "limit", "buy", amount, price)
        assert order["id"]


async def test_a_418_ban_opens_the_circuit_and_nothing_reaches_the_exchange(sim_factory, exchanges) -> None:
    banning = sim_factory("--exchanges", "binance", "--rate-limit-scale", "0.01", "--ban-seconds", "3")
    binance = await exchanges("binance", load_markets=False, sim_url=banning.url, scale=0.01)
    rogue = ccxt_client("binance", banning.url)  # no budget: it gets the IP banned
    try:
        for _ in range(300):  # 60 weight a minute, then the seventh 429 in a minute is the ban
            try:
                await rogue.fetch_time()
            except ccxt_async.DDoSProtection as exc:
                if " 418 " in str(exc):
                    break
        else:
            pytest.fail("the simulator never banned the rogue client")
    finally:
        await rogue.close()
    with pytest.raises(ccxt_async.DDoSProtection, match="banned until"):
        await binance.public.fetch_time()  # the first answer the budget sees is the 418
    async with SimAdmin(banning.url) as admin:
        stats = await admin.stats()
        with pytest.raises(RateLimited, match="banned") as refused:
            binance.budgets.check()
        assert 0 < refused.value.retry_after_ms <= 3000
        for _ in range(5):
            with pytest.raises(RateLimited, match="banned"):
                await binance.public.fetch_time()
        assert (await admin.stats())["binance"]["totals"] == stats["binance"]["totals"]  # nothing was sent
        await asyncio.sleep(refused.value.retry_after_ms / 1000)
        await admin.reset_limits()  # the ban is over; clear the minute's spent weight as well
        binance.budgets.check()
        assert await binance.public.fetch_time() > 0


async def test_kraken_orders_stay_under_the_trading_engine_counter(sim, exchanges) -> None:
    kraken = await exchanges("kraken")
    symbol, amount, price = await resting_buy(kraken)
    account = await new_account(sim.url, "kraken")
    client = kraken.account(account["credentials"], account["account_id"])
    async with SimAdmin(sim.url) as admin:
        before = await admin.stats()
        # One task: Kraken's nonce must grow with every call. 60 per pair, decaying 1/s; less 10%.
        sent, _ = await flood(lambda: client.create_order(symbol, "limit", "buy", amount, price), 5, 1)
        after = await admin.stats()
    assert rate_limited(after, "kraken") == rate_limited(before, "kraken")
    assert sent >= 54


async def test_coinbase_private_requests_stay_under_30_a_second(sim, exchanges) -> None:
    coinbase = await exchanges("coinbase")
    symbol, amount, price = await resting_buy(coinbase)
    account = await new_account(sim.url, "coinbase")
    client = coinbase.account(account["credentials"], account["account_id"])
    async with SimAdmin(sim.url) as admin:
        before = await admin.stats()
        sent, seconds = await flood(lambda: client.create_order(symbol, "limit", "buy", amount, price), 3, 6)
        after = await admin.stats()
    assert rate_limited(after, "coinbase") == rate_limited(before, "coinbase")
    assert sent / seconds >= 0.8 * 30 * 0.9


async def test_kucoin_spot_weights_are_the_ones_kucoin_counts(sim, exchanges) -> None:
    kucoin = await exchanges("kucoin")
    symbol, amount, price = await resting_buy(kucoin)
    account = await new_account(sim.url, "kucoin")
    client = kucoin.account(account["credentials"], account["account_id"])
    await client.load_migration_status()
    order = await client.create_order(symbol, "limit", "buy", amount, price)
    await client.fetch_order(order["id"], symbol)
    await client.fetch_open_orders(symbol)
    await client.cancel_order(order["id"], symbol)
    headers = client.last_response_headers
    counted = int(headers["gw-ratelimit-limit"]) - int(headers["gw-ratelimit-remaining"])
    assert kucoin.budgets.snapshot()["pools"][f"account:{account['account_id']}/spot"]["spent"] == counted > 0
