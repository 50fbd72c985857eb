"""The connector's settings, from the environment (and `--exchange` on the command line)."""

from __future__ import annotations

import msgspec

from borsa_runtime.settings import Settings


class ConnectorSettings(Settings, kw_only=True, frozen=True):
    exchange: str = msgspec.field(default="", name="BORSA_EXCHANGE")
    markets_refresh_minutes: float = msgspec.field(default=15.0, name="BORSA_MARKETS_REFRESH_MINUTES")
    watch_interval_ms: int = msgspec.field(default=1000, name="BORSA_WATCH_INTERVAL_MS")
    watch_lease_ms: int = msgspec.field(default=30_000, name="BORSA_WATCH_LEASE_MS")
    request_timeout_ms: int = msgspec.field(default=10_000, name="BORSA_REQUEST_TIMEOUT_MS")
    # Multiplies the exchange's request budget: below 1 when replicas share one IP, above 1 against the simulator
    # started with the same --rate-limit-scale.
    rate_limit_scale: float = msgspec.field(default=1.0, name="BORSA_RATE_LIMIT_SCALE")
    http_host: str = msgspec.field(default="127.0.0.1", name="BORSA_CONNECTOR_HTTP_HOST")
    http_port: int = msgspec.field(default=0, name="BORSA_CONNECTOR_HTTP_PORT")
    replica_id: str = msgspec.field(default="", name="BORSA_REPLICA_ID")

    def __post_init__(self) -> None:
        for name, value, low in (
            ("BORSA_MARKETS_REFRESH_MINUTES", self.markets_refresh_minutes, 0.05),
            ("BORSA_WATCH_INTERVAL_MS", self.watch_interval_ms, 50),
            ("BORSA_WATCH_LEASE_MS", self.watch_lease_ms, 100),
            ("BORSA_REQUEST_TIMEOUT_MS", self.request_timeout_ms, 100),
            ("BORSA_RATE_LIMIT_SCALE", self.rate_limit_scale, 0.0001),
        ):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"BORSA_CONNECTOR_HTTP_PORT must be between 0 and 65535, got {self.http_port}")
