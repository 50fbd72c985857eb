"""The coinbase dialect (placeholder until it is written)."""

from __future__ import annotations

from aiohttp import web

from .base import Dialect, json_response


class CoinbaseDialect(Dialect):
    name = "coinbase"

    def setup(self) -> None:
        pass

    def make_credentials(self) -> dict[str, str]:
        return {"apiKey": "placeholder", "secret": "placeholder"}

    def http_error(self, status: int, message: str) -> web.Response:
        return json_response({"error": message}, status=status)

    def error_response(self, err, call) -> web.Response:
        return json_response({"error": err.message}, status=400)
