"""The one authorisation point: decide from the table, record, refuse.

:func:`relto.authz.decide` is pure; :class:`Authorizer` is what services hold: it
decides, records the decision in the audit log (every denial of a signed-in
person; allowed decisions where the rule says so), and raises
:class:`relto.errors.AccessDenied` -- opaque outward -- on :meth:`require`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from relto.authz._permissions import Permission
from relto.authz._rules import RULES, AuthzDecision, Grantee, Scope, decide
from relto.errors import AccessDenied
from relto.events import AuditSink

__all__ = ["AUDIT_KIND", "Authorizer"]

#: The audit event kind of an authorisation decision.
AUDIT_KIND = "authz.decision"


def _now() -> datetime:
    return datetime.now(UTC)


class Authorizer:
    """Decides permissions for one node and records them in its audit sink."""

    def __init__(self, sink: AuditSink, clock: Callable[[], datetime] = _now) -> None:
        self._sink = sink
        self._clock = clock

    @staticmethod
    def allows(who: Grantee | None, permission: Permission, scope: Scope = Scope()) -> bool:
        """The decision without a record: for filtering lists and showing forms.
        Acting on a permission goes through :meth:`check` or :meth:`require`."""
        return decide(who, permission, scope).allowed

    def check(
        self,
        who: Grantee | None,
        permission: Permission,
        scope: Scope = Scope(),
        *,
        target: str = "",
    ) -> AuthzDecision:
        """Decide and record (denials of a signed-in person always; allowed
        decisions when the rule asks). Returns once the record is durable."""
        decision = decide(who, permission, scope)
        if who is not None and (not decision.allowed or RULES[permission].audit_allowed):
            self._sink.record(
                AUDIT_KIND,
                {
                    "by": who.person_id,
                    "nation": who.home_nation,
                    "permission": permission.value,
                    "target": target[:200],
                    "scope": sorted(scope.nations),
                    "allowed": decision.allowed,
                    "reasons": (
                        []
                        if decision.allowed
                        else [{"code": decision.code, "sentence": decision.sentence}]
                    ),
                    "at": self._clock().isoformat(),
                },
            )
        return decision

    def require(
        self,
        who: Grantee | None,
        permission: Permission,
        scope: Scope = Scope(),
        *,
        target: str = "",
    ) -> None:
        """:meth:`check`, raising :class:`AccessDenied` on a denial."""
        decision = self.check(who, permission, scope, target=target)
        if not decision.allowed:
            raise AccessDenied(decision.sentence or "not permitted")
