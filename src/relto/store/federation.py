"""Tables of relto.federation: pinned partner nodes, status list indexes.

- ``federation_pinned_node``: one row per nation this node trusts: the node key's
  fingerprint, the descriptor as verified when it was pinned (compact JWS), its
  validity, who pinned or last updated it and when. Writes compare the row they
  replace, so two officers updating at once cannot both win.
- ``federation_status_index``: each person of this node's nation attested so far,
  with their stable index in a Token Status List (unique per list), assigned the
  first time they are attested and never reused.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from datetime import UTC, datetime

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from relto.errors import StorageError
from relto.federation import NodeDescriptor, PinnedNode, read_pinned_descriptor
from relto.federation.errors import AlreadyPinned, NotPinned
from relto.store.db import Base, Database
from relto.store.facts import VETTING, read_versions

__all__ = ["PinnedNodeRow", "SqlPinRepository", "SqlStatusIndexRepository", "StatusIndexRow"]


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


@functools.lru_cache(maxsize=256)
def _descriptor(token: str) -> NodeDescriptor:
    """A stored descriptor parsed once per process: the rows are still read on every
    call (the KAS reads them through a ``PinSnapshot``, at most 1 s old, ADR 0131),
    the same token parses the same way."""
    return read_pinned_descriptor(token)


def _pin(row: PinnedNodeRow) -> PinnedNode:
    descriptor = _descriptor(row.descriptor)
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


class StatusIndexRow(Base):
    __tablename__ = "federation_status_index"
    __table_args__ = (UniqueConstraint("list_id", "idx"),)

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    list_id: Mapped[str] = mapped_column(String(16), nullable=False)
    idx: Mapped[int] = mapped_column(Integer, nullable=False)
    assigned_at: Mapped[float] = mapped_column(Float, nullable=False)


class SqlStatusIndexRepository:
    """:class:`relto.federation.publisher.StatusIndexRepository` on the node's database.

    An index is the list's largest plus one; two workers assigning at once collide
    on the unique (list, index) and the loser tries again.
    """

    _ATTEMPTS = 8

    def __init__(self, db: Database) -> None:
        self._db = db

    def index_for(self, person_id: str, list_id: str, at: datetime) -> tuple[str, int]:
        for _ in range(self._ATTEMPTS):
            try:
                with self._db.session() as s:
                    row = s.get(StatusIndexRow, person_id)
                    if row is not None:
                        return row.list_id, row.idx
                    top = s.scalar(
                        select(func.max(StatusIndexRow.idx)).where(
                            StatusIndexRow.list_id == list_id
                        )
                    )
                    idx = 0 if top is None else int(top) + 1
                    s.add(
                        StatusIndexRow(
                            person_id=person_id,
                            list_id=list_id,
                            idx=idx,
                            assigned_at=at.timestamp(),
                        )
                    )
                return list_id, idx
            except IntegrityError:
                continue  # another worker took this index (or this person) meanwhile
        raise StorageError("could not assign a status list index; try again")

    def assigned(self, list_id: str) -> list[tuple[str, int]]:
        with self._db.session() as s:
            rows = s.execute(
                select(StatusIndexRow.person_id, StatusIndexRow.idx).where(
                    StatusIndexRow.list_id == list_id
                )
            ).all()
        return [(str(p), int(i)) for p, i in rows]

    def version(self) -> Hashable | None:
        """(vetting fact counter, number of indexes), read together; ``None`` when
        the vetting counter is unknown (then nothing is cached)."""
        with self._db.session() as s:
            vetting = read_versions(s).get(VETTING)
            count = s.scalar(select(func.count()).select_from(StatusIndexRow))
        if vetting is None:
            return None
        return (vetting, int(count or 0))
