"""Request budgets on a fake clock: documented limits less the margin, shared and per-account pools, weights,
replica shares, no fixed window ever exceeded, Retry-After pauses and the ban circuit."""

from __future__ import annotations

import asyncio
import heapq

import pytest

from borsa_connector import budget as budget_module
from borsa_connector.budget import Budgets
from borsa_runtime.errors import RateLimited

EPOCH = 1_700_000_000.0  # wall-clock time when the fake monotonic clock reads 1000


class FakeTime:
    """A monotonic clock that only moves when every task is asleep: the earliest sleeper moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._deadlines: list[float] = []

    def wall(self) -> float:
        return EPOCH + self.now - 1000.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.now + max(0.0, seconds)
        heapq.heappush(self._deadlines, deadline)
        try:
            while self.now < deadline:
                for _ in range(5):  # let runnable tasks reach their own sleep or lock first
                    await asyncio.sleep(0)
                if self.now < deadline and self._deadlines[0] >= deadline:
                    self.now = deadline
        finally:
            self._deadlines.remove(deadline)
            heapq.heapify(self._deadlines)


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(budget_module, "monotonic", lambda: fake.now)
    monkeypatch.setattr(budget_module, "wall", fake.wall)
    monkeypatch.setattr(budget_module, "sleep", fake.sleep)
    return fake


class FakeClient:
    """The three hooks of a ccxt async client, and what its fetch2 does with them."""

    rateLimit = 50
    enableRateLimit = False

    def calculate_rate_limiter_cost(self, api, method, path, params, config={}):  # noqa: B006
        return config.get("cost", 1)

    async def throttle(self, cost=None):
        raise AssertionError("ccxt's own per-client limiter must not run")

    def on_rest_response(self, code, reason, url, method, headers, body, request_headers, request_body):
        return body.strip()

    async def call(self, api, method, path, params=None, cost=1):
        await self.throttle(self.calculate_rate_limiter_cost(api, method, path, params or {}, {"cost": cost}))

    async def order(self):
        await self.call("private", "POST", "order", {"symbol": "BTCUSDT"}, cost=0.2)

    def respond(self, code, body="", headers=None):
        return self.on_rest_response(code, "", "http://x", "GET", headers or {}, body, {}, "")


def attached(budgets: Budgets, account: str | None = None) -> FakeClient:
    client = FakeClient()
    budgets.attach(client, account)
    return client


def pool(budgets: Budgets, label: str) -> dict:
    return budgets.snapshot()["pools"][label]


def test_binance_pools_are_the_documented_limits_less_the_margin() -> None:
    budgets = Budgets("binance", 50)
    attached(budgets, "k1")
    weight, orders = pool(budgets, "ip:default/weight"), pool(budgets, "account:k1/orders_10s")
    assert (weight["limit"], weight["burst"], weight["rate_per_s"]) == (5400, 270, 85.5)
    assert (orders["limit"], orders["burst"], orders["rate_per_s"]) == (90, 4.5, 8.55)
    for label, window in (("ip:default/weight", 60), ("ip:default/raw", 300), ("account:k1/orders_10s", 10)):
        state = pool(budgets, label)
        # Any interval of one window can hold burst + rate * window: never more than the limit less 10%.
        assert state["burst"] + state["rate_per_s"] * window == pytest.approx(state["limit"])
    assert budgets.rate == pytest.approx(85.5 / 5)  # ccxt units: one ccxt cost unit is 5 Binance weight


async def test_calls_within_the_burst_go_at_once_then_queue_in_order(clock) -> None:
    waits = []
    budgets = Budgets("binance", 50, on_wait=waits.append)
    client = attached(budgets, "k1")
    for _ in range(4):
        await client.order()
    assert clock.sleeps == [] and waits == [0.0] * 4
    await client.order()  # 4.5 in the burst: the fifth waits for half an order's worth of refill
    await client.order()
    assert clock.sleeps == pytest.approx([0.5 / 8.55, 1 / 8.55])
    assert waits[4:] == pytest.approx(clock.sleeps)


async def test_every_client_spends_the_one_pool_of_its_egress(clock) -> None:
    budgets = Budgets("binance", 50)
    public, one, two = attached(budgets), attached(budgets, "k1"), attached(budgets, "k2")
    await public.call("public", "GET", "exchangeInfo", cost=4)
    await one.order()
    await two.call("private", "GET", "account", cost=4)
    assert pool(budgets, "ip:default/weight")["spent"] == 20 + 1 + 20
    assert pool(budgets, "ip:default/raw")["spent"] == 3
    assert pool(budgets, "account:k1/orders_10s")["spent"] == 1
    assert "account:k2/orders_10s" in budgets.snapshot()["pools"]
    assert pool(budgets, "account:k2/orders_10s")["spent"] == 0


async def test_one_accounts_queue_never_delays_another_account(clock) -> None:
    waits = []
    budgets = Budgets("binance", 50, on_wait=waits.append)
    busy, quiet = attached(budgets, "busy"), attached(budgets, "quiet")
    start = clock.now
    flood = [asyncio.create_task(busy.order()) for _ in range(40)]
    for _ in range(10):
        await asyncio.sleep(0)
    before = clock.now
    await quiet.order()
    assert clock.now == before and waits[-1] == 0.0
    await asyncio.gather(*flood)
    assert clock.now - start == pytest.approx((40 - 4.5) / 8.55)  # the busy account's own pace, nothing more


async def test_binance_weights_follow_the_endpoint_and_its_parameters(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets, "k1")
    spent = []
    for api, method, path, params, cost in (
        ("public", "GET", "ticker/24hr", {"symbol": "BTCUSDT"}, 0.4),
        ("public", "GET", "ticker/24hr", {}, 16),
        ("public", "GET", "depth", {"symbol": "BTCUSDT", "limit": 1000}, 10),
        ("private", "GET", "order", {"symbol": "BTCUSDT", "orderId": 1}, 0.8),
        ("private", "GET", "openOrders", {}, 16),
        ("private", "GET", "myTrades", {"symbol": "BTCUSDT", "orderId": 1}, 4),
        ("public", "GET", "trades", {"symbol": "BTCUSDT"}, 5),  # not in the table: ccxt's cost, 5 weight per unit
    ):
        before = pool(budgets, "ip:default/weight")["spent"]
        await client.call(api, method, path, params, cost)
        spent.append(pool(budgets, "ip:default/weight")["spent"] - before)
    assert spent == [2, 80, 50, 4, 80, 5, 25]


async def test_kraken_counts_calls_per_key_and_orders_per_pair(clock) -> None:
    budgets = Budgets("kraken", 1000)
    client = attached(budgets, "k1")
    await client.call("private", "POST", "AddOrder", {"pair": "XXBTZUSD"}, cost=0)
    await client.call("private", "POST", "AddOrder", {"pair": "XETHZUSD"}, cost=0)
    await client.call("private", "POST", "AddOrder", {"pair": "XXBTZUSD"}, cost=0)
    await client.call("private", "POST", "CancelOrder", {"txid": "O1"}, cost=0)
    await client.call("private", "POST", "TradesHistory", {}, cost=6)
    await client.call("private", "POST", "BalanceEx", {}, cost=3)
    await client.call("public", "GET", "Ticker", {"pair": "XXBTZUSD"}, cost=1)
    assert pool(budgets, "pair:k1/XXBTZUSD/engine")["spent"] == 2
    assert pool(budgets, "pair:k1/XETHZUSD/engine")["spent"] == 1
    assert pool(budgets, "account:k1/rest")["spent"] == 3  # AddOrder and CancelOrder are free, history costs 2
    assert pool(budgets, "ip:default/public")["spent"] == 1
    rest = pool(budgets, "account:k1/rest")
    assert (rest["limit"], rest["burst"], rest["rate_per_s"]) == (13.5, 13.5, pytest.approx(0.297))


async def test_coinbase_and_kucoin_route_by_api(clock) -> None:
    coinbase = Budgets("coinbase", 34)
    client = attached(coinbase, "k1")
    await client.call(["v3", "public"], "GET", "brokerage/market/products", cost=3)
    await client.call(["v3", "private"], "POST", "brokerage/orders", cost=1)
    await client.call(["v2", "private"], "GET", "accounts", cost=10.6)
    await client.call(["v2", "public"], "GET", "currencies", cost=10.6)
    for label in ("ip:default/public", "account:k1/private", "account:k1/v2", "ip:default/v2_public"):
        assert pool(coinbase, label)["spent"] == 1
    kucoin = Budgets("kucoin", 7.5)
    client = attached(kucoin, "k1")
    await client.call("public", "GET", "market/stats", {"symbol": "BTC-USDT"}, cost=15)
    await client.call("private", "POST", "hf/orders", {"symbol": "BTC-USDT"}, cost=1)
    await client.call("private", "GET", "accounts", {"type": "trade"}, cost=5)
    assert pool(kucoin, "ip:default/public")["spent"] == 15
    assert pool(kucoin, "account:k1/spot")["spent"] == 1
    assert pool(kucoin, "account:k1/management")["spent"] == 5


async def test_a_client_without_a_stored_key_spends_only_its_egress(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets)  # a key being checked before it is stored
    await client.order()
    assert pool(budgets, "ip:default/weight")["spent"] == 1
    assert not [label for label in budgets.snapshot()["pools"] if label.startswith("account:")]


def test_share_and_scale_multiply_every_limit() -> None:
    half = Budgets("binance", 50, share=0.5)
    attached(half, "k1")
    assert pool(half, "ip:default/weight")["limit"] == 2700
    assert pool(half, "account:k1/orders_10s")["limit"] == 45
    kraken = Budgets("kraken", 1000, share=0.5, scale=100)
    attached(kraken, "k1")
    rest = pool(kraken, "account:k1/rest")
    # As the simulator does: a counter's maximum is scaled, its decay is not; a replica gets half of both.
    assert rest["limit"] == pytest.approx(1500 * 0.9 * 0.5)
    assert rest["rate_per_s"] == pytest.approx(0.33 * 0.9 * 0.5)
    tiny = Budgets("binance", 50, scale=0.001)  # 6 weight a minute: never below one whole request
    attached(tiny, "k1")
    orders = pool(tiny, "account:k1/orders_10s")
    assert orders["burst"] + orders["rate_per_s"] * 10 <= 0.9 + 1e-9


def test_any_other_exchange_gets_ccxts_rate_limit() -> None:
    budgets = Budgets("bitfinex", 250, scale=2, share=0.5)
    requests = pool(budgets, "ip:default/requests")
    assert (requests["rate_per_s"], requests["burst"]) == (4, 4)
    assert budgets.rate == 4


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"rate_limit_ms": 0}, "rate_limit_ms must be a positive"),
        ({"scale": 0}, "scale must be greater than 0"),
        ({"share": 1.5}, "share must be above 0 and at most 1"),
        ({"share": 0}, "share must be above 0 and at most 1"),
        ({"margin": 1}, "margin must be at least 0 and below 1"),
    ],
)
def test_bad_settings_are_refused_by_name(arguments, message) -> None:
    with pytest.raises(ValueError, match=message):
        Budgets("binance", **{"rate_limit_ms": 50, **arguments})


@pytest.mark.parametrize(
    ("exchange", "rate_limit_ms", "call", "units", "window", "documented"),
    [
        ("binance", 50, ("private", "POST", "order", {"symbol": "X"}, 0.2), 1, 10, 100),
        ("coinbase", 34, (["v3", "private"], "POST", "brokerage/orders", {}, 1), 1, 1, 30),
        ("kucoin", 7.5, ("public", "GET", "market/stats", {"symbol": "X"}, 15), 15, 30, 2000),
    ],
)
async def test_no_window_at_any_alignment_is_ever_exceeded(
    clock, exchange, rate_limit_ms, call, units, window, documented
) -> None:
    budgets = Budgets(exchange, rate_limit_ms)
    client = attached(budgets, "k1")
    sent: list[tuple[float, float]] = []

    async def flood() -> None:
        while clock.now < 1000 + 4 * window:
            await client.call(*call)
            sent.append((clock.now, units))  # the moment the request leaves

    await asyncio.gather(*(flood() for _ in range(8)))
    most = max(sum(units for at, units in sent if start <= at < start + window) for start, _ in sent)
    assert most <= documented * 0.9 + 1e-6  # the densest window, wherever it starts, keeps the margin
    total = sum(units for at, units in sent if at < 1000 + 4 * window)
    assert total >= 0.85 * documented * 4  # and the pool is used: 85.5% of the documented rate plus the burst


async def test_mixed_weights_never_exceed_binances_minute(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets)
    sent: list[tuple[float, float]] = []

    async def flood(params: dict, weight: float) -> None:
        while clock.now < 1180:
            await client.call("public", "GET", "ticker/24hr", params, 0.4)
            sent.append((clock.now, weight))

    await asyncio.gather(flood({}, 80), flood({"symbol": "BTCUSDT"}, 2), flood({"symbol": "ETHUSDT"}, 2))
    most = max(sum(w for at, w in sent if start <= at < start + 60) for start, _ in sent)
    assert most <= 5400
    assert {w for _, w in sent} == {2, 80}


async def test_a_429_with_retry_after_pauses_only_the_pools_it_concerns(clock) -> None:
    budgets = Budgets("binance", 50)
    public, k1, k2 = attached(budgets), attached(budgets, "k1"), attached(budgets, "k2")
    await k1.order()
    k1.respond(429, '{"code":-1015,"msg":"Too many new orders"}', {"Retry-After": "6"})
    with pytest.raises(RateLimited, match="429") as refused:
        budgets.check("k1")
    assert refused.value.retry_after_ms == 6000 and refused.value.exchange == "binance"
    with pytest.raises(RateLimited):
        await k1.order()  # the throttle refuses too: nothing reaches the exchange
    budgets.check("k2")
    budgets.check(None)
    await k2.order()
    await public.call("public", "GET", "exchangeInfo", cost=4)
    clock.now += 6
    budgets.check("k1")
    await k1.order()
    assert clock.sleeps == []


async def test_a_weight_429_pauses_the_whole_egress(clock) -> None:
    budgets = Budgets("binance", 50)
    public, k1 = attached(budgets), attached(budgets, "k1")
    await public.call("public", "GET", "exchangeInfo", cost=4)
    public.respond(429, '{"code":-1003,"msg":"Too much request weight used"}', {"Retry-After": "40"})
    for account in (None, "k1"):
        with pytest.raises(RateLimited) as refused:
            budgets.check(account)
        assert refused.value.retry_after_ms == 40_000
    with pytest.raises(RateLimited):
        await k1.order()


async def test_a_short_retry_after_is_waited_out(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets, "k1")
    await client.order()
    client.respond(429, '{"code":-1015}', {"Retry-After": "1"})
    budgets.check("k1")  # a pause of a second is waited, not refused
    await client.order()
    assert clock.sleeps == [pytest.approx(1.0)]


async def test_a_429_that_says_nothing_pauses_a_second_then_goes_on_without_a_burst(clock) -> None:
    budgets = Budgets("coinbase", 34)
    client = attached(budgets, "k1")
    await client.call(["v3", "private"], "POST", "brokerage/orders")
    client.respond(429, '{"errors":[{"id":"rate_limit_exceeded"}]}')  # Coinbase sends no Retry-After
    budgets.check("k1")
    for _ in range(3):
        await client.call(["v3", "private"], "POST", "brokerage/orders")
    private = pool(budgets, "account:k1/private")
    one = 1 / private["rate_per_s"]
    assert clock.sleeps == pytest.approx([1.0 + one, one, one])  # then one at a time, at the sustained rate


async def test_a_418_opens_the_circuit_until_the_ban_ends(clock) -> None:
    budgets = Budgets("binance", 50)
    public, k1 = attached(budgets), attached(budgets, "k1")
    until_ms = int((clock.wall() + 30) * 1000)
    body = f'{{"code":-1003,"msg":"Way too much request weight used; IP banned until {until_ms}."}}'
    public.respond(418, body, {"Retry-After": "30"})
    for account in (None, "k1"):
        with pytest.raises(RateLimited, match="banned") as refused:
            budgets.check(account)
        assert refused.value.retry_after_ms == 30_000
    spent = pool(budgets, "ip:default/weight")["spent"]
    for client in (public, k1):
        with pytest.raises(RateLimited, match="banned"):
            await client.call("public", "GET", "time")
    assert pool(budgets, "ip:default/weight")["spent"] == spent  # refused before anything was counted or sent
    assert budgets.snapshot()["banned_s"] == {"default": 30}
    clock.now += 30
    budgets.check("k1")
    await k1.order()


async def test_a_ban_while_waiting_refuses_the_queued_request(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets, "k1")
    for _ in range(4):
        await client.order()
    queued = asyncio.create_task(client.order())  # waits for the bucket
    await asyncio.sleep(0)
    client.respond(418, "banned", {"Retry-After": "120"})
    with pytest.raises(RateLimited, match="banned"):
        await queued


async def test_kraken_says_rate_limit_with_http_200_and_the_counter_fills(clock) -> None:
    budgets = Budgets("kraken", 1000)
    client = attached(budgets, "k1")
    await client.call("private", "POST", "BalanceEx", cost=3)
    client.respond(200, '{"error":["EAPI:Rate limit exceeded"]}')
    await client.call("private", "POST", "BalanceEx", cost=3)
    assert clock.sleeps == [pytest.approx(1 / 0.297, rel=1e-3)]  # one call's worth of decay


async def test_a_queue_longer_than_max_wait_is_refused_at_once(clock) -> None:
    budgets = Budgets("binance", 50, max_wait_s=1.0)
    client = attached(budgets, "k1")
    results = await asyncio.gather(*(client.order() for _ in range(40)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert 10 <= 40 - len(refused) <= 15  # the burst and about a second of orders
    assert all(r.retry_after_ms > 1000 for r in refused)


async def test_binances_own_count_above_our_limit_stops_the_pool_until_its_window_ends(clock) -> None:
    budgets = Budgets("binance", 50)
    client = attached(budgets)
    await client.call("public", "GET", "time")
    client.respond(200, "{}", {"X-MBX-USED-WEIGHT-1M": "5000"})
    budgets.check()  # within what we may spend
    client.respond(200, "{}", {"x-mbx-used-weight-1m": "5990"})  # someone else is spending this minute
    with pytest.raises(RateLimited) as refused:
        budgets.check()
    to_minute_end = 60 - clock.wall() % 60
    assert refused.value.retry_after_ms == pytest.approx((to_minute_end + 1) * 1000, abs=1)


async def test_the_hooks_of_a_real_ccxt_client(clock) -> None:
    import ccxt.async_support as ccxt_async

    budgets = Budgets("binance", 50)
    client = ccxt_async.binance({"apiKey": "k" * 64, "secret": "s" * 64})
    budgets.attach(client, "k1")
    statuses = []

    async def fetch(url, method="GET", headers=None, body=None):  # the network, as ccxt's fetch would see it
        statuses.append(client.on_rest_response(200, "OK", url, method, {}, " {} ", headers, body))
        return {}

    client.fetch = fetch
    await client.publicGetTicker24hr({})
    await client.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
    assert statuses == ["{}", "{}"]
    assert pool(budgets, "ip:default/weight")["spent"] == 81
    assert pool(budgets, "account:k1/orders_10s")["spent"] == 1
    assert client.enableRateLimit is True
