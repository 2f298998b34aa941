"""Tables and the SQL repository of leak tracing (:mod:`relto.tracing.service`).

Three tables, all keyed by the object's id:

``tracing_secret``
    The object's 32-byte tracing secret, *sealed*: wrapped for this node's KAS key
    exactly as a container's key share is (RSA-OAEP, or ECDH + HKDF + AES-GCM for an
    EC key), with the key's id. Only the key store can unwrap it; the clear secret
    is never stored.
``tracing_recipient``
    Each recipient's index in the object's code (0..n-1), given once, in order of
    first copy; unique per object.
``tracing_copy``
    The copy ledger: one row per copy released (copy number per object from 1,
    recipient, index, media type, a SHA-256 commitment to the codeword, time) and
    the index of its ``trace.copy`` entry in the transparency log.

The repository never commits: the caller's ``Database.session()`` does, after the
audit sink accepted the ``trace.copy`` entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.store.db import Base

__all__ = [
    "SqlTracingRepository",
    "TracingCopyRow",
    "TracingRecipientRow",
    "TracingSecretRow",
]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class TracingSecretRow(Base):
    """One object's tracing secret, sealed for a KAS key (never in clear)."""

    __tablename__ = "tracing_secret"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The KAS key it is wrapped for, and how (``wrapped``: RSA-OAEP; ``ec-wrapped``).
    kid: Mapped[str] = mapped_column(String(64), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: The ephemeral public key (PEM) of an ``ec-wrapped`` seal; empty for RSA.
    ephemeral: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TracingRecipientRow(Base):
    """A recipient's index in an object's code, given at their first copy."""

    __tablename__ = "tracing_recipient"
    __table_args__ = (
        UniqueConstraint("document_id", "recipient_index", name="uq_tracing_recipient_index"),
    )

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    recipient_index: Mapped[int] = mapped_column(Integer, nullable=False)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TracingCopyRow(Base):
    """One released copy: who received it, their index, and the log entry saying so."""

    __tablename__ = "tracing_copy"
    __table_args__ = (Index("ix_tracing_copy_at", "at"),)

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    copy_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(200), nullable=False)
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    recipient_index: Mapped[int] = mapped_column(Integer, nullable=False)
    media_type: Mapped[str] = mapped_column(String(200), nullable=False)
    #: SHA-256 of the packed codeword (hex): what the log entry commits to.
    commitment: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: The ``trace.copy`` entry's index in the node's transparency log (``None`` when
    #: the node records to a sink that gives no index, as tests do).
    log_index: Mapped[int | None] = mapped_column(BigInteger)


class SqlTracingRepository:
    """Reads and writes the tracing tables inside the caller's session."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- the sealed secret --------------------------------------------------------------

    def secret(self, document_id: str) -> TracingSecretRow | None:
        return self._s.get(TracingSecretRow, document_id)

    def add_secret(self, row: TracingSecretRow) -> None:
        self._s.add(row)
        self._s.flush()

    # -- recipients ---------------------------------------------------------------------

    def recipient(self, document_id: str, person_id: str) -> TracingRecipientRow | None:
        return self._s.get(TracingRecipientRow, (document_id, person_id))

    def recipient_count(self, document_id: str) -> int:
        found = self._s.scalar(
            select(func.count())
            .select_from(TracingRecipientRow)
            .where(TracingRecipientRow.document_id == document_id)
        )
        return int(found or 0)

    def add_recipient(self, row: TracingRecipientRow) -> None:
        self._s.add(row)
        self._s.flush()

    def recipients(self, document_id: str) -> list[TracingRecipientRow]:
        return list(
            self._s.scalars(
                select(TracingRecipientRow)
                .where(TracingRecipientRow.document_id == document_id)
                .order_by(TracingRecipientRow.recipient_index)
            )
        )

    # -- copies -------------------------------------------------------------------------

    def next_copy_number(self, document_id: str) -> int:
        found = self._s.scalar(
            select(func.max(TracingCopyRow.copy_number)).where(
                TracingCopyRow.document_id == document_id
            )
        )
        return int(found or 0) + 1

    def add_copy(self, row: TracingCopyRow) -> None:
        self._s.add(row)
        self._s.flush()

    def copies(
        self, document_id: str, indices: Sequence[int] | None = None
    ) -> list[TracingCopyRow]:
        query = select(TracingCopyRow).where(TracingCopyRow.document_id == document_id)
        if indices is not None:
            query = query.where(TracingCopyRow.recipient_index.in_(list(indices)))
        return list(self._s.scalars(query.order_by(TracingCopyRow.copy_number)))

    def traced_objects(self, limit: int) -> list[str]:
        """Objects that have issued copies (most recently first), at most ``limit``."""
        rows = self._s.execute(
            select(TracingCopyRow.document_id, func.max(TracingCopyRow.at).label("last"))
            .group_by(TracingCopyRow.document_id)
            .order_by(func.max(TracingCopyRow.at).desc())
            .limit(limit)
        )
        return [str(r[0]) for r in rows]

    @staticmethod
    def at(row: TracingCopyRow) -> datetime:
        return _utc(row.at)
