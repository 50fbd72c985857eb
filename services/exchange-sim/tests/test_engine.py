"""The matching engine's rules and invariants, without HTTP: what every dialect relies on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from borsa_sim.engine import ExchangeState, SimError
from borsa_sim.markets import EXCHANGES, markets_for

D = Decimal
pytestmark = pytest.mark.unit


def state(exchange: str = "binance") -> ExchangeState:
    return ExchangeState(exchange, seed=7)


def funded(ex: ExchangeState, **balances: str):
    return ex.create_account(
        f"acc-{len(ex.accounts) + 1}", {"apiKey": f"k{len(ex.accounts)}"}, {k: D(v) for k, v in balances.items()}
    )


def test_same_seed_same_prices() -> None:
    a, b = state(), state()
    for _ in range(50):
        a.step()
        b.step()
    assert {s: w.price for s, w in a.walks.items()} == {s: w.price for s, w in b.walks.items()}
    c = ExchangeState("binance", seed=8)
    for _ in range(50):
        c.step()
    assert {s: w.price for s, w in a.walks.items()} != {s: w.price for s, w in c.walks.items()}


def test_market_lookup_by_symbol_native_id_and_altname() -> None:
    kraken = state("kraken")
    assert kraken.market("XXBTZUSD").symbol == "BTC/USD"
    assert kraken.market("XBTUSD").symbol == "BTC/USD"
    assert kraken.market("BTC/USD").market_id == "XXBTZUSD"
    with pytest.raises(SimError) as err:
        kraken.market("FOO/BAR")
    assert err.value.kind == "unknown_symbol"


def test_every_exchange_lists_twenty_markets_with_rules_on_their_own_grid() -> None:
    for exchange in EXCHANGES:
        specs = markets_for(exchange)
        assert len(specs) >= 20, exchange
        for spec in specs:
            assert spec.start_price % spec.price_tick == 0, spec
            assert spec.min_amount % spec.amount_step == 0, spec


def test_market_buy_fills_against_the_book_with_taker_fee_in_the_received_asset() -> None:
    ex = state("binance")
    account = funded(ex, USDT="100000")
    spec = ex.market("BTCUSDT")
    order = ex.place_order(account, spec, side="buy", type="market", amount=D("0.5"))
    assert order.status == "filled"
    assert order.filled == D("0.5")
    assert order.fee == D("0.5") * spec.taker
    assert order.fee_currency == "BTC"
    assert account.balances["BTC"].free == D("0.5") - order.fee
    assert account.balances["USDT"].free == D("100000") - order.cost
    assert len(order.fills) >= 1


def test_quote_fee_exchange_charges_fee_on_top_of_cost() -> None:
    ex = state("kraken")
    account = funded(ex, USD="100000")
    spec = ex.market("XBTUSD")
    order = ex.place_order(account, spec, side="buy", type="market", amount=D("0.1"))
    assert order.fee_currency == "USD"
    assert account.balances["USD"].free == D("100000") - order.cost - order.fee
    assert order.fee == order.cost * spec.taker


def test_limit_order_reserves_funds_then_fills_as_maker_when_crossed() -> None:
    ex = state("coinbase")
    account = funded(ex, USD="10000")
    spec = ex.market("BTC-USD")
    price = ex.walk(spec).price
    limit = (price * D("0.9")).quantize(spec.price_tick)
    order = ex.place_order(account, spec, side="buy", type="limit", amount=D("0.01"), price=limit)
    assert order.status == "open"
    reserved = D("0.01") * limit * (1 + spec.taker)
    assert account.balances["USD"].used == reserved
    ex.set_price(spec, (limit * D("0.99")).quantize(spec.price_tick))
    assert order.status == "filled"
    assert order.fills[0].liquidity == "maker"
    assert order.fee == D("0.01") * limit * spec.maker
    assert account.balances["USD"].used == 0
    assert account.balances["USD"].free == D("10000") - order.cost - order.fee


def test_cancel_releases_the_reservation_and_cannot_cancel_twice() -> None:
    ex = state("kucoin")
    account = funded(ex, BTC="1")
    spec = ex.market("BTC-USDT")
    limit = (ex.walk(spec).price * D("1.2")).quantize(spec.price_tick)
    order = ex.place_order(account, spec, side="sell", type="limit", amount=D("0.5"), price=limit)
    assert account.balances["BTC"].used == D("0.5")
    ex.cancel_order(account, order)
    assert order.status == "canceled"
    assert account.balances["BTC"].free == D("1")
    with pytest.raises(SimError) as err:
        ex.cancel_order(account, order)
    assert err.value.kind == "order_not_open"


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"amount": D("0.000015")}, "bad_amount_step"),
        ({"amount": D("0.001"), "price": D("1000.005")}, "bad_price_tick"),
        ({"amount": D("0.00001"), "price": D("1000.00")}, "below_min_cost"),
        ({"amount": D("100")}, "insufficient_balance"),
        ({"amount": D("-1")}, "invalid_param"),
        ({"amount": None}, "missing_param"),
    ],
)
def test_rule_violations_are_typed(kwargs, kind) -> None:
    ex = state("binance")
    account = funded(ex, USDT="1000")
    spec = ex.market("BTCUSDT")
    order_type = "limit" if "price" in kwargs else "market"
    with pytest.raises(SimError) as err:
        ex.place_order(account, spec, side="buy", type=order_type, **kwargs)
    assert err.value.kind == kind
    assert err.value.field


def test_duplicate_open_client_id_is_refused_but_reusable_after_close() -> None:
    ex = state("binance")
    account = funded(ex, USDT="100000")
    spec = ex.market("BTCUSDT")
    limit = (ex.walk(spec).price * D("0.5")).quantize(spec.price_tick)
    first = ex.place_order(account, spec, side="buy", type="limit", amount=D("0.01"), price=limit, client_order_id="x")
    with pytest.raises(SimError) as err:
        ex.place_order(account, spec, side="buy", type="limit", amount=D("0.01"), price=limit, client_order_id="x")
    assert err.value.kind == "duplicate_client_id"
    ex.cancel_order(account, first)
    second = ex.place_order(account, spec, side="buy", type="limit", amount=D("0.01"), price=limit, client_order_id="x")
    assert ex.get_order(account, client_order_id="x") is second


def test_candles_are_consistent_and_aligned() -> None:
    ex = state("kraken")
    spec = ex.market("XXBTZUSD")
    for _ in range(5):
        ex.step()
    for timeframe, frame in (("1m", 60_000), ("15m", 900_000), ("1h", 3_600_000), ("1d", 86_400_000)):
        candles = ex.ohlcv(spec, timeframe, None, 50)
        assert candles
        for c in candles:
            assert c.ts % frame == 0
            assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
    with pytest.raises(SimError):
        ex.ohlcv(spec, "7m", None, 10)


# -- the property: random order flow never breaks the books ---------------------------------------------------
operation = st.one_of(
    st.tuples(st.just("market"), st.sampled_from(["buy", "sell"]), st.integers(1, 400)),
    st.tuples(st.just("limit"), st.sampled_from(["buy", "sell"]), st.integers(1, 400), st.integers(-300, 300)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("move"), st.integers(-400, 400)),
    st.tuples(st.just("step"), st.integers(1, 5)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchange=st.sampled_from(EXCHANGES), market_index=st.integers(0, 19), ops=st.lists(operation, max_size=40))
def test_random_order_flow_never_makes_a_balance_negative(exchange, market_index, ops) -> None:
    ex = state(exchange)
    spec = markets_for(exchange)[market_index]
    start_price = ex.walk(spec).price
    # Enough of each asset for a few orders, not so much that nothing is ever refused.
    quote_funds = spec.min_cost * 50 + start_price * spec.min_amount * 20
    account = funded(ex, **{spec.quote: str(quote_funds), spec.base: str(spec.min_amount * 40)})
    orders = []
    for op in ops:
        try:
            if op[0] in ("market", "limit"):
                amount = spec.min_amount * op[2] / 10
                amount = max(spec.amount_step, (amount // spec.amount_step) * spec.amount_step)
                price = None
                if op[0] == "limit":
                    price = ((ex.walk(spec).price * (1 + D(op[3]) / 1000)) // spec.price_tick) * spec.price_tick
                    price = max(price, spec.price_tick)
                orders.append(ex.place_order(account, spec, side=op[1], type=op[0], amount=amount, price=price))
            elif op[0] == "cancel" and orders:
                ex.cancel_order(account, orders[op[1] % len(orders)])
            elif op[0] == "move":
                target = max(spec.price_tick, ex.walk(spec).price * (1 + D(op[1]) / 1000))
                ex.set_price(spec, target)
            elif op[0] == "step":
                for _ in range(op[1]):
                    ex.step()
        except SimError:
            pass  # refused orders are fine; what matters is what accepted ones did
        for asset, holding in account.balances.items():
            assert holding.free >= 0, (asset, holding)
            assert holding.used >= 0, (asset, holding)
        reserved = {}
        for order in orders:
            if order.is_open:
                reserved[order.reserved_asset] = reserved.get(order.reserved_asset, 0) + order.reserved
        for asset, holding in account.balances.items():
            assert holding.used == reserved.get(asset, 0), asset
    event(f"fills: {min(sum(len(o.fills) for o in orders), 3)}")
    for order in orders:
        assert order.filled <= (order.amount or order.filled)
        for fill in order.fills:
            assert fill.amount % spec.amount_step == 0
            assert fill.price % spec.price_tick == 0
            assert fill.amount > 0
        if order.type == "limit":
            assert all((f.price <= order.price if order.side == "buy" else f.price >= order.price) for f in order.fills)
