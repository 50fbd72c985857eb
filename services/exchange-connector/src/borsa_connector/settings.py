"""The connector's settings, from the environment (and `--exchange` on the command line)."""

from __future__ import annotations

import msgspec

from borsa_runtime.sealing import SealingError, public_key_of
from borsa_runtime.settings import Secret, Settings, secret


class ConnectorSettings(Settings, kw_only=True, frozen=True):
    exchange: str = msgspec.field(default="", name="BORSA_EXCHANGE")
    markets_refresh_minutes: float = msgspec.field(default=15.0, name="BORSA_MARKETS_REFRESH_MINUTES")
    watch_interval_ms: int = msgspec.field(default=1000, name="BORSA_WATCH_INTERVAL_MS")
    watch_lease_ms: int = msgspec.field(default=30_000, name="BORSA_WATCH_LEASE_MS")
    request_timeout_ms: int = msgspec.field(default=10_000, name="BORSA_REQUEST_TIMEOUT_MS")
    # Multiplies the exchange's request budget: below 1 when replicas share one IP, above 1 against the simulator
    # started with the same --rate-limit-scale.
    rate_limit_scale: float = msgspec.field(default=1.0, name="BORSA_RATE_LIMIT_SCALE")
    # How often open orders are polled per account (sooner right after a create or cancel).
    order_poll_ms: int = msgspec.field(default=2000, name="BORSA_ORDER_POLL_MS")
    # Private order streams (ccxt.pro watch_orders) per account with open orders: "auto" where the exchange's quirks
    # say its stream works (Binance), "on" for every exchange whose ccxt.pro class has watchOrders, "off" never.
    # A stream update makes the tracker look at the account at once; polling stays as the fallback.
    order_ws: str = msgspec.field(default="auto", name="BORSA_ORDER_WS")
    # How long an account's stream stays open after its last order closed (an order in that time reuses it).
    order_ws_linger_ms: int = msgspec.field(default=30_000, name="BORSA_ORDER_WS_LINGER_MS")
    # How often an account whose stream is up is still polled (a missed update is found within this).
    order_ws_fallback_poll_ms: int = msgspec.field(default=15_000, name="BORSA_ORDER_WS_FALLBACK_POLL_MS")
    # This replica's share of every budget (0.5 with two replicas behind one egress IP).
    rate_share: float = msgspec.field(default=1.0, name="BORSA_RATE_SHARE")
    http_host: str = msgspec.field(default="127.0.0.1", name="BORSA_CONNECTOR_HTTP_HOST")
    http_port: int = msgspec.field(default=0, name="BORSA_CONNECTOR_HTTP_PORT")
    replica_id: str = msgspec.field(default="", name="BORSA_REPLICA_ID")
    # base64 X25519 private key that opens sealed API keys. Without it market data is served and the credential
    # verbs answer that this connector cannot open keys. No built-in default: nothing to refuse outside development.
    sealing_key: Secret | None = secret(env="BORSA_SEALING_KEY")
    account_clients_max: int = msgspec.field(default=500, name="BORSA_ACCOUNT_CLIENTS_MAX")
    # Revocation notices are plain NATS messages (at most once): cached keys are read again after this long.
    account_recheck_seconds: float = msgspec.field(default=300.0, name="BORSA_ACCOUNT_RECHECK_SECONDS")

    def __post_init__(self) -> None:
        for name, value, low in (
            ("BORSA_MARKETS_REFRESH_MINUTES", self.markets_refresh_minutes, 0.05),
            ("BORSA_WATCH_INTERVAL_MS", self.watch_interval_ms, 50),
            ("BORSA_WATCH_LEASE_MS", self.watch_lease_ms, 100),
            ("BORSA_REQUEST_TIMEOUT_MS", self.request_timeout_ms, 100),
            ("BORSA_ORDER_POLL_MS", self.order_poll_ms, 50),
            ("BORSA_ORDER_WS_FALLBACK_POLL_MS", self.order_ws_fallback_poll_ms, 50),
            ("BORSA_ORDER_WS_LINGER_MS", self.order_ws_linger_ms, 0),
            ("BORSA_RATE_LIMIT_SCALE", self.rate_limit_scale, 0.0001),
            ("BORSA_ACCOUNT_CLIENTS_MAX", self.account_clients_max, 1),
            ("BORSA_ACCOUNT_RECHECK_SECONDS", self.account_recheck_seconds, 1),
        ):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if self.order_ws not in ("auto", "on", "off"):
            raise ValueError(f"BORSA_ORDER_WS must be auto, on or off, got {self.order_ws!r}")
        if not 0 < self.rate_share <= 1:
            raise ValueError(f"BORSA_RATE_SHARE must be above 0 and at most 1, got {self.rate_share}")
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"BORSA_CONNECTOR_HTTP_PORT must be between 0 and 65535, got {self.http_port}")
        if self.sealing_key is not None:
            try:
                public_key_of(self.sealing_key.reveal())
            except SealingError:
                raise ValueError("BORSA_SEALING_KEY is not a base64 X25519 private key (32 bytes)") from None

    @property
    def sealing_public_key(self) -> str | None:
        """The public half, safe to log: the gateway's BORSA_SEALING_PUBLIC_KEY must equal it."""
        return public_key_of(self.sealing_key.reveal()) if self.sealing_key is not None else None
