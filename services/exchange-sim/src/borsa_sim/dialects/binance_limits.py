"""Binance's published rate limits: weight per IP (429, then a 418 ban) and unfilled orders per account (-1015)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..ratelimit import WindowCounter, scaled

# REQUEST_WEIGHT 6000 per minute per IP since 2023-08-25 (binance-spot-api-docs CHANGELOG.md, rest-api.md).
WEIGHT_PER_MINUTE = 6000
# RAW_REQUESTS 61000 per 5 minutes per IP (hummingbot binance_constants.py; exchangeInfo rateLimits).
RAW_PER_5_MINUTES = 61_000
# ORDERS 100 per 10 s and 200000 per day per account (faqs/order_count_decrement.md; hummingbot).
ORDERS_PER_10S = 100
ORDERS_PER_DAY = 200_000
# Binance bans an IP (418) that "continues sending after 429s" without publishing the threshold: here the
# sixth request answered 429 in one weight window is the one that gets banned.
LIMITED_BEFORE_BAN = 5


@dataclass(frozen=True, slots=True)
class Limited:
    status: int  # 429 or 418
    code: int  # -1003 (weight, raw requests) or -1015 (orders)
    msg: str
    retry_after: int  # seconds, for the Retry-After header


class BinanceLimits:
    def __init__(self, scale: float, ban_seconds: float) -> None:
        self.weight = WindowCounter(scaled(WEIGHT_PER_MINUTE, scale), 60)
        self.raw = WindowCounter(scaled(RAW_PER_5_MINUTES, scale), 300)
        self.orders_10s = WindowCounter(scaled(ORDERS_PER_10S, scale), 10)
        self.orders_day = WindowCounter(scaled(ORDERS_PER_DAY, scale), 86_400)
        self.ban_seconds = ban_seconds
        self._strikes: dict[str, tuple[int, int]] = {}  # ip -> (weight window, requests answered 429 in it)
        self._banned_until: dict[str, float] = {}

    def reset(self) -> None:
        for counter in (self.weight, self.raw, self.orders_10s, self.orders_day):
            counter.reset()
        self._strikes.clear()
        self._banned_until.clear()

    def rate_limits(self) -> list[dict]:
        """The `rateLimits` of exchangeInfo: what this simulator enforces."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": int(self.weight.limit),
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": int(self.orders_10s.limit)},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": int(self.orders_day.limit)},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": int(self.raw.limit)},
        ]

    # -- request weight ---------------------------------------------------------------------------------------
    def used_weight(self, ip: str) -> int:
        return int(self.weight.used(ip))

    def request(self, ip: str, weight: float, now: float | None = None) -> Limited | None:
        now = time.time() if now is None else now
        banned_until = self._banned_until.get(ip, 0.0)
        if banned_until > now:
            return self._ban_answer(banned_until, now)
        if banned_until:
            # The ban is over: a clean slate, as a banned IP cannot have sent anything meanwhile.
            del self._banned_until[ip]
            self._strikes.pop(ip, None)
        wait = self.raw.hit(ip, 1, now)
        message = f"Too many requests; current limit of IP({ip}) is {int(self.raw.limit)} requests per 5 MINUTE."
        if wait is None:
            wait = self.weight.hit(ip, weight, now)
            message = (
                f"Too much request weight used; current limit is {int(self.weight.limit)} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            )
        if wait is None:
            return None
        window = int(now // self.weight.window_s)
        seen_window, strikes = self._strikes.get(ip, (window, 0))
        strikes = strikes + 1 if seen_window == window else 1
        self._strikes[ip] = (window, strikes)
        if strikes > LIMITED_BEFORE_BAN + 1:
            self._banned_until[ip] = now + self.ban_seconds
            return self._ban_answer(now + self.ban_seconds, now)
        return Limited(429, -1003, message, math.ceil(wait))

    @staticmethod
    def _ban_answer(until: float, now: float) -> Limited:
        return Limited(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {int(until * 1000)}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            max(1, math.ceil(until - now)),
        )

    # -- orders ----------------------------------------------------------------------------------------------
    def order_counts(self, account_id: str) -> dict[str, str]:
        return {
            "X-MBX-ORDER-COUNT-10S": str(int(self.orders_10s.used(account_id))),
            "X-MBX-ORDER-COUNT-1D": str(int(self.orders_day.used(account_id))),
        }

    def order_limited(self, account_id: str, now: float | None = None) -> Limited | None:
        now = time.time() if now is None else now
        for counter, interval in ((self.orders_10s, "TEN_SECONDS"), (self.orders_day, "DAY")):
            if counter.used(account_id, now) + 1 > counter.limit:
                wait = (int(now // counter.window_s) + 1) * counter.window_s - now
                message = f"Too many new orders; current limit is {int(counter.limit)} orders per {interval}."
                return Limited(429, -1015, message, max(1, math.ceil(wait)))
        return None

    def count_order(self, account_id: str, traded: bool, now: float | None = None) -> None:
        """One more unfilled order; an order that trades at once gives it back (live since 2023-10-03)."""
        now = time.time() if now is None else now
        for counter in (self.orders_10s, self.orders_day):
            counter.hit(account_id, 1, now)
            if traded and counter.used(account_id, now) >= 1:
                counter.hit(account_id, -1, now)
