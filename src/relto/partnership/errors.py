"""Errors of the partnership model.

The tree::

    ReltoError
    ├── InvalidInput
    │   └── InvalidPartnership      a nation, ceiling, interval or name that is not valid
    ├── NotFound
    │   └── UnknownRecord           no such partnership, project or admission
    └── PartnershipError
        ├── AdmissionConflict       an admission for that nation and project already covers the time
        └── NotPermitted            the actor may not make this change (outward: not found)

Messages name the field and the rule, never a secret.
"""

from __future__ import annotations

from relto.errors import AccessDenied, InvalidInput, NotFound, ReltoError

__all__ = [
    "AdmissionConflict",
    "InvalidPartnership",
    "NotPermitted",
    "PartnershipError",
    "UnknownRecord",
]


class PartnershipError(ReltoError):
    """Base of the partnership model's own failures."""

    code = "partnership_error"


class InvalidPartnership(InvalidInput):
    """A value given for a partnership, project or admission is not valid."""

    code = "invalid_input"


class UnknownRecord(NotFound):
    """No such partnership, project or admission."""

    code = "not_found"


class AdmissionConflict(PartnershipError):
    """An admission for that nation and project already covers part of the interval."""

    code = "admission_conflict"


class NotPermitted(AccessDenied):
    """The actor may not make this change; outward it looks like "not found"."""

    code = "access_denied"
