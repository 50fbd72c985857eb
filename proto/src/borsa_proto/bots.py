"""Bots on the bus: the gateway's change notices to the runners, and the runners' status and position events."""

from __future__ import annotations

from borsa_proto.base import Message
from borsa_proto.money import DecimalStr


class BotChanged(Message):
    """Published on `borsa.bots.changed` after a bot's row changed; the row is the truth, this only says when."""

    bot_id: str
    status: str
    """running, stopped or paused as stored; `deleted` when the row is gone."""
    cancel_orders: bool | None = None
    """On a stop: cancel the bot's open orders (None: the runner's default)."""


class BotEvent(Message):
    """Published on `borsa.events.bot.<ex>.<bot id>` when a bot's status or position changes."""

    bot_id: str
    exchange: str
    symbol: str
    status: str
    status_reason: str | None = None
    position: DecimalStr | None = None
    average_entry: DecimalStr | None = None
    realized_pnl: DecimalStr | None = None
    timestamp: int | None = None
