"""Orders through the connectors: intents recorded before they are sent, fills, and paper-mode state.

`connector_orders` is the connectors' own durable record (DESIGN section 7): a create is written here BEFORE it
reaches the exchange, so a retry after a timeout, a crash or SIGKILL finds it and looks the order up instead of
sending it again. `connector_fills` holds each fill once per (exchange, account, trade id). Paper keys keep their
balances, orders and trades here; their starting balances are set per key in `api_keys.paper_balances`.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = (
    # Decimal strings per currency ({"USDT": "10000"}): what a paper key starts with. NULL: the default set.
    "ALTER TABLE api_keys ADD COLUMN paper_balances jsonb",
    """
CREATE TABLE connector_orders (
    exchange_name        text NOT NULL,
    account_id           uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    client_order_id      text NOT NULL,    -- the caller's id (a bot's intent id)
    sent_client_order_id text NOT NULL,    -- the same id fitted to the exchange's length and characters
    symbol               text NOT NULL,    -- unified
    market_id            text NOT NULL,
    side                 text NOT NULL CHECK (side IN ('buy', 'sell')),
    type                 text NOT NULL,
    amount               numeric NOT NULL CHECK (amount > 0),  -- as sent, after precision
    price                numeric,
    -- sending: recorded, outcome not known yet; placed: the exchange has it; rejected: the exchange refused it.
    state                text NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'placed', 'rejected')),
    order_id             text,             -- the exchange's id, once known
    status               text,             -- last known Order.status
    filled               numeric NOT NULL DEFAULT 0,
    published            text,             -- "<status>:<filled>" of the last event published for it
    last_order           jsonb,            -- last known Order, wire form
    error                jsonb,            -- the error a rejected create answered, to answer a retry the same way
    attempt              integer NOT NULL DEFAULT 1,
    claimed_by           text NOT NULL,    -- connector instance that sent (or is sending) it
    claimed_at           timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange_name, account_id, client_order_id),
    UNIQUE (exchange_name, account_id, sent_client_order_id)
)""",
    # Order tracking reads the orders that need it: open, not known yet, or whose last state is not published yet.
    """
CREATE INDEX connector_orders_pending ON connector_orders (exchange_name, account_id)
    WHERE state <> 'rejected' AND (status IS NULL OR status = 'open' OR published IS NULL
                                   OR published NOT LIKE status || ':%')""",
    "CREATE INDEX connector_orders_by_id ON connector_orders (exchange_name, account_id, order_id)",
    """
CREATE TABLE connector_fills (
    exchange_name   text NOT NULL,
    account_id      uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    trade_id        text NOT NULL,
    order_id        text NOT NULL,
    client_order_id text,
    symbol          text NOT NULL,
    side            text NOT NULL,
    price           numeric NOT NULL,
    amount          numeric NOT NULL,
    fee_cost        numeric,
    fee_currency    text,
    timestamp_ms    bigint NOT NULL,
    PRIMARY KEY (exchange_name, account_id, trade_id)
)""",
    """
CREATE TABLE paper_balances (
    account_id uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    currency   text NOT NULL,
    free       numeric NOT NULL CHECK (free >= 0),
    used       numeric NOT NULL CHECK (used >= 0),
    PRIMARY KEY (account_id, currency)
)""",
    """
CREATE TABLE paper_orders (
    account_id      uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    id              text NOT NULL,
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    type            text NOT NULL CHECK (type IN ('market', 'limit')),
    amount          numeric NOT NULL CHECK (amount > 0),
    price           numeric,
    filled          numeric NOT NULL DEFAULT 0,
    cost            numeric NOT NULL DEFAULT 0,
    fee_cost        numeric NOT NULL DEFAULT 0,
    fee_currency    text,
    reserved        numeric NOT NULL DEFAULT 0,  -- what the order still holds in `used`
    status          text NOT NULL CHECK (status IN ('open', 'closed', 'canceled', 'rejected')),
    created_ms      bigint NOT NULL,
    updated_ms      bigint NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, client_order_id)
)""",
    "CREATE INDEX paper_orders_open ON paper_orders (account_id, symbol) WHERE status = 'open'",
    """
CREATE TABLE paper_trades (
    account_id     uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    id             text NOT NULL,
    order_id       text NOT NULL,
    symbol         text NOT NULL,
    side           text NOT NULL,
    price          numeric NOT NULL,
    amount         numeric NOT NULL,
    cost           numeric NOT NULL,
    fee_cost       numeric NOT NULL,
    fee_currency   text NOT NULL,
    taker_or_maker text NOT NULL CHECK (taker_or_maker IN ('taker', 'maker')),
    timestamp_ms   bigint NOT NULL,
    PRIMARY KEY (account_id, id)
)""",
    "CREATE INDEX paper_trades_order ON paper_trades (account_id, order_id)",
)

DOWNGRADE = (
    "DROP TABLE paper_trades",
    "DROP TABLE paper_orders",
    "DROP TABLE paper_balances",
    "DROP TABLE connector_fills",
    "DROP TABLE connector_orders",
    "ALTER TABLE api_keys DROP COLUMN paper_balances",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
