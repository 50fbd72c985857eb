"""The reporting service's settings, from the environment."""

from __future__ import annotations

import msgspec

from borsa_runtime.settings import Settings


class ReportingSettings(Settings, kw_only=True, frozen=True):
    # Events per transaction at most, and how long to wait to fill a batch.
    batch: int = msgspec.field(default=5000, name="BORSA_REPORTING_BATCH")
    batch_wait_ms: int = msgspec.field(default=100, name="BORSA_REPORTING_BATCH_WAIT_MS")
    durable: str = msgspec.field(default="borsa-reporting", name="BORSA_REPORTING_DURABLE")
    # How long JetStream waits for an acknowledgement before it delivers an event again (a crashed consumer's).
    ack_wait_seconds: float = msgspec.field(default=30.0, name="BORSA_REPORTING_ACK_WAIT_SECONDS")
    http_host: str = msgspec.field(default="127.0.0.1", name="BORSA_REPORTING_HTTP_HOST")
    http_port: int = msgspec.field(default=0, name="BORSA_REPORTING_HTTP_PORT")

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 10_000:
            raise ValueError(f"BORSA_REPORTING_BATCH must be between 1 and 10000, got {self.batch}")
        if self.ack_wait_seconds < 1:
            raise ValueError(f"BORSA_REPORTING_ACK_WAIT_SECONDS must be at least 1, got {self.ack_wait_seconds}")
        if self.batch_wait_ms < 1:
            raise ValueError(f"BORSA_REPORTING_BATCH_WAIT_MS must be at least 1, got {self.batch_wait_ms}")
