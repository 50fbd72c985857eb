"""The runner's Postgres: leases on bots, each bot's state, its order intents and the fills applied to it.

Every write for a bot checks, in the same statement, that this runner still holds the bot's lease: a runner that
lost a bot (it stalled past its lease and another runner took over) cannot write an intent for it.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from borsa_proto.orders import Order, OrderEvent

from .position import Holding, Trade, apply_trade

log = structlog.get_logger("borsa.runner.store")

DB_TIMEOUT_SECONDS = 10.0
TERMINAL = frozenset({"closed", "canceled", "rejected", "expired"})


def new_runner_id() -> str:
    host = socket.gethostname().split(".")[0][:20]
    return f"runner/{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def client_id_prefix(bot_id: str) -> str:
    """Intent ids are `b<bot id without dashes>-<sequence>`: deterministic, and told apart from other orders."""
    return f"b{uuid.UUID(bot_id).hex}-"


class LeaseLost(Exception):
    """This runner no longer holds the bot."""


@dataclass(slots=True)
class Intent:
    bot_id: str
    seq: int
    client_order_id: str
    key: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    state: str = "pending"
    order_id: str | None = None
    status: str | None = None
    filled: Decimal = Decimal(0)
    average: Decimal | None = None
    fee_cost: Decimal | None = None
    fee_currency: str | None = None
    change_seq: int = 0

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Intent:
        return cls(
            bot_id=str(row["bot_id"]),
            seq=row["seq"],
            client_order_id=row["client_order_id"],
            key=row["key"],
            side=row["side"],
            type=row["type"],
            amount=row["amount"],
            price=row["price"],
            state=row["state"],
            order_id=row["order_id"],
            status=row["status"],
            filled=row["filled"],
            average=row["average"],
            fee_cost=row["fee_cost"],
            fee_currency=row["fee_currency"],
            change_seq=row["change_seq"],
        )

    @property
    def live(self) -> bool:
        return self.state in ("pending", "open")


@dataclass(slots=True)
class BotRow:
    id: str
    user_id: str
    account: str
    exchange: str
    symbol: str
    market_id: str
    strategy: str
    params: dict
    status: str
    updated_at: Any
    strategy_state: dict | None
    state_version: int
    holding: Holding
    intents: list[Intent] = field(default_factory=list)


INTENT_COLUMNS = (
    "bot_id, seq, client_order_id, key, side, type, amount, price, state, order_id, status, filled, average, "
    "fee_cost, fee_currency, change_seq"
)

CLAIM_SQL = """
WITH candidates AS (
    SELECT b.id FROM bot_configs b
    LEFT JOIN bot_leases l ON l.bot_id = b.id
    WHERE b.status = 'running' AND (l.bot_id IS NULL OR l.expires_at < now())
      AND ($4::uuid IS NULL OR b.id = $4)
    ORDER BY b.updated_at
    LIMIT $2
    FOR UPDATE OF b SKIP LOCKED
), taken AS (
    INSERT INTO bot_leases (bot_id, runner_id, expires_at)
    SELECT id, $1, now() + make_interval(secs => $3) FROM candidates
    ON CONFLICT (bot_id) DO UPDATE
        SET runner_id = EXCLUDED.runner_id, expires_at = EXCLUDED.expires_at, taken_at = now()
        WHERE bot_leases.expires_at < now()
    RETURNING bot_id
), state AS (
    INSERT INTO bot_state (bot_id) SELECT bot_id FROM taken ON CONFLICT (bot_id) DO NOTHING
)
SELECT bot_id FROM taken
"""

RECORD_INTENT_SQL = f"""
WITH s AS (
    UPDATE bot_state SET next_seq = next_seq + 1, updated_at = now(),
        strategy_state = CASE WHEN state_version < $13 THEN $3::jsonb ELSE strategy_state END,
        state_version = greatest(state_version, $13)
    WHERE bot_id = $1
      AND EXISTS (SELECT 1 FROM bot_leases WHERE bot_id = $1 AND runner_id = $2 AND expires_at > now())
    RETURNING next_seq - 1 AS seq
)
INSERT INTO bot_intents (bot_id, seq, client_order_id, key, exchange_name, account_id, symbol, side, type, amount,
                         price)
SELECT $1, s.seq, $4 || s.seq, $5, $6, $7, $8, $9, $10, $11, $12 FROM s
RETURNING {INTENT_COLUMNS}
"""


class RunnerStore:
    def __init__(self, database_url: str, runner_id: str, lease_seconds: float) -> None:
        self.database_url = database_url
        self.runner_id = runner_id
        self.lease_seconds = lease_seconds
        self.pool: asyncpg.Pool | None = None
        # Leases have their own connections: a burst of intents must never delay a renewal past the lease.
        self.lease_pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(
            self.database_url,
            min_size=1,
            max_size=8,
            timeout=DB_TIMEOUT_SECONDS,
            command_timeout=DB_TIMEOUT_SECONDS,
            server_settings={"application_name": self.runner_id[:63]},
            init=_codecs,
        )

        self.lease_pool = await asyncpg.create_pool(
            self.database_url,
            min_size=1,
            max_size=2,
            timeout=DB_TIMEOUT_SECONDS,
            command_timeout=DB_TIMEOUT_SECONDS,
            server_settings={"application_name": self.runner_id[:63]},
        )

    async def close(self) -> None:
        for pool in (self.pool, self.lease_pool):
            if pool is not None:
                await pool.close()

    # -- runners and leases -----------------------------------------------------------------------------------
    async def heartbeat(self) -> tuple[int, int]:
        """Keep this runner alive; (live runners, running bots)."""
        row = await self.lease_pool.fetchrow(
            """
            WITH me AS (
                INSERT INTO bot_runners (id, expires_at) VALUES ($1, now() + make_interval(secs => $2))
                ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
            )
            SELECT (SELECT count(*) FROM bot_runners WHERE expires_at > now() AND id <> $1) + 1 AS runners,
                   (SELECT count(*) FROM bot_configs WHERE status = 'running') AS running
            """,
            self.runner_id,
            self.lease_seconds,
        )
        return row["runners"], row["running"]

    async def renew(self) -> dict[str, tuple[str, Any]]:
        """Push this runner's leases forward; {bot id: (status, updated_at)} of the bots it still holds. A lease
        that ran out is not renewed: its bot was (or will be) taken by a scan, here or in another runner."""
        rows = await self.lease_pool.fetch(
            """
            UPDATE bot_leases l SET expires_at = now() + make_interval(secs => $2)
            FROM bot_configs b
            WHERE l.runner_id = $1 AND b.id = l.bot_id AND l.expires_at > now()
            RETURNING l.bot_id, b.status, b.updated_at
            """,
            self.runner_id,
            self.lease_seconds,
        )
        return {str(r["bot_id"]): (r["status"], r["updated_at"]) for r in rows}

    async def claim(self, limit: int, bot_id: str | None = None) -> list[str]:
        if limit <= 0:
            return []
        rows = await self.lease_pool.fetch(
            CLAIM_SQL, self.runner_id, limit, self.lease_seconds, uuid.UUID(bot_id) if bot_id else None
        )
        return [str(r["bot_id"]) for r in rows]

    async def deleted(self, bot_ids: list[str]) -> set[str]:
        """Which of these bots no longer exist."""
        rows = await self.pool.fetch(
            "SELECT id FROM bot_configs WHERE id = ANY($1::uuid[])", [uuid.UUID(b) for b in bot_ids]
        )
        return set(bot_ids) - {str(r["id"]) for r in rows}

    async def release(self, bot_id: str) -> None:
        await self.pool.execute(
            "DELETE FROM bot_leases WHERE bot_id = $1 AND runner_id = $2", uuid.UUID(bot_id), self.runner_id
        )

    async def leave(self) -> None:
        """A clean shutdown: every bot of this runner can be taken at once."""
        await self.pool.execute("DELETE FROM bot_leases WHERE runner_id = $1", self.runner_id)
        await self.pool.execute("DELETE FROM bot_runners WHERE id = $1", self.runner_id)

    # -- bots -------------------------------------------------------------------------------------------------
    async def load(self, bot_ids: list[str]) -> list[BotRow]:
        ids = [uuid.UUID(b) for b in bot_ids]
        rows = await self.pool.fetch(
            """
            SELECT b.id, b.user_id, b.api_key_id, b.exchange_name, b.symbol, b.market_id, b.strategy, b.params,
                   b.status, b.updated_at, s.strategy_state, s.state_version, s.position, s.average_entry,
                   s.realized_pnl
            FROM bot_configs b LEFT JOIN bot_state s ON s.bot_id = b.id
            WHERE b.id = ANY($1::uuid[])
            """,
            ids,
        )
        intents = await self.pool.fetch(
            f"SELECT {INTENT_COLUMNS} FROM bot_intents WHERE bot_id = ANY($1::uuid[]) AND state IN ('pending', 'open') "
            "ORDER BY seq",
            ids,
        )
        by_bot: dict[str, list[Intent]] = {}
        for row in intents:
            by_bot.setdefault(str(row["bot_id"]), []).append(Intent.from_row(row))
        out = []
        for r in rows:
            bot_id = str(r["id"])
            out.append(
                BotRow(
                    id=bot_id,
                    user_id=str(r["user_id"]),
                    account=str(r["api_key_id"]),
                    exchange=r["exchange_name"],
                    symbol=r["symbol"],
                    market_id=r["market_id"],
                    strategy=r["strategy"],
                    params=r["params"],
                    status=r["status"],
                    updated_at=r["updated_at"],
                    strategy_state=r["strategy_state"] or None,
                    state_version=r["state_version"] or 0,
                    holding=Holding(r["position"] or Decimal(0), r["average_entry"], r["realized_pnl"] or Decimal(0)),
                    intents=by_bot.get(bot_id, []),
                )
            )
        return out

    async def pause(self, bot_id: str, reason: str) -> bool:
        """Paused with a reason a person reads in the dashboard; False when the bot was not running any more."""
        status = await self.pool.fetchval(
            "UPDATE bot_configs SET status = 'paused', status_reason = $2, updated_at = now() "
            "WHERE id = $1 AND status = 'running' RETURNING status",
            uuid.UUID(bot_id),
            reason[:500],
        )
        return status is not None

    async def save_state(self, bot_id: str, state: dict, version: int) -> None:
        """The strategy's state as of its `version`-th change; a write older than the stored one changes nothing
        (an intent may have stored a newer state meanwhile)."""
        held = await self.pool.fetchval(
            """
            WITH lease AS (
                SELECT EXISTS (SELECT 1 FROM bot_leases WHERE bot_id = $1 AND runner_id = $2 AND expires_at > now())
                    AS held
            ), saved AS (
                UPDATE bot_state SET strategy_state = $3::jsonb, state_version = $4, updated_at = now()
                WHERE bot_id = $1 AND state_version < $4 AND (SELECT held FROM lease)
            )
            SELECT held FROM lease
            """,
            uuid.UUID(bot_id),
            self.runner_id,
            state,
            version,
        )
        if not held:
            raise LeaseLost(bot_id)

    # -- intents ----------------------------------------------------------------------------------------------
    async def record_intent(
        self,
        bot: BotRow,
        key: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        state: dict,
        version: int,
    ) -> Intent:
        """Written BEFORE the order is sent, with the strategy's state after deciding it."""
        row = await self.pool.fetchrow(
            RECORD_INTENT_SQL,
            uuid.UUID(bot.id),
            self.runner_id,
            state,
            client_id_prefix(bot.id),
            key,
            bot.exchange,
            uuid.UUID(bot.account),
            bot.symbol,
            side,
            type_,
            amount,
            price,
            version,
        )
        if row is None:
            raise LeaseLost(bot.id)
        return Intent.from_row(row)

    async def mark_placed(self, intent: Intent, order: Order) -> None:
        """The connector answered: the exchange has it. Fills and later states come from the order events."""
        await self.pool.execute(
            """
            UPDATE bot_intents SET order_id = coalesce(order_id, $3),
                   state = CASE WHEN state = 'pending' THEN 'open' ELSE state END, updated_at = now()
            WHERE bot_id = $1 AND seq = $2
            """,
            uuid.UUID(intent.bot_id),
            intent.seq,
            order.id,
        )

    async def mark_failed(self, intent: Intent, error: str) -> None:
        await self.pool.execute(
            "UPDATE bot_intents SET state = 'failed', status = 'rejected', error = $3, updated_at = now(), "
            "change_seq = nextval('bot_changes') WHERE bot_id = $1 AND seq = $2 AND state = 'pending'",
            uuid.UUID(intent.bot_id),
            intent.seq,
            error[:500],
        )

    async def mark_canceled(self, intent: Intent, order: Order | None) -> None:
        """A cancel the connector confirmed (order None: the exchange does not know the order)."""
        status = order.status.value if order is not None else "canceled"
        filled = order.filled if order is not None else Decimal(0)
        await self.pool.execute(
            """
            UPDATE bot_intents SET state = 'done', status = CASE WHEN status IN ('closed', 'canceled', 'expired',
                   'rejected') THEN status ELSE $3 END, filled = greatest(filled, $4),
                   order_id = coalesce(order_id, $5), updated_at = now(), change_seq = nextval('bot_changes')
            WHERE bot_id = $1 AND seq = $2 AND state IN ('pending', 'open')
            """,
            uuid.UUID(intent.bot_id),
            intent.seq,
            status,
            filled,
            order.id if order is not None else None,
        )

    async def changes(self, since: int, gaps: list[int], limit: int = 5000) -> list[tuple[Intent, Holding]]:
        """Intents whose change number is above `since`, or one of `gaps` (numbers skipped earlier: taken by a
        transaction that had not committed yet, or by a row changed again since)."""
        rows = await self.pool.fetch(
            f"""
            SELECT {", ".join("i." + c for c in INTENT_COLUMNS.split(", "))},
                   s.position, s.average_entry, s.realized_pnl
            FROM bot_intents i JOIN bot_state s ON s.bot_id = i.bot_id
            WHERE i.change_seq > $1 OR i.change_seq = ANY($3::bigint[]) ORDER BY i.change_seq LIMIT $2
            """,
            since,
            limit,
            gaps,
        )
        return [(Intent.from_row(r), Holding(r["position"], r["average_entry"], r["realized_pnl"])) for r in rows]

    async def last_change(self) -> int:
        return await self.pool.fetchval("SELECT coalesce(max(change_seq), 0) FROM bot_intents")

    # -- order events -----------------------------------------------------------------------------------------
    async def apply_events(self, events: list[tuple[str, str, OrderEvent]]) -> list[tuple[str, Holding]]:
        """Order events (exchange, account, event) into intents, fills and positions, in one transaction.

        A fill is applied once per (exchange, account, trade id), so an event delivered twice changes nothing.
        Returns the bots whose position changed, with the new holding.
        """
        changed: dict[str, Holding] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for exchange, account, event in events:
                order = event.order
                cid = order.client_order_id
                if not cid or not cid.startswith("b"):
                    continue  # not a bot's order
                intent = await conn.fetchrow(
                    "SELECT bot_id, seq, symbol FROM bot_intents WHERE client_order_id = $1 FOR UPDATE", cid
                )
                if intent is None:
                    continue
                bot_id = intent["bot_id"]
                new = []
                for fill in event.fills:
                    inserted = await conn.fetchval(
                        """
                        INSERT INTO bot_fills (exchange_name, account_id, trade_id, bot_id, client_order_id, order_id,
                                               side, price, amount, fee_cost, fee_currency, timestamp_ms)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                        ON CONFLICT DO NOTHING RETURNING 1
                        """,
                        exchange,
                        uuid.UUID(account),
                        fill.trade_id,
                        bot_id,
                        cid,
                        order.id,
                        order.side.value,
                        fill.price,
                        fill.amount,
                        fill.fee_cost,
                        fill.fee_currency,
                        fill.timestamp,
                    )
                    if inserted:
                        new.append(fill)
                if new:
                    changed[str(bot_id)] = await self._apply_fills(conn, bot_id, intent["symbol"], order, new)
                fee_cost, fee_currency = await self._order_fee(conn, exchange, account, cid, order)
                terminal = order.status.value in TERMINAL
                await conn.execute(
                    """
                    UPDATE bot_intents SET
                        order_id = coalesce(order_id, $3),
                        status = CASE WHEN status IN ('closed', 'canceled', 'expired', 'rejected') THEN status
                                      ELSE $4 END,
                        state = CASE WHEN state = 'done' OR $5 THEN 'done' ELSE 'open' END,
                        filled = greatest(filled, $6),
                        average = coalesce($7, average),
                        fee_cost = coalesce($8, fee_cost),
                        fee_currency = coalesce($9, fee_currency),
                        updated_at = now(), change_seq = nextval('bot_changes')
                    WHERE bot_id = $1 AND seq = $2
                    """,
                    bot_id,
                    intent["seq"],
                    order.id,
                    order.status.value,
                    terminal,
                    order.filled,
                    order.average,
                    fee_cost,
                    fee_currency,
                )
        return list(changed.items())

    @staticmethod
    async def _order_fee(
        conn, exchange: str, account: str, cid: str, order: Order
    ) -> tuple[Decimal | None, str | None]:
        """The order's fees so far: the sum of its applied fills when they are in one currency (exchanges often
        leave the order's own fee empty), else what the order says."""
        rows = await conn.fetch(
            "SELECT fee_currency, sum(fee_cost) AS cost FROM bot_fills WHERE exchange_name = $1 AND account_id = $2 "
            "AND client_order_id = $3 AND fee_cost IS NOT NULL GROUP BY fee_currency",
            exchange,
            uuid.UUID(account),
            cid,
        )
        if len(rows) == 1:
            return rows[0]["cost"], rows[0]["fee_currency"]
        if order.fee is not None:
            return order.fee.cost, order.fee.currency
        return None, None

    async def _apply_fills(self, conn, bot_id, symbol: str, order: Order, fills) -> Holding:
        row = await conn.fetchrow(
            "SELECT position, average_entry, realized_pnl FROM bot_state WHERE bot_id = $1 FOR UPDATE", bot_id
        )
        holding = Holding(row["position"], row["average_entry"], row["realized_pnl"]) if row else Holding()
        base, _, quote = symbol.partition("/")
        quote = quote.split(":")[0]
        for fill in fills:
            trade = Trade(order.side.value, fill.price, fill.amount, fill.fee_cost, fill.fee_currency)
            holding = apply_trade(holding, trade, base, quote)
        await conn.execute(
            """
            INSERT INTO bot_state (bot_id, position, average_entry, realized_pnl, fills) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (bot_id) DO UPDATE SET position = $2, average_entry = $3, realized_pnl = $4,
                fills = bot_state.fills + $5, updated_at = now()
            """,
            bot_id,
            holding.amount,
            holding.average_entry,
            holding.realized_pnl,
            len(fills),
        )
        return holding


async def _codecs(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
