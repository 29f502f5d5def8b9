"""The desk database's migrations (bot/migrations) on SQLite and, when available, PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from bot import cli, migrations
from bot.store import Base, DeskStore, StoreError
from tests.conftest import kakehashi_env, run_kakehashi
from tests.db_fixtures import database_url  # noqa: F401 - the fixture, by name

REPO = Path(__file__).resolve().parents[1]


def _schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys and indexes as the database reports them (alembic's own table aside)."""
    found = inspect(engine)
    schema = {}
    for table in sorted(set(found.get_table_names()) - {"alembic_version"}):
        schema[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
            "primary_key": found.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in found.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
            ),
        }
    return schema


def test_migrations_build_exactly_the_models_schema(database_url: str) -> None:  # noqa: F811
    store = DeskStore(url=database_url)
    try:
        assert store.revision == migrations.head_revision()
        with store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        migrated = _schema(store.engine)
        # The same schema create_all makes from the models, table by table and index by index.
        with store.engine.begin() as connection:
            command.downgrade(migrations.alembic_config(connection), "base")
        assert _schema(store.engine) == {}
        Base.metadata.create_all(store.engine)
        assert _schema(store.engine) == migrated
        assert set(migrated) == migrations.INITIAL_TABLES | {"bot_threads", "idempotency_keys", "outbox"}
    finally:
        store.close()


def test_a_database_made_by_create_all_is_stamped_not_recreated(database_url: str) -> None:  # noqa: F811
    engine = create_engine(database_url)
    # How DeskStore made its tables before migrations (the tables of that time only).
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[name] for name in migrations.INITIAL_TABLES])
    old = DeskStore(url=database_url, upgrade=False)
    kept = old.record_answer(
        surface="dm",
        question="MEDISOとは？",
        answer="相談窓口です。",
        language="ja",
        confident=True,
        mode="extractive",
        citations=[],
    )
    old.close()
    assert migrations.current_revision(engine) is None

    store = DeskStore(url=database_url)
    try:
        assert store.revision == migrations.head_revision()
        assert store.get_answer(kept.id).question == "MEDISOとは？"  # type: ignore[union-attr]
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
                migrations.head_revision()
            ]
    finally:
        store.close()
        engine.dispose()


def test_a_database_with_only_some_of_the_tables_is_refused(database_url: str) -> None:  # noqa: F811
    engine = create_engine(database_url)
    Base.metadata.tables["answers"].create(engine)
    engine.dispose()
    with pytest.raises(StoreError, match=r"some of Kakehashi's tables \(answers\) but not consultations"):
        DeskStore(url=database_url)


def test_a_database_migrated_by_a_newer_version_is_refused_not_damaged(database_url: str) -> None:  # noqa: F811
    DeskStore(url=database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(StoreError, match="revision 9999_future, which this version of Kakehashi does not know"):
        DeskStore(url=database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_future"
    assert set(inspect(engine).get_table_names()) >= migrations.INITIAL_TABLES
    engine.dispose()


def test_unrelated_tables_in_a_shared_database_are_left_alone(database_url: str) -> None:  # noqa: F811
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE other_app (id INTEGER PRIMARY KEY)"))
    store = DeskStore(url=database_url)
    store.close()
    assert {"other_app", "answers", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


_OPEN = """
import sys
from bot.store import DeskStore
store = DeskStore(url=sys.argv[1])
print(store.revision)
"""


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url: str) -> None:  # noqa: F811
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, database_url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, [err for _, err in results]
    assert {out.strip() for out, _ in results} == {migrations.head_revision()}
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_db_commands_show_and_upgrade_the_revision(
    database_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", database_url)
    head = migrations.head_revision()
    assert cli.main(["db", "current"]) == 0
    assert "kakehashi db upgrade" in capsys.readouterr().out
    assert cli.main(["db", "upgrade"]) == 0
    assert f"upgraded from an empty database to {head}" in capsys.readouterr().out
    assert cli.main(["db", "upgrade"]) == 0
    assert f"already at {head}" in capsys.readouterr().out
    assert cli.main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{head} (head)")


def test_db_upgrade_as_a_process(tmp_path: Path) -> None:
    """The db group's smoke test: a real `kakehashi db upgrade` process on a fresh SQLite database."""
    database = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    done = run_kakehashi("db", "upgrade", env=kakehashi_env(KAKEHASHI_DATABASE_URL=database), timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from an empty database to {migrations.head_revision()}" in done.stdout


def test_db_command_reports_an_unreachable_database_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", "postgresql+psycopg://desk:hunter2-pw@127.0.0.1:1/desk")
    assert cli.main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "cannot upgrade postgresql+psycopg://desk:***@127.0.0.1:1/desk" in err and "hunter2-pw" not in err


def test_the_migration_scripts_ship_inside_the_package() -> None:
    assert migrations.SCRIPT_LOCATION.is_relative_to(Path(migrations.__file__).parent)
    assert (migrations.SCRIPT_LOCATION / "env.py").is_file()
    assert not (REPO / "alembic.ini").exists()  # configured in code: nothing to find at run time
    versions = sorted(p.stem for p in (migrations.SCRIPT_LOCATION / "versions").glob("[0-9]*.py"))
    assert versions[0] == f"{migrations.INITIAL_REVISION}_initial"
