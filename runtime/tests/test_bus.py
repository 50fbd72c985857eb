"""Against a real nats-server: typed replies and errors over nats.micro, and a drain on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from nats import micro
from nats.aio.client import Client
from nats.aio.msg import Msg

import borsa_runtime as r
from borsa_proto import ERROR_CODE_HEADER, ERROR_HEADER, Ticker, TickerRequest, decode, subjects
from borsa_proto.errors import ErrorReply

pytestmark = pytest.mark.integration

SLOW_SERVICE = Path(__file__).with_name("slow_service.py")


def _exchange() -> str:
    """A fresh exchange id per test: the nats-server is shared by the whole session."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await r.connect(nats_url, "runtime-tests")
    try:
        yield client
    finally:
        await r.drain(client)


async def _ticker(request: TickerRequest) -> Ticker:
    if request.symbol == "FOO/BAR":
        raise r.UnknownSymbol("This exchange has no market FOO/BAR.", exchange_code="EQuery:Unknown asset pair")
    if request.symbol == "CRASH/USD":
        raise RuntimeError("a bug")
    return Ticker(
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        bid=Decimal("64250.10"),
        ask=Decimal("64250.20"),
        last=None,
        timestamp=1_717_171_717_123,
    )


@pytest.fixture
async def exchange(nc: Client) -> AsyncIterator[str]:
    """A connector-like micro service for a fresh exchange id, serving `ticker`."""
    ex = _exchange()
    service = await micro.add_service(
        nc, name=subjects.SERVICE_NAME, version="0.0.1", metadata={subjects.SERVICE_METADATA_EXCHANGE: ex}
    )
    await service.add_endpoint(
        name=subjects.Op.TICKER.endpoint_name,
        subject=subjects.ticker(ex),
        queue_group=subjects.connector_queue_group(ex),
        handler=r.handler(TickerRequest, _ticker),
    )

    async def raw_error(request: micro.Request) -> None:
        await request.respond_error("503", "maintenance")

    await service.add_endpoint(name="describe", subject=subjects.describe(ex), handler=raw_error)
    try:
        yield ex
    finally:
        await service.stop()


async def test_reply_is_decoded_into_the_reply_type(nc: Client, exchange: str) -> None:
    ticker = await r.request(nc, subjects.ticker(exchange), TickerRequest(symbol="BTCUSDT"), Ticker)
    assert ticker.bid == Decimal("64250.10")
    assert str(ticker.bid) == "64250.10"
    assert ticker.last is None


async def test_error_reply_raises_the_typed_exception(nc: Client, exchange: str) -> None:
    with pytest.raises(r.UnknownSymbol) as caught:
        await r.request(nc, subjects.ticker(exchange), TickerRequest(symbol="FOO/BAR"), Ticker)
    error = caught.value
    assert error.action is r.Action.FIX_REQUEST
    assert error.message == "This exchange has no market FOO/BAR."
    assert error.exchange == exchange
    assert error.exchange_code == "EQuery:Unknown asset pair"


async def test_error_reply_carries_micro_headers_and_body(nc: Client, exchange: str) -> None:
    msg = await nc.request(subjects.ticker(exchange), b'{"symbol": "FOO/BAR"}', timeout=5)
    assert msg.headers[ERROR_CODE_HEADER] == "unknown_symbol"
    assert msg.headers[ERROR_HEADER] == "This exchange has no market FOO/BAR."
    assert decode(msg.data, ErrorReply).error.code == "unknown_symbol"


async def test_bad_payload_is_a_bad_request_naming_the_field(nc: Client, exchange: str) -> None:
    with pytest.raises(r.BadRequest, match=r"invalid TickerRequest at \$\.symbol"):
        await r.request(nc, subjects.ticker(exchange), b"{}", Ticker)


async def test_a_bug_in_the_handler_is_internal(nc: Client, exchange: str) -> None:
    with pytest.raises(r.Internal, match="failed on our side"):
        await r.request(nc, subjects.ticker(exchange), TickerRequest(symbol="CRASH/USD"), Ticker)


async def test_micro_error_without_body(nc: Client, exchange: str) -> None:
    with pytest.raises(r.ExchangeUnavailable, match="maintenance"):
        await r.request(nc, subjects.describe(exchange), TickerRequest(symbol="x"), Ticker)


async def test_no_responders(nc: Client) -> None:
    ex = _exchange()
    with pytest.raises(r.ExchangeUnavailable, match=f"the {ex} connector is not running") as caught:
        await r.request(nc, subjects.ticker(ex), TickerRequest(symbol="BTC/USDT"), Ticker)
    assert caught.value.exchange == ex
    assert caught.value.retryable


async def test_no_reply_in_time(nc: Client) -> None:
    ex = _exchange()

    async def never_answer(msg: Msg) -> None:
        pass

    await nc.subscribe(subjects.ticker(ex), cb=never_answer)
    with pytest.raises(r.RequestTimeout, match="may or may not have been carried out") as caught:
        await r.request(nc, subjects.ticker(ex), TickerRequest(symbol="BTC/USDT"), Ticker, timeout=0.2)
    assert isinstance(caught.value, r.NetworkError)


async def test_sigterm_drains_the_request_in_flight(nc: Client, nats_url: str) -> None:
    ex = _exchange()
    ready = await nc.subscribe(f"test.{ex}.ready", max_msgs=1)
    started = await nc.subscribe(f"test.{ex}.started", max_msgs=1)
    await nc.flush()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SLOW_SERVICE),
        nats_url,
        ex,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await ready.next_msg(timeout=15)
        in_flight = asyncio.create_task(
            r.request(nc, subjects.ticker(ex), TickerRequest(symbol="BTC/USDT"), Ticker, timeout=10)
        )
        await started.next_msg(timeout=5)
        proc.send_signal(signal.SIGTERM)
        ticker = await in_flight
        output, _ = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert ticker.symbol == "BTC/USDT"
    assert proc.returncode == 0, output.decode()
    assert b'"event": "shutting down"' in output
    assert b'"reason": "SIGTERM"' in output


async def test_a_flush_given_up_on_leaves_the_connection_working(nats_url: str) -> None:
    """nats-py sets the result of a flush's PONG future even when its task was cancelled (a browser leaving an event
    stream, a timeout): InvalidStateError in the read loop. Through `connect` the PONG is skipped instead."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    client = await r.connect(nats_url, "runtime-tests", error_cb=on_error)
    try:
        for _ in range(5):
            flush = asyncio.create_task(client.flush())
            await asyncio.sleep(0)  # the PING is on its way
            flush.cancel()
        await asyncio.sleep(0.2)  # the PONGs come back
        sub = await client.subscribe("borsa.test.pong")
        await client.publish("borsa.test.pong", b"still here")
        assert (await sub.next_msg(timeout=2)).data == b"still here"
        assert [type(e).__name__ for e in errors] == []
        assert client.is_connected
    finally:
        await r.drain(client)
