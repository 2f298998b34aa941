"""Table of pinned partner nodes (relto.federation).

- ``federation_pinned_node``: one row per nation this node trusts: the node key's
  fingerprint, the descriptor as verified when it was pinned (compact JWS), its
  validity, who pinned or last updated it and when. Writes compare the row they
  replace, so two officers updating at once cannot both win.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Float, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from relto.federation import PinnedNode, read_pinned_descriptor
from relto.federation.errors import AlreadyPinned, NotPinned
from relto.store.db import Base, Database

__all__ = ["PinnedNodeRow", "SqlPinRepository"]


class PinnedNodeRow(Base):
    __tablename__ = "federation_pinned_node"

    nation: Mapped[str] = mapped_column(String(3), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(80), nullable=False)
    descriptor: Mapped[str] = mapped_column(Text, nullable=False)
    issued_at: Mapped[float] = mapped_column(Float, nullable=False)
    not_after: Mapped[float] = mapped_column(Float, nullable=False)
    pinned_at: Mapped[float] = mapped_column(Float, nullable=False)
    pinned_by: Mapped[str] = mapped_column(String(64), nullable=False)


def _row(pin: PinnedNode) -> PinnedNodeRow:
    return PinnedNodeRow(
        nation=pin.nation,
        fingerprint=pin.fingerprint,
        descriptor=pin.token,
        issued_at=pin.descriptor.issued_at.timestamp(),
        not_after=pin.descriptor.not_after.timestamp(),
        pinned_at=pin.pinned_at.timestamp(),
        pinned_by=pin.pinned_by,
    )


def _pin(row: PinnedNodeRow) -> PinnedNode:
    descriptor = read_pinned_descriptor(row.descriptor)
    if descriptor.fingerprint != row.fingerprint or descriptor.nation != row.nation:
        raise NotPinned(f"the stored pin of {row.nation} is inconsistent; pin it again")
    return PinnedNode(
        descriptor, row.descriptor, datetime.fromtimestamp(row.pinned_at, UTC), row.pinned_by
    )


class SqlPinRepository:
    """:class:`relto.federation.PinRepository` on the node's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, nation: str) -> PinnedNode | None:
        with self._db.session() as s:
            row = s.get(PinnedNodeRow, nation)
            return _pin(row) if row is not None else None

    def all(self) -> list[PinnedNode]:
        with self._db.session() as s:
            rows = s.scalars(select(PinnedNodeRow).order_by(PinnedNodeRow.nation)).all()
            return [_pin(r) for r in rows]

    def add(self, pin: PinnedNode) -> None:
        try:
            with self._db.session() as s:
                s.add(_row(pin))
        except IntegrityError:
            raise AlreadyPinned(f"{pin.nation} already has a pinned node") from None

    def replace(self, old: PinnedNode, new: PinnedNode) -> None:
        row = _row(new)
        with self._db.session() as s:
            done = s.execute(
                update(PinnedNodeRow)
                .where(
                    PinnedNodeRow.nation == old.nation,
                    PinnedNodeRow.descriptor == old.token,
                )
                .values(
                    fingerprint=row.fingerprint,
                    descriptor=row.descriptor,
                    issued_at=row.issued_at,
                    not_after=row.not_after,
                    pinned_at=row.pinned_at,
                    pinned_by=row.pinned_by,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise NotPinned(f"the pinned node of {old.nation} changed meanwhile")

    def remove(self, pin: PinnedNode) -> None:
        with self._db.session() as s:
            done = s.execute(
                delete(PinnedNodeRow).where(
                    PinnedNodeRow.nation == pin.nation, PinnedNodeRow.descriptor == pin.token
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise NotPinned(f"the pinned node of {pin.nation} changed meanwhile")
