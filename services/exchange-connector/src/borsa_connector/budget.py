"""Request budgets of one connector process for one exchange, shared by every ccxt client it creates.

ccxt's limiter belongs to one client instance, so N account clients would spend N budgets (ccxt #3994, #22530).
Here each documented limit is a pool: per (exchange, egress IP) and shared by every client, per account, or per
account and market (Kraken's trading engine). A request spends every pool it counts against (Hummingbot's linked
limits), at the exchange's documented weight for that endpoint. The limits and weights are data: budget_rules.py.

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
max_wait_s (the connector's request timeout) is refused too: its caller would have given up, and an order sent after
that is a surprise. Where the exchange reports its own count (Binance's X-MBX-USED-WEIGHT-1M and
X-MBX-ORDER-COUNT-10S, KuCoin's gw-ratelimit-*) and it is above what all our replicas may spend, someone else spends
too, and the pool stops until the window ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import re
import time
from collections.abc import Callable

import structlog

from borsa_runtime.errors import RateLimited

from .budget_rules import Limit, Rules, header_number, param, rules_for

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
DEFAULT_EGRESS = "default"


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
        self.rules = rules_for(exchange, self.rate_limit_ms)
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
                pool = self._pool(name, ("pair", account, str(param(params, "pair") or "")))
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
                rules.sync(headers, ip, own, self._spent(), monotonic(), wall())
            return
        text = body if isinstance(body, str) else ""
        now = monotonic()
        if code == 418 or (code >= 400 and "banned until" in text):
            self._ban(egress, text, headers, now)
            return
        names = rules.limited(code, text)
        if names is None:
            if rules.sync is not None:
                rules.sync(headers, ip, own, self._spent(), now, wall())
            return
        spent = self._spent()
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

    def _spent(self) -> tuple[_Pool, ...]:
        """The pools this task's last request spent, when that request went through this Budgets."""
        current = _SPENT.get()
        return tuple(pool for pool, _ in current[1]) if current is not None and current[0] is self else ()

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


def _seconds(headers: dict, name: str, unit: float = 1.0) -> float | None:
    value = header_number(headers, name)
    return value * unit if value is not None and value >= 0 else None
