"""Orders are fitted to their market the way exchanges demand, and what we send passes the simulator's own rules."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, Underflow, localcontext
from decimal import Decimal as D
from typing import Any

import ccxt
import msgspec
import pytest
from ccxt.base.decimal_to_precision import TICK_SIZE, TRUNCATE, decimal_to_precision
from hypothesis import event, given, settings
from hypothesis import strategies as st

import borsa_proto as p
from borsa_connector.markets import market_from_ccxt
from borsa_connector.precision import (
    OrderRuleError,
    check_order,
    prepare_order,
    round_amount,
    round_price,
)
from borsa_runtime.errors import BadRequest, InvalidOrder
from borsa_sim.markets import EXCHANGES, MarketSpec, markets_for
from borsa_testing.sim import ccxt_client

BTC_USD = p.Market(
    symbol="BTC/USD",
    market_id="XXBTZUSD",
    base="BTC",
    quote="USD",
    active=True,
    precision=p.Precision(amount=D("0.00000001"), price=D("0.1")),
    limits=p.Limits(
        amount=p.MinMax(min=D("0.0001"), max=D("1000")),
        cost=p.MinMax(min=D("5"), max=D("1000000")),
        price=p.MinMax(min=D("1"), max=D("1000000")),
    ),
    maker=D("0.0025"),
    taker=D("0.004"),
)


def with_steps(amount: str, price: str) -> p.Market:
    return msgspec.structs.replace(BTC_USD, precision=p.Precision(amount=D(amount), price=D(price)))


# -- rounding ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.123456789", "0.12345678"),
        ("0.999999999", "0.99999999"),  # truncated, never up to 1
        ("0.12345678", "0.12345678"),
        ("0.000000009", "0"),
        ("-0.123456789", "-0.12345678"),  # toward zero
    ],
)
def test_amount_truncates_toward_zero(amount, expected):
    assert round_amount(BTC_USD, D(amount)) == D(expected)


def test_rounded_amount_keeps_the_step_exponent():
    rounded = round_amount(BTC_USD, D("0.0123"))

    assert rounded.as_tuple() == D("0.01230000").as_tuple()
    assert p.encode(p.MinMax(min=round_amount(BTC_USD, D("0.00000001")))) == b'{"min":"0.00000001","max":null}'


@pytest.mark.parametrize(
    ("step", "amount", "expected"),
    [
        ("10", "12345.678", "12340"),
        ("100000", "1999999", "1900000"),
        ("0.5", "1.74", "1.5"),
        ("0.025", "1.06", "1.050"),
    ],
)
def test_amount_steps_that_are_not_decimal_fractions(step, amount, expected):
    rounded = round_amount(with_steps(step, "0.1"), D(amount))

    assert rounded.as_tuple() == D(expected).as_tuple()


@pytest.mark.parametrize(
    ("price", "buy", "sell"),
    [("64000.19", "64000.1", "64000.2"), ("64000.1", "64000.1", "64000.1"), ("0.01", "0.0", "0.1")],
)
def test_buy_rounds_down_and_sell_rounds_up(price, buy, sell):
    assert round_price(BTC_USD, D(price), "buy").as_tuple() == D(buy).as_tuple()
    assert round_price(BTC_USD, D(price), p.Side.SELL).as_tuple() == D(sell).as_tuple()


def test_rounding_ignores_the_thread_decimal_context():
    # ccxt's decimal_to_precision leaves the thread's context at ROUND_HALF_UP; a short one must not matter either.
    with localcontext(Context(prec=6, rounding=ROUND_HALF_UP, traps=[Underflow, InvalidOperation])):
        assert round_amount(BTC_USD, D("123456.123456789")) == D("123456.12345678")
        assert round_price(BTC_USD, D("1234567.89"), "sell") == D("1234567.9")


def test_floats_are_refused():
    with pytest.raises(TypeError, match="Decimal"):
        round_amount(BTC_USD, 0.1)


def test_an_unknown_side_is_a_bad_request():
    with pytest.raises(BadRequest, match="side must be buy or sell"):
        round_price(BTC_USD, D("1"), "hold")


# -- check_order ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order",
    [
        {"amount": D("0.0001"), "price": D("50000")},  # minimum amount, cost exactly 5
        {"amount": D("1000"), "price": D("1000")},  # maximum amount, cost exactly the maximum 1000000
        {"amount": D("5"), "price": D("1")},  # minimum price
        {"amount": D("0.0001"), "price": D("1000000")},  # maximum price
        {"amount": D("0.0001"), "reference_price": D("50000")},  # a market order at the minimum cost
        {"amount": D("0.00010000")},  # no price, no cost check
    ],
)
def test_exact_boundaries_pass(order):
    check_order(BTC_USD, "buy", **order)


@pytest.mark.parametrize(
    ("order", "field", "message"),
    [
        (
            {"amount": D("0.00005"), "price": D("200000")},
            "amount",
            "amount 0.00005 is below the minimum 0.0001 for BTC/USD on kraken",
        ),
        ({"amount": D("1000.00000001"), "price": D("1")}, "amount", "amount 1000.00000001 is above the maximum 1000"),
        (
            {"amount": D("0.0001"), "price": D("49999.9")},
            "cost",
            "cost 4.99999 (0.0001 × 49999.9) is below the minimum 5 for BTC/USD on kraken",
        ),
        ({"amount": D("999"), "price": D("64000")}, "cost", "cost 63936000 (999 × 64000) is above the maximum 1000000"),
        (
            {"amount": D("0.0001"), "reference_price": D("1000")},
            "cost",
            "cost 0.1 (0.0001 × 1000) is below the minimum 5",
        ),
        ({"amount": D("10"), "price": D("0.9")}, "price", "price 0.9 is below the minimum 1 for BTC/USD on kraken"),
        ({"amount": D("0.0001"), "price": D("1000000.1")}, "price", "price 1000000.1 is above the maximum 1000000"),
        (
            {"amount": D("0.000123456789"), "price": D("64000")},
            "amount",
            "amount 0.000123456789 is not a multiple of the step 0.00000001 for BTC/USD on kraken",
        ),
        ({"amount": D("0.01"), "price": D("64000.05")}, "price", "price 64000.05 is not a multiple of the tick 0.1"),
        ({"amount": D("0")}, "amount", "amount must be greater than zero, got 0 for BTC/USD on kraken"),
        ({"amount": D("-1")}, "amount", "amount must be greater than zero, got -1"),
        ({"amount": D("1"), "price": D("0")}, "price", "price must be greater than zero, got 0"),
        (
            {"amount": D("1"), "reference_price": D("-5")},
            "reference_price",
            "reference_price must be greater than zero",
        ),
    ],
)
def test_each_violation_names_its_field(order, field, message):
    with pytest.raises(InvalidOrder) as raised:
        check_order(BTC_USD, "sell", exchange="kraken", **order)

    assert raised.value.message.startswith(message)
    assert raised.value.message.startswith(field + " ")
    assert isinstance(raised.value, OrderRuleError)
    assert raised.value.field == field
    assert raised.value.code == "invalid_order"
    assert raised.value.exchange == "kraken"


def test_whole_numbers_may_be_ints():
    check_order(BTC_USD, "buy", 1, 64000)
    assert prepare_order(BTC_USD, "sell", "limit", 2, 64000) == (D("2.00000000"), D("64000.0"))


def test_the_message_names_the_symbol_without_an_exchange():
    with pytest.raises(InvalidOrder, match=r"^amount 0.00001 is below the minimum 0.0001 for BTC/USD$"):
        check_order(BTC_USD, "buy", D("0.00001"))


# -- prepare_order ----------------------------------------------------------------------------------------------


def test_prepare_rounds_toward_the_user_then_checks():
    assert prepare_order(BTC_USD, "buy", "limit", D("0.0123456789"), D("64000.19")) == (D("0.01234567"), D("64000.1"))
    assert prepare_order(BTC_USD, "sell", "limit", D("0.0123456789"), D("64000.11")) == (D("0.01234567"), D("64000.2"))


def test_prepare_keeps_the_step_exponent():
    amount, price = prepare_order(BTC_USD, "buy", "limit", D("0.0123"), D("64000"))

    assert amount.as_tuple() == D("0.01230000").as_tuple()
    assert price.as_tuple() == D("64000.0").as_tuple()


def test_prepare_checks_the_rounded_values():
    # 49999.99 becomes 49999.9 on a buy, and 0.0001 × 49999.9 is under the minimum cost of 5.
    with pytest.raises(InvalidOrder, match=r"^cost 4.99999 "):
        prepare_order(BTC_USD, "buy", "limit", D("0.0001"), D("49999.99"))
    assert prepare_order(BTC_USD, "sell", "limit", D("0.0001"), D("49999.99")) == (D("0.00010000"), D("50000.0"))


def test_prepare_a_market_order_sends_no_price_and_costs_it_at_the_reference():
    assert prepare_order(BTC_USD, "buy", "market", D("0.001"), reference_price=D("64000")) == (D("0.00100000"), None)
    with pytest.raises(InvalidOrder, match=r"^cost 0.064 "):
        prepare_order(BTC_USD, "buy", "market", D("0.001"), reference_price=D("64"))
    with pytest.raises(InvalidOrder, match=r"^cost 0.064 "):
        prepare_order(BTC_USD, "buy", "market", D("0.001"), price=D("64"))


@pytest.mark.parametrize(
    ("order", "field", "message"),
    [
        ({"type": "limit", "amount": D("1")}, "price", "price is required with a limit order for BTC/USD on kraken"),
        (
            {"type": "limit", "amount": D("0.000000001"), "price": D("64000")},
            "amount",
            "amount 0.000000001 is smaller than the step 0.00000001 for BTC/USD on kraken",
        ),
        (
            {"type": "limit", "amount": D("1"), "price": D("0.05")},
            "price",
            "price 0.05 is smaller than the tick 0.1",
        ),
        ({"type": "limit", "amount": D("0"), "price": D("1")}, "amount", "amount must be greater than zero, got 0"),
        ({"type": "market", "amount": D("-0.5")}, "amount", "amount must be greater than zero, got -0.5"),
    ],
)
def test_prepare_explains_what_rounding_cannot_fix(order, field, message):
    with pytest.raises(OrderRuleError) as raised:
        prepare_order(BTC_USD, "buy", exchange="kraken", **order)

    assert raised.value.field == field
    assert raised.value.message.startswith(message)


def test_prepare_refuses_unknown_types_and_sides_as_bad_requests():
    with pytest.raises(BadRequest, match="type must be one of market, limit"):
        prepare_order(BTC_USD, "buy", "stop", D("1"), D("1"))
    with pytest.raises(BadRequest, match="side must be buy or sell"):
        prepare_order(BTC_USD, "long", "market", D("1"))


# -- where ccxt's amount_to_precision differs (ccxt issue #11765) ------------------------------------------------


def test_ccxt_python_truncates_the_case_reported_in_issue_11765():
    # #11765 is about the JS port (its TICK_SIZE + TRUNCATE went through a float and rounded); in Python 4.5.90
    # the reported case truncates, and we agree.
    with localcontext():
        assert decimal_to_precision("123456.12345678912", TRUNCATE, 1e-08, TICK_SIZE) == "123456.12345678"
    assert round_amount(BTC_USD, D("123456.12345678912")) == D("123456.12345678")


def test_ccxt_rounds_up_inputs_longer_than_28_digits():
    # Python ccxt's face of #11765: decimal_to_precision takes abs() of the amount in the thread's context, which
    # it sets to 28 digits and ROUND_HALF_UP, so a longer amount is rounded (here up to 2) before it is truncated.
    amount = "1.99999999999999999999999999999"
    with localcontext():
        assert decimal_to_precision(amount, TRUNCATE, 1e-08, TICK_SIZE) == "2"
    assert round_amount(BTC_USD, D(amount)) == D("1.99999999")


def test_ccxt_cannot_truncate_when_the_step_count_passes_28_digits():
    amount = "12345678901234567890123.5"
    with localcontext(), pytest.raises(InvalidOperation):
        decimal_to_precision(amount, TRUNCATE, 1e-08, TICK_SIZE)
    assert round_amount(BTC_USD, D(amount)) == D("12345678901234567890123.50000000")


# -- every market of the four simulated exchanges, through the real ccxt classes -------------------------------

SPECS: dict[tuple[str, str], MarketSpec] = {(s.exchange, s.symbol): s for e in EXCHANGES for s in markets_for(e)}
CASES = sorted(SPECS)
# Enough random orders per market to cross every rule, over about a hundred markets.
PER_MARKET = settings(max_examples=40, deadline=None)
# Wide enough that the tests' own sums and products of the drawn values are exact.
EXACT = Context(prec=200)


class Loaded:
    """One exchange's real ccxt class (closed after load_markets: its precision helpers need no network) and our
    Markets; a short repr, because hypothesis prints every argument of a failing example."""

    def __init__(self, client: Any, markets: dict[str, p.Market]) -> None:
        self.client = client
        self.markets = markets

    def __repr__(self) -> str:
        return f"<{len(self.markets)} {self.client.id} markets>"


@pytest.fixture(scope="module")
def sim_markets(sim_url: str) -> dict[str, Loaded]:
    async def load(exchange_id: str) -> Loaded:
        client = ccxt_client(exchange_id, sim_url)
        try:
            await client.load_markets()
        finally:
            await client.close()
        markets = {s: market_from_ccxt(m, client.precisionMode) for s, m in client.markets.items()}
        return Loaded(client, markets)

    async def load_all() -> list[Loaded]:
        return await asyncio.gather(*(load(e) for e in EXCHANGES))

    return dict(zip(EXCHANGES, asyncio.run(load_all()), strict=True))


def decimals(min_exponent: int, max_exponent: int, digits: int = 12) -> st.SearchStrategy[Decimal]:
    """Positive decimals with up to `digits` significant digits, from 10**min_exponent up."""
    return st.builds(
        lambda mantissa, exponent: D(mantissa).scaleb(exponent),
        st.integers(1, 10**digits - 1),
        st.integers(min_exponent, max_exponent),
    )


def exact(value: Decimal, step: Decimal) -> bool:
    """Whether value is a multiple of step, computed without rounding."""
    with localcontext(EXACT):
        return value % step == 0


def sim_rejection(spec: MarketSpec, amount: Decimal, price: Decimal | None, notional: Decimal | None) -> str | None:
    """The simulator's order rules from its market spec, in its order (borsa_sim/engine.py, validate_order)."""
    if amount <= 0 or (price is not None and price <= 0):
        return "invalid_param"
    if price is not None and not exact(price, spec.price_tick):
        return "bad_price_tick"
    if not exact(amount, spec.amount_step):
        return "bad_amount_step"
    if amount < spec.min_amount:
        return "below_min_amount"
    if spec.max_amount and amount > spec.max_amount:
        return "above_max_amount"
    if price is not None and (
        (spec.min_price and price < spec.min_price) or (spec.max_price and price > spec.max_price)
    ):
        return "price_out_of_range"
    if notional is not None and notional < spec.min_cost:
        return "below_min_cost"
    if notional is not None and spec.max_cost and notional > spec.max_cost:
        return "above_max_cost"
    return None


def outcome(call, *args, **kwargs) -> Any:
    """What `call` returns, or the InvalidOrder it raises."""
    try:
        return call(*args, **kwargs)
    except InvalidOrder as refused:
        return refused


def prices_near(spec: MarketSpec) -> st.SearchStrategy[Decimal]:
    """Prices from far under the market's price to ten thousand times it, with more digits than the tick allows."""
    scaled = st.builds(lambda factor: spec.start_price * factor, decimals(-14, -6, digits=10))
    edges = [spec.start_price, spec.min_price, spec.min_price - spec.price_tick]
    if spec.max_price:
        edges += [spec.max_price, spec.max_price + spec.price_tick]
    return st.one_of(scaled, st.sampled_from([e for e in edges if e > 0]))


def amounts_at(spec: MarketSpec, price: Decimal) -> st.SearchStrategy[Decimal]:
    """Amounts worth from a hundred-millionth of a quote unit to 10**14, plus the minimum and just under it."""
    with localcontext(Context(prec=15)):
        worth = st.builds(lambda cost: cost / price, decimals(-14, 8, digits=6))
    edges = [spec.min_amount, spec.min_amount - spec.amount_step, spec.min_amount + spec.amount_step]
    return st.one_of(worth, st.sampled_from([e for e in edges if e > 0]))


@pytest.mark.integration
class TestSimulatedMarkets:
    def test_ccxt_markets_carry_the_simulator_rules(self, sim_markets):
        for exchange in EXCHANGES:
            assert set(sim_markets[exchange].markets) == {s.symbol for s in markets_for(exchange)}
        for (exchange, symbol), spec in SPECS.items():
            market = sim_markets[exchange].markets[symbol]
            assert (market.market_id, market.active) == (spec.market_id, spec.active)
            assert market.precision == p.Precision(amount=spec.amount_step, price=spec.price_tick), symbol
            assert market.limits.amount == p.MinMax(min=spec.min_amount, max=spec.max_amount or None), symbol
            assert market.limits.cost == p.MinMax(min=spec.min_cost, max=spec.max_cost or None), symbol
            assert market.limits.price == p.MinMax(min=spec.min_price or None, max=spec.max_price or None), symbol
            assert (market.maker, market.taker) == (spec.maker, spec.taker), symbol

    @pytest.mark.parametrize(("exchange", "symbol"), CASES)
    @PER_MARKET
    @given(data=st.data())
    def test_rounding_stays_on_the_users_side_within_one_step(self, sim_markets, exchange, symbol, data):
        market = sim_markets[exchange].markets[symbol]
        step, tick = market.precision.amount, market.precision.price
        amount = data.draw(decimals(-20, 12), label="amount")
        price = data.draw(st.one_of(decimals(-20, 9), prices_near(SPECS[exchange, symbol])), label="price")

        rounded = round_amount(market, amount)
        buy, sell = round_price(market, price, "buy"), round_price(market, price, "sell")
        with localcontext(EXACT):
            assert rounded <= amount < rounded + step
            assert buy <= price < buy + tick
            assert sell - tick < price <= sell
        assert exact(rounded, step)
        assert rounded.as_tuple().exponent == min(0, step.as_tuple().exponent)
        assert exact(buy, tick)
        assert exact(sell, tick)
        assert buy.as_tuple().exponent == sell.as_tuple().exponent == min(0, tick.as_tuple().exponent)

    @pytest.mark.parametrize(("exchange", "symbol"), CASES)
    @PER_MARKET
    @given(data=st.data())
    def test_prepared_limit_orders_pass_the_simulator_rules_or_are_refused(self, sim_markets, exchange, symbol, data):
        spec, market = SPECS[exchange, symbol], sim_markets[exchange].markets[symbol]
        side = data.draw(st.sampled_from(["buy", "sell"]), label="side")
        price = data.draw(prices_near(spec), label="price")
        amount = data.draw(amounts_at(spec, price), label="amount")

        sent_amount, sent_price = round_amount(market, amount), round_price(market, price, side)
        with localcontext(EXACT):
            rejection = sim_rejection(spec, sent_amount, sent_price, sent_amount * sent_price)
        prepared = outcome(prepare_order, market, side, "limit", amount, price, exchange=exchange)
        event(rejection or "accepted")
        if isinstance(prepared, InvalidOrder):
            # The other direction: we refuse nothing the exchange would have taken.
            assert rejection is not None, f"refused an order the simulator accepts: {prepared}"
        else:
            assert rejection is None, f"the simulator rejects {prepared}: {rejection}"
            assert prepared == (sent_amount, sent_price)

    @pytest.mark.parametrize(("exchange", "symbol"), CASES)
    @PER_MARKET
    @given(data=st.data())
    def test_prepared_market_orders_pass_the_simulator_rules_or_are_refused(self, sim_markets, exchange, symbol, data):
        # The simulator costs a market order by walking its book; here the rules are applied at the reference price.
        spec, market = SPECS[exchange, symbol], sim_markets[exchange].markets[symbol]
        side = data.draw(st.sampled_from(["buy", "sell"]), label="side")
        reference = data.draw(prices_near(spec), label="reference_price")
        amount = data.draw(amounts_at(spec, reference), label="amount")

        sent_amount = round_amount(market, amount)
        with localcontext(EXACT):
            rejection = sim_rejection(spec, sent_amount, None, sent_amount * reference)
        prepared = outcome(prepare_order, market, side, "market", amount, reference_price=reference)
        event(rejection or "accepted")
        if isinstance(prepared, InvalidOrder):
            assert rejection is not None, f"refused an order the simulator accepts: {prepared}"
        else:
            assert rejection is None, f"the simulator rejects {prepared}: {rejection}"
            assert prepared == (sent_amount, None)

    @pytest.mark.parametrize(("exchange", "symbol"), CASES)
    @PER_MARKET
    @given(data=st.data())
    def test_round_amount_agrees_with_ccxt_amount_to_precision(self, sim_markets, exchange, symbol, data):
        # They agree while the amount, written out to the step's last digit, fits in 28 digits (Python's default
        # decimal precision, which ccxt works in); past that ccxt rounds or raises (the #11765 tests above), which
        # is why the trading path never calls it. Here: up to 10**22, from far below the step to 10**20 steps.
        loaded = sim_markets[exchange]
        step = loaded.markets[symbol].precision.amount
        amount = data.draw(
            st.builds(
                lambda mantissa, exponent: D(mantissa).scaleb(exponent),
                st.integers(1, 10**6 - 1),
                st.integers(step.adjusted() - 8, min(step.adjusted() + 14, 16)),
            ),
            label="amount",
        )

        # decimal_to_precision rewrites the thread's decimal context; keep that inside this block.
        with localcontext():
            try:
                theirs = D(loaded.client.amount_to_precision(symbol, str(amount)))
            except ccxt.InvalidOrder:
                theirs = D(0)  # ccxt refuses an amount that truncates to zero; we return the zero
        assert round_amount(loaded.markets[symbol], amount) == theirs
