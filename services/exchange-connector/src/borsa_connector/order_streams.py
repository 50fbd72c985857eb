"""Private order streams: a ccxt.pro `watch_orders` per account with orders to follow, as a trigger for the tracker.

An update on the socket does not become an event by itself: it pokes the tracker, which looks at the account's
orders at once through the rate budget with the same fetches as polling, so events keep their trade ids, fees
and `Nats-Msg-Id` exactly as a poll would publish them. While an account's stream is up the tracker polls it
only every fallback interval; when the stream fails the account is polled again at once and normally, and the
stream is reopened with backoff. An account with nothing left to follow keeps its stream for a while
(`BORSA_ORDER_WS_LINGER_MS`): a bot that trades in bursts would otherwise build a ccxt.pro client and sign in again
for every order, which cost the connector more than the order itself. Then the stream is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from borsa_runtime import errors as E
from borsa_runtime.redact import MASK

if TYPE_CHECKING:
    from .accounts import AccountStore
    from .exchanges.ccxt_api import CcxtExchangeAPI

log = structlog.get_logger("borsa.connector.order_streams")

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
LINGER_SECONDS = 30.0


@dataclass(eq=False)
class Stream:
    account: str
    task: asyncio.Task | None = None
    closing: bool = False
    failures: int = field(default=0)
    linger: asyncio.TimerHandle | None = None  # the close to come, while nothing is left to follow
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)  # set while the current socket is subscribed

    @property
    def up(self) -> bool:
        return self.subscribed.is_set()


class OrderStreams:
    def __init__(
        self,
        api: CcxtExchangeAPI,
        accounts: AccountStore,
        on_update: Callable[[str], None],
        *,
        enabled: bool,
        told: Callable[[str, list], bool] | None = None,
        backoff: tuple[float, ...] = BACKOFF_SECONDS,
        linger_s: float = LINGER_SECONDS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.api = api
        self.accounts = accounts
        self.on_update = on_update
        # Whether an order update says nothing that was not published already (the tracker's `told`): no pass then.
        self.told = told
        self.enabled = enabled
        self.backoff = backoff
        self.linger_s = linger_s
        self._streams: dict[str, Stream] = {}
        self._no_stream: set[str] = set()  # paper accounts: nothing to watch at the exchange
        registry = registry or CollectorRegistry()
        self.up_gauge = Gauge(
            "borsa_connector_order_streams_up",
            "Accounts whose private order stream is subscribed (their polling is slowed to the fallback interval)",
            ["exchange"],
            registry=registry,
        )
        self.open_gauge = Gauge(
            "borsa_connector_order_streams",
            "Accounts with an order stream running (up, connecting or waiting to reconnect)",
            ["exchange"],
            registry=registry,
        )
        self.updates = Counter(
            "borsa_connector_order_stream_updates_total",
            "Order updates received on private streams (each one triggers a tracking pass unless it told nothing new)",
            ["exchange"],
            registry=registry,
        )
        self.known = Counter(
            "borsa_connector_order_stream_updates_known_total",
            "Order updates that told nothing the connector had not published (an order it placed or canceled "
            "itself, nothing filled): no tracking pass",
            ["exchange"],
            registry=registry,
        )
        self.failures = Counter(
            "borsa_connector_order_stream_failures_total",
            "Private order streams that failed or closed (the account is polled until it is back)",
            ["exchange"],
            registry=registry,
        )

    # -- what the tracker asks ----------------------------------------------------------------------------------
    def healthy(self, account: str) -> bool:
        stream = self._streams.get(account)
        return stream is not None and stream.up

    def running(self, account: str) -> bool:
        return account in self._streams

    def want(self, account: str) -> None:
        """The account has orders to follow: make sure its stream runs."""
        if not self.enabled or account in self._no_stream:
            return
        running = self._streams.get(account)
        if running is not None:
            if running.linger is not None:  # an order again before the stream closed: it stays
                running.linger.cancel()
                running.linger = None
            return
        stream = self._streams[account] = Stream(account)
        stream.task = asyncio.create_task(self._run(stream), name=f"order-stream-{account}")
        self._count()

    def stop(self, account: str) -> None:
        """Nothing left to follow: close the stream once it has stayed so for the linger time."""
        stream = self._streams.get(account)
        if stream is None or stream.linger is not None:
            return
        if self.linger_s <= 0:
            self._close(account)
        else:
            stream.linger = asyncio.get_running_loop().call_later(self.linger_s, self._close, account)

    def _close(self, account: str) -> None:
        stream = self._streams.pop(account, None)
        if stream is not None:
            stream.closing = True
            if stream.linger is not None:
                stream.linger.cancel()
            if stream.task is not None:
                stream.task.cancel()
            log.info("order stream closed: no orders to follow", account=account)
        self._count()

    async def close(self) -> None:
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream.closing = True
            if stream.linger is not None:
                stream.linger.cancel()
            if stream.task is not None:
                stream.task.cancel()
        for stream in streams:
            if stream.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stream.task
        self._count()

    def _count(self) -> None:
        self.open_gauge.labels(self.api.id).set(len(self._streams))
        self.up_gauge.labels(self.api.id).set(sum(1 for s in self._streams.values() if s.up))

    # -- one account's stream ---------------------------------------------------------------------------------
    async def _run(self, stream: Stream) -> None:
        account = stream.account
        try:
            while not stream.closing:
                client = None
                try:
                    async with self.accounts.lease(account) as lease:
                        if getattr(lease.client, "paper", False):
                            self._no_stream.add(account)  # filled by this connector: a pass sees it directly
                            return
                        client = self.api.stream_client(lease.client, account)
                    await self._watch(stream, client)
                except asyncio.CancelledError:
                    raise
                except E.UnknownAccount as error:
                    log.warning("order stream not opened: unusable key", account=account, reason=error.message)
                    return
                except Exception as exc:
                    self.failures.labels(self.api.id).inc()
                    delay = self.backoff[min(stream.failures, len(self.backoff) - 1)]
                    stream.failures += 1
                    log.warning(
                        "order stream failed; polling until it is back",
                        account=account,
                        error=_describe(exc, client),
                        retry_in_s=delay,
                    )
                else:
                    delay = self.backoff[0]
                finally:
                    was_up = stream.up
                    stream.subscribed.clear()
                    self._count()
                    if client is not None:
                        with contextlib.suppress(Exception):
                            await client.close()
                if was_up and not stream.closing:
                    self.on_update(account)  # back to polling at once: a pass now, then every poll interval
                await asyncio.sleep(delay)
        finally:
            if self._streams.get(account) is stream:
                del self._streams[account]
            self._count()

    async def _watch(self, stream: Stream, client) -> None:
        confirmed = await self.api.subscribe_orders(client)
        if confirmed:
            self._mark_up(stream)
        followers = [asyncio.ensure_future(self._follow(stream, client.watch_orders, orders=True))]
        if self.api.q["ws_trades"]:
            followers.append(asyncio.ensure_future(self._follow_trades(stream, client)))
        try:
            done, _ = await asyncio.wait(followers, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what the watch failed with
        finally:
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    async def _follow(self, stream: Stream, watch, orders: bool = False) -> None:
        while not stream.closing:
            update = await watch()
            self.updates.labels(self.api.id).inc()
            if not stream.up:
                self._mark_up(stream)  # which asks for a pass
            elif orders and self.told is not None and self.told(stream.account, update):
                self.known.labels(self.api.id).inc()
            else:
                self.on_update(stream.account)

    async def _follow_trades(self, stream: Stream, client) -> None:
        # Once the subscription stands (the first update, or the exchange's confirmation), so that the two
        # watches do not each sign in; a change in between is found by the pass that marking the stream up makes.
        await stream.subscribed.wait()
        await self._follow(stream, client.watch_my_trades)

    def _mark_up(self, stream: Stream) -> None:
        stream.failures = 0
        stream.subscribed.set()
        self._count()
        log.info("order stream up; polling slowed to the fallback interval", account=stream.account)
        # Whatever changed before the subscription took effect is found by a pass now.
        self.on_update(stream.account)


def _describe(exc: Exception, client) -> str:
    """The error for a log line, with no credential value in it whatever the exchange or ccxt echoed."""
    text = f"{type(exc).__name__}: {exc}"
    for name in (getattr(client, "requiredCredentials", None) or {}) if client is not None else ():
        value = getattr(client, name, None)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, MASK)
    return text[:500]
