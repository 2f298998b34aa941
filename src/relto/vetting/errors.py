"""Errors of :mod:`relto.vetting`.

::

    ReltoError
    ├── InvalidInput
    │   └── VettingInputError         a person, clearance or report is malformed
    │       ├── UnknownLevel          no such level in that nation's vetting scheme
    │       └── IllegalTransition     the lifecycle does not allow this change now
    ├── NotFound                      (relto.errors) no such person or clearance
    └── ConfigError
        └── VettingDataError          a shipped or deployment data file is malformed

Every error leaves the store unchanged. Messages name the offending field or state,
never personal details beyond identifiers the caller already gave.
"""

from __future__ import annotations

from relto.errors import ConfigError, InvalidInput

__all__ = ["IllegalTransition", "UnknownLevel", "VettingDataError", "VettingInputError"]


class VettingInputError(InvalidInput):
    """A person, clearance, report or incident given to relto is malformed."""

    code = "invalid_vetting_input"


class UnknownLevel(VettingInputError):
    """The level is not part of the issuing nation's vetting scheme."""

    code = "unknown_level"


class IllegalTransition(VettingInputError):
    """The requested lifecycle change is not allowed from the clearance's status."""

    code = "illegal_transition"


class VettingDataError(ConfigError):
    """A vetting data file (schemes, obligations, agreements) is malformed."""

    code = "vetting_data_error"
