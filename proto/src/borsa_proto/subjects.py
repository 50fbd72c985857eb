"""NATS subject names of the bus contract, built and parsed in one place (DESIGN section 2)."""

from __future__ import annotations

import re
from enum import StrEnum

SERVICE_NAME = "exchange-connector"
"""nats.micro service name every connector registers under."""

SERVICE_METADATA_EXCHANGE = "exchange"
"""Key of the micro service metadata that names the connector's exchange."""

ORDERS_STREAM = "BORSA_ORDERS"
ORDER_EVENTS_ALL = "borsa.events.order.>"
ORDERS_STREAM_SUBJECTS = (ORDER_EVENTS_ALL,)

_EXCHANGE_ID = re.compile(r"[a-z0-9]+")
# A subject token may not hold separators or wildcards; "_" is kept free for the symbol token.
_FORBIDDEN_IN_TOKEN = re.compile(r"[\s.*>]")


class Op(StrEnum):
    """Request-reply operations of a connector; the value is the subject suffix."""

    DESCRIBE = "describe"
    MARKETS = "markets"
    MARKET = "market"
    TICKER = "ticker"
    OHLCV = "ohlcv"
    BALANCE = "balance"
    ORDER_CREATE = "order.create"
    ORDER_GET = "order.get"
    ORDER_CANCEL = "order.cancel"
    ORDERS_OPEN = "orders.open"
    CREDENTIALS_CHECK = "credentials.check"
    WATCH = "watch"

    @property
    def endpoint_name(self) -> str:
        """A nats.micro endpoint name (letters, digits, '-' and '_' only)."""
        return self.value.replace(".", "_")


def exchange_id(exchange: str) -> str:
    """The exchange id itself, once checked to be a lowercase ccxt id."""
    if not isinstance(exchange, str) or not _EXCHANGE_ID.fullmatch(exchange):
        raise ValueError(
            f"invalid exchange id {exchange!r}: use the lowercase ccxt id, letters and digits only "
            "(binance, kraken, coinbase, kucoin)"
        )
    return exchange


def _token(value: str, what: str) -> str:
    if not value or _FORBIDDEN_IN_TOKEN.search(value):
        raise ValueError(f"invalid {what} {value!r}: must be non-empty, without spaces, '.', '*' or '>'")
    return value


def exchange_subject(exchange: str, op: Op | str) -> str:
    """`borsa.exchange.<ex>.<op>`."""
    return f"borsa.exchange.{exchange_id(exchange)}.{Op(op).value}"


def describe(exchange: str) -> str:
    return exchange_subject(exchange, Op.DESCRIBE)


def markets(exchange: str) -> str:
    return exchange_subject(exchange, Op.MARKETS)


def market(exchange: str) -> str:
    return exchange_subject(exchange, Op.MARKET)


def ticker(exchange: str) -> str:
    return exchange_subject(exchange, Op.TICKER)


def ohlcv(exchange: str) -> str:
    return exchange_subject(exchange, Op.OHLCV)


def balance(exchange: str) -> str:
    return exchange_subject(exchange, Op.BALANCE)


def order_create(exchange: str) -> str:
    return exchange_subject(exchange, Op.ORDER_CREATE)


def order_get(exchange: str) -> str:
    return exchange_subject(exchange, Op.ORDER_GET)


def order_cancel(exchange: str) -> str:
    return exchange_subject(exchange, Op.ORDER_CANCEL)


def orders_open(exchange: str) -> str:
    return exchange_subject(exchange, Op.ORDERS_OPEN)


def credentials_check(exchange: str) -> str:
    return exchange_subject(exchange, Op.CREDENTIALS_CHECK)


def watch(exchange: str) -> str:
    return exchange_subject(exchange, Op.WATCH)


def account_revoked(exchange: str) -> str:
    """`borsa.exchange.<ex>.account.revoked`, body `{"account": "<api key id>"}`: a stored key was revoked.

    Plain publish-subscribe, no reply and no queue group: every replica of the exchange's connector drops its
    client of that key, and the next request for it reads the key's row again.
    """
    return f"borsa.exchange.{exchange_id(exchange)}.account.revoked"


def connector_queue_group(exchange: str) -> str:
    """Queue group shared by the replicas of one exchange's connector."""
    return f"{SERVICE_NAME}-{exchange_id(exchange)}"


def symbol_token(symbol: str) -> str:
    """`BTC/USDT` -> `BTC_USDT`; refuses symbols that would not map back one to one."""
    _token(symbol, "symbol")
    if "_" in symbol:
        raise ValueError(f"invalid symbol {symbol!r}: '_' is reserved for the '/' of the subject token")
    return symbol.replace("/", "_")


def token_symbol(token: str) -> str:
    """`BTC_USDT` -> `BTC/USDT`, the inverse of symbol_token."""
    return _token(token, "symbol token").replace("_", "/")


def market_ticker(exchange: str, symbol: str) -> str:
    """`borsa.market.<ex>.ticker.<token>` for a unified symbol."""
    return f"borsa.market.{exchange_id(exchange)}.ticker.{symbol_token(symbol)}"


def market_tickers(exchange: str | None = None) -> str:
    """Wildcard for every ticker of one exchange (or of all exchanges)."""
    return f"borsa.market.{exchange_id(exchange)}.ticker.*" if exchange else "borsa.market.*.ticker.*"


def parse_market_ticker(subject: str) -> tuple[str, str]:
    """(exchange, unified symbol) of a ticker subject."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[:2] != ["borsa", "market"] or parts[3] != "ticker":
        raise ValueError(f"not a ticker subject: {subject!r}")
    return exchange_id(parts[2]), token_symbol(parts[4])


def order_events(exchange: str, account: str) -> str:
    """`borsa.events.order.<ex>.<account>`, captured by the BORSA_ORDERS stream."""
    return f"borsa.events.order.{exchange_id(exchange)}.{_token(account, 'account id')}"


def order_events_filter(exchange: str | None = None) -> str:
    """Consumer filter for the order events of one exchange, or of all."""
    return f"borsa.events.order.{exchange_id(exchange)}.>" if exchange else ORDER_EVENTS_ALL


def parse_order_events(subject: str) -> tuple[str, str]:
    """(exchange, account) of an order event subject."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[:3] != ["borsa", "events", "order"]:
        raise ValueError(f"not an order event subject: {subject!r}")
    return exchange_id(parts[3]), parts[4]


def market_events(exchange: str) -> str:
    """`borsa.events.market.<ex>`: the connector's market table changed."""
    return f"borsa.events.market.{exchange_id(exchange)}"


BOTS_CHANGED = "borsa.bots.changed"
"""The gateway's notice that a bot was started, stopped, edited or deleted (`BotChanged`); plain NATS, at most
once: runners also scan the bot table every few seconds."""


def bot_events(exchange: str, bot_id: str) -> str:
    """`borsa.events.bot.<ex>.<bot id>`: a bot's status or position changed (`BotEvent`), for live dashboards."""
    return f"borsa.events.bot.{exchange_id(exchange)}.{_token(bot_id, 'bot id')}"


def bot_events_filter(exchange: str | None = None) -> str:
    return f"borsa.events.bot.{exchange_id(exchange)}.>" if exchange else "borsa.events.bot.>"


REPORTS_SERVICE = "reporting"


def reports(name: str) -> str:
    """`borsa.reports.<name>`: summary, orders, trades."""
    return f"borsa.reports.{_token(name, 'report name')}"
