"""Health: ready when NATS and Postgres answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    checks = {"nats": bool(state.nc.is_connected), "postgres": False}
    try:
        checks["postgres"] = await state.db.fetchval("SELECT true", timeout=2)
    except Exception:
        checks["postgres"] = False
    ready = all(checks.values())
    return JSONResponse({"status": "ok" if ready else "degraded", "checks": checks}, status_code=200 if ready else 503)


@router.get("/ping")
async def ping() -> dict:
    """Answers without touching anything: the baseline of bench/gateway.py."""
    return {"pong": True}
