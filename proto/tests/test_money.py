"""Money and quantities are Decimals in Python and decimal strings on the wire, never floats."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import borsa_proto as p
from borsa_proto.base import Message
from borsa_proto.money import DECIMAL_PATTERN

pytestmark = pytest.mark.unit


def _decimal_leaves(value: Any, path: str = "$") -> list[tuple[str, list[Any]]]:
    """(msgspec-style path, key path) of every decimal string in a builtins tree."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            for sub_path, keys in _decimal_leaves(item, f"{path}.{key}"):
                found.append((sub_path, [key, *keys]))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for sub_path, keys in _decimal_leaves(item, f"{path}[{index}]"):
                found.append((sub_path, [index, *keys]))
    elif isinstance(value, str) and DECIMAL_PATTERN.fullmatch(value):
        found.append((path, []))
    return found


def _replace(tree: Any, keys: list[Any], new: Any) -> None:
    for key in keys[:-1]:
        tree = tree[key]
    tree[keys[-1]] = new


def test_every_number_like_string_refuses_a_json_number(example: Message) -> None:
    payload = json.loads(p.encode(example))
    for path, keys in _decimal_leaves(payload):
        tree = json.loads(p.encode(example))
        _replace(tree, keys, 1.5)
        with pytest.raises(p.BadMessage) as caught:
            p.decode(json.dumps(tree).encode(), type(example))
        # Map keys show up as [...] in msgspec paths; the field name at the end is what matters.
        assert caught.value.path.split(".")[-1].split("[")[0] == path.split(".")[-1].split("[")[0]
        assert "expected a decimal string" in str(caught.value) or "Expected `str" in str(caught.value)


def test_float_for_amount_names_the_field() -> None:
    data = b'{"account":"a","client_order_id":"c","symbol":"BTC/USDT","side":"buy","type":"market","amount":0.1}'
    with pytest.raises(p.BadMessage) as caught:
        p.decode(data, p.OrderCreateRequest)
    assert caught.value.field == "amount"
    assert 'expected a decimal string like "0.00123"' in str(caught.value)
    assert "0.1" in str(caught.value)


@pytest.mark.parametrize("bad", ["1", "true", '"NaN"', '"Infinity"', '"-inf"', '"1_000"', '" 1"', '""', '"0x10"'])
def test_not_a_decimal_string(bad: str) -> None:
    data = f'{{"free": {bad}, "used": "0", "total": "0"}}'.encode()
    with pytest.raises(p.BadMessage, match=r"at \$\.free: expected a decimal string"):
        p.decode(data, p.Balance)


@pytest.mark.parametrize(
    "text", ["0.00012300", "0.00000001", "0.00000000", "-0", "64250.10", "123456789012345678901234567890.123"]
)
def test_decimal_strings_keep_their_exact_digits(text: str) -> None:
    data = f'{{"free":"{text}","used":"0","total":"{text}"}}'.encode()
    balance = p.decode(data, p.Balance)
    assert balance.free.as_tuple() == Decimal(text).as_tuple()
    assert p.encode(balance) == data


@pytest.mark.parametrize(("text", "written"), [("1E-8", "0.00000001"), ("1.0E-7", "0.00000010"), ("2e3", "2000")])
def test_exponent_notation_is_read_and_written_positionally(text: str, written: str) -> None:
    balance = p.decode(f'{{"free":"{text}","used":"0","total":"0"}}', p.Balance)
    assert balance.free == Decimal(text)
    assert p.encode(balance).startswith(f'{{"free":"{written}"'.encode())


def test_plain_decimals_built_in_python_are_written_positionally() -> None:
    precision = p.Precision(amount=Decimal("1E-8"), price=Decimal("0.1"))
    assert p.encode(precision) == b'{"amount":"0.00000001","price":"0.1"}'
    candles = p.OhlcvReply(candles=[(1, Decimal("1E-8"), Decimal(1), Decimal(1), Decimal(1), Decimal(0))])
    assert p.encode(candles) == b'{"candles":[[1,"0.00000001","1","1","1","0"]]}'


def test_trailing_zeros_survive_a_full_order() -> None:
    data = p.encode(p.decode(b'{"cost": "0.00012300", "currency": "BTC"}', p.Fee))
    assert data == b'{"cost":"0.00012300","currency":"BTC"}'


@pytest.mark.parametrize("value", [0.1, 1, "0.1", True])
def test_building_a_message_with_a_non_decimal_is_refused(value: Any) -> None:
    with pytest.raises(TypeError, match=r"Fee.cost must be a Decimal"):
        p.Fee(cost=value, currency="USD")


def test_building_a_message_with_nan_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Fee.cost must be a finite decimal"):
        p.Fee(cost=Decimal("NaN"), currency="USD")
    with pytest.raises(TypeError, match=r"OhlcvReply.candles\[0\] must be a Decimal"):
        p.OhlcvReply(candles=[(1, 1.0, Decimal(1), Decimal(1), Decimal(1), Decimal(0))])


def test_decoded_money_is_a_decimal() -> None:
    fee = p.decode(b'{"cost": "0.5", "currency": "USD"}', p.Fee)
    assert isinstance(fee.cost, Decimal)
    assert fee.cost + Decimal("0.5") == Decimal("1.0")


finite = st.decimals(allow_nan=False, allow_infinity=False)
optional = st.none() | finite


@given(
    amount=finite,
    filled=finite,
    price=optional,
    average=optional,
    fee=st.none() | st.builds(p.Fee, cost=finite, currency=st.sampled_from(["USD", "BTC", "KCS"])),
    created_at=st.integers(min_value=0, max_value=2**53),
)
def test_orders_with_any_decimal_round_trip_exactly(
    amount: Decimal,
    filled: Decimal,
    price: Decimal | None,
    average: Decimal | None,
    fee: p.Fee | None,
    created_at: int,
) -> None:
    order = p.Order(
        exchange="kucoin",
        account="a1",
        id="1",
        client_order_id="c1",
        symbol="BTC/USDT",
        market_id="BTC-USDT",
        side=p.Side.BUY,
        type=p.OrderType.LIMIT,
        status=p.OrderStatus.OPEN,
        amount=amount,
        filled=filled,
        remaining=amount - filled,
        price=price,
        average=average,
        cost=filled,
        fee=fee,
        created_at=created_at,
        updated_at=created_at,
    )
    back = p.decode(p.encode(order), p.Order)
    assert back == order
    for name in ("amount", "filled", "price", "average"):
        sent, got = getattr(order, name), getattr(back, name)
        if sent is None:
            assert got is None
        elif sent.as_tuple().exponent <= 0:
            # Every digit after the point, trailing zeros included, comes back.
            assert got.as_tuple() == sent.as_tuple()
