"""The one base class that sets the wire policy of every Borsa message."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

import msgspec

from borsa_proto.money import DecimalStr, is_money_type


class _MessageMeta(msgspec.StructMeta):
    # msgspec does not inherit kw_only; this makes it the default of every subclass.
    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **config: Any) -> Any:
        config.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **config)


class Message(msgspec.Struct, metaclass=_MessageMeta, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """Base of every bus message.

    kw_only: fields can be added anywhere without breaking callers. omit_defaults: optional
    fields cost nothing on the wire. Unknown fields are ignored so older readers accept
    payloads from newer writers. frozen: a message is a value once built.
    """

    def __post_init__(self) -> None:
        for name in _money_fields(type(self)):
            value = getattr(self, name)
            if value is not None and type(value) is not DecimalStr:
                where = f"{type(self).__name__}.{name}"
                msgspec.structs.force_setattr(self, name, as_decimal_str(value, where))


def as_decimal_str(value: Any, where: str) -> DecimalStr:
    """`value` as a DecimalStr, refusing floats where they enter a message, not at the reader's end.

    msgspec writes a plain Decimal itself with str(), which turns 0.00000001 into "1E-8"; a
    DecimalStr goes through the codec's hook, which keeps the digits as written.
    """
    if type(value) is DecimalStr:
        return value
    if not isinstance(value, Decimal):
        raise TypeError(
            f"{where} must be a Decimal (money travels as a decimal string), got {type(value).__name__} {value!r}"
        )
    if not value.is_finite():
        raise ValueError(f"{where} must be a finite decimal, got {value}")
    return DecimalStr(value)


@functools.cache
def _money_fields(cls: type[Message]) -> tuple[str, ...]:
    return tuple(f.name for f in msgspec.structs.fields(cls) if is_money_type(f.type))
