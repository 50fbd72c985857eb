"""Live events for the web pages: the signed-in user's bot and order events, and changes to their bots, as server-sent
events.

One NATS subscription per gateway process (taken while anyone listens) fans events out to the listeners of the
user who owns the bot or the account; ownership is read from Postgres once and remembered, since it never moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from nats.aio.client import Client

from borsa_proto import BadMessage, BotEvent, decode, to_builtins
from borsa_proto.orders import OrderEvent
from borsa_proto.subjects import bot_events_filter, order_events_filter
from borsa_reporting.ingest import bot_of

from ..cache import SUBJECT as BOTS_LIST_CHANGED
from ..deps import User
from ..errors import ErrorResponse

log = structlog.get_logger("borsa.gateway")

router = APIRouter(tags=["events"], responses={401: {"model": ErrorResponse}})

HEARTBEAT_SECONDS = 15.0
# A deleted bot or key stays unknown for a few seconds; owners never change, so found ones are kept (bounded).
UNKNOWN_TTL_SECONDS = 5.0
OWNERS_MAX = 50_000
# A listener that does not read (a stalled tab) loses events past this many rather than growing without bound.
QUEUE_MAX = 1000
RETRY_MS = 3000


class EventHub:
    """Routes `borsa.events.bot.>` and `borsa.events.order.>` to the listeners of each event's owner."""

    def __init__(self, nc: Client, pool: asyncpg.Pool) -> None:
        self.nc, self.pool = nc, pool
        self._listeners: dict[UUID, set[asyncio.Queue]] = {}
        self._subs: list = []
        self._lock = asyncio.Lock()
        self._owners: dict[tuple[str, str], tuple[float, UUID | None]] = {}

    def close(self) -> None:
        """End every open stream now (the server is stopping); new listeners still work."""
        for queues in self._listeners.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    def end_streams_on_exit(self) -> None:
        """uvicorn waits for every open response before it stops, and an event stream never ends by itself: on the
        signal uvicorn stops on, end the streams first, then let its own handler run. Without this a stop waits
        until every browser tab has gone away (a second Ctrl-C, or SIGKILL)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # not under a server that handles it

            def handler(signum, frame, previous=previous) -> None:
                loop.call_soon_threadsafe(self.close)
                previous(signum, frame)

            with contextlib.suppress(ValueError):  # not the main thread (a test client): nothing to hook
                signal.signal(sig, handler)

    @property
    def subscribed(self) -> bool:
        return bool(self._subs)

    def listeners(self, user: UUID | None = None) -> int:
        if user is not None:
            return len(self._listeners.get(user, ()))
        return sum(len(q) for q in self._listeners.values())

    @contextlib.asynccontextmanager
    async def listen(self, user: UUID) -> AsyncIterator[asyncio.Queue]:
        """A queue of (event name, JSON text) for `user`'s events, subscribed to NATS before it is handed out."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_MAX)
        async with self._lock:
            self._listeners.setdefault(user, set()).add(queue)
            if not self._subs:
                self._subs = [
                    await self.nc.subscribe(bot_events_filter(), cb=self._on_bot),
                    await self.nc.subscribe(order_events_filter(), cb=self._on_order),
                    await self.nc.subscribe(BOTS_LIST_CHANGED, cb=self._on_bots_changed),
                ]
                # Shielded: a browser that goes away meanwhile cancels this task, not the flush.
                await asyncio.shield(self.nc.flush())
        try:
            yield queue
        finally:
            async with self._lock:
                queues = self._listeners.get(user)
                if queues is not None:
                    queues.discard(queue)
                    if not queues:
                        del self._listeners[user]
                if not self._listeners and self._subs:
                    subs, self._subs = self._subs, []
                    for sub in subs:
                        with contextlib.suppress(Exception):  # the connection may be draining at shutdown
                            await sub.unsubscribe()

    async def _owner(self, kind: str, key: str) -> UUID | None:
        cached = self._owners.get((kind, key))
        if cached is not None and (cached[1] is not None or time.monotonic() < cached[0]):
            return cached[1]
        try:
            ident = UUID(key)
        except ValueError:
            return None
        table = "bot_configs" if kind == "bot" else "api_keys"
        owner = await self.pool.fetchval(f"SELECT user_id FROM {table} WHERE id = $1", ident)
        if len(self._owners) >= OWNERS_MAX:
            self._owners.clear()
        self._owners[(kind, key)] = (time.monotonic() + UNKNOWN_TTL_SECONDS, owner)
        return owner

    def _deliver(self, user: UUID | None, name: str, data: dict) -> None:
        if user is None:
            return
        text = json.dumps(data, separators=(",", ":"))
        for queue in self._listeners.get(user, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((name, text))

    async def _on_bot(self, msg) -> None:
        if not self._listeners:
            return
        try:
            event = decode(msg.data, BotEvent)
            self._deliver(await self._owner("bot", event.bot_id), "bot", to_builtins(event))
        except BadMessage as exc:
            log.info("skipped a bot event", subject=msg.subject, error=str(exc))
        except Exception as exc:  # a database hiccup loses one live update, never the subscription
            log.warning("bot event not forwarded", subject=msg.subject, error=type(exc).__name__)

    async def _on_bots_changed(self, msg) -> None:
        """A user's bots were created, changed or deleted (through any replica, or by a runner): tell their pages."""
        try:
            user = UUID(msg.data.decode())
        except ValueError:
            return
        self._deliver(user, "bots", {})

    async def _on_order(self, msg) -> None:
        if not self._listeners:
            return
        try:
            event = decode(msg.data, OrderEvent)
            owner = await self._owner("account", event.order.account)
            bot = bot_of(event.order.client_order_id)
            data = {
                "event_id": event.event_id,
                "kind": event.kind,
                "exchange": event.order.exchange,
                "account": event.order.account,
                "bot_id": str(bot) if bot else None,
                "order": to_builtins(event.order),
                "fills": to_builtins(event.fills),
                "timestamp": event.timestamp,
            }
            self._deliver(owner, "order", data)
        except BadMessage as exc:
            log.info("skipped an order event", subject=msg.subject, error=str(exc))
        except Exception as exc:
            log.warning("order event not forwarded", subject=msg.subject, error=type(exc).__name__)


async def _stream(request: Request, hub: EventHub, user: UUID) -> AsyncIterator[str]:
    async with hub.listen(user) as queue:
        # The first bytes say the subscription is in place: nothing published after this is missed.
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": heartbeat\n\n"
                continue
            if item is None:  # the gateway is stopping: the page reconnects to another replica or after the restart
                return
            name, data = item
            yield f"event: {name}\ndata: {data}\n\n"


EVENTS_DOC = """Server-sent events (`text/event-stream`) with the caller's live updates; authenticate with the
`Authorization: Bearer` header (read it with `fetch()` and a stream reader: `EventSource` cannot send headers).

- `event: bot` — a bot's status or position changed: `{bot_id, exchange, symbol, status, status_reason, position,
  average_entry, realized_pnl, timestamp}` (the bot runner's BotEvent).
- `event: order` — an order of one of the caller's API keys was created, updated, filled or canceled:
  `{event_id, kind, exchange, account, bot_id, order: Order, fills: [Fill], timestamp}`; `event_id` identifies
  the event (it may arrive twice).
- `event: bots` — the caller's bots were created, changed or deleted (from this page, another tab or device, or
  the API): `{}`; read `GET /bots` again.
- A comment line `: connected` once the subscription is in place, and `: heartbeat` every 15 s.

Only events of the caller's own bots and API keys are sent. Decimals are strings, times epoch milliseconds."""


@router.get(
    "/events",
    response_class=StreamingResponse,
    description=EVENTS_DOC,
    responses={
        200: {
            "description": "an endless stream of events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def events(request: Request, user: User) -> StreamingResponse:
    """Live bot and order events of the signed-in user, as server-sent events."""
    return StreamingResponse(
        _stream(request, request.app.state.events, user),
        media_type="text/event-stream",
        # No caching, and no buffering by a proxy in front (nginx honours X-Accel-Buffering).
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
