"""Realistic instances of every bus message, handed to tests that ask for `example`."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

import borsa_proto as p

BTC_USDT = p.Market(
    symbol="BTC/USDT",
    market_id="BTCUSDT",
    base="BTC",
    quote="USDT",
    active=True,
    precision=p.Precision(amount=D("0.00001"), price=D("0.01")),
    limits=p.Limits(
        amount=p.MinMax(min=D("0.00001"), max=D("9000")),
        cost=p.MinMax(min=D("5")),
        price=p.MinMax(min=D("0.01"), max=D("1000000")),
    ),
    maker=D("0.001"),
    taker=D("0.001"),
)

LIMIT_BUY = p.Order(
    exchange="kraken",
    account="6f1c2a",
    id="OQCLML-BW3P3-BUCMWZ",
    client_order_id="bot42-000017",
    symbol="BTC/USD",
    market_id="XXBTZUSD",
    side=p.Side.BUY,
    type=p.OrderType.LIMIT,
    status=p.OrderStatus.OPEN,
    amount=D("0.00012300"),
    filled=D("0.00010000"),
    remaining=D("0.00002300"),
    price=D("64250.5"),
    average=D("64250.5"),
    cost=D("6.42505"),
    fee=p.Fee(cost=D("0.0167"), currency="USD"),
    created_at=1_717_171_717_000,
    updated_at=1_717_171_718_250,
)

MARKET_SELL = p.Order(
    exchange="binance",
    account="acc-1",
    id="28457",
    client_order_id=None,
    symbol="ETH/USDT",
    market_id="ETHUSDT",
    side=p.Side.SELL,
    type=p.OrderType.MARKET,
    status=p.OrderStatus.CLOSED,
    amount=D("0.5"),
    filled=D("0.5"),
    remaining=D("0"),
    price=None,
    average=D("3012.44"),
    cost=D("1506.22"),
    fee=None,
    created_at=1_717_000_000_000,
    updated_at=1_717_000_000_000,
)

EXAMPLES: list[p.Message] = [
    p.DescribeRequest(),
    p.Describe(
        id="kucoin",
        name="KuCoin",
        mode="sim",
        required_credentials=[
            p.CredentialField(name="apiKey", label="API key", secret=False),
            p.CredentialField(name="secret", label="Secret", secret=True),
            p.CredentialField(name="password", label="Passphrase", secret=True),
        ],
        has={"fetchOHLCV": True, "createOrder": True, "fetchMyTrades": False},
        rate_limits=p.RateLimits(interval_ms=10),
        markets_count=1243,
        status="ok",
        modes=["live", "sandbox", "paper"],
    ),
    p.MarketsRequest(search="btc", quote="USDT", active_only=True),
    p.MarketsRequest(),
    p.MarketsReply(markets=[BTC_USDT]),
    p.MarketRequest(symbol="XBTUSD"),
    BTC_USDT,
    p.TickerRequest(symbol="BTC/USDT"),
    p.Ticker(
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        bid=D("64250.10"),
        ask=D("64250.20"),
        last=D("64250.15"),
        timestamp=1_717_171_717_123,
    ),
    p.Ticker(symbol="BTC/USD", market_id="BTC-USD", bid=None, ask=None, last=D("1"), timestamp=1),
    p.OhlcvRequest(symbol="BTC/USDT", timeframe="1h", since=1_717_000_000_000, limit=500),
    p.OhlcvReply(
        candles=[
            (1_717_000_000_000, D("64000"), D("64500.5"), D("63900"), D("64250.15"), D("12.34567")),
            (1_717_003_600_000, D("64250.15"), D("64300"), D("64100"), D("64200"), D("0")),
        ],
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        timeframe="1h",
    ),
    p.BalanceRequest(account="6f1c2a"),
    p.BalanceReply(
        balances={
            "BTC": p.Balance(free=D("0.5"), used=D("0.00012300"), total=D("0.50012300")),
            "USDT": p.Balance(free=D("1000"), used=D("0"), total=D("1000")),
        }
    ),
    p.OrderCreateRequest(
        account="6f1c2a",
        client_order_id="bot42-000017",
        symbol="BTC/USD",
        side=p.Side.BUY,
        type=p.OrderType.LIMIT,
        amount=D("0.00012300"),
        price=D("64250.5"),
    ),
    p.OrderCreateRequest(
        account="acc-1",
        client_order_id="bot7-1",
        symbol="ETHUSDT",
        side=p.Side.SELL,
        type=p.OrderType.MARKET,
        amount=D("0.5"),
    ),
    LIMIT_BUY,
    MARKET_SELL,
    p.OrderGetRequest(account="6f1c2a", symbol="BTC/USD", id="OQCLML-BW3P3-BUCMWZ"),
    p.OrderCancelRequest(account="6f1c2a", symbol="BTC/USD", client_order_id="bot42-000017"),
    p.OpenOrdersRequest(account="6f1c2a"),
    p.OpenOrdersReply(orders=[LIMIT_BUY, MARKET_SELL]),
    p.CredentialsCheckRequest(account="6f1c2a"),
    p.CredentialsCheckRequest(sealed_credentials="c2VhbGVkLWJveA==", mode=p.KeyMode.SANDBOX),
    p.CredentialsCheckReply(ok=True, permissions=["read", "trade"], balances_visible=True),
    p.WatchRequest(symbol="BTC/USDT", lease_ms=30_000),
    p.WatchReply(
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        subject="borsa.market.binance.ticker.BTC_USDT",
        lease_ms=30_000,
    ),
    p.OrderEvent(
        event_id="kraken:OQCLML-BW3P3-BUCMWZ:filled:T1",
        kind=p.OrderEventKind.FILLED,
        order=LIMIT_BUY,
        fills=[
            p.Fill(
                trade_id="T1",
                price=D("64250.5"),
                amount=D("0.00010000"),
                fee_cost=D("0.0167"),
                fee_currency="USD",
                timestamp=1_717_171_718_250,
            )
        ],
        timestamp=1_717_171_718_300,
    ),
    p.MarketEvent(exchange="binance", kind=p.MarketEventKind.ADDED, symbols=["PEPE/USDT"], timestamp=1),
    p.MarketEvent(
        exchange="kraken",
        kind=p.MarketEventKind.CHANGED,
        symbols=["BTC/USD"],
        timestamp=2,
        changes=[p.MarketChange(symbol="BTC/USDT", kind="changed", fields=["precision"], old=BTC_USDT, new=BTC_USDT)],
    ),
    p.BotChanged(bot_id="0b6f6c1e-9c1a-4f7e-9d47-5a7c1f0e2b11", status="stopped", cancel_orders=False),
    p.BotEvent(
        bot_id="0b6f6c1e-9c1a-4f7e-9d47-5a7c1f0e2b11",
        exchange="kraken",
        symbol="BTC/USD",
        status="paused",
        status_reason="Paused: not enough funds to buy 0.0005 BTC/USD at market.",
        position=D("0.00049950"),
        average_entry=D("64250.5"),
        realized_pnl=D("-0.0167"),
        timestamp=1_717_171_718_300,
    ),
    p.ErrorReply(
        error=p.ErrorBody(
            code=p.ErrorCode.RATE_LIMITED,
            message="Binance asks us to slow down; retry in 2 seconds.",
            retryable=True,
            retry_after_ms=2000,
            exchange="binance",
            exchange_code="-1003",
        )
    ),
]


@pytest.fixture
def examples() -> list[p.Message]:
    return EXAMPLES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "example" in metafunc.fixturenames:
        ids = [f"{type(m).__name__}-{i}" for i, m in enumerate(EXAMPLES)]
        metafunc.parametrize("example", EXAMPLES, ids=ids)
