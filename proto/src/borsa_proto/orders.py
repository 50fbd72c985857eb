"""Orders, fills and the order lifecycle events of the BORSA_ORDERS stream."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from borsa_proto.base import Message
from borsa_proto.money import DecimalStr


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Fee(Message):
    cost: DecimalStr
    currency: str


class Order(Message):
    """Reply of order.create / order.get / order.cancel.

    amount and price are the values actually sent, after precision rounding.
    """

    exchange: str
    account: str
    id: str
    client_order_id: str | None
    symbol: str
    market_id: str
    side: Side
    type: str
    """An OrderType value; orders placed outside Borsa may carry other exchange types."""
    status: OrderStatus
    amount: DecimalStr
    filled: DecimalStr
    remaining: DecimalStr
    price: DecimalStr | None
    average: DecimalStr | None
    cost: DecimalStr
    fee: Fee | None
    created_at: int
    updated_at: int


class OpenOrdersReply(Message):
    orders: list[Order]


class Fill(Message):
    trade_id: str
    price: DecimalStr
    amount: DecimalStr
    fee_cost: DecimalStr | None
    fee_currency: str | None
    timestamp: int


class OrderEventKind(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


class OrderEvent(Message):
    """Published on `borsa.events.order.<ex>.<account>`; event_id is also the Nats-Msg-Id."""

    event_id: str
    kind: str
    """An OrderEventKind value; readers skip kinds they do not know instead of failing."""
    order: Order
    fills: list[Fill] = msgspec.field(default_factory=list)
    timestamp: int | None = None
    """When the connector saw the change, ms."""
