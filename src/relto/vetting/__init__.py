"""People, clearances and the vetting lifecycle.

The pure core (no database, no HTTP): :class:`Person`, :class:`Clearance` and its
lifecycle, reporting obligations and incidents, the vetting data (schemes, deadlines,
agreements) and :func:`recognises`. Changes that must be stored and audited go
through :mod:`relto.vetting.service`. See ``docs/vetting.md``.
"""

from relto.vetting._access import Action, Caller, authorise
from relto.vetting._clearance import (
    AUTOMATIC_ACTOR,
    Clearance,
    ClearanceEvent,
    Currency,
    EventKind,
    IncidentKind,
    NotCurrent,
    ObligationKind,
    business_deadline,
    expiry_after,
)
from relto.vetting._data import (
    Agreement,
    LevelInfo,
    ObligationRule,
    Scheme,
    Sourced,
    VettingPolicy,
    default_policy,
    load_policy,
)
from relto.vetting._lifecycle import ACTIVE, FINAL, TRANSITIONS, Status, is_legal
from relto.vetting._people import Person, ProjectMembership, Role
from relto.vetting._recognition import Recognition, recognises, recognition
from relto.vetting.errors import (
    IllegalTransition,
    UnknownLevel,
    VettingDataError,
    VettingInputError,
)

__all__ = [
    "ACTIVE",
    "AUTOMATIC_ACTOR",
    "FINAL",
    "TRANSITIONS",
    "Action",
    "Agreement",
    "Caller",
    "Clearance",
    "ClearanceEvent",
    "Currency",
    "EventKind",
    "IllegalTransition",
    "IncidentKind",
    "LevelInfo",
    "NotCurrent",
    "ObligationKind",
    "ObligationRule",
    "Person",
    "ProjectMembership",
    "Recognition",
    "Role",
    "Scheme",
    "Sourced",
    "Status",
    "UnknownLevel",
    "VettingDataError",
    "VettingInputError",
    "VettingPolicy",
    "authorise",
    "business_deadline",
    "default_policy",
    "expiry_after",
    "is_legal",
    "load_policy",
    "recognises",
    "recognition",
]
