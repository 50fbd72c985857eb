"""Ingest's view of an order event reads what borsa_proto writes, and refuses what borsa_proto refuses."""

from __future__ import annotations

import json
from decimal import Decimal as D

import msgspec
import pytest

from borsa_proto import BadMessage, decode, encode
from borsa_proto import orders as proto
from borsa_proto.money import DECIMAL_PATTERN
from borsa_reporting import events as view
from borsa_reporting.events import decode_event

pytestmark = pytest.mark.unit


def proto_event(**order) -> proto.OrderEvent:
    o = proto.Order(
        exchange="binance",
        account="4b0d8b7e-94a4-4d7e-9a0a-0f3c1d9e2b11",
        id="o1",
        client_order_id=None,
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        side=proto.Side.SELL,
        type="limit",
        status=proto.OrderStatus.CLOSED,
        amount=D("0.00000001"),
        filled=D("1E-8"),
        remaining=D("0"),
        price=None,
        average=D("67250.10"),
        cost=D("-1.5"),
        fee=proto.Fee(cost=D("0.00012345"), currency="BNB"),
        created_at=1,
        updated_at=2,
    )
    fills = [
        proto.Fill(trade_id="t1", price=D("100"), amount=D("2.5e3"), fee_cost=None, fee_currency=None, timestamp=3)
    ]
    return proto.OrderEvent(
        event_id="e1", kind="filled", order=msgspec.structs.replace(o, **order), fills=fills, timestamp=4
    )


def test_the_view_has_the_fields_of_the_contract() -> None:
    for ours, theirs in (
        (view.OrderEvent, proto.OrderEvent),
        (view.Order, proto.Order),
        (view.Fill, proto.Fill),
        (view.Fee, proto.Fee),
    ):
        assert [f.encode_name for f in msgspec.structs.fields(ours)] == [
            f.encode_name for f in msgspec.structs.fields(theirs)
        ]


@pytest.mark.parametrize("order", [{}, {"fee": None, "client_order_id": "b" + "0" * 32 + "-1", "price": D("1")}])
def test_an_event_reads_as_the_contract_has_it(order) -> None:
    event = proto_event(**order)
    payload = encode(event)
    ours, theirs = decode_event(payload), decode(payload, proto.OrderEvent)
    for a, b in ((ours, theirs), (ours.order, theirs.order), (ours.fills[0], theirs.fills[0])):
        for field in msgspec.structs.fields(type(b)):
            mine, contract = getattr(a, field.name), getattr(b, field.name)
            if isinstance(contract, D):
                assert D(mine) == contract and mine == format(contract, "f")  # the string as it travelled
            elif isinstance(contract, msgspec.Struct | list):
                continue
            else:
                assert mine == contract, field.name
    assert (ours.order.fee is None) == (theirs.order.fee is None)


def test_unknown_fields_are_ignored_and_defaults_apply() -> None:
    raw = json.loads(encode(proto_event()))
    raw["order"]["later"] = {"a": 1}
    del raw["fills"], raw["timestamp"]
    event = decode_event(json.dumps(raw).encode())
    assert event.fills == [] and event.timestamp is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("order", "amount"), 1.5),  # a JSON number
        (("order", "amount"), "NaN"),
        (("order", "amount"), "Infinity"),
        (("order", "amount"), "1_000"),
        (("order", "amount"), " 1"),
        (("order", "amount"), "+1"),
        (("order", "amount"), ".5"),
        (("order", "amount"), "5."),
        (("order", "amount"), "1.5\n"),
        (("order", "price"), "1e"),
        (("order", "fee", "cost"), "x"),
        (("order", "side"), "short"),
        (("order", "status"), "done"),
        (("order", "created_at"), "1"),
        (("fills", 0, "price"), "1,5"),
        (("order", "amount"), "1|2"),  # two amounts to a check that joins them with "|"
        (("order", "cost"), "|"),
        (("fills", 0, "price"), ""),
        (("fills", 0, "amount"), None),
    ],
)
def test_what_the_contract_refuses_is_refused(path, value) -> None:
    raw = json.loads(encode(proto_event()))
    target = raw
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    payload = json.dumps(raw).encode()
    with pytest.raises(BadMessage):
        decode(payload, proto.OrderEvent)
    with pytest.raises(msgspec.ValidationError):
        decode_event(payload)


@pytest.mark.parametrize(
    "text", ["0", "-0", "12", "0.5", "-12.50", "1e5", "1E-8", "2.5e+3", "00.1", "1.", "1e", "e5", "-", "1.2.3", "１"]
)
def test_money_is_the_pattern_of_the_contract(text) -> None:
    accepted = True
    try:
        msgspec.convert(text, view.Money)
    except msgspec.ValidationError:
        accepted = False
    assert accepted == bool(DECIMAL_PATTERN.fullmatch(text))
