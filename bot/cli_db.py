"""`kakehashi db upgrade` and `kakehashi db current`: the desk database's schema version.

bot/cli.py adds it with `cli_db.register(sub)`. The server upgrades on start as well; these are
for deployments that migrate as a separate step, and for checking where a database stands.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bot.cli_common import CliError
from core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser("db", help="the desk database (KAKEHASHI_DATABASE_URL): schema migrations")
    db = p.add_subparsers(dest="db_command", required=True)
    up = db.add_parser(
        "upgrade",
        help="bring the schema to the newest revision (a database made before "
        "migrations existed is adopted, not re-created)",
    )
    up.set_defaults(func=cmd_upgrade)
    current = db.add_parser("current", help="show the database's revision and the newest one; changes nothing")
    current.set_defaults(func=cmd_current)
    return p


@contextmanager
def _engine(url: str, *, doing: str) -> Iterator[Engine]:
    """The database's engine, opened without upgrading and disposed after; a failure names the url."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot import migrations
    from bot.store import DeskStore, StoreError, parsed_safe

    try:
        store = DeskStore(url=url, upgrade=False)
        try:
            yield store.engine
        finally:
            store.close()
    except (StoreError, migrations.MigrationError, SQLAlchemyError) as exc:
        raise CliError(f"cannot {doing} {parsed_safe(url)}: {exc}") from exc


def cmd_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so the other subcommands do not pay for Alembic.
    from bot import migrations
    from bot.store import parsed_safe

    url = settings.storage.effective_database_url
    with _engine(url, doing="upgrade") as engine:
        before, after = migrations.upgrade(engine)
    if before == after:
        print(f"{parsed_safe(url)}: already at {after} (head)")
    else:
        print(f"{parsed_safe(url)}: upgraded from {before or 'an empty database'} to {after} (head)")
    return 0


def cmd_current(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot import migrations
    from bot.store import parsed_safe, sqlite_file

    url = settings.storage.effective_database_url
    head = migrations.head_revision()
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot read {parsed_safe(url)}: {exc}") from exc
    file = sqlite_file(parsed)
    if file is not None and not file.exists():
        # Opening it would create an empty file: "current" changes nothing.
        print(f"{parsed_safe(url)}: no database yet; newest is {head} (`kakehashi db upgrade` creates it)")
        return 0
    with _engine(url, doing="read") as engine:
        current = migrations.current_revision(engine)
    if current == head:
        print(f"{parsed_safe(url)}: {current} (head)")
    else:
        print(f"{parsed_safe(url)}: {current or 'no revision'}; newest is {head}: run `kakehashi db upgrade`")
    return 0
