"""The clearance lifecycle: statuses and the table of legal transitions.

::

    sponsored ─► investigating ─► adjudicating ─► granted ◄──► suspended
        │             │  ▲            │   │         │  ▲  ╲        │
        │             │  └────────────┘   ▼         │  │   ╲       │
        │             └──────────────► interim ─────┘  │   under review
        │                                 │            │
        └─────────── any non-final ───────┴──► revoked / denied / lapsed

``expired`` is never recorded: it is computed at decision time from the validity date
(no job has to run). ``revoked``, ``denied``, ``expired`` and ``lapsed`` are final: a
person who needs a clearance again is sponsored for a new one. ``granted → granted``
is a revalidation (a new validity date).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["ACTIVE", "FINAL", "TRANSITIONS", "Status", "is_legal"]


class Status(StrEnum):
    SPONSORED = "sponsored"
    INVESTIGATING = "investigating"
    ADJUDICATING = "adjudicating"
    INTERIM = "interim"
    GRANTED = "granted"
    SUSPENDED = "suspended"
    UNDER_REVIEW = "under_review"
    REVOKED = "revoked"
    DENIED = "denied"
    EXPIRED = "expired"
    LAPSED = "lapsed"


S = Status

#: Statuses in which a clearance may count for access.
ACTIVE = frozenset({S.INTERIM, S.GRANTED})
#: Statuses from which nothing moves.
FINAL = frozenset({S.REVOKED, S.DENIED, S.EXPIRED, S.LAPSED})

#: from-status -> the statuses it may move to. Anything not listed is illegal.
TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        S.SPONSORED: frozenset({S.INVESTIGATING, S.LAPSED}),
        S.INVESTIGATING: frozenset({S.ADJUDICATING, S.INTERIM, S.LAPSED}),
        S.ADJUDICATING: frozenset({S.INVESTIGATING, S.INTERIM, S.GRANTED, S.DENIED, S.LAPSED}),
        S.INTERIM: frozenset(
            {S.GRANTED, S.DENIED, S.SUSPENDED, S.UNDER_REVIEW, S.REVOKED, S.LAPSED}
        ),
        S.GRANTED: frozenset({S.GRANTED, S.SUSPENDED, S.UNDER_REVIEW, S.REVOKED, S.LAPSED}),
        S.SUSPENDED: frozenset({S.GRANTED, S.INTERIM, S.UNDER_REVIEW, S.REVOKED, S.LAPSED}),
        S.UNDER_REVIEW: frozenset({S.GRANTED, S.INTERIM, S.SUSPENDED, S.REVOKED, S.LAPSED}),
        S.REVOKED: frozenset(),
        S.DENIED: frozenset(),
        S.EXPIRED: frozenset(),
        S.LAPSED: frozenset(),
    }
)


def is_legal(frm: Status, to: Status) -> bool:
    """Whether the table allows ``frm → to`` (further rules apply, see Clearance)."""
    return to in TRANSITIONS[frm]
