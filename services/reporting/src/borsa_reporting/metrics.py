"""The reporting service's Prometheus metrics, in its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.events = Counter("borsa_reporting_events", "Order events applied", registry=r)
        self.orders = Counter("borsa_reporting_orders", "Orders seen for the first time", registry=r)
        self.fills = Counter("borsa_reporting_fills", "Fills written (each once)", registry=r)
        self.recomputed = Counter(
            "borsa_reporting_recomputed_groups", "Groups whose PnL was computed again (fills out of order)", registry=r
        )
        self.batch_seconds = Histogram(
            "borsa_reporting_batch_seconds",
            "One batch's transaction",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )

    def observe(self, applied, seconds: float) -> None:
        self.events.inc(applied.events)
        self.orders.inc(applied.orders_new)
        self.fills.inc(applied.fills_new)
        self.recomputed.inc(applied.recomputed)
        if seconds:
            self.batch_seconds.observe(seconds)
