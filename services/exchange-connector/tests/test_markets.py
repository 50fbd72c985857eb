"""ccxt market dicts become bus Markets with tick-size precision in every precisionMode; market tables diff."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec
import pytest
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE

import borsa_proto as p
from borsa_connector.markets import MarketChange, market_changes, market_from_ccxt
from borsa_proto.exchange import MarketEventKind


def ccxt_market(**overrides: Any) -> dict[str, Any]:
    """A ccxt unified market shaped like binance's BTC/USDT (floats, as ccxt's parse_number gives them)."""
    market = {
        "id": "BTCUSDT",
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "active": True,
        "precision": {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08},
        "limits": {
            "leverage": {"min": None, "max": None},
            "amount": {"min": 1e-05, "max": 9000.0},
            "price": {"min": 0.01, "max": 1000000.0},
            "cost": {"min": 5.0, "max": 9000000.0},
            "market": {"min": 1e-05, "max": 9000.0},
        },
        "maker": 0.001,
        "taker": 0.001,
    }
    return {**market, **overrides}


def wire(market: p.Market) -> dict[str, Any]:
    return msgspec.json.decode(p.encode(market))


# -- TICK_SIZE --------------------------------------------------------------------------------------------------


def test_tick_size_keeps_the_tick_and_every_field():
    market = market_from_ccxt(ccxt_market(), TICK_SIZE)

    assert market == p.Market(
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        base="BTC",
        quote="USDT",
        active=True,
        precision=p.Precision(amount=D("0.00001"), price=D("0.01")),
        limits=p.Limits(
            amount=p.MinMax(min=D("0.00001"), max=D("9000")),
            cost=p.MinMax(min=D("5"), max=D("9000000")),
            price=p.MinMax(min=D("0.01"), max=D("1000000")),
        ),
        maker=D("0.001"),
        taker=D("0.001"),
    )


def test_floats_become_their_shortest_decimal_never_the_binary_expansion():
    market = market_from_ccxt(ccxt_market(precision={"amount": 1e-08, "price": 0.1}, taker=0.0012), TICK_SIZE)

    # Decimal(0.1) would be 0.1000000000000000055511151231257827...
    assert market.precision.price.as_tuple() == D("0.1").as_tuple()
    assert market.taker.as_tuple() == D("0.0012").as_tuple()
    assert wire(market)["precision"] == {"amount": "0.00000001", "price": "0.1"}


def test_tick_size_takes_whole_and_string_ticks():
    market = market_from_ccxt(ccxt_market(precision={"amount": 10.0, "price": "0.0005"}), TICK_SIZE)

    assert wire(market)["precision"] == {"amount": "10", "price": "0.0005"}


# -- DECIMAL_PLACES ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("places", "tick"),
    [(8, "0.00000001"), (8.0, "0.00000001"), (1, "0.1"), (0, "1"), (-2, "100")],
)
def test_decimal_places_become_a_power_of_ten(places, tick):
    market = market_from_ccxt(ccxt_market(precision={"amount": places, "price": places}), DECIMAL_PLACES)

    assert wire(market)["precision"] == {"amount": tick, "price": tick}


def test_decimal_places_must_be_whole():
    with pytest.raises(ValueError, match="must be whole"):
        market_from_ccxt(ccxt_market(precision={"amount": 0.5, "price": 2}), DECIMAL_PLACES)


# -- SIGNIFICANT_DIGITS -----------------------------------------------------------------------------------------


def test_significant_digits_price_tick_is_the_coarsest_in_the_price_range():
    # 5 significant digits up to a maximum price of 250000: 249990 has 5 digits, so the tick is 10.
    market = market_from_ccxt(
        ccxt_market(precision={"amount": 8, "price": 5}, limits={"price": {"min": 1e-08, "max": 250000.0}}),
        SIGNIFICANT_DIGITS,
    )

    assert wire(market)["precision"] == {"amount": "0.00000001", "price": "10"}


def test_significant_digits_price_tick_gives_at_most_n_digits_below_the_maximum():
    market = market_from_ccxt(
        ccxt_market(precision={"amount": 8, "price": 4}, limits={"price": {"max": 9.5}}), SIGNIFICANT_DIGITS
    )

    tick = market.precision.price
    assert tick == D("0.001")
    assert len((D("9.499") // tick * tick).normalize().as_tuple().digits) <= 4


def test_significant_digits_without_a_maximum_price_count_decimal_places():
    # Bitfinex lists a minimum price of 1e-8 and no maximum (ccxt bitfinex.py fetch_markets).
    market = market_from_ccxt(
        ccxt_market(precision={"amount": 8, "price": 5}, limits={"price": {"min": 1e-08, "max": None}}),
        SIGNIFICANT_DIGITS,
    )

    assert wire(market)["precision"] == {"amount": "0.00000001", "price": "0.00001"}


def test_significant_digits_amount_counts_decimal_places_as_ccxt_overrides_do():
    # bitfinex.py and bithumb.py both round amounts with DECIMAL_PLACES despite their precisionMode.
    market = market_from_ccxt(
        ccxt_market(precision={"amount": 4, "price": 4}, limits={"amount": {"max": 1000.0}}), SIGNIFICANT_DIGITS
    )

    assert market.precision.amount == D("0.0001")


# -- everything else --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("active", "expected"), [(True, True), (None, True), (False, False)])
def test_active_none_counts_as_active(active, expected):
    assert market_from_ccxt(ccxt_market(active=active), TICK_SIZE).active is expected


def test_missing_limits_stay_none_and_a_zero_maximum_means_none():
    limits = {
        "amount": {"min": 5e-05, "max": 0},
        "cost": {"min": 0.5, "max": None},
        "price": {"min": None, "max": 0.0},
    }
    market = market_from_ccxt(ccxt_market(limits=limits, maker=None, taker=None), TICK_SIZE)

    assert market.limits == p.Limits(amount=p.MinMax(min=D("0.00005")), cost=p.MinMax(min=D("0.5")), price=p.MinMax())
    assert market.maker is None
    assert market.taker is None


def test_absent_limit_groups_become_empty_ranges():
    market = market_from_ccxt(ccxt_market(limits={}), TICK_SIZE)

    assert market.limits == p.Limits()


def test_market_survives_the_bus():
    market = market_from_ccxt(ccxt_market(precision={"amount": 1e-08, "price": 1e-11}), TICK_SIZE)

    assert p.decode(p.encode(market), p.Market) == market
    assert wire(market)["precision"] == {"amount": "0.00000001", "price": "0.00000000001"}


@pytest.mark.parametrize("mode", [TICK_SIZE, DECIMAL_PLACES, SIGNIFICANT_DIGITS])
def test_a_market_without_precision_is_refused_by_name(mode):
    with pytest.raises(ValueError, match=r"BTC/USDT: ccxt gives no price precision"):
        market_from_ccxt(ccxt_market(precision={"amount": 1, "price": None}), mode)


def test_a_zero_tick_is_refused():
    with pytest.raises(ValueError, match="no tick size"):
        market_from_ccxt(ccxt_market(precision={"amount": 0.0, "price": 0.01}), TICK_SIZE)


def test_an_unknown_precision_mode_is_refused():
    with pytest.raises(ValueError, match="precisionMode"):
        market_from_ccxt(ccxt_market(), 7)


# -- market_changes ---------------------------------------------------------------------------------------------

BTC = market_from_ccxt(ccxt_market(), TICK_SIZE)
ETH = market_from_ccxt(ccxt_market(id="ETHUSDT", symbol="ETH/USDT", base="ETH"), TICK_SIZE)


def test_identical_tables_have_no_changes():
    assert market_changes({"BTC/USDT": BTC}, {"BTC/USDT": msgspec.structs.replace(BTC)}) == []


def test_added_and_removed_markets():
    changes = market_changes({"BTC/USDT": BTC}, {"ETH/USDT": ETH})

    assert changes == [
        MarketChange("BTC/USDT", MarketEventKind.REMOVED, old=BTC),
        MarketChange("ETH/USDT", MarketEventKind.ADDED, new=ETH),
    ]


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"precision": p.Precision(amount=D("0.0001"), price=D("0.01"))}, ("precision",)),
        ({"limits": p.Limits(amount=p.MinMax(min=D("0.001")))}, ("limits",)),
        ({"active": False}, ("active",)),
        ({"active": False, "precision": p.Precision(amount=D("1"), price=D("1"))}, ("precision", "active")),
    ],
)
def test_changed_fields_are_named(change, fields):
    after = msgspec.structs.replace(BTC, **change)

    assert market_changes({"BTC/USDT": BTC}, {"BTC/USDT": after}) == [
        MarketChange("BTC/USDT", MarketEventKind.CHANGED, fields, BTC, after)
    ]


def test_equal_numbers_written_differently_are_no_change():
    after = msgspec.structs.replace(BTC, precision=p.Precision(amount=D("0.000010"), price=D("0.0100")))

    assert market_changes({"BTC/USDT": BTC}, {"BTC/USDT": after}) == []


def test_fees_are_not_watched():
    assert market_changes({"BTC/USDT": BTC}, {"BTC/USDT": msgspec.structs.replace(BTC, maker=D("0.002"))}) == []


def test_changes_come_sorted_by_symbol():
    old = {"ETH/USDT": ETH}
    new = {"ETH/USDT": msgspec.structs.replace(ETH, active=False), "BTC/USDT": BTC}

    assert [(c.symbol, c.kind) for c in market_changes(old, new)] == [
        ("BTC/USDT", MarketEventKind.ADDED),
        ("ETH/USDT", MarketEventKind.CHANGED),
    ]
