"""The simulated market universe: which markets each exchange lists, with its own precision, limits and fees.

Every number here is exchange-agnostic (tick sizes, steps, minimums as Decimal); each dialect expresses
them the way its exchange does (Binance filters, Kraken decimals, Coinbase increments, KuCoin sizes).
The rules differ on purpose between exchanges, so that code that hard-codes one exchange's rules fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D = Decimal

# Base assets with a plausible price in USD. The walk starts near these.
ASSETS: dict[str, Decimal] = {
    "BTC": D("64000"),
    "ETH": D("3200"),
    "SOL": D("150"),
    "XRP": D("0.55"),
    "ADA": D("0.45"),
    "DOGE": D("0.12"),
    "DOT": D("6.5"),
    "LTC": D("80"),
    "LINK": D("14"),
    "AVAX": D("30"),
    "ATOM": D("8"),
    "UNI": D("7.5"),
    "XLM": D("0.11"),
    "TRX": D("0.12"),
    "BCH": D("450"),
    "ETC": D("25"),
    "FIL": D("5"),
    "NEAR": D("5"),
    "AAVE": D("95"),
    "ALGO": D("0.18"),
    "ARB": D("0.9"),
    "OP": D("1.8"),
    "SHIB": D("0.000025"),
    "PEPE": D("0.00001"),
}


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One listed market. `symbol` is ccxt's unified form; the rest is what the exchange enforces."""

    exchange: str
    symbol: str  # unified, "BTC/USD"
    market_id: str  # native id as the exchange writes it in paths and params ("XXBTZUSD")
    base: str  # unified asset codes
    quote: str
    base_id: str  # native asset codes ("XXBT", "ZUSD" on Kraken)
    quote_id: str
    altname: str  # Kraken's short name ("XBTUSD"); equal to market_id elsewhere
    price_tick: Decimal
    amount_step: Decimal
    min_amount: Decimal
    max_amount: Decimal
    min_cost: Decimal
    max_cost: Decimal
    min_price: Decimal
    max_price: Decimal
    maker: Decimal  # fee rates, 0.001 = 0.1 %
    taker: Decimal
    start_price: Decimal
    active: bool = True
    extra: dict = field(default_factory=dict, hash=False, compare=False)


def _pow10(exp: int) -> Decimal:
    return D(1).scaleb(exp)


def _magnitude(value: Decimal) -> int:
    """Exponent of the leading digit: 64000 -> 4, 0.55 -> -1."""
    return value.adjusted()


def _tick_for(price: Decimal, significant: int) -> Decimal:
    """A power-of-ten tick giving `significant` digits at this price."""
    return _pow10(_magnitude(price) - significant + 1)


def _step_for(price: Decimal, usd_value: Decimal, quote: str) -> Decimal:
    """A power-of-ten amount step worth about `usd_value` dollars."""
    return _pow10(_magnitude(usd_value / (price * _usd(quote))))


def _usd(asset: str) -> Decimal:
    """Dollar value of one unit of a quote asset."""
    if asset in ("USD", "USDT", "USDC"):
        return D(1)
    if asset == "EUR":
        return 1 / EUR_PER_USD
    return ASSETS[asset]


def _round_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value() * step


# Kraken's historic asset codes: X for crypto, Z for fiat; newer listings use plain codes.
KRAKEN_ASSET_IDS = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "XRP": "XXRP",
    "LTC": "XLTC",
    "ETC": "XETC",
    "XLM": "XXLM",
    "DOGE": "XXDG",
    "USD": "ZUSD",
    "EUR": "ZEUR",
}
# Kraken's short names (altname) use XBT and XDG.
KRAKEN_ALT = {"BTC": "XBT", "DOGE": "XDG"}
KRAKEN_LEGACY_PAIRS = {"BTC", "ETH", "XRP", "LTC", "ETC", "XLM"}
EUR_PER_USD = D("0.92")


def _binance() -> list[MarketSpec]:
    specs = []
    pairs = [(a, "USDT") for a in ASSETS] + [("ETH", "BTC"), ("SOL", "BTC"), ("LTC", "BTC")]
    for base, quote in pairs:
        price = ASSETS[base] if quote == "USDT" else ASSETS[base] / ASSETS[quote]
        tick = _tick_for(price, 7)
        step = _step_for(price, D("1"), quote)
        min_notional = D("5") if quote == "USDT" else D("0.0001")
        specs.append(
            MarketSpec(
                exchange="binance",
                symbol=f"{base}/{quote}",
                market_id=f"{base}{quote}",
                base=base,
                quote=quote,
                base_id=base,
                quote_id=quote,
                altname=f"{base}{quote}",
                price_tick=tick,
                amount_step=step,
                # Binance lists cheap coins with a LOT_SIZE minQty of ten steps.
                min_amount=step * 10 if price < 1 else step,
                max_amount=D("9000000000") if price < 1 else D("9000"),
                min_cost=min_notional,
                max_cost=D("9000000"),
                min_price=tick,
                max_price=_pow10(_magnitude(price) + 3),
                maker=D("0.001"),
                taker=D("0.001"),
                start_price=_round_to(price, tick),
            )
        )
    return specs


def _kraken() -> list[MarketSpec]:
    specs = []
    pairs = [(a, "USD") for a in ASSETS if a not in ("TRX", "PEPE", "ARB")] + [
        ("BTC", "EUR"),
        ("ETH", "EUR"),
        ("SOL", "EUR"),
    ]
    for base, quote in pairs:
        price = ASSETS[base] * (EUR_PER_USD if quote == "EUR" else 1)
        # Kraken expresses precision as decimals: pair_decimals for price, lot_decimals for volume.
        tick = _tick_for(price, 6)
        step = D("0.00000001") if price > 1 else D("0.00001")
        base_id = KRAKEN_ASSET_IDS.get(base, base)
        quote_id = KRAKEN_ASSET_IDS[quote]
        # Pairs listed before 2018 keep X/Z-prefixed ids (XXBTZUSD); later ones use the altname (XDGUSD, SOLUSD).
        legacy = base in KRAKEN_LEGACY_PAIRS
        market_id = base_id + quote_id if legacy else KRAKEN_ALT.get(base, base) + quote
        altname = KRAKEN_ALT.get(base, base) + quote
        # ordermin: a round amount worth a few dollars, as Kraken lists it.
        ordermin = _pow10(_magnitude(D("3") / price) + 1) / 2 if price > 1 else _pow10(_magnitude(D("5") / price))
        specs.append(
            MarketSpec(
                exchange="kraken",
                symbol=f"{base}/{quote}",
                market_id=market_id,
                base=base,
                quote=quote,
                base_id=base_id,
                quote_id=quote_id,
                altname=altname,
                price_tick=tick,
                amount_step=step,
                min_amount=ordermin,
                max_amount=D("0"),  # Kraken lists no maximum
                min_cost=D("0.5"),
                max_cost=D("0"),
                min_price=D("0"),
                max_price=D("0"),
                maker=D("0.0025"),
                taker=D("0.004"),
                start_price=_round_to(price, tick),
            )
        )
    return specs


def _coinbase() -> list[MarketSpec]:
    specs = []
    pairs = [(a, "USD") for a in ASSETS if a not in ("TRX", "PEPE")] + [("BTC", "USDC"), ("ETH", "USDC")]
    for base, quote in pairs:
        price = ASSETS[base]
        tick = _tick_for(price, 7)
        step = _step_for(price, D("0.001"), quote)
        specs.append(
            MarketSpec(
                exchange="coinbase",
                symbol=f"{base}/{quote}",
                market_id=f"{base}-{quote}",
                base=base,
                quote=quote,
                base_id=base,
                quote_id=quote,
                altname=f"{base}-{quote}",
                price_tick=tick,
                amount_step=step,
                # Coinbase's base_min_size is ten increments on cheap coins.
                min_amount=step * 10 if price < 1 else step,
                max_amount=_pow10(_magnitude(D("200000000") / price)),  # about $200M: BTC-USD allows 1000 BTC
                min_cost=D("1"),
                max_cost=D("10000000"),
                min_price=D("0"),
                max_price=D("0"),
                maker=D("0.006"),
                taker=D("0.012"),
                start_price=_round_to(price, tick),
            )
        )
    return specs


def _kucoin() -> list[MarketSpec]:
    specs = []
    pairs = [(a, "USDT") for a in ASSETS if a != "ALGO"] + [("ETH", "BTC"), ("XRP", "BTC")]
    for base, quote in pairs:
        price = ASSETS[base] if quote == "USDT" else ASSETS[base] / ASSETS[quote]
        tick = _tick_for(price, 6)
        step = _step_for(price, D("0.01"), quote)
        min_size = _pow10(_magnitude(D("0.1") / (price * _usd(quote))))
        specs.append(
            MarketSpec(
                exchange="kucoin",
                symbol=f"{base}/{quote}",
                market_id=f"{base}-{quote}",
                base=base,
                quote=quote,
                base_id=base,
                quote_id=quote,
                altname=f"{base}-{quote}",
                price_tick=tick,
                amount_step=step,
                min_amount=max(min_size, step),
                max_amount=D("10000000000"),
                min_cost=D("0.1") if quote == "USDT" else D("0.00001"),
                max_cost=D("99999999"),
                min_price=D("0"),
                max_price=D("0"),
                maker=D("0.001"),
                taker=D("0.001"),
                start_price=_round_to(price, tick),
            )
        )
    return specs


BUILDERS = {"binance": _binance, "kraken": _kraken, "coinbase": _coinbase, "kucoin": _kucoin}
EXCHANGES = tuple(BUILDERS)


def markets_for(exchange: str) -> list[MarketSpec]:
    return BUILDERS[exchange]()
