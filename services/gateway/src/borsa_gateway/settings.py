"""The gateway's settings, from the environment; default secrets are refused outside development."""

from __future__ import annotations

import msgspec

from borsa_runtime.settings import Secret, Settings, secret

DEV_TOKEN_SECRET = "borsa-development-token-secret-change-me"


class GatewaySettings(Settings, kw_only=True, frozen=True):
    http_host: str = msgspec.field(default="127.0.0.1", name="BORSA_HTTP_HOST")
    http_port: int = msgspec.field(default=8000, name="BORSA_HTTP_PORT")
    token_secret: Secret = secret(default=DEV_TOKEN_SECRET, env="BORSA_TOKEN_SECRET")
    token_minutes: int = msgspec.field(default=720, name="BORSA_TOKEN_MINUTES")
    sealing_public_key: str = msgspec.field(default="", name="BORSA_SEALING_PUBLIC_KEY")
    exchanges: str = msgspec.field(default="binance,kraken,coinbase,kucoin", name="BORSA_EXCHANGES")
    login_attempts: int = msgspec.field(default=5, name="BORSA_LOGIN_ATTEMPTS")
    login_window_seconds: int = msgspec.field(default=900, name="BORSA_LOGIN_WINDOW_SECONDS")
    bus_timeout_seconds: float = msgspec.field(default=10.0, name="BORSA_BUS_TIMEOUT_SECONDS")

    def __post_init__(self) -> None:
        if not 0 <= self.http_port <= 65535:
            raise ValueError(f"BORSA_HTTP_PORT must be between 0 and 65535, got {self.http_port}")
        if self.token_minutes < 1:
            raise ValueError("BORSA_TOKEN_MINUTES must be at least 1")
        if self.login_attempts < 1:
            raise ValueError("BORSA_LOGIN_ATTEMPTS must be at least 1")

    @property
    def configured_exchanges(self) -> list[str]:
        return [e.strip() for e in self.exchanges.split(",") if e.strip()]
