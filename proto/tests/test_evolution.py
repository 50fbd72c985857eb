"""Schema evolution: payloads of an earlier shape and of a newer writer both still decode."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import borsa_proto as p
from borsa_proto.base import Message

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent / "fixtures"
V0 = sorted((FIXTURES / "v0").glob("*.json"))
NEWER = sorted((FIXTURES / "newer").glob("*.json"))


def _type_of(path: Path) -> type[Message]:
    return getattr(p, path.name.split(".")[0])


@pytest.mark.parametrize("path", V0, ids=lambda path: path.stem)
def test_v0_payload_decodes(path: Path) -> None:
    message = p.decode(path.read_bytes(), _type_of(path))
    # Decoding then encoding keeps every value that was sent; new fields come with defaults.
    _assert_kept(json.loads(path.read_bytes()), json.loads(p.encode(message)))


def _assert_kept(sent: Any, again: Any) -> None:
    if isinstance(sent, dict):
        for key, value in sent.items():
            if value is not None:
                _assert_kept(value, again[key])
    elif isinstance(sent, list):
        assert len(sent) == len(again)
        for item, item_again in zip(sent, again, strict=True):
            _assert_kept(item, item_again)
    else:
        assert sent == again


def test_every_request_and_reply_has_a_v0_fixture() -> None:
    names = {path.stem for path in V0}
    for request_type, reply_type in p.REQUEST_REPLY.values():
        assert request_type.__name__ in names
        assert reply_type.__name__ in names
    assert {"OrderEvent", "MarketEvent", "ErrorReply"} <= names


def test_v0_fields_get_their_defaults() -> None:
    describe = p.decode((FIXTURES / "v0" / "Describe.json").read_bytes(), p.Describe)
    assert describe.modes == []
    assert describe.rate_limits.interval_ms is None
    event = p.decode((FIXTURES / "v0" / "OrderEvent.json").read_bytes(), p.OrderEvent)
    assert event.fills == []
    assert event.timestamp is None
    market = p.decode((FIXTURES / "v0" / "Market.json").read_bytes(), p.Market)
    assert market.limits.price == p.MinMax()
    error = p.decode((FIXTURES / "v0" / "ErrorReply.json").read_bytes(), p.ErrorReply)
    assert error.error.retryable is False
    assert error.error.retry_after_ms is None


@pytest.mark.parametrize("path", NEWER, ids=lambda path: path.stem)
def test_newer_payload_decodes(path: Path) -> None:
    p.decode(path.read_bytes(), _type_of(path))


def test_newer_open_values_are_kept_as_strings() -> None:
    event = p.decode((FIXTURES / "newer" / "OrderEvent.json").read_bytes(), p.OrderEvent)
    assert event.kind == "amended"
    assert event.kind not in set(p.OrderEventKind)
    order = p.decode((FIXTURES / "newer" / "Order.json").read_bytes(), p.Order)
    assert order.type == "stop_loss_limit"
    error = p.decode((FIXTURES / "newer" / "ErrorReply.json").read_bytes(), p.ErrorReply)
    assert error.error.code == "maintenance_window"
    assert error.error.retry_after_ms == 600_000


# Fields whose dicts are maps (currency -> balance, capability -> bool): a new key there is data.
MAP_FIELDS = {"balances", "has"}


def _with_unknown_fields(value: Any, is_map: bool = False) -> Any:
    if isinstance(value, dict):
        newer = {k: _with_unknown_fields(v, is_map=k in MAP_FIELDS and not is_map) for k, v in value.items()}
        return newer if is_map else {**newer, "added_later": {"x": [1, "2"]}}
    if isinstance(value, list):
        return [_with_unknown_fields(v) for v in value]
    return value


def test_unknown_fields_everywhere_are_ignored(example: Message) -> None:
    newer = json.dumps(_with_unknown_fields(json.loads(p.encode(example)))).encode()
    assert b"added_later" in newer
    assert p.decode(newer, type(example)) == example


def test_known_enum_values_still_compare_equal() -> None:
    order = p.decode((FIXTURES / "v0" / "Order.json").read_bytes(), p.Order)
    assert order.type == p.OrderType.LIMIT
    assert order.side is p.Side.BUY
    assert order.amount == Decimal("0.000123")
