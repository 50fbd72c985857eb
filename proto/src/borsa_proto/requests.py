"""Requests served by an exchange connector, one Struct per subject of DESIGN section 2.

Checks that span fields run in __post_init__: msgspec runs it on decode too, so a request that
breaks them fails decoding with a message that says what to send instead.
"""

from __future__ import annotations

from enum import StrEnum

from borsa_proto.base import Message
from borsa_proto.money import DecimalStr
from borsa_proto.orders import OrderType, Side


class KeyMode(StrEnum):
    LIVE = "live"
    SANDBOX = "sandbox"
    PAPER = "paper"


class DescribeRequest(Message):
    pass


class MarketsRequest(Message):
    search: str | None = None
    quote: str | None = None
    active_only: bool = False


class MarketRequest(Message):
    symbol: str
    """Unified (BTC/USDT) or the exchange's native id (BTCUSDT)."""


class TickerRequest(Message):
    symbol: str


class OhlcvRequest(Message):
    symbol: str
    timeframe: str
    since: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"limit must be a positive number of candles, got {self.limit}")


class BalanceRequest(Message):
    account: str


class OrderCreateRequest(Message):
    account: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: DecimalStr
    price: DecimalStr | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.client_order_id:
            raise ValueError("client_order_id must be set before the order is sent")
        if self.amount <= 0:
            raise ValueError(f"amount must be greater than zero, got {self.amount}")
        if self.type == OrderType.LIMIT and self.price is None:
            raise ValueError("a limit order needs a price")
        if self.price is not None and self.price <= 0:
            raise ValueError(f"price must be greater than zero, got {self.price}")


def require_order_ref(id: str | None, client_order_id: str | None) -> None:
    """An order is looked up by its exchange id, its client order id, or both."""
    if not id and not client_order_id:
        raise ValueError("give the order's id or its client_order_id")


class OrderGetRequest(Message):
    account: str
    symbol: str
    id: str | None = None
    client_order_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_order_ref(self.id, self.client_order_id)


class OrderCancelRequest(Message):
    account: str
    symbol: str
    id: str | None = None
    client_order_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require_order_ref(self.id, self.client_order_id)


class OpenOrdersRequest(Message):
    account: str
    symbol: str | None = None


class CredentialsCheckRequest(Message):
    """Either a stored key (`account`) or a key about to be stored (`sealed_credentials` + `mode`).

    sealed_credentials is sealed for the connectors' key; plaintext secrets never travel.
    """

    account: str | None = None
    sealed_credentials: str | None = None
    mode: KeyMode | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.account is None) == (self.sealed_credentials is None):
            raise ValueError("give either account or sealed_credentials (with mode), not both or neither")
        if self.sealed_credentials is not None and self.mode is None:
            raise ValueError("sealed_credentials needs a mode: live, sandbox or paper")


class WatchRequest(Message):
    """Holds interest in a symbol's ticker for a lease; renew before it runs out."""

    symbol: str
    lease_ms: int | None = None
