"""The database: engine set-up, sessions and migrations."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from relto.errors import StorageError

__all__ = ["Base", "Database", "create_database", "normalise_url"]

_MIGRATIONS = Path(__file__).parent / "migrations"

# Stable constraint names, so migrations are the same on SQLite and PostgreSQL.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every relto table."""

    metadata = MetaData(naming_convention=_NAMING)


#: Advisory lock id for migrations on PostgreSQL ("relto" in ASCII).
_MIGRATION_LOCK_KEY = 0x72656C746F


@contextmanager
def _migration_file_lock(engine: Engine, name: str = "migrate") -> Iterator[None]:
    """On a file-backed SQLite database, hold an exclusive lock on ``<db>.<name>.lock``."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.{name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@dataclass
class Database:
    """An engine, a session factory, and the migrations for it."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def migrate(self) -> None:
        """Apply every migration (all capability branches) up to the heads.

        Several processes may start at once on a fresh database (server workers):
        they take turns, so each migration runs exactly once. SQLite: a kernel lock
        on a file beside the database; PostgreSQL: a transaction-scoped advisory lock.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with _migration_file_lock(self.engine), self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY}
                    )
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except SQLAlchemyError as exc:
            raise StorageError(f"database migration failed: {type(exc).__name__}") from exc

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run the block in one process at a time, across every process on this
        database (server workers starting together, say). SQLite: a kernel lock on
        ``<db>.<name>.lock``; PostgreSQL: a session advisory lock held on a
        connection of its own for the whole block."""
        if not name.replace("-", "").isalnum():
            raise ValueError("lock names are letters, digits and dashes")
        if self.dialect != "postgresql":
            with _migration_file_lock(self.engine, name):
                yield
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def create_database(url: str, *, migrate: bool = True, echo: bool = False) -> Database:
    """Open the database at ``url`` (SQLite or PostgreSQL) and, by default, migrate it."""
    url = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ValueError) as exc:
        raise StorageError(f"cannot open database: {type(exc).__name__}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    db = Database(engine, sessionmaker(engine, expire_on_commit=False))
    if migrate:
        db.migrate()
    return db
