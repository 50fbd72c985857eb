"""The exchange contract: one suite, written once, that every exchange's test module subclasses.

It drives the REAL ccxt async class, pointed at the simulator by the URL rule, through every method Borsa
uses and every error it must understand. A subclass supplies only data and the few calls that differ
(how a client order id is passed, how a stale request is provoked).
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import ROUND_UP, Decimal
from typing import Any, ClassVar

import ccxt.async_support as ccxt_async
import pytest
from ccxt.base import errors as E

from borsa_sim.markets import MarketSpec, markets_for
from borsa_testing.plugin import DEFAULT_SIM_ARGS
from borsa_testing.sim import SimAdmin, ccxt_client

D = Decimal
pytestmark = [pytest.mark.contract, pytest.mark.integration]


def dec(value: Any) -> Decimal:
    return D(str(value))


def amount_for(spec: MarketSpec, price: Decimal, factor: int = 3) -> Decimal:
    """An amount on the step that clears both the minimum amount and the minimum cost `factor` times over."""
    by_cost = (spec.min_cost * factor / price / spec.amount_step).to_integral_value(ROUND_UP) * spec.amount_step
    return max(spec.min_amount * factor, by_cost, spec.amount_step)


class ExchangeContract:
    exchange_id: ClassVar[str]
    symbol: ClassVar[str]  # the main market, unified ("BTC/USD")
    market_id: ClassVar[str]  # and its native id ("XXBTZUSD")
    min_markets: ClassVar[int] = 20
    # ccxt exception class each simulated error must raise (checked with pytest.raises, so subclasses count)
    errors: ClassVar[dict[str, type[Exception] | tuple[type[Exception], ...]]] = {
        "wrong_key": E.AuthenticationError,
        "wrong_secret": E.AuthenticationError,
        "stale": E.InvalidNonce,
        "insufficient_funds": E.InsufficientFunds,
        "below_min_amount": E.InvalidOrder,
        "below_min_cost": E.InvalidOrder,
        "amount_step": E.InvalidOrder,
        "price_tick": E.InvalidOrder,
        "unknown_symbol": E.BadSymbol,
        "unknown_order": E.OrderNotFound,
        "duplicate_client_id": E.InvalidOrder,
        # ccxt raises DDoSProtection (418/429 on Binance) or RateLimitExceeded: siblings, not parent and child.
        "rate_limited": (E.DDoSProtection, E.RateLimitExceeded),
        "unavailable": E.ExchangeNotAvailable,
        "timeout": E.RequestTimeout,
    }
    # Does the exchange (through ccxt) parse maker/taker fees out of its market data?
    market_fees_parsed: ClassVar[bool] = True
    fetch_by_client_id: ClassVar[bool] = True
    # The rate-limit test runs against a second simulator with this --rate-limit-scale
    rate_limit_scale: ClassVar[str] = "0.01"

    # -- hooks a subclass may override ----------------------------------------------------------------------
    def client_id_params(self, client_order_id: str) -> dict:
        return {"clientOrderId": client_order_id}

    async def fetch_order_by_client_id(self, ex, client_order_id: str, symbol: str) -> dict:
        return await ex.fetch_order(None, symbol, {"clientOrderId": client_order_id})

    async def stale_request(self, ex) -> None:
        """Make a private call whose timestamp or nonce the exchange must reject as stale."""
        raise NotImplementedError

    async def unknown_symbol_request(self, ex) -> None:
        """Ask the exchange itself (not ccxt's local market table) about a symbol it does not list."""
        raise NotImplementedError

    def wrong_secret(self, credentials: dict) -> dict:
        """Credentials of the right shape for this exchange with a secret that does not match the key."""
        raise NotImplementedError

    def wrong_key(self, credentials: dict) -> dict:
        raise NotImplementedError

    async def hammer_until_limited(self, ex) -> None:
        """Send requests until the exchange's rate limit answers; must raise the rate-limit error."""
        for _ in range(2000):
            await ex.fetch_ticker(self.symbol)
        raise AssertionError("no rate limit after 2000 requests")

    # -- fixtures -----------------------------------------------------------------------------------------------
    @property
    def spec(self) -> MarketSpec:
        return {m.symbol: m for m in markets_for(self.exchange_id)}[self.symbol]

    @pytest.fixture(scope="class")
    @classmethod
    def sim_url(cls, sim_factory) -> str:
        """A simulator of this exchange alone: other exchanges' tests never move its prices."""
        return sim_factory(*DEFAULT_SIM_ARGS, "--exchanges", cls.exchange_id).url

    @pytest.fixture
    async def admin(self, sim_url: str):
        async with SimAdmin(sim_url) as admin:
            yield admin

    @pytest.fixture
    async def account(self, admin: SimAdmin) -> dict:
        spec = self.spec
        return await admin.create_account(
            self.exchange_id, {spec.quote: "1000000", spec.base: str(amount_for(spec, spec.start_price, 50))}
        )

    @pytest.fixture
    async def ex(self, sim_url: str, account: dict):
        client = ccxt_client(self.exchange_id, sim_url, account["credentials"])
        try:
            yield client
        finally:
            await client.close()

    @pytest.fixture
    async def public(self, sim_url: str):
        client = ccxt_client(self.exchange_id, sim_url)
        try:
            yield client
        finally:
            await client.close()

    async def price(self, ex) -> Decimal:
        ticker = await ex.fetch_ticker(self.symbol)
        return dec(ticker["last"])

    async def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.2):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = await predicate()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(interval)

    # -- market data ----------------------------------------------------------------------------------------------
    async def test_load_markets_lists_spot_markets_with_native_ids(self, public) -> None:
        markets = await public.load_markets()
        assert len(markets) >= self.min_markets
        market = markets[self.symbol]
        assert market["id"] == self.market_id
        assert market["spot"] is True
        assert market["active"] is True
        assert public.markets_by_id[self.market_id][0]["symbol"] == self.symbol

    async def test_every_market_has_the_exchange_rules(self, public) -> None:
        markets = await public.load_markets()
        for spec in markets_for(self.exchange_id):
            market = markets[spec.symbol]
            assert market["id"] == spec.market_id, spec.symbol
            assert dec(market["precision"]["price"]) == spec.price_tick, spec.symbol
            assert dec(market["precision"]["amount"]) == spec.amount_step, spec.symbol
            assert dec(market["limits"]["amount"]["min"]) == spec.min_amount, spec.symbol
            if spec.min_cost and market["limits"]["cost"]["min"] is not None:
                assert dec(market["limits"]["cost"]["min"]) == spec.min_cost, spec.symbol
            if self.market_fees_parsed:
                assert dec(market["maker"]) == spec.maker, spec.symbol
                assert dec(market["taker"]) == spec.taker, spec.symbol

    async def test_rules_differ_from_other_exchanges(self) -> None:
        mine = self.spec
        others = [
            {m.symbol.split("/")[0]: m for m in markets_for(ex)}.get(mine.base)
            for ex in ("binance", "kraken", "coinbase", "kucoin")
            if ex != self.exchange_id
        ]
        rules = lambda m: (m.price_tick, m.amount_step, m.min_amount, m.min_cost, m.maker, m.taker)  # noqa: E731
        assert all(rules(o) != rules(mine) for o in others if o is not None)

    async def test_fetch_ticker(self, public) -> None:
        await public.load_markets()
        ticker = await public.fetch_ticker(self.symbol)
        assert ticker["symbol"] == self.symbol
        bid, ask, last = dec(ticker["bid"]), dec(ticker["ask"]), dec(ticker["last"])
        assert 0 < bid < ask
        assert bid * D("0.99") < last < ask * D("1.01")
        assert ticker["timestamp"] is None or ticker["timestamp"] > 1_600_000_000_000

    async def test_fetch_tickers(self, public) -> None:
        await public.load_markets()
        tickers = await public.fetch_tickers()
        assert self.symbol in tickers
        assert len(tickers) >= self.min_markets
        assert all(t["last"] for t in tickers.values())

    async def test_fetch_order_book(self, public) -> None:
        await public.load_markets()
        book = await public.fetch_order_book(self.symbol, 20)
        bids, asks = book["bids"], book["asks"]
        assert bids and asks
        assert dec(bids[0][0]) < dec(asks[0][0])
        assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
        assert [a[0] for a in asks] == sorted(a[0] for a in asks)
        tick = self.spec.price_tick
        assert all(dec(p) % tick == 0 for p, *_ in bids + asks)

    async def test_fetch_ohlcv(self, public) -> None:
        await public.load_markets()
        for timeframe, frame_ms in (("1m", 60_000), ("1h", 3_600_000)):
            candles = await public.fetch_ohlcv(self.symbol, timeframe, limit=10)
            assert 1 <= len(candles) <= 10
            stamps = [c[0] for c in candles]
            assert stamps == sorted(stamps)
            assert all(s % frame_ms == 0 for s in stamps)
            for ts, o, h, low, c, v in candles:
                assert dec(low) <= min(dec(o), dec(c)) <= max(dec(o), dec(c)) <= dec(h), (timeframe, ts)
                assert dec(v) >= 0

    # -- account and orders -----------------------------------------------------------------------------------------
    async def test_fetch_balance_matches_the_account(self, ex, account) -> None:
        balance = await ex.fetch_balance()
        spec = self.spec
        assert dec(balance[spec.quote]["free"]) == D("1000000")
        assert dec(balance[spec.base]["total"]) == amount_for(spec, spec.start_price, 50)

    async def test_market_buy_fills_at_once_with_taker_fee(self, ex, admin, account) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        amount = amount_for(spec, price)
        before = await ex.fetch_balance()
        order = await ex.create_order(self.symbol, "market", "buy", float(amount), self.market_buy_price(price))
        trades = await self.wait_for(lambda: ex.fetch_my_trades(self.symbol))
        assert sum(dec(t["amount"]) for t in trades) == amount
        assert all(t["order"] == order["id"] for t in trades)
        fee = sum(dec(t["fee"]["cost"]) for t in trades)
        cost = sum(dec(t["cost"]) for t in trades)
        assert fee > 0
        rate = fee / (amount if trades[0]["fee"]["currency"] == spec.base else cost)
        assert abs(rate - spec.taker) < D("0.0000001") * 1000, rate
        after = await ex.fetch_balance()
        assert dec(after[spec.base]["total"]) > dec(before[spec.base]["total"])
        assert dec(after[spec.quote]["total"]) < dec(before[spec.quote]["total"]) - cost * D("0.999")
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "closed"
        assert dec(fetched["filled"]) == amount

    def market_buy_price(self, price: Decimal) -> float | None:
        """Coinbase needs a price to turn a market buy's amount into funds; the others ignore it."""
        return None

    async def test_market_sell_fills_at_once(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        amount = amount_for(spec, price)
        order = await ex.create_order(self.symbol, "market", "sell", float(amount))
        fetched = await self.wait_for(lambda: self._closed(ex, order["id"]))
        assert dec(fetched["filled"]) == amount
        assert fetched["side"] == "sell"

    async def _closed(self, ex, order_id: str) -> dict | None:
        order = await ex.fetch_order(order_id, self.symbol)
        return order if order["status"] == "closed" else None

    async def test_limit_order_rests_then_cancels(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.8")) // spec.price_tick) * spec.price_tick
        amount = amount_for(spec, limit)
        order = await ex.create_order(self.symbol, "limit", "buy", float(amount), float(limit))
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "open"
        assert dec(fetched["amount"]) == amount
        assert dec(fetched["price"]) == limit
        assert dec(fetched["filled"]) == 0
        open_orders = await ex.fetch_open_orders(self.symbol)
        assert [o["id"] for o in open_orders] == [order["id"]]
        balance = await ex.fetch_balance()
        assert dec(balance[spec.quote]["used"]) >= amount * limit
        await ex.cancel_order(order["id"], self.symbol)
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["status"] == "canceled"
        assert await ex.fetch_open_orders(self.symbol) == []
        # Where ccxt splits finished orders, its fetch_closed_orders keeps only filled ones (Binance, Coinbase)
        # and the canceled order is found through fetch_canceled_orders.
        finished = await ex.fetch_closed_orders(self.symbol)
        if ex.has.get("fetchCanceledOrders"):
            finished += await ex.fetch_canceled_orders(self.symbol)
        assert order["id"] in [o["id"] for o in finished]
        balance = await ex.fetch_balance()
        assert dec(balance[spec.quote]["used"]) == 0

    @pytest.mark.parametrize("side", ["buy", "sell"])
    async def test_limit_order_fills_when_the_price_crosses_it(self, ex, admin, side) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        factor = D("0.95") if side == "buy" else D("1.05")
        limit = ((price * factor) // spec.price_tick) * spec.price_tick
        amount = amount_for(spec, limit)
        order = await ex.create_order(self.symbol, "limit", side, float(amount), float(limit))
        assert (await ex.fetch_order(order["id"], self.symbol))["status"] == "open"
        crossed = limit * (D("0.98") if side == "buy" else D("1.02"))
        await admin.set_price(self.exchange_id, self.symbol, crossed)
        try:
            fetched = await self.wait_for(lambda: self._closed(ex, order["id"]))
        finally:
            await admin.set_price(self.exchange_id, self.symbol, price)
        assert dec(fetched["filled"]) == amount
        assert dec(fetched["average"]) == limit
        trades = [t for t in await ex.fetch_my_trades(self.symbol) if t["order"] == order["id"]]
        assert trades
        fee = sum(dec(t["fee"]["cost"]) for t in trades)
        base_fee = trades[0]["fee"]["currency"] == spec.base
        assert fee == (amount if base_fee else amount * limit) * spec.maker

    async def test_client_order_id_round_trip(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.8")) // spec.price_tick) * spec.price_tick
        cid = self.new_client_id()
        order = await ex.create_order(
            self.symbol, "limit", "buy", float(amount_for(spec, limit)), float(limit), self.client_id_params(cid)
        )
        fetched = await ex.fetch_order(order["id"], self.symbol)
        assert fetched["clientOrderId"] == cid
        if self.fetch_by_client_id:
            by_cid = await self.fetch_order_by_client_id(ex, cid, self.symbol)
            assert by_cid["id"] == order["id"]
        await ex.cancel_order(order["id"], self.symbol)

    def new_client_id(self) -> str:
        return "borsa" + uuid.uuid4().hex[:16]

    async def test_duplicate_open_client_order_id_is_rejected(self, ex, admin, account) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.8")) // spec.price_tick) * spec.price_tick
        amount = float(amount_for(spec, limit))
        cid = self.new_client_id()
        await ex.create_order(self.symbol, "limit", "buy", amount, float(limit), self.client_id_params(cid))
        with pytest.raises(self.errors["duplicate_client_id"]):
            await ex.create_order(self.symbol, "limit", "buy", amount, float(limit), self.client_id_params(cid))
        mine = [o for o in await admin.orders(self.exchange_id, account["account_id"]) if o["client_order_id"] == cid]
        assert len(mine) == 1

    # -- errors ------------------------------------------------------------------------------------------------------
    async def test_wrong_secret_is_an_authentication_error(self, sim_url, account) -> None:
        client = ccxt_client(self.exchange_id, sim_url, self.wrong_secret(account["credentials"]))
        try:
            with pytest.raises(self.errors["wrong_secret"]):
                await client.fetch_balance()
        finally:
            await client.close()

    async def test_wrong_key_is_an_authentication_error(self, sim_url, account) -> None:
        client = ccxt_client(self.exchange_id, sim_url, self.wrong_key(account["credentials"]))
        try:
            with pytest.raises(self.errors["wrong_key"]):
                await client.fetch_balance()
        finally:
            await client.close()

    async def test_stale_request_is_rejected(self, ex) -> None:
        await ex.load_markets()
        with pytest.raises(self.errors["stale"]):
            await self.stale_request(ex)

    async def test_insufficient_funds(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.9")) // spec.price_tick) * spec.price_tick
        too_much = ((D("2000000") / limit) // spec.amount_step) * spec.amount_step
        with pytest.raises(self.errors["insufficient_funds"]):
            await ex.create_order(self.symbol, "limit", "buy", float(too_much), float(limit))

    async def test_below_minimum_amount(self, ex) -> None:
        await ex.load_markets()
        # The main market, or one whose minimum is more than a single step.
        spec = self.spec
        if spec.min_amount <= spec.amount_step:
            spec = next(m for m in markets_for(self.exchange_id) if m.min_amount > m.amount_step)
        price = dec((await ex.fetch_ticker(spec.symbol))["last"])
        limit = ((price * D("0.9")) // spec.price_tick) * spec.price_tick
        amount = spec.min_amount - spec.amount_step
        extra = () if spec.symbol == self.symbol else (spec.symbol,)
        with pytest.raises(self.errors["below_min_amount"]):
            await self.raw_create(ex, "buy", amount, limit, *extra)

    async def test_below_minimum_cost(self, ex) -> None:
        await ex.load_markets()
        spec = self.spec
        # A price so low that the minimum amount is worth less than the minimum cost.
        low = max(spec.price_tick, (spec.min_cost / spec.min_amount / 10 // spec.price_tick) * spec.price_tick)
        assert spec.min_amount * low < spec.min_cost, "the market data leaves no order below the minimum cost"
        with pytest.raises(self.errors["below_min_cost"]):
            await ex.create_order(
                self.symbol,
                "limit",
                "buy",
                float(spec.min_amount),
                float(low),
            )

    async def test_amount_off_the_step(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.9")) // spec.price_tick) * spec.price_tick
        amount = amount_for(spec, limit) + spec.amount_step / 2
        with pytest.raises(self.errors["amount_step"]):
            await self.raw_create(ex, "buy", amount, limit)

    async def test_price_off_the_tick(self, ex) -> None:
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.9")) // spec.price_tick) * spec.price_tick + spec.price_tick / 2
        with pytest.raises(self.errors["price_tick"]):
            await self.raw_create(ex, "buy", amount_for(spec, limit), limit)

    async def raw_create(self, ex, side: str, amount: Decimal, price: Decimal, symbol: str | None = None) -> dict:
        """Send a limit order with exactly these digits (ccxt's create_order would round them to precision first),
        on `symbol` or the main market."""
        raise NotImplementedError

    async def test_unknown_symbol(self, ex) -> None:
        await ex.load_markets()
        with pytest.raises(self.errors["unknown_symbol"]):
            await self.unknown_symbol_request(ex)

    async def test_unknown_order(self, ex) -> None:
        await ex.load_markets()
        with pytest.raises(self.errors["unknown_order"]):
            await ex.fetch_order(self.unknown_order_id(), self.symbol)

    def unknown_order_id(self) -> str:
        return "123456789"

    async def test_exchange_unavailable_fault(self, ex, admin) -> None:
        await ex.load_markets()
        await admin.add_fault(exchange=self.exchange_id, status=503, count=1)
        with pytest.raises(self.errors["unavailable"]):
            await ex.fetch_ticker(self.symbol)
        assert (await ex.fetch_ticker(self.symbol))["symbol"] == self.symbol

    async def test_timeout_fault(self, sim_url, account, admin) -> None:
        client = ccxt_client(self.exchange_id, sim_url, account["credentials"], timeout_ms=500)
        try:
            await client.load_markets()
            await admin.add_fault(exchange=self.exchange_id, timeout=True, count=1)
            with pytest.raises(self.errors["timeout"]):
                await client.fetch_ticker(self.symbol)
        finally:
            await admin.clear_faults(self.exchange_id)
            await client.close()

    async def test_order_placed_but_answer_lost(self, ex, admin, account) -> None:
        """A fault after the order took effect: the client sees an error, the exchange has the order."""
        await ex.load_markets()
        spec, price = self.spec, await self.price(ex)
        limit = ((price * D("0.8")) // spec.price_tick) * spec.price_tick
        cid = self.new_client_id()
        await admin.add_fault(exchange=self.exchange_id, method="POST", status=502, phase="after", count=1)
        # A bare 5xx carries no exchange error code: ccxt raises ExchangeNotAvailable (a NetworkError) or an
        # ExchangeError depending on the body. Either way the caller cannot know whether the order exists.
        with pytest.raises((E.ExchangeError, E.NetworkError)):
            await ex.create_order(
                self.symbol, "limit", "buy", float(amount_for(spec, limit)), float(limit), self.client_id_params(cid)
            )
        mine = [o for o in await admin.orders(self.exchange_id, account["account_id"]) if o["client_order_id"] == cid]
        assert len(mine) == 1
        assert mine[0]["status"] == "open"

    async def test_rate_limit(self, sim_factory, admin) -> None:
        strict = sim_factory(
            "--rate-limit-scale", self.rate_limit_scale, "--exchanges", self.exchange_id, "--ban-seconds", "5"
        )
        async with SimAdmin(strict.url) as strict_admin:
            spec = self.spec
            account = await strict_admin.create_account(self.exchange_id, {spec.quote: "1000"})
            client = ccxt_client(self.exchange_id, strict.url, account["credentials"])
            try:
                await client.load_markets()
                with pytest.raises(self.errors["rate_limited"]):
                    await self.hammer_until_limited(client)
            finally:
                await client.close()
            stats = await strict_admin.stats()
            assert stats[self.exchange_id]["totals"]["rate_limited"] >= 1

    async def test_malformed_requests_get_the_exchange_error_not_a_traceback(self, sim_url) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            for method, path, body in self.malformed_requests():
                async with session.request(
                    method,
                    f"{sim_url}/{self.exchange_id}{path}",
                    data=body,
                    headers={"Content-Type": "application/json"},
                ) as response:
                    text = await response.text()
                    assert response.status != 500 or "Traceback" not in text, (path, text)
                    assert "Traceback" not in text
                    assert response.status < 500, (method, path, response.status, text)

    def malformed_requests(self) -> list[tuple[str, str, str]]:
        """(method, path, body) triples the exchange must answer with its own client error."""
        return []


__all__ = ["ExchangeContract", "amount_for", "ccxt_async", "dec"]
