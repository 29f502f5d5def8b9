"""Alembic's environment for the desk database. `bot.migrations.upgrade` hands it a connection
(in a transaction it owns); run any other way, it connects to `sqlalchemy.url`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from bot.store import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url set: use `kakehashi db upgrade`")
    engine = create_engine(url)
    try:
        with engine.connect() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
