"""Tables and the SQL repository of the export-control office
(:mod:`relto.export_office`).

What an export-control officer records is kept as the JSON mapping the strict
loaders of :mod:`relto.export_control` read (validated before it is written, read
back through the same loaders), so the product and ``relto decide --scenario``
judge the same facts the same way. Licence consumption and transfer records are
columns of their own: consumption is updated in SQL, under a condition, in the
transaction that records the transfer.

The repository never commits (the caller's ``Database.session()`` does, after the
audit sink accepted the change). Every write of a fact decisions read counts one
change of the export facts (:func:`relto.store.facts.bump`) in the same
transaction, so decision caches in every process see it on their next decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.store.db import Base
from relto.store.facts import EXPORT, bump

__all__ = [
    "ExportItemRow",
    "ExportLicenceRow",
    "ExportListRow",
    "ExportPartyRow",
    "ExportProposalRow",
    "ExportRulesRow",
    "ExportTransferRow",
    "SqlExportRepository",
    "StoredFacts",
]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class ExportItemRow(Base):
    """One object's export classification (the scenario ``export`` block)."""

    __tablename__ = "export_item"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The nation whose officer classified it (the object's originator).
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    classified_by: Mapped[str] = mapped_column(String(200), nullable=False)
    classified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportProposalRow(Base):
    """The classification an uploader proposed for an object of an export-relevant
    project, for an officer to confirm. While the object's classification is
    still the one written with it (``item_version``), the object is withheld."""

    __tablename__ = "export_proposal"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    item_version: Mapped[int] = mapped_column(Integer, nullable=False)
    proposed_by: Mapped[str] = mapped_column(String(200), nullable=False)
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportPartyRow(Base):
    """A person or organisation as an export party (the scenario party mapping)."""

    __tablename__ = "export_party"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: The nation whose officer recorded it; only that nation's officers change it.
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(200), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportLicenceRow(Base):
    """A licence or agreement; consumption is kept beside its terms."""

    __tablename__ = "export_licence"

    number: Mapped[str] = mapped_column(String(200), primary_key=True)
    regime: Mapped[str] = mapped_column(String(20), nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    #: A decimal string (exact money), updated only by :meth:`SqlExportRepository.consume`.
    value_consumed: Mapped[str] = mapped_column(String(40), nullable=False, default="0")
    quantity_consumed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    recorded_by: Mapped[str] = mapped_column(String(200), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportListRow(Base):
    """One loaded version of an excluded technology list; the newest is active."""

    __tablename__ = "export_list"

    regime: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    loaded_by: Mapped[str] = mapped_column(String(200), nullable=False)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportRulesRow(Base):
    """A regime's rules as data: §126.18 rules and the §123.15 amount."""

    __tablename__ = "export_rules"

    regime: Mapped[str] = mapped_column(String(20), primary_key=True)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(200), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ExportTransferRow(Base):
    """One allowed transfer of a controlled item, as a regulator asks for it."""

    __tablename__ = "export_transfer"
    __table_args__ = (Index("ix_export_transfer_at", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    document_id: Mapped[str] = mapped_column(String(64), nullable=False)
    regime: Mapped[str] = mapped_column(String(20), nullable=False)
    licence_number: Mapped[str | None] = mapped_column(String(200))
    #: Every field of the record (relto.export_office.TransferRecord) as JSON.
    record: Mapped[str] = mapped_column(Text, nullable=False)


@dataclass(frozen=True)
class StoredFacts:
    """Everything stored, as the mappings the loaders read."""

    facts: Mapping[str, Any]
    parties: Sequence[Mapping[str, Any]]
    items: Mapping[str, Mapping[str, Any]]


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


class SqlExportRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- items ----------------------------------------------------------------------

    def get_item(self, document_id: str) -> tuple[ExportItemRow, dict[str, Any]] | None:
        row = self.s.get(ExportItemRow, document_id)
        return None if row is None else (row, json.loads(row.data))

    def _put(self, model: type[Any], key: Any, changed: Mapping[str, Any], **first: Any) -> Any:
        """Insert ``model`` at ``key`` with ``changed`` and ``first``, or set
        ``changed`` on the row there; one change of the export facts, flushed."""
        row = self.s.get(model, key)
        if row is None:
            row = model(**first, **changed)
            self.s.add(row)
        else:
            for name, value in changed.items():
                setattr(row, name, value)
        bump(self.s, EXPORT)
        self.s.flush()
        return row

    def put_item(
        self, document_id: str, nation: str, data: Mapping[str, Any], by: str, at: datetime
    ) -> int:
        """Store (or replace) the classification; returns its version."""
        old = self.s.get(ExportItemRow, document_id)
        version = 1 if old is None else old.version + 1
        changed = {"nation": nation, "data": _dumps(data), "version": version}
        changed |= {"classified_by": by, "classified_at": at}
        self._put(ExportItemRow, document_id, changed, document_id=document_id)
        return version

    def items(self) -> dict[str, dict[str, Any]]:
        return {r.document_id: json.loads(r.data) for r in self.s.scalars(select(ExportItemRow))}

    # -- classifications proposed at upload -------------------------------------------

    def get_proposal(self, document_id: str) -> ExportProposalRow | None:
        return self.s.get(ExportProposalRow, document_id)

    def add_proposal(
        self,
        document_id: str,
        data: Mapping[str, Any],
        item_version: int,
        by: str,
        at: datetime,
    ) -> None:
        self.s.add(
            ExportProposalRow(
                document_id=document_id,
                data=_dumps(data),
                item_version=item_version,
                proposed_by=by,
                proposed_at=at,
            )
        )
        self.s.flush()

    def pending(self) -> dict[str, dict[str, Any]]:
        """Proposals whose object still carries the classification written with
        them (no officer has classified it since), by document id."""
        rows = self.s.execute(
            select(ExportProposalRow, ExportItemRow.version).join(
                ExportItemRow, ExportItemRow.document_id == ExportProposalRow.document_id
            )
        ).all()
        return {
            p.document_id: {
                "proposed": json.loads(p.data),
                "proposed_by": p.proposed_by,
                "proposed_at": _utc(p.proposed_at).isoformat(),
            }
            for p, version in rows
            if version == p.item_version
        }

    # -- parties --------------------------------------------------------------------

    def get_party(self, party_id: str) -> tuple[ExportPartyRow, dict[str, Any]] | None:
        row = self.s.get(ExportPartyRow, party_id)
        return None if row is None else (row, json.loads(row.data))

    def put_party(
        self, party_id: str, nation: str, data: Mapping[str, Any], by: str, at: datetime
    ) -> None:
        """Store (or replace) a party; it stays with the nation that first recorded it."""
        changed = {"data": _dumps(data), "recorded_by": by, "updated_at": at}
        self._put(ExportPartyRow, party_id, changed, id=party_id, nation=nation)

    def parties(self) -> list[dict[str, Any]]:
        rows = self.s.scalars(select(ExportPartyRow).order_by(ExportPartyRow.id))
        return [json.loads(r.data) for r in rows]

    def party_rows(self) -> list[ExportPartyRow]:
        return list(self.s.scalars(select(ExportPartyRow).order_by(ExportPartyRow.id)))

    # -- licences -------------------------------------------------------------------

    def get_licence(self, number: str) -> ExportLicenceRow | None:
        return self.s.get(ExportLicenceRow, number)

    def put_licence(
        self, number: str, regime: str, data: Mapping[str, Any], by: str, at: datetime
    ) -> None:
        """Store (or amend) a licence's terms; its consumption is kept."""
        changed = {"regime": regime, "data": _dumps(data), "recorded_by": by, "updated_at": at}
        self._put(
            ExportLicenceRow, number, changed, number=number, value_consumed="0",
            quantity_consumed=0,
        )  # fmt: skip

    def licence_rows(self) -> list[ExportLicenceRow]:
        return list(self.s.scalars(select(ExportLicenceRow).order_by(ExportLicenceRow.number)))

    def consume(self, number: str, value: Decimal | None, ceiling: Decimal | None) -> bool:
        """Add one use (and ``value``) to the licence, only while ``value`` still fits
        under ``ceiling`` as stored now: the row's write lock makes concurrent
        transfers queue, so two can never both take the last of the ceiling."""
        row = self.s.execute(
            select(ExportLicenceRow.value_consumed)
            .where(ExportLicenceRow.number == number)
            .with_for_update()
        ).first()
        if row is None:
            return False
        consumed = Decimal(row[0])
        new = consumed + (value or Decimal(0))
        if ceiling is not None and (consumed >= ceiling or new > ceiling):
            return False
        done = self.s.execute(
            update(ExportLicenceRow)
            .where(ExportLicenceRow.number == number, ExportLicenceRow.value_consumed == row[0])
            .values(
                value_consumed=str(new),
                quantity_consumed=ExportLicenceRow.quantity_consumed + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(done, "rowcount", 0) != 1:
            return False
        bump(self.s, EXPORT)
        return True

    # -- excluded lists -------------------------------------------------------------

    def list_row(self, regime: str, name: str, version: str) -> ExportListRow | None:
        return self.s.get(ExportListRow, (regime, name, version))

    def load_list(
        self, regime: str, name: str, version: str, data: Mapping[str, Any], by: str, at: datetime
    ) -> None:
        """Add a new version and make it the active one of its (regime, name)."""
        self.s.execute(
            update(ExportListRow)
            .where(ExportListRow.regime == regime, ExportListRow.name == name)
            .values(active=False)
            .execution_options(synchronize_session=False)
        )
        self.s.add(
            ExportListRow(
                regime=regime,
                name=name,
                version=version,
                active=True,
                data=_dumps(data),
                loaded_by=by,
                loaded_at=at,
            )
        )
        bump(self.s, EXPORT)
        self.s.flush()

    def list_rows(self) -> list[ExportListRow]:
        return list(
            self.s.scalars(
                select(ExportListRow).order_by(
                    ExportListRow.regime, ExportListRow.name, ExportListRow.loaded_at
                )
            )
        )

    # -- rules ----------------------------------------------------------------------

    def put_rules(self, regime: str, data: Mapping[str, Any], by: str, at: datetime) -> None:
        changed = {"data": _dumps(data), "recorded_by": by, "updated_at": at}
        self._put(ExportRulesRow, regime, changed, regime=regime)

    def rules(self) -> dict[str, dict[str, Any]]:
        return {r.regime: json.loads(r.data) for r in self.s.scalars(select(ExportRulesRow))}

    # -- everything, as the loaders read it --------------------------------------------

    def stored(self) -> StoredFacts:
        licences = []
        for row in self.licence_rows():
            data = json.loads(row.data)
            data["value_consumed"] = row.value_consumed
            licences.append(data)
        lists = [json.loads(r.data) for r in self.list_rows() if r.active]
        dual: list[Any] = []
        thresholds: dict[str, Any] = {}
        for regime, data in sorted(self.rules().items()):
            dual.extend(data.get("dual_national_rules", []))
            if data.get("value_threshold") is not None:
                thresholds[regime] = data["value_threshold"]
        facts = {
            "licences": licences,
            "excluded_lists": lists,
            "dual_national_rules": dual,
            "value_thresholds": thresholds,
        }
        return StoredFacts(facts=facts, parties=self.parties(), items=self.items())

    # -- transfer records -----------------------------------------------------------

    def add_transfer(
        self,
        *,
        at: datetime,
        document_id: str,
        regime: str,
        licence_number: str | None,
        record: Mapping[str, Any],
    ) -> int:
        row = ExportTransferRow(
            at=at,
            document_id=document_id,
            regime=regime,
            licence_number=licence_number,
            record=_dumps(record),
        )
        self.s.add(row)
        self.s.flush()
        return int(row.id)

    def transfers(
        self,
        since: datetime | None,
        until: datetime | None,
        *,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[tuple[int, datetime, dict[str, Any]]]:
        """Records with ``since <= at < until`` in id order, ``limit`` at most."""
        q = select(ExportTransferRow).where(ExportTransferRow.id > after_id)
        if since is not None:
            q = q.where(ExportTransferRow.at >= since)
        if until is not None:
            q = q.where(ExportTransferRow.at < until)
        rows = self.s.scalars(q.order_by(ExportTransferRow.id).limit(limit))
        return [(int(r.id), _utc(r.at), json.loads(r.record)) for r in rows]
