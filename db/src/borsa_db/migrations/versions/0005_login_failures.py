"""Failed logins counted in Postgres, so that every gateway replica applies one limit per email.

A row per attempt still counting against an email (each attempt counts from its start; a successful login removes
its email's rows). The email is kept only as its SHA-256 digest: addresses strangers type are not stored.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = (
    """
CREATE TABLE login_failures (
    email_digest bytea       NOT NULL,   -- sha256 of the lower-cased email
    at           timestamptz NOT NULL DEFAULT now()
)""",
    "CREATE INDEX login_failures_email_at ON login_failures (email_digest, at)",
)

DOWNGRADE = ("DROP TABLE login_failures",)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
