"""Table of console sign-in sessions (relto.sessions).

- ``console_session``: one row per live session. The key is the SHA-256 of the
  session id, never the id itself: someone who reads the database (a backup, a
  replica) learns who is signed in, but cannot act as them. Signing out deletes
  the row; an expired row is refused and purged on a later sign-in.
"""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from relto.store.db import Base

__all__ = ["ConsoleSessionRow"]


class ConsoleSessionRow(Base):
    __tablename__ = "console_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
