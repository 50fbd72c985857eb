"""Error codes and the error reply body every service answers with (DESIGN section 2)."""

from __future__ import annotations

from enum import StrEnum

from borsa_proto.base import Message

# nats.micro's error headers (nats/micro/request.py); the code header carries an ErrorCode value.
ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_SYMBOL = "unknown_symbol"
    INVALID_ORDER = "invalid_order"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ORDER_NOT_FOUND = "order_not_found"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    UNKNOWN_ACCOUNT = "unknown_account"
    RATE_LIMITED = "rate_limited"
    EXCHANGE_UNAVAILABLE = "exchange_unavailable"
    NETWORK_ERROR = "network_error"
    NOT_SUPPORTED = "not_supported"
    INTERNAL = "internal"


RETRYABLE: dict[ErrorCode, bool] = {code: False for code in ErrorCode} | {
    ErrorCode.RATE_LIMITED: True,
    ErrorCode.EXCHANGE_UNAVAILABLE: True,
    ErrorCode.NETWORK_ERROR: True,
}
"""Whether a code is worth retrying when the reply does not say. Only reads are retried blindly."""


class ErrorBody(Message, omit_defaults=False):
    """The `error` object. Every key is always written: people read these.

    `code` is a plain string so a reader tolerates codes added after it was built;
    compare it with ErrorCode members.
    """

    code: str
    message: str
    retryable: bool = False
    retry_after_ms: int | None = None
    exchange: str | None = None
    exchange_code: str | None = None


class ErrorReply(Message):
    """`{"error": {...}}`, the body of an error reply."""

    error: ErrorBody
