"""structlog set up once for every service: JSON off a terminal, console on one, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from borsa_runtime.redact import redact

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LEVELS |= {"critical": logging.CRITICAL}
FORMATS = ("auto", "json", "console")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask secret-looking keys anywhere in the event, and passwords inside URLs."""
    return redact(event_dict)


def _add_service(service: str) -> Processor:
    def add_service(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


QUIET_AT_DEBUG = ("ccxt", "aiohttp.client")


def configure_logging(
    service: str, level: str | int = "info", fmt: str = "auto", *, stream: TextIO | None = None
) -> None:
    """Set up structlog and route the standard library's logging (nats-py, asyncio) through it."""
    stream = stream or sys.stdout
    numeric = level if isinstance(level, int) else LEVELS.get(str(level).lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        structlog.processors.StackInfoRenderer(),
    ]
    # Tracebacks become text before redaction, in both formats, so a URL password inside an exception message is
    # masked too (the console renderer would otherwise format the exception itself, after redaction).
    shared += [structlog.processors.format_exc_info, redact_secrets]
    renderer: Processor
    if as_json:
        # default=str writes a Decimal as its exact digits rather than its repr.
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        # Off so capture_logs and a later configure_logging reach loggers created at import time.
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    # These libraries log whole requests at DEBUG: headers with API keys, signatures, JWTs, KuCoin passphrases.
    # Those never reach a log, whatever the level asked for.
    for name in QUIET_AT_DEBUG:
        logging.getLogger(name).setLevel(max(logging.INFO, numeric))


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind values to every log line of the current task (one message, one request), then unbind."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def get_logger(name: str | None = None, **initial: Any) -> Any:
    return structlog.get_logger(name, **initial)
