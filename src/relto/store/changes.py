"""Tables of partnership changes (relto.federation.changes, relto.federation.ledger).

- ``federation_change``: every change this node has seen, by id (the SHA-256 of its
  canonical bytes, which are stored as they are), with its place (partnership,
  seq) and status: ``pending`` until its quorum is reached, then ``applied``; or
  ``rejected`` (its quorum can no longer be reached) or ``superseded`` (another
  change took its place). At most one ``applied`` change per place (a unique
  index over the applied rows' places in ``federation_change_place``).
- ``federation_change_approval``: the verified approvals and rejections, one per
  change and nation, each the compact JWS as the approving node signed it.
- ``federation_change_genesis``: the members the chain starts from, kept the first
  time the node's ledger runs, so that membership changes applied since (which
  change the partnership's members) do not move where the chain began.
"""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.errors import StorageError
from relto.store.db import Base

__all__ = [
    "ChangeApprovalRow",
    "ChangeGenesisRow",
    "ChangePlaceRow",
    "ChangeRow",
    "SqlChangeRepository",
]


class ChangeRow(Base):
    __tablename__ = "federation_change"

    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partnership: Mapped[str] = mapped_column(String(63), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    seen_at: Mapped[float] = mapped_column(Float, nullable=False)
    decided_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ChangePlaceRow(Base):
    """The applied change at each place of a partnership's chain (one at most)."""

    __tablename__ = "federation_change_place"

    partnership: Mapped[str] = mapped_column(String(63), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_id: Mapped[str] = mapped_column(String(64), nullable=False)


class ChangeApprovalRow(Base):
    __tablename__ = "federation_change_approval"

    change_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nation: Mapped[str] = mapped_column(String(3), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8), nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False)


class ChangeGenesisRow(Base):
    """The members a partnership's chain starts from, kept the first time."""

    __tablename__ = "federation_change_genesis"

    partnership: Mapped[str] = mapped_column(String(63), primary_key=True)
    founders: Mapped[str] = mapped_column(String(200), nullable=False)  # "AUS,GBR,USA"


class SqlChangeRepository:
    """Changes and approvals in one session (the caller commits)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, change_id: str) -> ChangeRow | None:
        return self._s.get(ChangeRow, change_id)

    def add(self, change_id: str, partnership: str, seq: int, body: str, at: float) -> None:
        if self._s.get(ChangeRow, change_id) is None:
            self._s.add(
                ChangeRow(
                    change_id=change_id, partnership=partnership, seq=seq, body=body,
                    status="pending", seen_at=at, decided_at=None,
                )
            )  # fmt: skip

    def approvals(self, change_id: str) -> list[ChangeApprovalRow]:
        stmt = select(ChangeApprovalRow).where(ChangeApprovalRow.change_id == change_id)
        return list(self._s.scalars(stmt.order_by(ChangeApprovalRow.nation)))

    def add_approval(self, change_id: str, nation: str, decision: str, token: str) -> bool:
        """Store a nation's word on a change; ``False`` when it has one already (the
        first word stands)."""
        if self._s.get(ChangeApprovalRow, (change_id, nation)) is not None:
            return False
        self._s.add(
            ChangeApprovalRow(change_id=change_id, nation=nation, decision=decision, token=token)
        )
        return True

    def applied(self, partnership: str) -> list[ChangeRow]:
        stmt = (
            select(ChangeRow)
            .join(ChangePlaceRow, ChangePlaceRow.change_id == ChangeRow.change_id)
            .where(ChangePlaceRow.partnership == partnership)
            .order_by(ChangePlaceRow.seq)
        )
        return list(self._s.scalars(stmt))

    def with_status(self, partnership: str, status: str) -> list[ChangeRow]:
        stmt = select(ChangeRow).where(
            ChangeRow.partnership == partnership, ChangeRow.status == status
        )
        return list(self._s.scalars(stmt.order_by(ChangeRow.seq, ChangeRow.seen_at)))

    def mark(self, change_id: str, status: str, at: float) -> None:
        self._s.execute(
            update(ChangeRow)
            .where(ChangeRow.change_id == change_id)
            .values(status=status, decided_at=at)
        )

    def place(self, partnership: str, seq: int, change_id: str) -> None:
        """Take a place of the chain for an applied change; :class:`StorageError` when
        it is taken (a concurrent apply: the transaction must not commit)."""
        self._s.add(ChangePlaceRow(partnership=partnership, seq=seq, change_id=change_id))
        try:
            self._s.flush()
        except IntegrityError:
            raise StorageError(f"place {seq} of {partnership} is taken already") from None

    def founders(self, partnership: str, offered: tuple[str, ...]) -> tuple[str, ...]:
        """The members the chain of ``partnership`` starts from: those kept the first
        time (``offered`` then, sorted), whatever the partnership's members are now."""
        row = self._s.get(ChangeGenesisRow, partnership)
        if row is None:
            row = ChangeGenesisRow(partnership=partnership, founders=",".join(sorted(offered)))
            self._s.add(row)
            self._s.flush()
        return tuple(n for n in row.founders.split(",") if n)
