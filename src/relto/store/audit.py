"""Tables of the transparency log (relto.audit).

- ``audit_entry``: one row per log entry: its index, the RFC 9162 leaf hash and the
  canonical JSON (RFC 8785) body the hash commits to. The body itself carries the
  index too, so a row moved, dropped or inserted shows up when it is re-verified.
- ``audit_node``: the hash of every perfect subtree, keyed by
  ``node_id = level * 2**56 + index`` (level 0 holds the leaf hashes). Appends and
  proofs read O(log n) of these; tlog-tiles are ranges of them.
- ``audit_head``: one row, the current tree size and root; updating it first in a
  transaction serialises writers on SQLite and PostgreSQL alike.
- ``audit_checkpoint``: every checkpoint the node signed, with any cosignatures.
- ``audit_cosignature``: partner witnesses' cosignatures of those checkpoints, one
  per (checkpoint size, witness nation) (:mod:`relto.audit.witnessing`).
- ``audit_witness_alarm``: forks and rollbacks witnessing saw, either way.
- ``audit_partner_contact``: when each pinned partner was last heard from, and
  whether it is silent (:mod:`relto.federation.reachability`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from relto.store.db import Base

__all__ = [
    "NODE_LEVEL_SHIFT",
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditEntry",
    "AuditHead",
    "AuditNode",
    "AuditPartnerContact",
    "AuditWitnessAlarm",
]

#: ``node_id = (level << NODE_LEVEL_SHIFT) | index``.
NODE_LEVEL_SHIFT = 56

# INTEGER PRIMARY KEY is SQLite's rowid: no second index, fastest appends.
_Key = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    idx: Mapped[int] = mapped_column(_Key, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditNode(Base):
    __tablename__ = "audit_node"

    node_id: Mapped[int] = mapped_column(_Key, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoint"

    size: Mapped[int] = mapped_column(_Key, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AuditCosignature(Base):
    """A partner witness's cosignature of one of this node's checkpoints, verified
    against the witness key pinned for that partner when it was received."""

    __tablename__ = "audit_cosignature"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nation: Mapped[str] = mapped_column(String(3), primary_key=True)
    witness_key: Mapped[str] = mapped_column(String(512), nullable=False)
    signature: Mapped[str] = mapped_column(Text, nullable=False)
    cosigned_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_audit_cosignature_nation_size", "nation", "size"),)


class AuditWitnessAlarm(Base):
    """A fork or rollback seen by witnessing: ``kind`` ``alarm`` when this node's
    witness refused a partner's checkpoint, ``refused`` when a partner's witness
    refused this node's. One row per (kind, nation, refused size and root); seen
    again, its ``last_seen`` and ``count`` move."""

    __tablename__ = "audit_witness_alarm"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    nation: Mapped[str] = mapped_column(String(3), nullable=False)
    origin: Mapped[str] = mapped_column(String(256), nullable=False)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    witnessed_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)

    __table_args__ = (UniqueConstraint("kind", "nation", "size", "root"),)


class AuditPartnerContact(Base):
    """When one pinned partner was last heard from, each way, the push rounds that
    missed it since, and since when it is silent (``NULL``: it is not)."""

    __tablename__ = "audit_partner_contact"

    nation: Mapped[str] = mapped_column(String(3), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_heard: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    how: Mapped[str] = mapped_column(String(16), nullable=False)
    heard_cosigned: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heard_checkpoint: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heard_changes: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    misses: Mapped[int] = mapped_column(Integer, nullable=False)
    last_miss: Mapped[str] = mapped_column(String(300), nullable=False)
    silent_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
