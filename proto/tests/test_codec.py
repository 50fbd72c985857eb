"""The codec names the field at fault and what it accepts; requests check their own rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

import borsa_proto as p

pytestmark = pytest.mark.unit


def test_decoders_are_built_once() -> None:
    assert p.decoder(p.Order) is p.decoder(p.Order)
    assert p.decoder(list[p.Order]) is p.decoder(list[p.Order])


def test_nested_field_is_named() -> None:
    data = b'{"orders": [{"status": "done"}]}'
    with pytest.raises(p.BadMessage) as caught:
        p.decode(data, p.OpenOrdersReply)
    assert caught.value.path == "$.orders[0].status"
    assert caught.value.field == "orders[0].status"
    assert "allowed: open, closed, canceled, rejected, expired" in str(caught.value)


def test_missing_field_is_named() -> None:
    with pytest.raises(p.BadMessage) as caught:
        p.decode(b'{"account": "a"}', p.OrderGetRequest)
    assert caught.value.field == "symbol"
    assert str(caught.value) == "invalid OrderGetRequest at $.symbol: Object missing required field `symbol`"


def test_malformed_json() -> None:
    with pytest.raises(p.BadMessage, match="not valid JSON") as caught:
        p.decode(b'{"symbol": ', p.TickerRequest)
    assert caught.value.field is None
    assert isinstance(caught.value, ValueError)


def test_convert_from_builtins_applies_the_same_rules() -> None:
    assert p.convert({"symbol": "BTC/USDT"}, p.TickerRequest) == p.TickerRequest(symbol="BTC/USDT")
    with pytest.raises(p.BadMessage, match=r"at \$\.cost: expected a decimal string"):
        p.convert({"cost": 0.5, "currency": "USD"}, p.Fee)


def test_market_limits_always_have_both_bounds() -> None:
    limits = p.Limits(cost=p.MinMax(min=Decimal("5")))
    assert p.to_builtins(limits) == {
        "amount": {"min": None, "max": None},
        "cost": {"min": "5", "max": None},
        "price": {"min": None, "max": None},
    }
    assert p.decode(p.encode(limits), p.Limits) == limits
    assert p.decode(b'{"cost": {"min": "5"}}', p.Limits) == limits  # older writers left them out


def test_json_schema_describes_money_as_strings() -> None:
    schema = p.json_schema(p.Fee)
    fee = schema["$defs"]["Fee"]
    assert fee["properties"]["cost"]["type"] == "string"
    assert fee["required"] == ["cost", "currency"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"account": "a", "symbol": "BTC/USDT"}', "give the order's id or its client_order_id"),
        (b'{"account": "a", "symbol": "BTC/USDT", "id": ""}', "give the order's id or its client_order_id"),
    ],
)
def test_order_lookup_needs_an_id(payload: bytes, message: str) -> None:
    for type_ in (p.OrderGetRequest, p.OrderCancelRequest):
        with pytest.raises(p.BadMessage, match=message):
            p.decode(payload, type_)
    with pytest.raises(ValueError, match=message):
        p.require_order_ref(None, None)
    p.require_order_ref(None, "c1")
    p.require_order_ref("1", None)


def _create(**changes) -> p.OrderCreateRequest:
    fields = {
        "account": "a",
        "client_order_id": "c1",
        "symbol": "BTC/USDT",
        "side": p.Side.BUY,
        "type": p.OrderType.LIMIT,
        "amount": Decimal("0.001"),
        "price": Decimal("60000"),
    }
    return p.OrderCreateRequest(**(fields | changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": None}, "a limit order needs a price"),
        ({"amount": Decimal("0")}, "amount must be greater than zero"),
        ({"price": Decimal("-1")}, "price must be greater than zero"),
        ({"client_order_id": ""}, "client_order_id must be set"),
    ],
)
def test_order_create_rules(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _create(**changes)
    assert p.decode(p.encode(_create()), p.OrderCreateRequest) == _create()


def test_market_order_without_price() -> None:
    assert _create(type=p.OrderType.MARKET, price=None).price is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{}", "give either account or sealed_credentials"),
        (b'{"account": "a", "sealed_credentials": "x", "mode": "live"}', "give either account"),
        (b'{"sealed_credentials": "x"}', "sealed_credentials needs a mode"),
        (b'{"sealed_credentials": "x", "mode": "demo"}', "allowed: live, sandbox, paper"),
    ],
)
def test_credentials_check_forms(payload: bytes, message: str) -> None:
    with pytest.raises(p.BadMessage, match=message):
        p.decode(payload, p.CredentialsCheckRequest)


def test_ohlcv_limit_must_be_positive() -> None:
    with pytest.raises(p.BadMessage, match="limit must be a positive number"):
        p.decode(b'{"symbol": "BTC/USDT", "timeframe": "1m", "limit": 0}', p.OhlcvRequest)


def test_every_message_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        p.TickerRequest("BTC/USDT")
    with pytest.raises(AttributeError):
        p.TickerRequest(symbol="BTC/USDT").symbol = "ETH/USDT"  # type: ignore[misc]
