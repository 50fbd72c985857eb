"""Each exchange's documented request limits as data: its pools, what each endpoint spends, which answers mean
"rate limited", and how to read the exchange's own count from its response headers.

`budget.py` turns these tables into token buckets shared by every ccxt client of the process; the numbers and their
sources live here, so that a changed limit is a one-line edit. What an endpoint spends of a pool is a number, a
function of the request's params (Binance's weight by symbol count or book depth), or None: ccxt's own cost for the
call, converted to the pool's units. Any other ccxt exchange gets `rules_for`'s generic fallback: ccxt's rateLimit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CLOCK_SKEW_S = 1.0  # our clock against the exchange's, when we wait for its wall-clock window to end

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
    # (response headers, egress pools, account pools, pools the request spent, monotonic now, wall-clock now):
    # reads the exchange's own count of a pool, and pauses the pool when someone else spends it too.
    sync: Callable[[dict, dict, dict, tuple, float, float], None] | None = None
    exact: bool = False  # ccxt's rateLimit spacing, not a documented window: no margin, one second of burst


def param(params, name: str):
    """A request parameter, or None (ccxt may pass params that are not a dict)."""
    return params.get(name) if isinstance(params, dict) else None


def header_number(headers: dict, name: str | None) -> float | None:
    """A numeric response header, looked up as documented and in lower case (aiohttp's case varies); else None."""
    if not name:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# -- Binance spot: rest-api.md, enums.md, faqs/order_count_decrement.md (research perf-reliability-anchors 3) ----
def _binance_ticker(params) -> float:
    """ticker/24hr: 2 for one symbol; 2, 40 or 80 for 1-20, 21-100 or more symbols; 80 for all."""
    if param(params, "symbol"):
        return 2
    symbols = param(params, "symbols")
    if symbols:
        count = str(symbols).count(",") + 1
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 80


def _binance_depth(params) -> float:
    try:
        levels = int(param(params, "limit") or 100)
    except (TypeError, ValueError):
        levels = 5000
    return 5 if levels <= 100 else 25 if levels <= 500 else 50 if levels <= 1000 else 250


def _binance_limited(status: int, body: str) -> tuple[str, ...] | None:
    if status != 429:
        return None
    # -1015 "Too many new orders" is the account's order count; anything else the IP's weight or raw requests.
    return ("orders_10s", "orders_day") if "-1015" in body else ("weight", "raw")


def _sync_binance(headers: dict, ip: dict, own: dict, spent: tuple, now: float, wall_now: float) -> None:
    """Binance reports its count in the current wall-clock window: above what all our replicas may spend,
    someone else spends (a restarted process, another tool on the IP), so stop until the window ends."""
    for pool in (ip.get("weight"), own.get("orders_10s")):
        if pool is None:
            continue
        used = header_number(headers, pool.spec.header)
        if used is not None and used > pool.full:
            window = pool.spec.window_s
            pool.pause(now + window - wall_now % window + CLOCK_SKEW_S)


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
        ("public", "GET", "ticker/price"): (("weight", lambda p: 2 if param(p, "symbol") else 4),),
        ("public", "GET", "ticker/bookTicker"): (("weight", lambda p: 2 if param(p, "symbol") else 4),),
        ("public", "GET", "avgPrice"): (("weight", 2),),
        ("public", "GET", "depth"): (("weight", _binance_depth),),
        ("public", "GET", "klines"): (("weight", 2),),
        ("private", "GET", "account"): (("weight", 20),),
        ("private", "POST", "order"): _BINANCE_ORDER,
        ("private", "POST", "order/test"): (("weight", 1),),
        ("private", "GET", "order"): (("weight", 4),),
        ("private", "DELETE", "order"): (("weight", 1),),
        ("private", "GET", "openOrders"): (("weight", lambda p: 6 if param(p, "symbol") else 80),),
        ("private", "DELETE", "openOrders"): (("weight", 1),),
        ("private", "GET", "allOrders"): (("weight", 20),),
        ("private", "GET", "myTrades"): (("weight", lambda p: 5 if param(p, "orderId") else 20),),
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
        ("private", "POST", "AddOrderBatch"): (("engine", lambda p: len(param(p, "orders") or ()) or 1),),
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
def _sync_kucoin(headers: dict, ip: dict, own: dict, spent: tuple, now: float, wall_now: float) -> None:
    """KuCoin reports limit, remaining and reset (ms) of the pool the request spent."""
    remaining = header_number(headers, "gw-ratelimit-remaining")
    limit = header_number(headers, "gw-ratelimit-limit")
    reset = header_number(headers, "gw-ratelimit-reset")
    if remaining is None or limit is None or reset is None:
        return
    if len(spent) != 1:
        return
    pool = spent[0]
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


def rules_for(exchange: str, rate_limit_ms: float) -> Rules:
    """The exchange's documented rules; any other ccxt exchange: ccxt's own rateLimit, one cost unit per
    rateLimit ms, shared by every client."""
    rules = RULES.get(exchange)
    if rules is not None:
        return rules
    return Rules(
        limits={"requests": Limit("ip", 1000.0 / rate_limit_ms, window_s=1, floor=0.0, ccxt_factor=1.0)},
        primary="requests",
        apis={},
        fallback=(("requests", None),),
        exact=True,
    )
