"""The bot runner: which runner runs which bot, each bot's state, its order intents and the fills applied to it.

A bot runs in exactly one runner: `bot_leases` holds the runner and an expiry its runner keeps pushing forward; a
dead runner's leases run out and another runner takes its bots. An order intent is written to `bot_intents` with its
`client_order_id` BEFORE the order is sent (DESIGN section 7), in the same transaction that checks the lease (a
runner that lost a bot cannot write for it). `bot_fills` applies each fill once per (exchange, account, trade id) to
the bot's position, average entry and realised PnL in `bot_state`. Every change to an intent takes a number from
`bot_changes`, so a runner follows its bots' orders by reading what is above the last number it saw.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = (
    """
CREATE TABLE bot_runners (
    id           text PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL          -- pushed forward by the runner while it lives
)""",
    """
CREATE TABLE bot_leases (
    bot_id     uuid PRIMARY KEY REFERENCES bot_configs(id) ON DELETE CASCADE,
    runner_id  text NOT NULL,
    expires_at timestamptz NOT NULL,
    taken_at   timestamptz NOT NULL DEFAULT now()
)""",
    "CREATE INDEX bot_leases_runner ON bot_leases (runner_id)",
    """
CREATE TABLE bot_state (
    bot_id         uuid PRIMARY KEY REFERENCES bot_configs(id) ON DELETE CASCADE,
    strategy_state jsonb NOT NULL DEFAULT '{}',
    state_version  bigint NOT NULL DEFAULT 0,   -- the bot's count of its state changes: an older write never wins
    next_seq       bigint NOT NULL DEFAULT 1,   -- the next intent's sequence number
    position       numeric NOT NULL DEFAULT 0,  -- base held by the bot, net of fees charged in base
    average_entry  numeric,                     -- quote per base, fees charged in quote included
    realized_pnl   numeric NOT NULL DEFAULT 0,  -- quote, fees charged in quote or base included
    fills          bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
)""",
    "CREATE SEQUENCE bot_changes",
    """
CREATE TABLE bot_intents (
    bot_id          uuid NOT NULL REFERENCES bot_configs(id) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    client_order_id text NOT NULL UNIQUE,   -- deterministic: the bot and the sequence number
    key             text NOT NULL,          -- the strategy's slot ("dca", "grid:buy:3")
    exchange_name   text NOT NULL,
    account_id      uuid NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    type            text NOT NULL CHECK (type IN ('market', 'limit')),
    amount          numeric NOT NULL CHECK (amount > 0),
    price           numeric,
    -- pending: written, the connector has not confirmed it; open: the exchange has it; done: closed, canceled or
    -- expired; failed: refused (never placed).
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'open', 'done', 'failed')),
    order_id        text,
    status          text,                   -- last known Order.status
    filled          numeric NOT NULL DEFAULT 0,
    average         numeric,
    fee_cost        numeric,
    fee_currency    text,
    error           text,
    change_seq      bigint NOT NULL DEFAULT nextval('bot_changes'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, seq)
)""",
    "CREATE INDEX bot_intents_live ON bot_intents (bot_id) WHERE state IN ('pending', 'open')",
    "CREATE INDEX bot_intents_changes ON bot_intents (change_seq)",
    """
CREATE TABLE bot_fills (
    exchange_name   text NOT NULL,
    account_id      uuid NOT NULL,
    trade_id        text NOT NULL,
    bot_id          uuid NOT NULL REFERENCES bot_configs(id) ON DELETE CASCADE,
    client_order_id text NOT NULL,
    order_id        text NOT NULL,
    side            text NOT NULL,
    price           numeric NOT NULL,
    amount          numeric NOT NULL,
    fee_cost        numeric,
    fee_currency    text,
    timestamp_ms    bigint NOT NULL,
    PRIMARY KEY (exchange_name, account_id, trade_id)
)""",
    "CREATE INDEX bot_fills_bot ON bot_fills (bot_id)",
)

DOWNGRADE = (
    "DROP TABLE bot_fills",
    "DROP TABLE bot_intents",
    "DROP SEQUENCE bot_changes",
    "DROP TABLE bot_state",
    "DROP TABLE bot_leases",
    "DROP TABLE bot_runners",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
