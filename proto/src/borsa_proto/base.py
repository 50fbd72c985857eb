"""The one base class that sets the wire policy of every Borsa message."""

from __future__ import annotations

import functools
from decimal import Decimal

import msgspec

from borsa_proto.money import is_money_type


class Message(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """Base of every bus message.

    kw_only: fields can be added anywhere without breaking callers. omit_defaults: optional
    fields cost nothing on the wire. Unknown fields are ignored so older readers accept
    payloads from newer writers.
    """

    def __post_init__(self) -> None:
        # Catches ccxt floats at the point they enter a message, not at the reader's end.
        for name in _money_fields(type(self)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Decimal):
                raise TypeError(
                    f"{type(self).__name__}.{name} must be a Decimal (money travels as a decimal "
                    f"string), got {type(value).__name__} {value!r}"
                )


@functools.cache
def _money_fields(cls: type[Message]) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(cls) if is_money_type(f.type))
