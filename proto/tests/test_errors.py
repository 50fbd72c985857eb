"""Error codes and the error body are those of DESIGN section 2."""

from __future__ import annotations

import json

import pytest

import borsa_proto as p

pytestmark = pytest.mark.unit

DESIGN_CODES = """bad_request unknown_symbol invalid_order insufficient_funds order_not_found auth_failed
permission_denied unknown_account rate_limited exchange_unavailable network_error not_supported internal"""


def test_codes_are_the_design_codes() -> None:
    assert {code.value for code in p.ErrorCode} == set(DESIGN_CODES.split())
    assert set(p.RETRYABLE) == set(p.ErrorCode)
    assert {code for code, retry in p.RETRYABLE.items() if retry} == {
        p.ErrorCode.RATE_LIMITED,
        p.ErrorCode.EXCHANGE_UNAVAILABLE,
        p.ErrorCode.NETWORK_ERROR,
    }


def test_error_body_writes_every_key() -> None:
    reply = p.ErrorReply(error=p.ErrorBody(code=p.ErrorCode.INTERNAL, message="Something broke on our side."))
    assert json.loads(p.encode(reply)) == {
        "error": {
            "code": "internal",
            "message": "Something broke on our side.",
            "retryable": False,
            "retry_after_ms": None,
            "exchange": None,
            "exchange_code": None,
        }
    }
