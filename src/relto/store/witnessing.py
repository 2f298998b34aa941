"""Partner witnesses' cosignatures of this node's checkpoints, on the log's database
(:mod:`relto.audit.witnessing`; table ``audit_cosignature`` in
:mod:`relto.store.audit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from relto.audit.witnessing import Cosignature
from relto.store.audit import AuditCosignature
from relto.store.db import Database

__all__ = ["SqlCosignatureStore"]

_cosig: Table = cast(Table, AuditCosignature.__table__)


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _cosignature(row: object) -> Cosignature:
    r = cast(AuditCosignature, row)
    return Cosignature(
        size=int(r.size),
        nation=str(r.nation),
        witness_key=str(r.witness_key),
        line=str(r.signature),
        cosigned_at=int(r.cosigned_at),
        received_at=_aware(r.received_at),
    )


class SqlCosignatureStore:
    """:class:`~relto.audit.witnessing.CosignatureStore` on the log's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, cosignature: Cosignature) -> None:
        c = cosignature
        try:
            with self._db.engine.begin() as conn:
                conn.execute(
                    insert(_cosig).values(
                        size=c.size, nation=c.nation, witness_key=c.witness_key,
                        signature=c.line, cosigned_at=c.cosigned_at, received_at=c.received_at,
                    )
                )  # fmt: skip
        except IntegrityError:
            pass  # another worker kept one for this (size, nation) first: both are valid

    def get(self, size: int, nation: str) -> Cosignature | None:
        with self._db.engine.connect() as conn:
            row = conn.execute(
                select(_cosig).where(_cosig.c.size == size, _cosig.c.nation == nation)
            ).first()
        return None if row is None else _cosignature(row)

    def last_size(self, nation: str) -> int:
        with self._db.engine.connect() as conn:
            size = conn.execute(
                select(func.max(_cosig.c.size)).where(_cosig.c.nation == nation)
            ).scalar()
        return 0 if size is None else int(size)

    def at(self, size: int) -> list[Cosignature]:
        with self._db.engine.connect() as conn:
            rows = conn.execute(
                select(_cosig).where(_cosig.c.size == size).order_by(_cosig.c.nation)
            ).all()
        return [_cosignature(r) for r in rows]

    def latest_size(self) -> int | None:
        with self._db.engine.connect() as conn:
            size = conn.execute(select(func.max(_cosig.c.size))).scalar()
        return None if size is None else int(size)
