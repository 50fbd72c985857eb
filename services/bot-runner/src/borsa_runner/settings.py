"""The runner's settings, from the environment."""

from __future__ import annotations

import msgspec

from borsa_runtime.settings import Settings


class RunnerSettings(Settings, kw_only=True, frozen=True):
    replica_id: str = msgspec.field(default="", name="BORSA_REPLICA_ID")
    # A bot's lease: a runner that stops renewing for this long loses its bots to the others.
    lease_seconds: float = msgspec.field(default=10.0, name="BORSA_RUNNER_LEASE_SECONDS")
    # How often the bot table is read for bots to take (notices over NATS make it sooner).
    scan_ms: int = msgspec.field(default=2000, name="BORSA_RUNNER_SCAN_MS")
    # How often the runner reads what changed on its bots' orders (fills applied by any runner).
    changes_ms: int = msgspec.field(default=250, name="BORSA_RUNNER_CHANGES_MS")
    request_timeout_ms: int = msgspec.field(default=10_000, name="BORSA_REQUEST_TIMEOUT_MS")
    # Order requests in flight at once from this runner (all bots together).
    max_inflight: int = msgspec.field(default=64, name="BORSA_RUNNER_MAX_INFLIGHT")
    # Stopping a bot cancels its open orders unless the stop says otherwise.
    cancel_on_stop: bool = msgspec.field(default=True, name="BORSA_RUNNER_CANCEL_ON_STOP")
    max_bots: int = msgspec.field(default=20_000, name="BORSA_RUNNER_MAX_BOTS")
    http_host: str = msgspec.field(default="127.0.0.1", name="BORSA_RUNNER_HTTP_HOST")
    http_port: int = msgspec.field(default=0, name="BORSA_RUNNER_HTTP_PORT")

    def __post_init__(self) -> None:
        for name, value, low in (
            ("BORSA_RUNNER_LEASE_SECONDS", self.lease_seconds, 1),
            ("BORSA_RUNNER_SCAN_MS", self.scan_ms, 50),
            ("BORSA_RUNNER_CHANGES_MS", self.changes_ms, 20),
            ("BORSA_REQUEST_TIMEOUT_MS", self.request_timeout_ms, 100),
            ("BORSA_RUNNER_MAX_INFLIGHT", self.max_inflight, 1),
            ("BORSA_RUNNER_MAX_BOTS", self.max_bots, 1),
        ):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"BORSA_RUNNER_HTTP_PORT must be between 0 and 65535, got {self.http_port}")
