"""Subject names are exactly those of DESIGN section 2."""

from __future__ import annotations

import pytest

from borsa_proto import subjects

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (subjects.describe, "borsa.exchange.kraken.describe"),
        (subjects.markets, "borsa.exchange.kraken.markets"),
        (subjects.market, "borsa.exchange.kraken.market"),
        (subjects.ticker, "borsa.exchange.kraken.ticker"),
        (subjects.ohlcv, "borsa.exchange.kraken.ohlcv"),
        (subjects.balance, "borsa.exchange.kraken.balance"),
        (subjects.order_create, "borsa.exchange.kraken.order.create"),
        (subjects.order_get, "borsa.exchange.kraken.order.get"),
        (subjects.order_cancel, "borsa.exchange.kraken.order.cancel"),
        (subjects.orders_open, "borsa.exchange.kraken.orders.open"),
        (subjects.credentials_check, "borsa.exchange.kraken.credentials.check"),
        (subjects.watch, "borsa.exchange.kraken.watch"),
    ],
)
def test_request_subjects(build, expected: str) -> None:
    assert build("kraken") == expected


def test_every_op_builds_its_subject() -> None:
    assert {subjects.exchange_subject("binance", op) for op in subjects.Op} == {
        f"borsa.exchange.binance.{op}" for op in subjects.Op
    }
    assert subjects.Op.ORDER_CREATE.endpoint_name == "order_create"


@pytest.mark.parametrize("bad", ["Kraken", "", "coinbase.pro", "gate-io", "kraken>", "bin ance", None])
def test_invalid_exchange_ids_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="lowercase ccxt id"):
        subjects.describe(bad)


@pytest.mark.parametrize(
    ("symbol", "token"),
    [
        ("BTC/USDT", "BTC_USDT"),
        ("XXBTZUSD", "XXBTZUSD"),
        ("BTC/USDT:USDT", "BTC_USDT:USDT"),
        ("1INCH/EUR", "1INCH_EUR"),
    ],
)
def test_symbol_token_both_ways(symbol: str, token: str) -> None:
    assert subjects.symbol_token(symbol) == token
    assert subjects.token_symbol(token) == symbol


@pytest.mark.parametrize("bad", ["ETH2.S/ETH", "BTC_X/USDT", "BTC/*", "BTC/>", "", "BTC /USD"])
def test_symbols_that_cannot_be_a_token_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid symbol"):
        subjects.symbol_token(bad)


def test_market_and_event_subjects() -> None:
    assert subjects.market_ticker("binance", "BTC/USDT") == "borsa.market.binance.ticker.BTC_USDT"
    assert subjects.parse_market_ticker("borsa.market.binance.ticker.BTC_USDT") == ("binance", "BTC/USDT")
    assert subjects.market_tickers("binance") == "borsa.market.binance.ticker.*"
    assert subjects.order_events("kucoin", "acc-7") == "borsa.events.order.kucoin.acc-7"
    assert subjects.parse_order_events("borsa.events.order.kucoin.acc-7") == ("kucoin", "acc-7")
    assert subjects.order_events_filter("kucoin") == "borsa.events.order.kucoin.>"
    assert subjects.order_events_filter() == subjects.ORDER_EVENTS_ALL == "borsa.events.order.>"
    assert subjects.market_events("kraken") == "borsa.events.market.kraken"
    assert subjects.ORDERS_STREAM == "BORSA_ORDERS"
    assert subjects.ORDERS_STREAM_SUBJECTS == ("borsa.events.order.>",)
    assert subjects.SERVICE_NAME == "exchange-connector"
    assert subjects.connector_queue_group("kraken") == "exchange-connector-kraken"


def test_account_revoked_subject() -> None:
    assert subjects.account_revoked("kraken") == "borsa.exchange.kraken.account.revoked"
    # A notice, not a verb: it is no request-reply subject, so no connector endpoint answers it.
    assert "account.revoked" not in set(subjects.Op)
    with pytest.raises(ValueError, match="lowercase ccxt id"):
        subjects.account_revoked("Kraken")


@pytest.mark.parametrize("bad", ["borsa.events.order.kraken", "borsa.market.kraken.ticker", "x.y.z.a.b"])
def test_parsing_foreign_subjects_fails(bad: str) -> None:
    with pytest.raises(ValueError, match="not a ticker subject"):
        subjects.parse_market_ticker(bad)
    with pytest.raises(ValueError, match="not an order event subject"):
        subjects.parse_order_events(bad)


def test_account_ids_with_dots_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid account id"):
        subjects.order_events("kraken", "a.b")
