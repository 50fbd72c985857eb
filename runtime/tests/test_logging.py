"""Logs are structured, carry their per-message context, and never carry a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
import structlog
from structlog.testing import capture_logs

from borsa_proto import CredentialsCheckRequest, KeyMode
from borsa_runtime import configure_logging, get_logger, log_context, redact_secrets
from borsa_runtime.redact import MASK, is_secret_key

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers, root.level = handlers, level


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "key",
    [
        "secret",
        "api_secret",
        "password",
        "passphrase",
        "api_key",
        "apiKey",
        "API-KEY",
        "private_key",
        "privateKey",
        "token",
        "access_token",
        "authorization",
        "Authorization",
        "sealed_credentials",
        "credentials",
        "cookie",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["symbol", "amount", "api_key_id", "key_hint", "account", "event", "token_count"])
def test_keys_that_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_redaction_reaches_every_depth() -> None:
    event = {
        "event": "creating key",
        "api_key_id": "k-1",
        "request": {"credentials": {"apiKey": "AK", "secret": "S"}, "exchange": "kraken"},
        "headers": [{"Authorization": "Bearer abc"}],
        "dsn": "postgresql://borsa:pa55@db/borsa",
        "password": None,
    }
    redacted = redact_secrets(None, "info", event)
    assert redacted == {
        "event": "creating key",
        "api_key_id": "k-1",
        "request": {"credentials": MASK, "exchange": "kraken"},
        "headers": [{"Authorization": MASK}],
        "dsn": f"postgresql://borsa:{MASK}@db/borsa",
        "password": None,
    }
    assert event["request"]["credentials"]["secret"] == "S"  # the caller's dict is left alone


def test_messages_are_redacted_too() -> None:
    request = CredentialsCheckRequest(sealed_credentials="c2VhbGVk", mode=KeyMode.LIVE)
    redacted = redact_secrets(None, "info", {"event": "check", "request": request})
    assert redacted["request"] == {"sealed_credentials": MASK, "mode": "live"}


def test_log_context_binds_per_message_and_clears_after() -> None:
    log = get_logger()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars, redact_secrets]) as logs:
        with log_context(subject="borsa.exchange.kraken.ticker", request_id="r1", token="t0ps3cret"):
            log.info("handling")
        log.info("idle")
    assert logs[0] == {
        "event": "handling",
        "log_level": "info",
        "subject": "borsa.exchange.kraken.ticker",
        "request_id": "r1",
        "token": MASK,
    }
    assert logs[1] == {"event": "idle", "log_level": "info"}


def test_json_lines_off_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("exchange-connector", "info", "auto", stream=out)
    log = get_logger("test")
    with log_context(exchange="kraken"):
        log.info("order sent", amount=Decimal("0.00012300"), api_key="AKIA", secret="s3cr3t")
    log.debug("dropped at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "order sent"
    assert line["level"] == "info"
    assert line["service"] == "exchange-connector"
    assert line["exchange"] == "kraken"
    assert line["amount"] == "0.00012300"
    assert line["api_key"] == MASK
    assert line["secret"] == MASK
    assert line["timestamp"].endswith("Z")
    assert "s3cr3t" not in out.getvalue()


def test_exceptions_are_rendered_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("gateway", "info", "json", stream=out)
    try:
        raise ConnectionError("cannot reach postgresql://borsa:pa55@db/borsa")
    except ConnectionError:
        get_logger().exception("database down")
    line = json.loads(out.getvalue())
    assert "ConnectionError" in line["exception"]
    assert "pa55" not in out.getvalue()


@pytest.mark.parametrize("stream", [Tty, io.StringIO], ids=["terminal", "file"])
def test_exceptions_are_redacted_on_the_console_too(stream) -> None:
    out = stream()
    configure_logging("gateway", "info", "console", stream=out)
    try:
        raise ConnectionError("cannot reach postgresql://borsa:pa55@db/borsa")
    except ConnectionError:
        get_logger().exception("database down")
        logging.getLogger("asyncpg").exception("pool lost")
    text = out.getvalue()
    assert "database down" in text and "pool lost" in text
    assert text.count("ConnectionError") >= 2  # both tracebacks are there
    assert "pa55" not in text
    assert f"postgresql://borsa:{MASK}@db/borsa" in text


def test_standard_library_logs_share_the_format() -> None:
    out = io.StringIO()
    configure_logging("reporting", "warning", "json", stream=out)
    logging.getLogger("nats.aio.client").warning("reconnecting to %s", "nats://u:pw@n:4222")
    logging.getLogger("nats.aio.client").info("dropped at warning")
    line = json.loads(out.getvalue())
    assert line["event"] == f"reconnecting to nats://u:{MASK}@n:4222"
    assert line["logger"] == "nats.aio.client"
    assert line["service"] == "reporting"
    assert line["level"] == "warning"


def test_console_on_a_terminal() -> None:
    out = Tty()
    configure_logging("bot-runner", "info", "auto", stream=out)
    get_logger().info("bot started", bot_id=7, password="pw")
    text = out.getvalue()
    assert "bot started" in text
    assert "bot_id" in text
    assert "pw\n" not in text and MASK in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.parametrize(("level", "fmt"), [("loud", "json"), ("info", "xml")])
def test_bad_level_or_format(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="use one of"):
        configure_logging("x", level, fmt)


def test_exchange_libraries_never_log_requests_even_at_debug() -> None:
    """ccxt logs each request's headers (API keys, signatures) at DEBUG: capped at INFO whatever the level."""
    out = io.StringIO()
    configure_logging("test", "debug", "json", stream=out)
    logging.getLogger("ccxt.base.exchange").debug("GET https://api.example X-MBX-APIKEY: abcd1234")
    logging.getLogger("borsa.other").debug("kept")
    assert "X-MBX-APIKEY" not in out.getvalue()
    assert "kept" in out.getvalue()
