"""Kraken's AddOrder: its parameters and flags, its client order id rules, and `validate=true`, which checks an
order against every rule without placing it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from ..engine import SimError
from ..markets import MarketSpec
from .base import decimal_param, int_param

# docs.kraken.com AddOrder `oflags`. The simulator always charges the fee in the quote currency (fciq), which is
# what Kraken does for spot unless fcib is asked for; fcib is accepted and reported as fciq.
OFLAGS = frozenset({"post", "fcib", "fciq", "nompp", "viqc"})
# AddOrder `timeinforce`: GTD needs an expiry the engine does not model, so only GTC and IOC are taken.
TIME_IN_FORCE = frozenset({"GTC", "IOC"})
# AddOrder `cl_ord_id`: a long UUID, a short (32 hex) UUID, or free text of up to 18 ASCII characters.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")
INT32 = range(-(2**31), 2**31)


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def valid_cl_ord_id(value: str) -> bool:
    return bool(_UUID.fullmatch(value)) or (1 <= len(value) <= 18 and all(" " <= c <= "~" for c in value))


@dataclass(slots=True)
class OrderRequest:
    spec: MarketSpec
    side: str
    ordertype: str
    amount: Decimal | None
    price: Decimal | None
    quote_amount: Decimal | None
    client_order_id: str | None
    userref: int | None
    time_in_force: str
    flags: list[str] = field(default_factory=list)
    validate: bool = False

    @property
    def volume(self) -> Decimal:
        return self.amount if self.amount is not None else self.quote_amount


def _bad(field: str, message: str, missing: bool = False) -> SimError:
    return SimError("missing_param" if missing else "invalid_param", message, field=field)


def parse_add_order(params: dict[str, str], pair: Callable[[str | None], MarketSpec]) -> OrderRequest:
    spec = pair(params.get("pair"))
    side = params.get("type")
    if side not in ("buy", "sell"):
        raise _bad("type", "type must be buy or sell", missing=not side)
    ordertype = params.get("ordertype")
    if ordertype not in ("market", "limit"):
        # Stops, take-profits and trailing orders exist on Kraken but not in this simulator.
        raise _bad("ordertype", f"Unsupported ordertype {ordertype!r}", missing=not ordertype)
    flags = [f for f in (params.get("oflags") or "").split(",") if f]
    if set(flags) - OFLAGS or {"fcib", "fciq"} <= set(flags) or ("post" in flags and ordertype != "limit"):
        raise _bad("oflags", f"Invalid oflags {params.get('oflags')!r}")
    volume = decimal_param(params.get("volume"), "volume")
    price = decimal_param(params.get("price"), "price") if ordertype == "limit" else None
    quote_amount = None
    if "viqc" in flags:
        if not (ordertype == "market" and side == "buy"):
            raise _bad("viqc", "Volume in quote currency is only for market buys")
        volume, quote_amount = None, volume
    time_in_force = (params.get("timeinforce") or "GTC").upper()
    if time_in_force not in TIME_IN_FORCE:
        raise _bad("timeinforce", f"Unsupported timeinforce {time_in_force!r}")
    client_order_id = params.get("cl_ord_id") or None
    if client_order_id is not None and not valid_cl_ord_id(client_order_id):
        raise _bad("cl_ord_id", "cl_ord_id must be a UUID or up to 18 ASCII characters")
    userref = int_param(params.get("userref"), "userref")
    if userref is not None and userref not in INT32:
        raise _bad("userref", "userref must be a 32-bit signed integer")
    if client_order_id is not None and userref is not None:
        raise _bad("cl_ord_id", "cl_ord_id and userref are mutually exclusive")
    return OrderRequest(
        spec,
        side,
        ordertype,
        volume,
        price,
        quote_amount,
        client_order_id,
        userref,
        time_in_force,
        flags=[f for f in flags if f not in ("fcib", "fciq")],
        validate=truthy(params.get("validate")),
    )
