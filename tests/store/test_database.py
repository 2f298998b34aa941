"""Storage on SQLite and on a real PostgreSQL: migrations, transactions, pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from relto.store import Database, create_database
from relto.store.meta import NodeMeta


def test_migrations_create_tables(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert "node_meta" in tables
    assert "alembic_version" in tables


def test_migrations_are_idempotent(database: Database) -> None:
    database.migrate()
    database.migrate()
    assert database.ping()


def test_session_commits(database: Database) -> None:
    with database.session() as s:
        s.add(NodeMeta(key="nation", value="GBR"))
    with database.session() as s:
        assert s.scalar(select(NodeMeta.value).where(NodeMeta.key == "nation")) == "GBR"


def test_failed_transaction_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        s.add(NodeMeta(key="partial", value="x"))
        s.flush()
        raise RuntimeError("boom")
    with database.session() as s:
        assert s.get(NodeMeta, "partial") is None


def test_duplicate_key_rejected_and_first_value_kept(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with database.session() as s:
        s.add(NodeMeta(key="k", value="first"))
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(NodeMeta(key="k", value="second"))
    with database.session() as s:
        assert s.get(NodeMeta, "k").value == "first"  # type: ignore[union-attr]


def test_sqlite_uses_wal_and_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = create_database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


@pytest.mark.postgres
def test_postgres_is_really_postgres(postgres_url: str) -> None:
    db = create_database(postgres_url)
    assert db.dialect == "postgresql"
    with db.engine.connect() as conn:
        assert "PostgreSQL" in conn.execute(text("SELECT version()")).scalar_one()
    db.dispose()


def test_unreachable_database_reports_unhealthy() -> None:
    db = create_database("postgresql://nobody@127.0.0.1:1/none", migrate=False)
    assert db.ping() is False


_MIGRATE_IN_CHILD = """
import sys
from relto.store import create_database
create_database(sys.argv[1]).dispose()
"""


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_concurrent_starts_migrate_once_without_error(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two server workers starting on a fresh database must not race on migrations."""
    import subprocess
    import sys

    url = (
        f"sqlite:///{tmp_path / 'fresh.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE_IN_CHILD, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    db = create_database(url, migrate=False)
    with db.engine.connect() as conn:
        heads = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    assert heads >= 1
    assert "node_meta" in set(inspect(db.engine).get_table_names())
    db.dispose()
