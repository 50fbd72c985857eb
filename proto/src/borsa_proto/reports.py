"""Reports over the bus (`borsa.reports.<name>`, served by the reporting service), scoped to one user."""

from __future__ import annotations

from borsa_proto.base import Message
from borsa_proto.money import DecimalStr


class ReportRequest(Message):
    user_id: str
    group_by: str | None = None
    """summary only: exchange, bot, symbol or account."""
    exchange: str | None = None
    account: str | None = None
    bot_id: str | None = None
    symbol: str | None = None
    since: int | None = None
    """ms, inclusive."""
    until: int | None = None
    """ms, exclusive."""
    limit: int = 100
    offset: int = 0


class SummaryRow(Message):
    exchange: str
    quote: str
    """Amounts are in this currency: a row never adds one quote currency to another."""
    account: str | None = None
    bot_id: str | None = None
    symbol: str | None = None
    orders: int
    fills: int
    volume: DecimalStr
    fees: DecimalStr
    """In quote; fees charged in another asset converted at the exchange's rate when the fill was recorded."""
    unconverted_fees: int
    """Fills whose fee had no rate to quote (left out of `fees`)."""
    realized_pnl: DecimalStr
    position: DecimalStr | None = None
    """Open now, in base; None when the group holds more than one base asset (they do not add up)."""
    unrealized_pnl: DecimalStr


class SummaryReply(Message):
    group_by: str
    rows: list[SummaryRow]


class ReportOrder(Message):
    exchange: str
    account: str
    order_id: str
    client_order_id: str | None
    bot_id: str | None
    symbol: str
    market_id: str
    side: str
    type: str
    status: str
    amount: DecimalStr
    filled: DecimalStr
    price: DecimalStr | None
    average: DecimalStr | None
    cost: DecimalStr
    fee_cost: DecimalStr | None
    fee_currency: str | None
    created_ms: int
    updated_ms: int


class ReportTrade(Message):
    exchange: str
    account: str
    trade_id: str
    order_id: str
    client_order_id: str | None
    bot_id: str | None
    symbol: str
    side: str
    price: DecimalStr
    amount: DecimalStr
    cost: DecimalStr
    fee_cost: DecimalStr | None
    fee_currency: str | None
    fee_quote: DecimalStr | None
    fee_rate: DecimalStr | None
    realized_pnl: DecimalStr
    timestamp_ms: int


class OrdersReply(Message):
    orders: list[ReportOrder]


class TradesReply(Message):
    trades: list[ReportTrade]
