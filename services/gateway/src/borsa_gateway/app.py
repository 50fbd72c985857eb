"""The FastAPI application: routes under /api/v1, errors in one shape, OpenAPI at /openapi.json, the web app at /."""

from __future__ import annotations

from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from borsa_runtime.bus import connect

from . import errors
from .bus import Connectors
from .cache import BotListCache
from .routes import api_keys, auth, bots, events, exchanges, health, reports, strategies, ui
from .security import LoginLimiter, Tokens
from .settings import GatewaySettings

API = "/api/v1"


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
        app.state.nc = await connect(settings.nats_url, name="borsa-gateway")
        app.state.connectors = Connectors(app.state.nc, settings.bus_timeout_seconds)
        app.state.bot_lists = BotListCache(app.state.nc)
        await app.state.bot_lists.start()
        app.state.events = events.EventHub(app.state.nc, app.state.db)
        app.state.events.end_streams_on_exit()
        try:
            yield
        finally:
            await app.state.nc.drain()
            await app.state.db.close()

    app = FastAPI(
        title="Borsa",
        version="0.1.0",
        lifespan=lifespan,
        description="Multi-exchange trading bots: API keys, bots, exchanges and markets.",
    )
    app.state.settings = settings
    app.state.tokens = Tokens(settings.token_secret.reveal(), settings.token_minutes)
    app.state.login_limiter = LoginLimiter(settings.login_attempts, settings.login_window_seconds)
    errors.install(app)
    for module in (auth, exchanges, api_keys, bots, reports, strategies, health, events):
        app.include_router(module.router, prefix=API)
    ui.install(app)  # the web app at / (after the API: its paths never shadow /api/v1)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            # FastAPI documents its own 422 body; ours is DESIGN section 3's {"detail": {code, message, field}}.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    response = operation.get("responses", {}).get("422")
                    if response:
                        response["content"] = {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                        }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
