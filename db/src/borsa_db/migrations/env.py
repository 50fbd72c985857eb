"""Alembic's environment: migrate on the connection borsa_db hands over, inside its locked transaction."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "run Borsa's migrations with `borsa-migrate` (or borsa_db.migrate()), which hands Alembic a locked connection"
    )
# The connection is already in borsa_db's transaction: Alembic joins it and the caller commits.
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
