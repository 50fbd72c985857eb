"""Market data for the runner's bots, fetched once per symbol however many bots follow it.

Per (exchange, symbol): the market's rules (precision and minimums, from the connector's `market` subject), a
`watch` lease renewed while a bot follows the symbol, and one subscription to its ticker subject. Per (exchange,
symbol, timeframe): closed candles from `ohlcv`, fetched once per candle. The connectors' market events say when a
market's rules changed; the feed then reads them again and tells the symbol's bots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog
from nats.aio.client import Client

from borsa_proto import decode
from borsa_proto.exchange import Market, MarketEvent, OhlcvReply, Ticker, WatchReply
from borsa_proto.requests import MarketRequest, OhlcvRequest, WatchRequest
from borsa_proto.subjects import market, market_events, ohlcv, watch
from borsa_runtime.errors import BorsaError
from borsa_runtime.request import request
from borsa_strategies.base import Candle, MarketRules, Tick

if TYPE_CHECKING:
    from .bot import Bot

log = structlog.get_logger("borsa.runner.market")

TIMEFRAME_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Bots are told of a tick in slices: the event loop serves other work between them.
DISPATCH_SLICE = 250


def timeframe_ms(timeframe: str) -> int:
    return int(timeframe[:-1]) * TIMEFRAME_UNITS[timeframe[-1]]


class SymbolFeed:
    __slots__ = ("bots", "exchange", "lease_ms", "market", "renew_at", "rules", "sub", "subject", "symbol", "tick")

    def __init__(self, exchange: str, symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.market: Market | None = None
        self.rules: MarketRules | None = None
        self.tick: Tick | None = None
        self.bots: dict[str, Bot] = {}
        self.subject: str | None = None
        self.sub = None
        self.lease_ms = 0
        self.renew_at = 0.0

    @property
    def price(self) -> Decimal | None:
        return self.tick.price() if self.tick is not None else None


class CandleFeed:
    __slots__ = ("bots", "exchange", "last_closed", "symbol", "timeframe")

    def __init__(self, exchange: str, symbol: str, timeframe: str) -> None:
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.bots: dict[str, Bot] = {}
        self.last_closed = 0


class MarketFeed:
    def __init__(self, nc: Client, *, timeout: float, on_tick_latency: Callable[[float], None] | None = None) -> None:
        self.nc = nc
        self.timeout = timeout
        self.symbols: dict[tuple[str, str], SymbolFeed] = {}
        self.candles: dict[tuple[str, str, str], CandleFeed] = {}
        self._market_subs: dict[str, object] = {}
        self._tasks: list[asyncio.Task] = []
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.on_tick_latency = on_tick_latency

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._renew_loop(), name="watch-leases"),
            asyncio.create_task(self._candle_loop(), name="candles"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for feed in self.symbols.values():
            if feed.sub is not None:
                with contextlib.suppress(Exception):
                    await feed.sub.unsubscribe()

    # -- following ----------------------------------------------------------------------------------------------
    async def follow(self, bot: Bot) -> SymbolFeed:
        """The bot's symbol feed, with its rules loaded and its ticker subscribed (a BorsaError when the
        connector cannot say what the market is)."""
        key = (bot.exchange, bot.symbol)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            feed = self.symbols.get(key)
            if feed is None:
                feed = SymbolFeed(bot.exchange, bot.symbol)
                await self._load_rules(feed)
                await self._subscribe_market_events(bot.exchange)
                self.symbols[key] = feed
            if feed.sub is None:
                await self._watch(feed)
        feed.bots[bot.id] = bot
        timeframe = bot.strategy.timeframe
        if timeframe:
            ckey = (bot.exchange, bot.symbol, timeframe)
            self.candles.setdefault(ckey, CandleFeed(bot.exchange, bot.symbol, timeframe)).bots[bot.id] = bot
        return feed

    def unfollow(self, bot: Bot) -> None:
        feed = self.symbols.get((bot.exchange, bot.symbol))
        if feed is not None:
            feed.bots.pop(bot.id, None)  # the lease is simply not renewed once no bot follows the symbol
        timeframe = bot.strategy.timeframe if bot.strategy is not None else None
        if timeframe:
            cfeed = self.candles.get((bot.exchange, bot.symbol, timeframe))
            if cfeed is not None:
                cfeed.bots.pop(bot.id, None)

    async def _load_rules(self, feed: SymbolFeed) -> None:
        found = await request(
            self.nc, market(feed.exchange), MarketRequest(symbol=feed.symbol), Market, timeout=self.timeout
        )
        feed.market, feed.rules = found, MarketRules.from_market(found)

    async def _watch(self, feed: SymbolFeed) -> None:
        reply = await request(
            self.nc, watch(feed.exchange), WatchRequest(symbol=feed.symbol), WatchReply, timeout=self.timeout
        )
        feed.lease_ms = reply.lease_ms
        feed.renew_at = time.monotonic() + reply.lease_ms / 3000
        if feed.sub is None or feed.subject != reply.subject:
            feed.subject = reply.subject
            feed.sub = await self.nc.subscribe(reply.subject, cb=self._on_ticker_for(feed))

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for feed in list(self.symbols.values()):
                if feed.bots and feed.sub is not None and now >= feed.renew_at:
                    try:
                        await self._watch(feed)
                    except BorsaError as exc:  # the connector is away: tickers stop, bots wait; try again soon
                        feed.renew_at = now + 2.0
                        log.warning("watch renewal failed", exchange=feed.exchange, symbol=feed.symbol, error=str(exc))

    # -- tickers ------------------------------------------------------------------------------------------------
    def _on_ticker_for(self, feed: SymbolFeed):
        async def on_ticker(msg) -> None:
            received = time.perf_counter()
            try:
                ticker = decode(msg.data, Ticker)
            except Exception:
                log.warning("bad ticker message", subject=msg.subject)
                return
            tick = Tick(bid=ticker.bid, ask=ticker.ask, last=ticker.last, timestamp=ticker.timestamp)
            feed.tick = tick
            bots = list(feed.bots.values())
            for start in range(0, len(bots), DISPATCH_SLICE):
                for bot in bots[start : start + DISPATCH_SLICE]:
                    bot.on_tick(tick, received)
                await asyncio.sleep(0)

        return on_ticker

    # -- candles ------------------------------------------------------------------------------------------------
    async def _candle_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = int(time.time() * 1000)
            for cfeed in list(self.candles.values()):
                if not cfeed.bots:
                    continue
                step = timeframe_ms(cfeed.timeframe)
                # The candle that closed most recently started one step before the current one.
                closed = (now // step) * step - step
                if closed <= cfeed.last_closed:
                    continue
                await self._fetch_candles(cfeed, now, step)

    async def _fetch_candles(self, cfeed: CandleFeed, now: int, step: int) -> None:
        needed = max(bot.strategy.candles_needed() for bot in cfeed.bots.values())
        try:
            reply = await request(
                self.nc,
                ohlcv(cfeed.exchange),
                OhlcvRequest(symbol=cfeed.symbol, timeframe=cfeed.timeframe, limit=needed + 2),
                OhlcvReply,
                timeout=self.timeout,
            )
        except BorsaError as exc:
            log.warning("candles failed", exchange=cfeed.exchange, symbol=cfeed.symbol, error=str(exc))
            return
        candles = [
            Candle(int(c[0]), Decimal(c[1]), Decimal(c[2]), Decimal(c[3]), Decimal(c[4]), Decimal(c[5]))
            for c in reply.candles
            if int(c[0]) + step <= now  # closed only
        ]
        if not candles:
            return
        cfeed.last_closed = candles[-1].timestamp
        for bot in list(cfeed.bots.values()):
            bot.on_candles(candles)

    # -- market rule changes ------------------------------------------------------------------------------------
    async def _subscribe_market_events(self, exchange: str) -> None:
        if exchange in self._market_subs:
            return
        self._market_subs[exchange] = await self.nc.subscribe(market_events(exchange), cb=self._on_market_event)

    async def _on_market_event(self, msg) -> None:
        try:
            event = decode(msg.data, MarketEvent)
        except Exception:
            log.warning("bad market event", subject=msg.subject)
            return
        for symbol in event.symbols:
            feed = self.symbols.get((event.exchange, symbol))
            if feed is None or not feed.bots:
                continue
            removed = event.kind == "removed"
            if not removed:
                try:
                    await self._load_rules(feed)
                except BorsaError as exc:
                    log.warning("market reload failed", exchange=feed.exchange, symbol=symbol, error=str(exc))
                    continue
            log.info("market rules changed", exchange=feed.exchange, symbol=symbol, kind=event.kind)
            for bot in list(feed.bots.values()):
                bot.on_market_changed(removed=removed)
