"""Partner witnesses' cosignatures of this node's checkpoints, the alarms
witnessing raised, and when each partner was last heard from, on the log's
database (:mod:`relto.audit.witnessing`, :mod:`relto.federation.reachability`;
tables ``audit_cosignature``, ``audit_witness_alarm`` and
``audit_partner_contact`` in :mod:`relto.store.audit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from relto.audit.witnessing import Alarm, Cosignature
from relto.federation.reachability import HOWS, Contact
from relto.store.audit import AuditCosignature, AuditPartnerContact, AuditWitnessAlarm
from relto.store.db import Database

__all__ = ["SqlAlarmStore", "SqlContactStore", "SqlCosignatureStore"]

_cosig: Table = cast(Table, AuditCosignature.__table__)
_alarm: Table = cast(Table, AuditWitnessAlarm.__table__)
_contact: Table = cast(Table, AuditPartnerContact.__table__)


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


def _alarm_of(row: object) -> Alarm:
    r = cast(AuditWitnessAlarm, row)
    return Alarm(
        kind=str(r.kind),
        nation=str(r.nation),
        origin=str(r.origin),
        reason=str(r.reason),
        witnessed_size=int(r.witnessed_size),
        size=int(r.size),
        root=bytes(r.root),
        detail=str(r.detail),
        first_seen=_aware(r.first_seen),
        last_seen=_aware(r.last_seen),
        count=int(r.count),
    )


class SqlAlarmStore:
    """:class:`~relto.audit.witnessing.AlarmStore` on the log's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def raise_alarm(self, alarm: Alarm) -> bool:
        a = alarm
        same = (
            (_alarm.c.kind == a.kind)
            & (_alarm.c.nation == a.nation)
            & (_alarm.c.size == a.size)
            & (_alarm.c.root == a.root)
        )
        with self._db.engine.begin() as conn:
            seen = conn.execute(
                update(_alarm).where(same).values(last_seen=a.last_seen, count=_alarm.c.count + 1)
            ).rowcount
        if seen:
            return False
        try:
            with self._db.engine.begin() as conn:
                conn.execute(
                    insert(_alarm).values(
                        kind=a.kind, nation=a.nation, origin=a.origin[:256], reason=a.reason,
                        witnessed_size=a.witnessed_size, size=a.size, root=a.root,
                        detail=a.detail[:1000], first_seen=a.first_seen, last_seen=a.last_seen,
                        count=1,
                    )
                )  # fmt: skip
        except IntegrityError:
            return False  # another worker raised it first
        return True

    def alarms(self) -> list[Alarm]:
        with self._db.engine.connect() as conn:
            rows = conn.execute(select(_alarm).order_by(_alarm.c.id).limit(1000)).all()
        return [_alarm_of(r) for r in rows]


def _maybe(at: datetime | None) -> datetime | None:
    return None if at is None else _aware(at)


def _contact_of(row: object) -> Contact:
    r = cast(AuditPartnerContact, row)
    heard = {how: _maybe(getattr(r, f"heard_{how}")) for how in HOWS}
    return Contact(
        nation=str(r.nation),
        first_seen=_aware(r.first_seen),
        last_heard=_maybe(r.last_heard),
        how=str(r.how),
        heard={k: v for k, v in heard.items() if v is not None},
        misses=int(r.misses),
        last_miss=str(r.last_miss),
        silent_since=_maybe(r.silent_since),
    )


class SqlContactStore:
    """:class:`~relto.federation.reachability.ContactStore` on the log's database.

    Each transition is a conditional update, so of several workers only the one
    whose update matched a row makes it (and records it)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, nation: str) -> Contact | None:
        with self._db.engine.connect() as conn:
            row = conn.execute(select(_contact).where(_contact.c.nation == nation)).first()
        return None if row is None else _contact_of(row)

    def _ensure(self, nation: str, at: datetime) -> None:
        with self._db.engine.connect() as conn:
            found = conn.execute(
                select(_contact.c.nation).where(_contact.c.nation == nation)
            ).first()
        if found is not None:
            return
        try:
            with self._db.engine.begin() as conn:
                conn.execute(
                    insert(_contact).values(nation=nation, first_seen=at, how="", misses=0,
                                            last_miss="")
                )  # fmt: skip
        except IntegrityError:
            pass  # another worker made it first

    def heard(self, nation: str, at: datetime, how: str) -> datetime | None:
        if how not in HOWS:
            raise ValueError(f"not a way of being heard from: {how!r}")
        self._ensure(nation, at)
        this = _contact.c.nation == nation
        with self._db.engine.begin() as conn:
            silent = conn.execute(select(_contact.c.silent_since).where(this)).scalar()
            cleared = None
            if silent is not None:
                done = conn.execute(
                    update(_contact)
                    .where(this, _contact.c.silent_since == silent)
                    .values(silent_since=None)
                ).rowcount
                cleared = _aware(silent) if done else None
            conn.execute(
                update(_contact)
                .where(this)
                .values({"last_heard": at, "how": how, f"heard_{how}": at, "misses": 0})
            )
        return cleared

    def missed(self, nation: str, at: datetime, reason: str) -> Contact:
        self._ensure(nation, at)
        with self._db.engine.begin() as conn:
            conn.execute(
                update(_contact)
                .where(_contact.c.nation == nation)
                .values(misses=_contact.c.misses + 1, last_miss=reason[:300])
            )
        found = self.get(nation)
        assert found is not None
        return found

    def silence(self, nation: str, at: datetime, misses: int) -> bool:
        with self._db.engine.begin() as conn:
            done = conn.execute(
                update(_contact)
                .where(
                    _contact.c.nation == nation,
                    _contact.c.silent_since.is_(None),
                    _contact.c.misses >= misses,
                )
                .values(silent_since=at)
            ).rowcount
        return bool(done)
