"""The desk database's schema history (Alembic), shipped inside the package.

`upgrade` brings any database to the newest schema: it is what DeskStore runs on open and what
`kakehashi db upgrade` runs. No alembic.ini is needed: the configuration is built here.
Concurrent upgrades from several processes are serialized (a PostgreSQL advisory lock held for
the migration's transaction; a lock file next to an SQLite database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, inspect, text

from core.errors import KakehashiError

SCRIPT_LOCATION = Path(__file__).resolve().parent

# The revision a database made by the old `Base.metadata.create_all` is at, and its tables.
INITIAL_REVISION = "0001"
INITIAL_TABLES = frozenset({"answers", "feedback", "consultations", "processed_events"})

# Any fixed 64-bit number: every process upgrading the same PostgreSQL database waits on this key.
_PG_LOCK_KEY = 0x4B414B4548415348  # "KAKEHASH"
_LOCK_WAIT_S = 120.0


class MigrationError(KakehashiError):
    """The schema cannot be brought up to date (an unknown database layout, or a lock that never frees)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code; `connection` is the one env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "bot/migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database (or one made before migrations)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """SQLite runs DDL outside transactions, so processes opening one file take turns by a lock file."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        with FileLock(f"{database}.migrate.lock", timeout=_LOCK_WAIT_S):
            yield
    except Timeout as exc:
        raise MigrationError(f"another process held {database}.migrate.lock for {_LOCK_WAIT_S:.0f} s") from exc


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (revision before, revision after).

    A database created by the old create_all (our tables, no alembic_version) is stamped with the
    initial revision, not created again, then upgraded from there.
    """
    with _file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends: PostgreSQL's DDL is transactional, so the next
            # process sees the finished schema (and a version at head) once it gets the lock.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        if before is not None and before not in {rev.revision for rev in script.walk_revisions()}:
            raise MigrationError(
                f"the database is at revision {before}, which this version of Kakehashi does "
                f"not know (its newest is {script.get_current_head()}): a newer version "
                "migrated it; run that version, or restore a backup"
            )
        if before is None:
            present = INITIAL_TABLES & set(inspect(connection).get_table_names())
            if present == INITIAL_TABLES:
                command.stamp(config, INITIAL_REVISION)
            elif present:
                raise MigrationError(
                    f"the database has some of Kakehashi's tables ({', '.join(sorted(present))}) but not "
                    f"{', '.join(sorted(INITIAL_TABLES - present))}, and no alembic_version: "
                    "it is not a layout this version can upgrade"
                )
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise MigrationError(f"cannot upgrade: {exc}") from exc
        after = MigrationContext.configure(connection).get_current_revision()
    assert after is not None
    return before, after
