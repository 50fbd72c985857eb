"""The runner's Prometheus metrics, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.bots = Gauge("borsa_runner_bots", "Bots running in this runner", registry=r)
        self.runners = Gauge("borsa_runner_live_runners", "Runners alive, as this one counts them", registry=r)
        self.intents = Counter("borsa_runner_intents", "Order intents written before sending", registry=r)
        self.orders = Counter("borsa_runner_orders", "Orders the connectors confirmed", registry=r)
        self.retries = Counter(
            "borsa_runner_order_retries", "Order requests sent again after a passing error", ["code"], registry=r
        )
        self.paused = Counter("borsa_runner_paused", "Bots this runner paused with a reason", registry=r)
        self.events = Counter("borsa_runner_order_events", "Order events applied from BORSA_ORDERS", registry=r)
        self.tick_latency = Histogram(
            "borsa_runner_tick_to_intent_seconds",
            "From a ticker's arrival to the strategy's answer with an order",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "borsa_runner_loop_lag_seconds",
            "How late the event loop wakes a task that slept (every 50 ms): time no bot could be served",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def tick_to_intent(self, seconds: float) -> None:
        self.tick_latency.observe(seconds)
