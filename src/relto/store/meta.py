"""The node's own tables: key/value metadata about this installation."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relto.store.db import Base

__all__ = ["NodeMeta"]


class NodeMeta(Base):
    """Facts about this node (its nation, when it was set up, the demo marker)."""

    __tablename__ = "node_meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
