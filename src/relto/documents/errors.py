"""Errors of the sharing capability::

relto.errors.AccessDenied
└── ActionDenied        the decision engine denied an object action; carries the
                        explained decision for the person it is about
"""

from __future__ import annotations

from relto.decisions import Decision
from relto.errors import AccessDenied

__all__ = ["ActionDenied"]


class ActionDenied(AccessDenied):
    """The decision engine said no. Outward it is as opaque as any refusal; the
    decision (reasons and codes) is for the person who asked and the audit log."""

    code = "access_denied"

    def __init__(self, decision: Decision) -> None:
        super().__init__("denied: " + ", ".join(decision.codes))
        self.decision = decision
