"""Alembic environment: runs on the connection relto hands it (never on its own URL)."""

from __future__ import annotations

from alembic import context

import relto.store.tables  # noqa: F401  (registers every table on Base.metadata)
from relto.store.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - relto always passes a connection
    raise RuntimeError("relto migrations run through relto.store.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
