"""Replies about an exchange and its markets: describe, markets, ticker, ohlcv, balance, watch."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from borsa_proto.base import Message, as_decimal_str
from borsa_proto.money import DecimalStr


class CredentialField(Message):
    """One credential an API key needs, from ccxt's requiredCredentials (KuCoin asks a passphrase)."""

    name: str
    label: str
    secret: bool


class RateLimits(Message):
    interval_ms: int | None = None
    """ccxt's rateLimit: the minimum time between two requests of one client."""


class Describe(Message):
    """Reply of `borsa.exchange.<ex>.describe`."""

    id: str
    name: str
    mode: str
    """Where the connector's ccxt classes point: `live` or `sim` (open set)."""
    required_credentials: list[CredentialField]
    has: dict[str, bool]
    """ccxt capabilities; an emulated capability counts as true."""
    rate_limits: RateLimits
    markets_count: int
    status: str
    """`ok`, `maintenance`, `unknown` (open set)."""
    modes: list[str] = msgspec.field(default_factory=list)
    """API key modes this connector accepts: live, sandbox, paper."""
    notes: list[str] = msgspec.field(default_factory=list)
    """What a trader should know about the exchange (fees, minimums, rules), written for a person."""


class Precision(Message):
    """Tick sizes, always as decimal steps ("0.00001") whatever ccxt's precisionMode is."""

    amount: DecimalStr
    price: DecimalStr


class MinMax(Message, omit_defaults=False):
    """A bound the exchange does not set is null, written out: `{"min": "5", "max": null}` (DESIGN section 2)."""

    min: DecimalStr | None = None
    max: DecimalStr | None = None


class Limits(Message):
    amount: MinMax = msgspec.field(default_factory=MinMax)
    cost: MinMax = msgspec.field(default_factory=MinMax)
    price: MinMax = msgspec.field(default_factory=MinMax)


class Market(Message):
    """Reply of `borsa.exchange.<ex>.market`."""

    symbol: str
    market_id: str
    base: str
    quote: str
    active: bool
    precision: Precision
    limits: Limits
    maker: DecimalStr | None
    taker: DecimalStr | None


class MarketsReply(Message):
    markets: list[Market]


class Ticker(Message):
    """Reply of `borsa.exchange.<ex>.ticker`, and what `borsa.market.<ex>.ticker.<token>` carries."""

    symbol: str
    market_id: str
    bid: DecimalStr | None
    ask: DecimalStr | None
    last: DecimalStr | None
    timestamp: int


Candle = tuple[int, DecimalStr, DecimalStr, DecimalStr, DecimalStr, DecimalStr]
"""[timestamp ms, open, high, low, close, volume]."""


class OhlcvReply(Message):
    candles: list[Candle]
    symbol: str | None = None
    market_id: str | None = None
    timeframe: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(type(v) is not DecimalStr for candle in self.candles for v in candle[1:]):
            candles = [
                (c[0], *(as_decimal_str(v, f"OhlcvReply.candles[{i}]") for v in c[1:]))
                for i, c in enumerate(self.candles)
            ]
            msgspec.structs.force_setattr(self, "candles", candles)


class Balance(Message):
    free: DecimalStr
    used: DecimalStr
    total: DecimalStr


class BalanceReply(Message):
    balances: dict[str, Balance]
    """Keyed by the unified currency code (BTC, USDT)."""


class CredentialsCheckReply(Message):
    ok: bool
    permissions: list[str] | None = None
    balances_visible: bool | None = None


class WatchReply(Message):
    """Reply of `borsa.exchange.<ex>.watch`: where tickers arrive and when to renew the lease."""

    symbol: str
    market_id: str
    subject: str
    lease_ms: int


class MarketEventKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    RELOADED = "reloaded"


class MarketChange(Message):
    """One market's change: which of precision, limits and active changed, with the old and new values."""

    symbol: str
    kind: str
    """added, removed or changed (a MarketEventKind value)."""
    fields: list[str] = msgspec.field(default_factory=list)
    old: Market | None = None
    new: Market | None = None


class MarketEvent(Message):
    """Published on `borsa.events.market.<ex>` when the connector's market table changes."""

    exchange: str
    kind: str
    """A MarketEventKind value; readers ignore kinds they do not know."""
    timestamp: int
    symbols: list[str] = msgspec.field(default_factory=list)
    changes: list[MarketChange] = msgspec.field(default_factory=list)
    """Added after the first release: the old and new values of each changed market."""
