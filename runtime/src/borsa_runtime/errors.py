"""Typed exceptions for the bus error codes, each naming what the caller should do next."""

from __future__ import annotations

from enum import StrEnum

from nats.micro import Request

from borsa_proto import ERROR_CODE_HEADER, ERROR_HEADER, RETRYABLE, ErrorBody, ErrorCode, ErrorReply, encode

# NATS headers end at a line break; long messages belong in the body.
_HEADER_MAX = 512


class Action(StrEnum):
    RETRY = "retry"
    """Try again, after retry_after_ms if given. Only reads are retried blindly (DESIGN section 7)."""
    FIX_REQUEST = "fix_request"
    """The request cannot succeed as it is; change it."""
    NEEDS_PERSON = "needs_person"
    """Someone has to act: new keys, more funds, a bug fix."""


class BorsaError(Exception):
    """An error reply from a Borsa service, or one about to be sent.

    Subclasses fix `code` and `action`; the base class stands for codes this build does not know.
    """

    code: str = ErrorCode.INTERNAL
    action: Action = Action.NEEDS_PERSON

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
        exchange: str | None = None,
        exchange_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = str(code or type(self).code)
        known = self.code in ErrorCode.__members__.values()
        self.retryable = retryable if retryable is not None else known and RETRYABLE[ErrorCode(self.code)]
        self.retry_after_ms = retry_after_ms
        self.exchange = exchange
        self.exchange_code = exchange_code
        if type(self) is BorsaError:
            self.action = Action.RETRY if self.retryable else Action.NEEDS_PERSON

    def __repr__(self) -> str:
        names = ("code", "message", "retryable", "retry_after_ms", "exchange", "exchange_code")
        fields = ", ".join(f"{n}={v!r}" for n in names if (v := getattr(self, n)) is not None)
        return f"{type(self).__name__}({fields})"

    def to_body(self) -> ErrorBody:
        return ErrorBody(
            code=str(self.code),
            message=self.message,
            retryable=self.retryable,
            retry_after_ms=self.retry_after_ms,
            exchange=self.exchange,
            exchange_code=self.exchange_code,
        )

    def to_reply(self) -> ErrorReply:
        return ErrorReply(error=self.to_body())


class BadRequest(BorsaError):
    """The request is malformed or misses a field."""

    code = ErrorCode.BAD_REQUEST
    action = Action.FIX_REQUEST


class UnknownSymbol(BorsaError):
    """The exchange has no such market, under either its unified or its native name."""

    code = ErrorCode.UNKNOWN_SYMBOL
    action = Action.FIX_REQUEST


class InvalidOrder(BorsaError):
    """Below the minimum amount or cost, wrong precision, or a price out of range."""

    code = ErrorCode.INVALID_ORDER
    action = Action.FIX_REQUEST


class InsufficientFunds(BorsaError):
    """The account cannot pay for the order; someone has to add funds or change the bot."""

    code = ErrorCode.INSUFFICIENT_FUNDS
    action = Action.NEEDS_PERSON


class OrderNotFound(BorsaError):
    code = ErrorCode.ORDER_NOT_FOUND
    action = Action.FIX_REQUEST


class AuthFailed(BorsaError):
    """The exchange refused the API key: wrong, expired or revoked."""

    code = ErrorCode.AUTH_FAILED
    action = Action.NEEDS_PERSON


class PermissionDenied(BorsaError):
    """The API key works but lacks a permission (trading, withdrawals off is fine)."""

    code = ErrorCode.PERMISSION_DENIED
    action = Action.NEEDS_PERSON


class UnknownAccount(BorsaError):
    """No stored API key has this id (for this exchange)."""

    code = ErrorCode.UNKNOWN_ACCOUNT
    action = Action.FIX_REQUEST


class RateLimited(BorsaError):
    code = ErrorCode.RATE_LIMITED
    action = Action.RETRY


class ExchangeUnavailable(BorsaError):
    """The exchange, or its connector, is down or in maintenance."""

    code = ErrorCode.EXCHANGE_UNAVAILABLE
    action = Action.RETRY


class NetworkError(BorsaError):
    code = ErrorCode.NETWORK_ERROR
    action = Action.RETRY


class RequestTimeout(NetworkError):
    """No reply in time: the request may or may not have been carried out.

    Retry reads; for an order, look it up by client_order_id before sending anything again.
    """


class NotSupported(BorsaError):
    """The exchange (or ccxt for it) cannot do this."""

    code = ErrorCode.NOT_SUPPORTED
    action = Action.FIX_REQUEST


class Internal(BorsaError):
    """A bug on the replying side; its logs say more."""

    code = ErrorCode.INTERNAL
    action = Action.NEEDS_PERSON


BY_CODE: dict[str, type[BorsaError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        UnknownSymbol,
        InvalidOrder,
        InsufficientFunds,
        OrderNotFound,
        AuthFailed,
        PermissionDenied,
        UnknownAccount,
        RateLimited,
        ExchangeUnavailable,
        NetworkError,
        NotSupported,
        Internal,
    )
}


def error_from_body(body: ErrorBody) -> BorsaError:
    """The exception an error body stands for; an unknown code gives a plain BorsaError."""
    cls = BY_CODE.get(body.code, BorsaError)
    return cls(
        body.message,
        code=body.code,
        retryable=body.retryable,
        retry_after_ms=body.retry_after_ms,
        exchange=body.exchange,
        exchange_code=body.exchange_code,
    )


def header_safe(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _HEADER_MAX else flat[: _HEADER_MAX - 1] + "…"


def error_reply(error: BorsaError) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a nats.micro error reply for `error`."""
    headers = {ERROR_HEADER: header_safe(error.message), ERROR_CODE_HEADER: str(error.code)}
    return headers, encode(error.to_reply())


async def respond_error(request: Request, error: BorsaError) -> None:
    """Answer a nats.micro Request with `error`: micro's error headers plus the JSON error body."""
    headers, body = error_reply(error)
    await request.respond_error(headers[ERROR_CODE_HEADER], headers[ERROR_HEADER], data=body)
