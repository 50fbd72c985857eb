"""Every 4xx/5xx body has DESIGN section 3's shape: {"detail": {"code", "message", "field"?}}."""

from __future__ import annotations

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from borsa_runtime.errors import BorsaError

log = structlog.get_logger("borsa.gateway")

# Bus error codes -> HTTP statuses. A person's input the exchange refuses is a 422, like any validation error.
STATUS = {
    "bad_request": 422,
    "unknown_symbol": 422,
    "invalid_order": 422,
    "insufficient_funds": 422,
    "auth_failed": 422,
    "permission_denied": 403,
    "order_not_found": 404,
    "unknown_account": 404,
    "not_found": 404,
    "unauthorized": 401,
    "rate_limited": 429,
    "conflict": 409,
    "not_supported": 501,
    "exchange_unavailable": 503,
    "network_error": 504,
    "internal": 500,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    detail: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field
        self.status = status or STATUS.get(code, 400)
        self.headers = headers

    @classmethod
    def from_bus(cls, error: BorsaError, field: str | None = None) -> ApiError:
        headers = {"Retry-After": str(max(1, error.retry_after_ms // 1000))} if error.retry_after_ms else None
        return cls(error.code, error.message, field, headers=headers)


def not_found(what: str) -> ApiError:
    return ApiError("not_found", f"{what} not found")


def body(code: str, message: str, field: str | None = None) -> dict:
    detail = {"code": code, "message": message}
    if field:
        detail["field"] = field
    return {"detail": detail}


async def api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)


async def bus_error(_: Request, exc: BorsaError) -> JSONResponse:
    return await api_error(_, ApiError.from_bus(exc))


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    return JSONResponse(body("bad_request", message, field), status_code=422)


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {401: "unauthorized", 403: "permission_denied", 404: "not_found", 405: "bad_request"}.get(
        exc.status_code, "bad_request"
    )
    return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("request failed", error=type(exc).__name__)
    return JSONResponse(body("internal", "something went wrong on our side; it has been logged"), status_code=500)


def install(app) -> None:
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(BorsaError, bus_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
