"""The desk database for tests: SQLite always, PostgreSQL too when KAKEHASHI_TEST_POSTGRES_URL names a
server (.ci/run starts one). Each test gets a database of its own. Import `database_url` by name."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

# Read once at import: the suite's autouse fixture clears KAKEHASHI_* variables for every test.
POSTGRES_URL = os.environ.get("KAKEHASHI_TEST_POSTGRES_URL", "")

needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="KAKEHASHI_TEST_POSTGRES_URL is not set")
BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=needs_postgres)]


def _libpq(url: URL) -> str:
    """psycopg's own connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def admin_connection() -> Iterator[object]:
    """An autocommit psycopg connection to the server's own database (CREATE/ALTER/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(_libpq(make_url(POSTGRES_URL)), autocommit=True) as connection:
        yield connection


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    name = f"kk_test_{secrets.token_hex(6)}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'desk.sqlite3'}"
        return
    with fresh_postgres_database() as url:
        yield url
