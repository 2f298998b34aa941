"""Tables and the SQL repository of :mod:`relto.documents`.

A protected document is a row (its label copies and the blob key of its ZTDF
container) and one row per nation of its Releasable To, so a person's document
list is filtered in the database: an object releasable to none of their
nationalities is never read, counted or shown (metadata confidentiality).
The repository never commits: the caller's ``Database.session()`` does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    ForeignKey,
    String,
    Text,
    delete,
    exists,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from relto.store.db import Base
from relto.store.facts import DOCUMENTS, bump

__all__ = ["DocumentReleaseRow", "DocumentRow", "SqlDocumentRepository"]


class DocumentRow(Base):
    """A protected document: its label and where its ZTDF container is kept.

    The payload never touches the database: only the container's blob key. The
    banner and label are copies of what the container's label assertion says,
    kept so lists can be filtered and shown without opening containers.
    """

    __tablename__ = "partnership_document"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    project_id: Mapped[str] = mapped_column(
        String(63), ForeignKey("partnership_project.id"), nullable=False, index=True
    )
    originator: Mapped[str] = mapped_column(String(3), nullable=False)
    banner: Mapped[str] = mapped_column(String(500), nullable=False)
    label_xml: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(200), nullable=False)
    media_type: Mapped[str] = mapped_column(String(100), nullable=False)
    blob_key: Mapped[str] = mapped_column(String(200), nullable=False)
    policy_uuid: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    plaintext_size: Mapped[int] = mapped_column(nullable=False)
    version: Mapped[int] = mapped_column(nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: Nations whose key access services each hold a share of the key, the
    #: originator's included: "GBR,USA" ("": the originator's KAS alone).
    custody: Mapped[str] = mapped_column(String(100), nullable=False, default="", server_default="")


class DocumentReleaseRow(Base):
    """One nation of a document's Releasable To (the originator included)."""

    __tablename__ = "partnership_document_rel_to"

    document_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("partnership_document.id"), primary_key=True
    )
    nation: Mapped[str] = mapped_column(String(3), primary_key=True, index=True)


class SqlDocumentRepository:
    """Documents on a SQLAlchemy session. Every write counts one change of the
    document facts (:func:`relto.store.facts.bump`) in the same transaction."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, document_id: str) -> DocumentRow | None:
        return self.s.get(DocumentRow, document_id[:64])

    def by_policy(self, policy_uuid: str) -> DocumentRow | None:
        return self.s.scalars(
            select(DocumentRow).where(DocumentRow.policy_uuid == policy_uuid[:64])
        ).first()

    def originators(
        self, document_ids: Iterable[str], policy_uuids: Iterable[str]
    ) -> list[tuple[str, str]]:
        """(document id or policy UUID, originator) for the documents that exist."""
        ids = sorted({d[:64] for d in document_ids})
        policies = sorted({p[:64] for p in policy_uuids})
        out: list[tuple[str, str]] = []
        if ids:
            q = select(DocumentRow.id, DocumentRow.originator).where(DocumentRow.id.in_(ids))
            out.extend((r[0], r[1]) for r in self.s.execute(q))
        if policies:
            q = select(DocumentRow.policy_uuid, DocumentRow.originator).where(
                DocumentRow.policy_uuid.in_(policies)
            )
            out.extend((r[0], r[1]) for r in self.s.execute(q))
        return out

    def add(self, row: DocumentRow, rel_to: Iterable[str]) -> None:
        self.s.add(row)
        self.s.flush()
        self._put_rel_to(row.id, rel_to)
        bump(self.s, DOCUMENTS)
        self.s.flush()

    def remove(self, document_id: str) -> None:
        """Undo an :meth:`add` whose audit entry could not be recorded."""
        self.s.execute(
            delete(DocumentReleaseRow).where(DocumentReleaseRow.document_id == document_id)
        )
        self.s.execute(delete(DocumentRow).where(DocumentRow.id == document_id))
        bump(self.s, DOCUMENTS)
        self.s.flush()

    def versions(self, document_ids: Iterable[str]) -> dict[str, int]:
        """Document id -> current version, for the ids that exist."""
        ids = sorted({d[:64] for d in document_ids})
        out: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            q = select(DocumentRow.id, DocumentRow.version).where(
                DocumentRow.id.in_(ids[start : start + 500])
            )
            out.update({r[0]: int(r[1]) for r in self.s.execute(q)})
        return out

    def changed(self, row: DocumentRow, rel_to: Iterable[str]) -> None:
        """``row`` was changed in place (a relabel): store its new Releasable To."""
        self.s.execute(delete(DocumentReleaseRow).where(DocumentReleaseRow.document_id == row.id))
        self._put_rel_to(row.id, rel_to)
        bump(self.s, DOCUMENTS)
        self.s.flush()

    def _put_rel_to(self, document_id: str, rel_to: Iterable[str]) -> None:
        for nation in sorted(set(rel_to)):
            self.s.add(DocumentReleaseRow(document_id=document_id, nation=nation))

    @staticmethod
    def _releasable(nations: Collection[str]) -> ColumnElement[bool]:
        return exists().where(
            DocumentReleaseRow.document_id == DocumentRow.id,
            DocumentReleaseRow.nation.in_(sorted(nations)),
        )

    def list_visible(
        self, projects: Collection[str], nations: Collection[str], *, offset: int, limit: int
    ) -> Sequence[DocumentRow]:
        """Documents of ``projects`` releasable to any of ``nations``, newest first."""
        if not projects or not nations:
            return []
        query = select(DocumentRow).where(
            DocumentRow.project_id.in_(sorted(projects)), self._releasable(nations)
        )
        return self.s.scalars(
            query.order_by(DocumentRow.created_at.desc(), DocumentRow.id)
            .offset(max(0, offset))
            .limit(max(1, limit))
        ).all()

    def count_visible(self, projects: Collection[str], nations: Collection[str]) -> int:
        if not projects or not nations:
            return 0
        query = (
            select(func.count())
            .select_from(DocumentRow)
            .where(DocumentRow.project_id.in_(sorted(projects)), self._releasable(nations))
        )
        return int(self.s.scalar(query) or 0)
