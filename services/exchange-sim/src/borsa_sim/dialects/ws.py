"""What the private websocket dialects (binance_ws, kraken_ws, kucoin_ws, coinbase_ws) share: one connection per
socket with a bounded outgoing queue drained by its own writer task, the serve loop, the admin drop with its refuse
window, and the cut-off of a client too slow to read.

A dialect says only what differs: how a socket is accepted (`_accept`: authentication, a greeting), what a client
message does (`_request`), what a connection forgets when it closes (`_clear`) and what an engine change pushes
(`on_order`, registered as a listener of the exchange's state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from .base import dumps

if TYPE_CHECKING:
    from ..engine import Fill, Order
    from .base import Dialect

log = structlog.get_logger("borsa_sim.ws")

QUEUE_LIMIT = 10_000  # a client that reads nothing gets cut off rather than growing the simulator without end


def json_object(text: str) -> dict | None:
    """A client message as a JSON object, or None for anything else (each dialect answers that in its own shape)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(eq=False)
class WsConnection:
    """One open socket. Subclasses add the dialect's state; new fields need defaults."""

    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    tasks: list[asyncio.Task] = field(default_factory=list)  # besides the writer: cancelled when the socket ends


class WsChannel:
    """The websocket endpoint of one dialect. `path` names it in the stats (`WS <path>`)."""

    path: ClassVar[str]

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.connections: set[WsConnection] = set()
        self.refuse_until = 0.0
        dialect.state.listeners.append(self.on_order)

    # -- declared by subclasses -------------------------------------------------------------------------------
    async def _accept(self, request: web.Request, ws: web.WebSocketResponse) -> WsConnection | None:
        """The connection of a socket just upgraded, any greeting queued with `_send`; or None once the socket
        has been answered and closed (a refused token)."""
        return WsConnection(ws)

    def _request(self, conn: WsConnection, text: str) -> dict | None:
        """Handle one text message; a returned dict is sent as the reply."""
        raise NotImplementedError

    def _clear(self, conn: WsConnection) -> None:
        """Forget what the connection subscribed to, so nothing more is pushed to it."""

    def on_order(self, change: str, order: Order, fill: Fill | None) -> None:
        """The engine changed an order (`new`, `trade` or a close): push it to whoever subscribed."""
        raise NotImplementedError

    # -- admin ------------------------------------------------------------------------------------------------
    async def drop(self, refuse_seconds: float = 0.0) -> int:
        """Close every connection (the client sees the server go away); refuse new ones for `refuse_seconds`."""
        self.refuse_until = time.monotonic() + refuse_seconds
        dropped = list(self.connections)
        for conn in dropped:
            await self._close(conn, WSCloseCode.GOING_AWAY, b"dropped by the simulator")
        return len(dropped)

    def allow(self) -> None:
        self.refuse_until = 0.0

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await self._close(conn, WSCloseCode.GOING_AWAY, b"server shutdown")

    async def _close(self, conn: WsConnection, code: int, message: bytes) -> None:
        self._clear(conn)
        with contextlib.suppress(Exception):
            await conn.ws.close(code=code, message=message)

    # -- the socket -------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        sim, name, label = self.dialect.sim, self.dialect.name, f"WS {self.path}"
        sim.stats.count(name, label)
        if time.monotonic() < self.refuse_until:
            sim.stats.count(name, label, "faults")
            return self.dialect.http_error(503, "Service unavailable")
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        if not ws.can_prepare(request).ok:
            return self.dialect.http_error(400, "Expected a websocket upgrade")
        await ws.prepare(request)
        conn = await self._accept(request, ws)
        if conn is None:
            return ws
        self.connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    reply = self._request(conn, message.data)
                except Exception:
                    # A simulator bug: said here, since aiohttp would only drop the socket (code 1006).
                    log.exception("ws_request_failed", exchange=name, message=message.data[:200])
                    raise
                if reply is not None:
                    self._send(conn, reply)
        finally:
            self.connections.discard(conn)
            self._clear(conn)
            for task in (writer, *conn.tasks):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return ws

    async def _write(self, conn: WsConnection) -> None:
        while True:
            text = await conn.queue.get()
            try:
                await conn.ws.send_str(text)
            except Exception:  # the peer went away; the reader ends the connection
                return

    def _send(self, conn: WsConnection, data: dict) -> None:
        try:
            conn.queue.put_nowait(dumps(data))
        except asyncio.QueueFull:
            log.warning("ws_client_too_slow", exchange=self.dialect.name)
            asyncio.get_running_loop().create_task(self._close(conn, WSCloseCode.POLICY_VIOLATION, b"too slow"))
