"""Every error code maps to one exception and back, and a reply's error is always found."""

from __future__ import annotations

import json

import pytest
from nats.micro import request as micro_request

import borsa_runtime as r
from borsa_proto import ERROR_CODE_HEADER, ERROR_HEADER, ErrorBody, ErrorCode, Ticker, decode, encode
from borsa_runtime.errors import header_safe

pytestmark = pytest.mark.unit

ACTIONS = {
    ErrorCode.BAD_REQUEST: (r.BadRequest, r.Action.FIX_REQUEST),
    ErrorCode.UNKNOWN_SYMBOL: (r.UnknownSymbol, r.Action.FIX_REQUEST),
    ErrorCode.INVALID_ORDER: (r.InvalidOrder, r.Action.FIX_REQUEST),
    ErrorCode.INSUFFICIENT_FUNDS: (r.InsufficientFunds, r.Action.NEEDS_PERSON),
    ErrorCode.ORDER_NOT_FOUND: (r.OrderNotFound, r.Action.FIX_REQUEST),
    ErrorCode.AUTH_FAILED: (r.AuthFailed, r.Action.NEEDS_PERSON),
    ErrorCode.PERMISSION_DENIED: (r.PermissionDenied, r.Action.NEEDS_PERSON),
    ErrorCode.UNKNOWN_ACCOUNT: (r.UnknownAccount, r.Action.FIX_REQUEST),
    ErrorCode.RATE_LIMITED: (r.RateLimited, r.Action.RETRY),
    ErrorCode.EXCHANGE_UNAVAILABLE: (r.ExchangeUnavailable, r.Action.RETRY),
    ErrorCode.NETWORK_ERROR: (r.NetworkError, r.Action.RETRY),
    ErrorCode.NOT_SUPPORTED: (r.NotSupported, r.Action.FIX_REQUEST),
    ErrorCode.INTERNAL: (r.Internal, r.Action.NEEDS_PERSON),
}


def test_one_class_per_code() -> None:
    assert set(ACTIONS) == set(ErrorCode)
    assert {code: cls for code, (cls, _) in ACTIONS.items()} == r.BY_CODE


@pytest.mark.parametrize("code", list(ErrorCode))
def test_body_to_exception_and_back(code: ErrorCode) -> None:
    cls, action = ACTIONS[code]
    body = ErrorBody(
        code=code,
        message="Kraken says: EOrder:Insufficient funds",
        retryable=code in (ErrorCode.RATE_LIMITED,),
        retry_after_ms=1500 if code == ErrorCode.RATE_LIMITED else None,
        exchange="kraken",
        exchange_code="EOrder:Insufficient funds",
    )
    error = r.error_from_body(body)
    assert type(error) is cls
    assert isinstance(error, r.BorsaError)
    assert error.code == code
    assert error.action is action
    assert str(error) == body.message
    assert error.to_body() == body
    assert decode(encode(error.to_reply()), type(error.to_reply())).error == body


@pytest.mark.parametrize("code", list(ErrorCode))
def test_retryable_defaults_follow_the_code(code: ErrorCode) -> None:
    cls, action = ACTIONS[code]
    assert cls("x").retryable is (action is r.Action.RETRY)


def test_unknown_code_from_a_newer_service() -> None:
    body = ErrorBody(code="maintenance_window", message="Back at 14:00 UTC.", retryable=True, retry_after_ms=60_000)
    error = r.error_from_body(body)
    assert type(error) is r.BorsaError
    assert error.code == "maintenance_window"
    assert error.action is r.Action.RETRY
    assert error.to_body() == body
    assert r.error_from_body(ErrorBody(code="brand_new", message="?")).action is r.Action.NEEDS_PERSON


def test_request_timeout_is_a_network_error() -> None:
    error = r.RequestTimeout("no reply")
    assert isinstance(error, r.NetworkError)
    assert error.code == ErrorCode.NETWORK_ERROR


def test_repr_names_the_fields() -> None:
    error = r.RateLimited("slow down", retry_after_ms=2000, exchange="binance")
    assert repr(error) == (
        "RateLimited(code='rate_limited', message='slow down', retryable=True, retry_after_ms=2000, exchange='binance')"
    )


def test_micro_error_reply() -> None:
    error = r.InvalidOrder("Amount 0.00001 BTC is below\nthe minimum 0.0001 BTC.", exchange="kraken")
    headers, body = r.error_reply(error)
    assert headers == {
        ERROR_HEADER: "Amount 0.00001 BTC is below the minimum 0.0001 BTC.",
        ERROR_CODE_HEADER: "invalid_order",
    }
    assert json.loads(body)["error"]["message"] == error.message
    assert (micro_request.ERROR_HEADER, micro_request.ERROR_CODE_HEADER) == (ERROR_HEADER, ERROR_CODE_HEADER)


def test_header_text_is_one_bounded_line() -> None:
    assert header_safe("a\r\nb\tc") == "a b c"
    assert len(header_safe("x" * 2000)) == 512


def test_reply_with_body_and_headers() -> None:
    headers, body = r.error_reply(r.UnknownSymbol("Kraken has no market FOO/BAR."))
    with pytest.raises(r.UnknownSymbol) as caught:
        r.parse_reply("borsa.exchange.kraken.ticker", headers, body, Ticker)
    assert caught.value.exchange == "kraken"


def test_error_body_without_headers() -> None:
    _, body = r.error_reply(r.AuthFailed("Binance refused the API key."))
    assert isinstance(r.error_from_reply(None, b"  " + body), r.AuthFailed)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("500", r.Internal),
        ("400", r.BadRequest),
        ("429", r.RateLimited),
        ("503", r.ExchangeUnavailable),
        ("418", r.BadRequest),
        ("not_supported", r.NotSupported),
    ],
)
def test_headers_without_a_body(code: str, cls: type[r.BorsaError]) -> None:
    error = r.error_from_reply({ERROR_HEADER: "ValueError('boom')", ERROR_CODE_HEADER: code}, b"")
    assert type(error) is cls
    assert error.message == "ValueError('boom')"


def test_a_normal_reply_is_decoded() -> None:
    data = b'{"symbol":"BTC/USD","market_id":"XXBTZUSD","bid":"1","ask":"2","last":null,"timestamp":1}'
    assert r.error_from_reply(None, data) is None
    assert r.parse_reply("borsa.exchange.kraken.ticker", None, data, Ticker).market_id == "XXBTZUSD"


def test_a_reply_off_the_contract_is_internal() -> None:
    with pytest.raises(r.Internal, match=r"does not match the contract: invalid Ticker at \$\.bid"):
        r.parse_reply("borsa.exchange.kraken.ticker", None, b'{"bid": 1.5}', Ticker)
    with pytest.raises(r.Internal, match=r"error reply on borsa\.exchange\.kraken\.ticker is malformed"):
        r.parse_reply("borsa.exchange.kraken.ticker", None, b'{"error": "boom"}', Ticker)
