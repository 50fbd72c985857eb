"""Prometheus metrics of a connector: requests, errors by code, latency, rate-budget waits, watched symbols."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "borsa_connector_requests_total",
            "Bus requests answered, by endpoint and outcome code",
            ["exchange", "endpoint", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "borsa_connector_request_seconds",
            "Time to answer a bus request",
            ["exchange", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.exchange_calls = Counter(
            "borsa_connector_exchange_calls_total",
            "Calls made to the exchange, by ccxt method",
            ["exchange", "method"],
            registry=self.registry,
        )
        self.rate_wait = Histogram(
            "borsa_connector_rate_budget_wait_seconds",
            "Time a call waited for the exchange's rate budget",
            ["exchange"],
            buckets=(0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.watched = Gauge(
            "borsa_connector_watched_symbols", "Symbols with a live watch lease", ["exchange"], registry=self.registry
        )
        self.polls = Counter(
            "borsa_connector_ticker_polls_total",
            "Ticker polls made for watched symbols",
            ["exchange"],
            registry=self.registry,
        )
        self.market_changes = Counter(
            "borsa_connector_market_changes_total",
            "Market rule changes seen on refresh",
            ["exchange", "kind"],
            registry=self.registry,
        )

    def observe_request(self, exchange: str, endpoint: str, code: str, seconds: float) -> None:
        self.requests.labels(exchange, endpoint, code).inc()
        self.latency.labels(exchange, endpoint).observe(seconds)

    def observe_throttle(self, exchange: str, seconds: float) -> None:
        self.rate_wait.labels(exchange).observe(seconds)
