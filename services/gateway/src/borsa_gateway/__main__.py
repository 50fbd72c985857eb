"""`borsa-gateway`: serve the HTTP API."""

from __future__ import annotations

import sys

import uvicorn

from borsa_runtime.logging import configure_logging
from borsa_runtime.settings import SettingsError

from .app import create_app
from .settings import GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings.from_env()
    except (SettingsError, ValueError) as exc:
        print(f"borsa-gateway: {exc}", file=sys.stderr)
        return 2
    if not settings.database_url:
        print("borsa-gateway: DATABASE_URL is required (postgresql://user@host:port/db)", file=sys.stderr)
        return 2
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,  # open event streams must not hold a stop forever
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
