"""Every message survives encode -> decode unchanged, and never puts a float on the wire."""

from __future__ import annotations

import json

import pytest

import borsa_proto as p
from borsa_proto.base import Message

pytestmark = pytest.mark.unit


def _no_floats(text: str) -> None:
    raise AssertionError(f"a JSON number with a fraction reached the wire: {text}")


def test_round_trip(example: Message) -> None:
    data = p.encode(example)
    back = p.decode(data, type(example))
    assert back == example
    assert p.encode(back) == data


def test_wire_has_no_floats(example: Message) -> None:
    json.loads(p.encode(example), parse_float=_no_floats)


def test_to_builtins_matches_the_wire(example: Message) -> None:
    assert json.loads(json.dumps(p.to_builtins(example))) == json.loads(p.encode(example))
    assert p.convert(p.to_builtins(example), type(example)) == example


def _message_types() -> set[type]:
    return {
        obj
        for name in p.__all__
        if isinstance(obj := getattr(p, name), type) and issubclass(obj, Message) and obj is not Message
    }


def test_examples_cover_every_top_level_message(examples: list[Message]) -> None:
    nested_only = {p.CredentialField, p.RateLimits, p.Precision, p.MinMax, p.Limits, p.Balance, p.Fee, p.Fill}
    nested_only |= {p.ErrorBody, p.MarketChange}
    covered = {type(m) for m in examples}
    assert _message_types() - nested_only - covered == set()


def test_every_op_has_a_request_and_reply_type() -> None:
    assert set(p.REQUEST_REPLY) == set(p.Op)
    for request_type, reply_type in p.REQUEST_REPLY.values():
        assert issubclass(request_type, Message)
        assert issubclass(reply_type, Message)
