"""Errors raised by :mod:`relto.decisions`.

::

    relto.errors.ReltoError
    ├── relto.errors.AccessDenied
    │   └── AccessDenied          enforce() refused; carries the full Decision inward
    └── DecisionError             base of the engine's own failures
        ├── InvalidScenario       a scenario file is malformed (also an InvalidInput)
        └── InvalidChange         a what-if change is malformed or names nothing known
                                  (also an InvalidInput)

The engine itself never raises for a denial: :func:`evaluate` returns a
:class:`~relto.decisions.Decision`. Only :func:`enforce` raises
:class:`AccessDenied`, whose message is opaque ("access denied"); the reasons are on
``exc.decision`` for the audit log and for those entitled to read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relto.errors import AccessDenied as _BaseAccessDenied
from relto.errors import InvalidInput, ReltoError

if TYPE_CHECKING:
    from relto.decisions._model import Decision

__all__ = ["AccessDenied", "DecisionError", "InvalidChange", "InvalidScenario"]


class DecisionError(ReltoError):
    """Base of the decision engine's own errors."""

    code = "decision_error"


class AccessDenied(_BaseAccessDenied):
    """The decision engine denied the request. Opaque outward; ``decision`` inward."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("access denied")
        self.decision = decision


class InvalidScenario(DecisionError, InvalidInput):
    """A scenario file is malformed; nothing was evaluated."""

    code = "invalid_scenario"


class InvalidChange(DecisionError, InvalidInput):
    """A what-if change is malformed or names something the scenario lacks."""

    code = "invalid_change"
