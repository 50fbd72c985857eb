"""Request budgets of one connector process for one exchange, shared by every ccxt client it creates.

ccxt's limiter belongs to one client instance, so N account clients would spend N budgets (ccxt #3994, #22530).
Here each documented limit is a pool: per (exchange, egress IP) and shared by every client, per account, or per
account and market (Kraken's trading engine). A request spends every pool it counts against (Hummingbot's linked
limits), at the exchange's documented weight for that endpoint.

Each pool is a token bucket kept as GCRA state (one "theoretical arrival time"): burst B units at once, then r
units per second. Whatever the alignment, an interval of length W then holds at most B + r*W units, so a fixed or
anchored window (Binance, Coinbase, KuCoin) of `limit` per W is never exceeded once B + r*W <= limit; a decaying
counter (Kraken) IS a bucket with B = its maximum and r = its decay. Each limit first loses MARGIN (10%): the
exchange counts arrivals, not our send times, so network jitter bunches requests, a restarted process cannot see
what its predecessor spent in the current window, and the exchange's configured limits may drift from its docs.
The burst is BURST_FRACTION of the window, so the sustained rate is (1 - 0.10) * (1 - 0.05) = 85.5% of the
documented rate (Binance orders: 8.55 of 10 per second per account).

Waiting: a request that fits goes at once; otherwise it queues FIFO behind the pool that holds it back and is
counted when it is sent, never earlier, so one account's queue never delays another account or the shared pool.
A 429 pauses the pools it concerns until its Retry-After (KuCoin: its reset header; neither: a second, then the
sustained rate with no burst): calls wait if the pause ends within PAUSE_WAIT_MAX_S, otherwise they are refused at
once with RateLimited(retry_after_ms). A 418, or an "IP banned until" answer, opens a circuit for the egress: every
call is refused until the ban ends, so no request path can reach a banned IP. A call that would queue longer than
MAX_WAIT_S is refused too: its caller would have given up, and an order sent after that is a surprise. Where the
exchange reports its own count (Binance's X-MBX-USED-WEIGHT-1M and X-MBX-ORDER-COUNT-10S, KuCoin's gw-ratelimit-*)
and it is above what all our replicas may spend, someone else spends too, and the pool stops until the window ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from borsa_runtime.errors import RateLimited

log = structlog.get_logger("borsa.connector.budget")

# Module globals, so that tests can drive a fake clock.
monotonic = time.monotonic
wall = time.time
sleep = asyncio.sleep

MARGIN = 0.10
BURST_FRACTION = 0.05
PAUSE_WAIT_MAX_S = 1.0
MAX_WAIT_S = 10.0
UNKNOWN_PAUSE_S = 1.0  # a 429 without Retry-After or a reset header
DEFAULT_BAN_S = 120.0  # Binance's shortest ban, when a 418 says nothing about its length
CLOCK_SKEW_S = 1.0  # our clock against the exchange's, when we wait for its wall-clock window to end
DEFAULT_EGRESS = "default"

Units = float | Callable[[dict], float] | None  # None: ccxt's cost for the call, converted to the pool's units
Spend = tuple[str, Units]


@dataclass(frozen=True, slots=True)
class Limit:
    """One documented limit: `limit` units per `window_s`, or a counter of maximum `limit` decaying `decay_per_s`."""

    scope: str  # "ip" (per egress), "account", or "pair" (per account and market)
    limit: float
    window_s: float = 0.0
    decay_per_s: float = 0.0
    floor: float = 1.0  # a scaled limit never goes below this (as the simulator scales)
    header: str | None = None  # response header with the exchange's count in the current wall-clock window
    ccxt_factor: float | None = None  # our units per ccxt cost unit; default: this limit's rate over ccxt's


@dataclass(frozen=True, slots=True)
class Rules:
    limits: dict[str, Limit]
    primary: str  # the shared pool whose rate describe() shows
    apis: dict[str, tuple[Spend, ...]]  # what an endpoint missing from `endpoints` spends, by ccxt api
    fallback: tuple[Spend, ...]  # what any other api spends
    endpoints: dict[tuple[str, str, str], tuple[Spend, ...]] = field(default_factory=dict)  # (api, METHOD, path)
    every: tuple[Spend, ...] = ()  # spent by every request besides its endpoint's pools
    # (status, body) -> None when not a rate-limit answer, else the pool names it concerns (() for all spent).
    limited: Callable[[int, str], tuple[str, ...] | None] = lambda status, body: () if status == 429 else None
    scan_bodies: bool = False  # the exchange answers rate limits with HTTP 200 (Kraken)
    # (budgets, response headers, egress pools, account pools, now): the exchange's own count of a pool.
    sync: Callable[[Budgets, dict, dict, dict, float], None] | None = None
    exact: bool = False  # ccxt's rateLimit spacing, not a documented window: no margin, one second of burst


def _param(params, name: str):
    return params.get(name) if isinstance(params, dict) else None


# -- Binance spot: rest-api.md, enums.md, faqs/order_count_decrement.md (research perf-reliability-anchors 3) ----
def _binance_ticker(params) -> float:
    """ticker/24hr: 2 for one symbol; 2, 40 or 80 for 1-20, 21-100 or more symbols; 80 for all."""
    if _param(params, "symbol"):
        return 2
    symbols = _param(params, "symbols")
    if symbols:
        count = str(symbols).count(",") + 1
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 80


def _binance_depth(params) -> float:
    try:
        levels = int(_param(params, "limit") or 100)
    except (TypeError, ValueError):
        levels = 5000
    return 5 if levels <= 100 else 25 if levels <= 500 else 50 if levels <= 1000 else 250


def _binance_limited(status: int, body: str) -> tuple[str, ...] | None:
    if status != 429:
        return None
    # -1015 "Too many new orders" is the account's order count; anything else the IP's weight or raw requests.
    return ("orders_10s", "orders_day") if "-1015" in body else ("weight", "raw")


def _sync_binance(budgets: Budgets, headers: dict, ip: dict, own: dict, now: float) -> None:
    """Binance reports its count in the current wall-clock window: above what all our replicas may spend,
    someone else spends (a restarted process, another tool on the IP), so stop until the window ends."""
    for pool in (ip.get("weight"), own.get("orders_10s")):
        if pool is None:
            continue
        used = _number(headers, pool.spec.header)
        if used is not None and used > pool.full:
            window = pool.spec.window_s
            pool.pause(now + window - wall() % window + CLOCK_SKEW_S)


_BINANCE_ORDER = (("weight", 1), ("orders_10s", 1), ("orders_day", 1))  # every new order, filled or not
BINANCE = Rules(
    limits={
        "weight": Limit("ip", 6000, window_s=60, header="X-MBX-USED-WEIGHT-1M"),
        "raw": Limit("ip", 61_000, window_s=300),
        "orders_10s": Limit("account", 100, window_s=10, header="X-MBX-ORDER-COUNT-10S"),
        "orders_day": Limit("account", 200_000, window_s=86_400),
    },
    primary="weight",
    endpoints={
        ("public", "GET", "ping"): (("weight", 1),),
        ("public", "GET", "time"): (("weight", 1),),
        ("public", "GET", "exchangeInfo"): (("weight", 20),),
        ("public", "GET", "ticker/24hr"): (("weight", _binance_ticker),),
        ("public", "GET", "ticker/price"): (("weight", lambda p: 2 if _param(p, "symbol") else 4),),
        ("public", "GET", "ticker/bookTicker"): (("weight", lambda p: 2 if _param(p, "symbol") else 4),),
        ("public", "GET", "avgPrice"): (("weight", 2),),
        ("public", "GET", "depth"): (("weight", _binance_depth),),
        ("public", "GET", "klines"): (("weight", 2),),
        ("private", "GET", "account"): (("weight", 20),),
        ("private", "POST", "order"): _BINANCE_ORDER,
        ("private", "POST", "order/test"): (("weight", 1),),
        ("private", "GET", "order"): (("weight", 4),),
        ("private", "DELETE", "order"): (("weight", 1),),
        ("private", "GET", "openOrders"): (("weight", lambda p: 6 if _param(p, "symbol") else 80),),
        ("private", "DELETE", "openOrders"): (("weight", 1),),
        ("private", "GET", "allOrders"): (("weight", 20),),
        ("private", "GET", "myTrades"): (("weight", lambda p: 5 if _param(p, "orderId") else 20),),
    },
    apis={},
    fallback=(("weight", None),),
    every=(("raw", 1),),
    limited=_binance_limited,
    sync=_sync_binance,
)


# -- Kraken spot: docs.kraken.com guides/rest/ratelimits, support 360045239571; Starter tier ---------------------
def _kraken_limited(status: int, body: str) -> tuple[str, ...] | None:
    if "Rate limit exceeded" in body:
        return ("engine",) if "EOrder:" in body else ("rest",)
    if "Too many requests" in body:
        return ("public",)
    return () if status == 429 else None


KRAKEN = Rules(
    limits={
        # Public calls: "about one per second per IP" with bursts, the simulator's counter of 20 decaying 1/s.
        "public": Limit("ip", 20, decay_per_s=1.0),
        # REST call counter per key: ledger and trade history +2, AddOrder and CancelOrder 0, anything else +1.
        "rest": Limit("account", 15, decay_per_s=0.33, floor=2),
        # Trading engine counter per pair, +1 per order even when rejected [secondary: 60 and 1/s]. The decaying
        # penalty for cancelling a young order is not counted: ccxt's CancelOrder does not name the pair.
        "engine": Limit("pair", 60, decay_per_s=1.0),
    },
    primary="public",
    endpoints={
        ("private", "POST", "AddOrder"): (("engine", 1),),
        ("private", "POST", "AddOrderBatch"): (("engine", lambda p: len(_param(p, "orders") or ()) or 1),),
        ("private", "POST", "EditOrder"): (("engine", 1),),
        ("private", "POST", "CancelOrder"): (),
        ("private", "POST", "TradesHistory"): (("rest", 2),),
        ("private", "POST", "QueryTrades"): (("rest", 2),),
        ("private", "POST", "Ledgers"): (("rest", 2),),
        ("private", "POST", "QueryLedgers"): (("rest", 2),),
    },
    apis={"public": (("public", 1),), "private": (("rest", 1),)},
    fallback=(("public", 1),),
    limited=_kraken_limited,
    scan_bodies=True,
)

# -- Coinbase Advanced Trade: 30 req/s per user private, 10/s per IP public [secondary]; v2 10,000 per hour --------
COINBASE = Rules(
    limits={
        "public": Limit("ip", 10, window_s=1),
        "private": Limit("account", 30, window_s=1),
        "v2_public": Limit("ip", 10_000, window_s=3600),
        "v2": Limit("account", 10_000, window_s=3600),
    },
    primary="public",
    apis={
        "v3/public": (("public", 1),),
        "v3/private": (("private", 1),),
        "v2/public": (("v2_public", 1),),
        "v2/private": (("v2", 1),),
    },
    fallback=(("public", 1),),
)


# -- KuCoin (VIP0): kucoin.com/docs-new/rate-limit; 30 s pools, public per IP, the others per account ------------
# ccxt's KuCoin costs are the documented endpoint weights (its rateLimit 7.5 ms is 4000 per 30 s), hence factor 1.
def _sync_kucoin(budgets: Budgets, headers: dict, ip: dict, own: dict, now: float) -> None:
    """KuCoin reports limit, remaining and reset (ms) of the pool the request spent."""
    remaining = _number(headers, "gw-ratelimit-remaining")
    limit = _number(headers, "gw-ratelimit-limit")
    reset = _number(headers, "gw-ratelimit-reset")
    if remaining is None or limit is None or reset is None:
        return
    current = _SPENT.get()
    if current is None or current[0] is not budgets or len(current[1]) != 1:
        return
    pool = current[1][0][0]
    if limit - remaining > pool.full:
        pool.pause(now + reset / 1000)


KUCOIN = Rules(
    limits={
        "public": Limit("ip", 2000, window_s=30, ccxt_factor=1.0),
        "spot": Limit("account", 4000, window_s=30, ccxt_factor=1.0),
        "management": Limit("account", 2000, window_s=30, ccxt_factor=1.0),
    },
    primary="public",
    endpoints={("private", "GET", "accounts"): (("management", 5),)},
    apis={"public": (("public", None),), "private": (("spot", None),), "utaPrivate": (("management", None),)},
    fallback=(("public", None),),
    sync=_sync_kucoin,
)

RULES: dict[str, Rules] = {"binance": BINANCE, "kraken": KRAKEN, "coinbase": COINBASE, "kucoin": KUCOIN}


def _generic(rate_limit_ms: float) -> Rules:
    """Any other ccxt exchange: ccxt's own rateLimit, one cost unit per rateLimit ms, shared by every client."""
    return Rules(
        limits={"requests": Limit("ip", 1000.0 / rate_limit_ms, window_s=1, floor=0.0, ccxt_factor=1.0)},
        primary="requests",
        apis={},
        fallback=(("requests", None),),
        exact=True,
    )


class _Pool:
    """One limit for one owner, as GCRA state: `tat` is when the bucket would be empty."""

    def __init__(self, name: str, label: str, spec: Limit, rules: Rules, budgets: Budgets) -> None:
        self.name, self.label, self.spec = name, label, spec
        scaled = max(spec.floor, spec.limit * budgets.scale)
        ccxt_rate = 1000.0 / budgets.rate_limit_ms
        if rules.exact:
            self.full = self.limit = scaled * budgets.share
            self.rate = self.limit
            self.burst = max(1.0, self.rate)
        elif spec.decay_per_s:
            # The simulator scales a counter's maximum, not its decay; a replica gets its share of both.
            self.full = scaled * (1 - budgets.margin)
            self.limit = self.burst = self.full * budgets.share
            self.rate = spec.decay_per_s * budgets.share * (1 - budgets.margin)
        else:
            self.full = scaled * (1 - budgets.margin)
            self.limit = self.full * budgets.share
            self.burst = max(BURST_FRACTION * self.limit, min(1.0, self.limit / 2))
            self.rate = (self.limit - self.burst) / spec.window_s
        documented_rate = spec.decay_per_s or spec.limit / spec.window_s
        self.factor = spec.ccxt_factor if spec.ccxt_factor is not None else documented_rate / ccxt_rate
        self.tat = 0.0
        self.paused_until = 0.0
        self.spent = 0.0
        self.line = 0  # tasks queued for, or holding, `lock`
        self.lock = asyncio.Lock()

    def earliest(self, units: float) -> float:
        return max(self.paused_until, self.tat + (units - self.burst) / self.rate)

    def reserve(self, units: float, now: float) -> None:
        self.tat = max(self.tat, now) + units / self.rate
        self.spent += units

    def pause(self, until: float) -> None:
        """Nothing before `until`; the exchange's window restarts then, so the bucket is empty again."""
        self.paused_until = max(self.paused_until, until)
        self.tat = max(self.tat, until)

    def saturate(self, at: float) -> None:
        """The exchange says its counter is full: as if the whole burst were spent at `at`."""
        self.tat = max(self.tat, at + self.burst / self.rate)

    def state(self, now: float) -> dict:
        return {
            "scope": self.spec.scope,
            "limit": round(self.limit, 3),
            "burst": round(self.burst, 3),
            "rate_per_s": round(self.rate, 4),
            "level": round(max(0.0, self.tat - now) * self.rate, 3),
            "queued": max(0, self.line),
            "paused_s": round(max(0.0, self.paused_until - now), 3),
            "spent": self.spent,
        }


class _Charge(float):
    """ccxt's cost, carrying the pools this request spends from calculate_rate_limiter_cost to throttle."""

    __slots__ = ("spends",)


# The pools the current task's last request spent: on_rest_response runs in the task that throttled the request.
_SPENT: contextvars.ContextVar[tuple[Budgets, tuple[tuple[_Pool, float], ...]] | None] = contextvars.ContextVar(
    "borsa_budget_spent", default=None
)
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


class Budgets:
    """Every rate budget of one connector process for one exchange (see the module docstring)."""

    def __init__(
        self,
        exchange: str,
        rate_limit_ms: float,
        *,
        scale: float = 1.0,
        share: float = 1.0,
        on_wait: Callable[[float], None] | None = None,
        margin: float = MARGIN,
        max_wait_s: float = MAX_WAIT_S,
        pause_wait_max_s: float = PAUSE_WAIT_MAX_S,
    ) -> None:
        if not rate_limit_ms or rate_limit_ms <= 0:
            raise ValueError(f"rate_limit_ms must be a positive number of milliseconds, got {rate_limit_ms!r}")
        if scale <= 0:
            raise ValueError(f"scale must be greater than 0, got {scale!r}")
        if not 0 < share <= 1:
            raise ValueError(f"share must be above 0 and at most 1, got {share!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be at least 0 and below 1, got {margin!r}")
        self.exchange = exchange
        self.rate_limit_ms = float(rate_limit_ms)
        self.scale, self.share, self.margin = scale, share, margin
        self.on_wait = on_wait
        self.max_wait_s, self.pause_wait_max_s = max_wait_s, pause_wait_max_s
        self.rules = RULES.get(exchange) or _generic(self.rate_limit_ms)
        self._pools: dict[tuple, _Pool] = {}
        self._owned: dict[str, list[_Pool]] = {}  # account -> its account and pair pools
        self._ip: dict[str, dict[str, _Pool]] = {}
        self._egress_of: dict[str, str] = {}
        self._banned: dict[str, float] = {}
        self._ip_pools(DEFAULT_EGRESS)

    # -- pools ------------------------------------------------------------------------------------------------
    def _pool(self, name: str, owner: tuple[str, ...]) -> _Pool:
        key = (name, *owner)
        pool = self._pools.get(key)
        if pool is None:
            label = f"{owner[0]}:{'/'.join(owner[1:])}/{name}"
            pool = self._pools[key] = _Pool(name, label, self.rules.limits[name], self.rules, self)
            if owner[0] != "ip":
                self._owned.setdefault(owner[1], []).append(pool)
        return pool

    def _ip_pools(self, egress: str) -> dict[str, _Pool]:
        pools = self._ip.get(egress)
        if pools is None:
            limits = self.rules.limits.items()
            pools = self._ip[egress] = {n: self._pool(n, ("ip", egress)) for n, s in limits if s.scope == "ip"}
        return pools

    def _account_pools(self, account: str | None) -> dict[str, _Pool]:
        if account is None:
            return {}
        return {n: self._pool(n, ("account", account)) for n, s in self.rules.limits.items() if s.scope == "account"}

    @property
    def rate(self) -> float:
        """ccxt cost units per second of the shared budget: describe's interval is 1000 / rate ms."""
        pool = self._pools[(self.rules.primary, "ip", DEFAULT_EGRESS)]
        return pool.rate / pool.factor

    # -- clients ----------------------------------------------------------------------------------------------
    def attach(self, client, account: str | None = None, *, egress: str = DEFAULT_EGRESS) -> None:
        """Make every request of a ccxt client spend the pools it counts against: its egress's, and its account's
        when it holds a key. `egress` names the IP the client's requests leave from (a proxy per account gets its
        own); a client without an account (the public one, or a key being checked) spends only the egress pools."""
        ip = self._ip_pools(egress)
        own = self._account_pools(account)
        if account is not None:
            self._egress_of[account] = egress
        calculate = client.calculate_rate_limiter_cost
        original_response = client.on_rest_response
        on_wait = self.on_wait

        def calculate_rate_limiter_cost(api, method, path, params, config={}):  # noqa: B006 - ccxt's signature
            cost = calculate(api, method, path, params, config)
            charge = _Charge(1.0 if cost is None else cost)
            charge.spends = self._spends(api, method, path, params, charge, ip, own, account)
            return charge

        async def throttle(cost=None):
            if type(cost) is _Charge:
                spends = cost.spends
            else:  # a caller other than fetch2 (ccxt.pro): the egress's primary pool at ccxt's cost
                pool = ip[self.rules.primary]
                spends = ((pool, pool.factor * (1.0 if cost is None else float(cost))),)
            waited = await self._acquire(spends, egress)
            _SPENT.set((self, spends))
            if on_wait is not None:
                on_wait(waited)

        def on_rest_response(code, reason, url, method, headers, body, request_headers, request_body):
            body = original_response(code, reason, url, method, headers, body, request_headers, request_body)
            self._observe(code, body, headers or {}, ip, own, egress)
            return body

        client.enableRateLimit = True  # ccxt calls throttle only when this is on
        client.calculate_rate_limiter_cost = calculate_rate_limiter_cost
        client.throttle = throttle
        client.on_rest_response = on_rest_response

    def _spends(self, api, method, path, params, cost, ip, own, account) -> tuple[tuple[_Pool, float], ...]:
        rules = self.rules
        api_name = api if isinstance(api, str) else "/".join(api)
        entry = rules.endpoints.get((api_name, method, path))
        if entry is None:
            entry = rules.apis.get(api_name, rules.fallback)
        out = []
        for name, units in entry + rules.every:
            pool = ip.get(name) or own.get(name)
            if pool is None:
                if account is None or rules.limits[name].scope != "pair":
                    continue  # an account pool, and this client holds no stored key
                pool = self._pool(name, ("pair", account, str(_param(params, "pair") or "")))
            spent = pool.factor * cost if units is None else units(params) if callable(units) else units
            if spent > 0:
                out.append((pool, float(spent)))
        return tuple(out)

    # -- waiting ----------------------------------------------------------------------------------------------
    async def _acquire(self, spends: tuple[tuple[_Pool, float], ...], egress: str) -> float:
        """Wait until every pool admits the request, then count it in all of them at once; the seconds waited."""
        start = now = monotonic()
        held: _Pool | None = None
        try:
            while True:
                self._refuse_if_blocked(egress, spends, now)
                at, binding, line = now, None, None
                for pool, units in spends:
                    earliest = pool.earliest(units)
                    if earliest > at:
                        at, binding = earliest, pool
                    if line is None and pool.line and pool is not held:
                        line = pool
                if binding is None and (held is not None or line is None):
                    for pool, units in spends:
                        pool.reserve(units, now)
                    return now - start
                target = binding or line
                if target is not held:
                    # Queue FIFO behind the pool that holds this request back; only its head sleeps.
                    if held is not None:
                        held.line -= 1
                        held.lock.release()
                        held = None
                    ahead = max(0.0, at - now) + target.line * self._units_in(spends, target) / target.rate
                    if ahead > self.max_wait_s:
                        raise self._queue_full(target, ahead)
                    target.line += 1
                    try:
                        await target.lock.acquire()
                    except BaseException:
                        target.line -= 1
                        raise
                    held = target
                elif at - now > self.max_wait_s:
                    raise self._queue_full(target, at - now)
                else:
                    await sleep(at - now)
                now = monotonic()
        finally:
            if held is not None:
                held.line -= 1
                held.lock.release()

    @staticmethod
    def _units_in(spends, pool: _Pool) -> float:
        return next((units for p, units in spends if p is pool), 1.0)

    def _queue_full(self, pool: _Pool, seconds: float) -> RateLimited:
        return RateLimited(
            f"{self.exchange} request budget {pool.label} is booked for the next {seconds:.1f} s "
            f"(at most {self.max_wait_s:g} s of queueing); retry later",
            retry_after_ms=math.ceil(seconds * 1000),
            exchange=self.exchange,
        )

    def _refuse_if_blocked(self, egress: str, spends, now: float) -> None:
        until = self._banned.get(egress, 0.0)
        if until > now:
            raise RateLimited(
                f"{self.exchange} banned this connector's IP (egress {egress!r}) for too many requests; nothing is "
                f"sent to it until the ban ends in {until - now:.1f} s",
                retry_after_ms=math.ceil((until - now) * 1000),
                exchange=self.exchange,
            )
        for pool, _ in spends:
            if pool.paused_until - now > self.pause_wait_max_s:
                raise RateLimited(
                    f"{self.exchange} answered 429 (too many requests) for {pool.label}; paused for "
                    f"{pool.paused_until - now:.1f} s more, as the exchange asked",
                    retry_after_ms=math.ceil((pool.paused_until - now) * 1000),
                    exchange=self.exchange,
                )

    def check(self, account: str | None = None) -> None:
        """Raise RateLimited (with retry_after_ms) at once while a ban, or a Retry-After pause longer than
        PAUSE_WAIT_MAX_S, is in force for the pools a request of `account` would spend; otherwise return."""
        egress = self._egress_of.get(account, DEFAULT_EGRESS) if account is not None else DEFAULT_EGRESS
        pools = list(self._ip_pools(egress).values()) + self._owned.get(account, [])
        self._refuse_if_blocked(egress, [(pool, 0.0) for pool in pools], monotonic())

    # -- what the exchange answered ---------------------------------------------------------------------------
    def _observe(self, code: int, body, headers: dict, ip: dict, own: dict, egress: str) -> None:
        rules = self.rules
        if code < 400 and not rules.scan_bodies:
            if rules.sync is not None:
                rules.sync(self, headers, ip, own, monotonic())
            return
        text = body if isinstance(body, str) else ""
        now = monotonic()
        if code == 418 or (code >= 400 and "banned until" in text):
            self._ban(egress, text, headers, now)
            return
        names = rules.limited(code, text)
        if names is None:
            if rules.sync is not None:
                rules.sync(self, headers, ip, own, now)
            return
        current = _SPENT.get()
        spent = [pool for pool, _ in current[1]] if current is not None and current[0] is self else []
        concerned = [p for p in spent if not names or p.name in names]
        if not concerned:
            concerned = [p for p in (*ip.values(), *own.values()) if not names or p.name in names]
        retry_after = _seconds(headers, "Retry-After")
        if retry_after is None:
            retry_after = _seconds(headers, "gw-ratelimit-reset", 0.001)  # KuCoin: ms until the pool refills
        for pool in concerned:
            if retry_after is not None:
                pool.pause(now + retry_after)
                continue
            # A 429 that says nothing about how long: the counter is full, and a window-based pool waits a
            # moment (Coinbase's whole window) before going on at its sustained rate, with no burst.
            if not pool.spec.decay_per_s:
                pool.pause(now + min(pool.spec.window_s, UNKNOWN_PAUSE_S))
            pool.saturate(max(now, pool.paused_until))
        log.warning(
            "rate_limited_by_exchange",
            exchange=self.exchange,
            status=code,
            pools=[p.label for p in concerned],
            retry_after_s=retry_after,
        )

    def _ban(self, egress: str, text: str, headers: dict, now: float) -> None:
        found = _BANNED_UNTIL.search(text)  # Binance: "IP banned until 1700000000000" (epoch ms)
        seconds = int(found.group(1)) / 1000 - wall() if found else _seconds(headers, "Retry-After") or DEFAULT_BAN_S
        until = now + max(1.0, seconds)
        self._banned[egress] = max(self._banned.get(egress, 0.0), until)
        log.error("ip_banned_by_exchange", exchange=self.exchange, egress=egress, seconds=round(until - now, 1))

    # -- metrics ----------------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Every pool's limit, burst, rate, level (units in the bucket), queue, pause and units spent so far."""
        now = monotonic()
        return {
            "exchange": self.exchange,
            "banned_s": {egress: round(until - now, 3) for egress, until in self._banned.items() if until > now},
            "pools": {pool.label: pool.state(now) for pool in self._pools.values()},
        }


def _number(headers: dict, name: str | None) -> float | None:
    if not name:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds(headers: dict, name: str, unit: float = 1.0) -> float | None:
    value = _number(headers, name)
    return value * unit if value is not None and value >= 0 else None
