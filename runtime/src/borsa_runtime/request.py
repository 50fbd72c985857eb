"""One request helper: encode, ask over NATS, and turn any error reply into a typed exception."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client

from borsa_proto import ERROR_CODE_HEADER, ERROR_HEADER, BadMessage, ErrorCode, ErrorReply, decode, encode
from borsa_runtime.errors import (
    BY_CODE,
    BorsaError,
    ExchangeUnavailable,
    Internal,
    NetworkError,
    RequestTimeout,
    error_from_body,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0

# A reply is an error when its only key is "error"; checked before a full decode of the body.
_ERROR_BODY = re.compile(rb'^\s*\{\s*"error"\s*:')

# nats.micro answers an exception a handler did not catch with code "500"; other services may use
# HTTP-like numbers too.
_NUMERIC_CODES = {
    "400": ErrorCode.BAD_REQUEST,
    "401": ErrorCode.AUTH_FAILED,
    "403": ErrorCode.PERMISSION_DENIED,
    "404": ErrorCode.BAD_REQUEST,
    "408": ErrorCode.NETWORK_ERROR,
    "429": ErrorCode.RATE_LIMITED,
    "501": ErrorCode.NOT_SUPPORTED,
    "503": ErrorCode.EXCHANGE_UNAVAILABLE,
    "504": ErrorCode.NETWORK_ERROR,
}


def _exchange_of(subject: str) -> str | None:
    parts = subject.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["borsa", "exchange"] else None


def _code_from_header(code: str) -> str:
    if code in _NUMERIC_CODES:
        return _NUMERIC_CODES[code]
    if code.isdigit():
        return ErrorCode.BAD_REQUEST if code.startswith("4") else ErrorCode.INTERNAL
    return code


def error_from_reply(headers: Mapping[str, str] | None, data: bytes) -> BorsaError | None:
    """The error a reply carries (micro error headers and/or an `{"error": ...}` body), or None."""
    header_code = (headers or {}).get(ERROR_CODE_HEADER)
    if _ERROR_BODY.match(data):
        try:
            return error_from_body(decode(data, ErrorReply).error)
        except BadMessage:
            if header_code is None:
                raise
    if header_code is None:
        return None
    message = (headers or {}).get(ERROR_HEADER) or f"the service answered with error {header_code}"
    code = _code_from_header(header_code)
    return BY_CODE.get(code, BorsaError)(message, code=code)


def parse_reply(subject: str, headers: Mapping[str, str] | None, data: bytes, reply_type: type[T]) -> T:
    """Decode a reply into `reply_type`, raising the typed error it carries instead."""
    try:
        error = error_from_reply(headers, data)
    except BadMessage as exc:
        raise Internal(f"the error reply on {subject} is malformed: {exc}") from exc
    if error is not None:
        if error.exchange is None:
            error.exchange = _exchange_of(subject)
        raise error
    try:
        return decode(data, reply_type)
    except BadMessage as exc:
        raise Internal(f"the reply on {subject} does not match the contract: {exc}") from exc


async def request(
    nc: Client,
    subject: str,
    payload: Any,
    reply_type: type[T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> T:
    """Send `payload` (a message, or bytes already encoded) and return the reply as `reply_type`.

    Raises a BorsaError subclass: the one the reply carries, ExchangeUnavailable when nothing
    serves `subject`, RequestTimeout (a NetworkError) when no reply came in time, Internal when the
    reply does not decode.
    """
    data = payload if isinstance(payload, bytes) else encode(payload)
    exchange = _exchange_of(subject)
    try:
        msg = await nc.request(subject, data, timeout=timeout, headers=headers)
    except nats.errors.NoRespondersError as exc:
        who = f"the {exchange} connector" if exchange else "the service"
        raise ExchangeUnavailable(
            f"Nothing answers on {subject}: {who} is not running or not connected to NATS.", exchange=exchange
        ) from exc
    except nats.errors.TimeoutError as exc:
        raise RequestTimeout(
            f"No reply on {subject} within {timeout:g}s; the request may or may not have been carried out.",
            exchange=exchange,
        ) from exc
    except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
        raise NetworkError(f"Cannot send on {subject}: the NATS connection is down ({exc}).") from exc
    return parse_reply(subject, msg.headers, msg.data, reply_type)
