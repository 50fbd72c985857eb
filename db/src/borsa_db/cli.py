"""`borsa-migrate`: upgrade, downgrade or inspect the database that DATABASE_URL names."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.exc import SQLAlchemyError

from borsa_db.connect import DatabaseUnavailable, ensure_database
from borsa_db.migrator import alembic_config, current_revision, downgrade, head_revision, migrate
from borsa_runtime.redact import mask_url_password

EXAMPLE_URL = "postgresql://borsa@127.0.0.1:5432/borsa"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="borsa-migrate",
        description=f"Migrate the Postgres database named by DATABASE_URL (e.g. {EXAMPLE_URL}).",
    )
    commands = parser.add_subparsers(dest="command", metavar="{upgrade,downgrade,current,revision}")
    up = commands.add_parser("upgrade", help="create the database if missing and migrate it (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = commands.add_parser("downgrade", help="migrate back to a revision (`base`: drop every Borsa table)")
    down.add_argument("revision")
    commands.add_parser("current", help="print the database's revision")
    new = commands.add_parser("revision", help="write a new, empty migration into the package (source checkouts)")
    new.add_argument("-m", "--message", required=True)
    return parser


def _describe(revision: str | None) -> str:
    if revision is None:
        return "base (no Borsa tables)"
    return f"{revision} (head)" if revision == head_revision() else revision


def _new_revision(message: str) -> str:
    numbers = [int(rev) for rev in _known_revisions() if rev.isdigit()]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    command.revision(alembic_config(), message=message, rev_id=rev_id)
    return rev_id


def _known_revisions() -> list[str]:
    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "revision":
        print(f"wrote revision {_new_revision(args.message)}")
        return 0
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print(
            f"borsa-migrate: DATABASE_URL is not set: set it to the database to migrate, e.g. {EXAMPLE_URL}",
            file=sys.stderr,
        )
        return 2
    try:
        report = asyncio.run(_run(args, url))
    except (DatabaseUnavailable, CommandError, SQLAlchemyError) as exc:
        print(f"borsa-migrate: {mask_url_password(str(exc))}", file=sys.stderr)
        return 1
    print(f"{mask_url_password(url)}: {report}")
    return 0


async def _run(args: argparse.Namespace, url: str) -> str:
    if args.command == "current":
        return f"at {_describe(await current_revision(url))}"
    if args.command == "downgrade":
        before = await current_revision(url)
        await downgrade(url, args.revision)
    else:
        await ensure_database(url)
        before = await current_revision(url)
        await migrate(url, getattr(args, "revision", "head"))
    after = await current_revision(url)
    if after == before:
        return f"already at {_describe(after)}"
    return f"migrated from {_describe(before)} to {_describe(after)}"
