"""Tables of the key access service (relto.kas).

- ``kas_dpop_jti``: DPoP proofs already accepted (``<key thumbprint>:<jti>``) with
  the time after which the proof could not be accepted anyway. On PostgreSQL this is
  the replay cache every host of a node shares; a single-host node on SQLite keeps
  its cache in a file of its own instead (relto.kas.replay).
"""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from relto.store.db import Base

__all__ = ["DpopJti"]


class DpopJti(Base):
    __tablename__ = "kas_dpop_jti"

    k: Mapped[str] = mapped_column(String(320), primary_key=True)
    exp: Mapped[float] = mapped_column(Float, nullable=False, index=True)
