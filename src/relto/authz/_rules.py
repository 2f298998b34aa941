"""Who holds which permission: one table, one pure function.

A person's roles come from the directory (their vetting record): each role is held
*for a nation* (``("security_officer", "GBR")``). A permission is granted for a
*scope*: the nations whose officers may act on the target (the issuing nation of
a clearance, the members of a partnership, the nations an audit entry concerns...)
and, where it matters, the person the target is about.

=========================  =====================================================
kind of rule               granted when
=========================  =====================================================
public                     always (no sign-in needed)
signed in                  any authenticated person
member of scope            the person's home nation is in the scope
releasable                 one of the person's nationalities is in the scope
                           (the object's Releasable To)
role in scope              the person holds one of the rule's roles for a nation
                           in the scope; some rules also let the person act on
                           their own record, some never
role attested by home      a person of another nation whose home node attested
                           (signed, verified against this node's pins) one of the
                           rule's roles, and the scope is their home nation alone
                           (ADR 0142: a partner's auditor audits what concerns
                           their own nation here, nothing else; they still hold
                           no role on this node)
=========================  =====================================================

Nothing here reads a token: callers pass what the directory says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from relto.authz._permissions import OBJECT_PERMISSIONS, Permission

__all__ = [
    "RULES",
    "AuthzDecision",
    "Grantee",
    "Rule",
    "RuleKind",
    "Scope",
    "decide",
]


class Grantee(Protocol):
    """Whoever asks: a person id, the nations they belong to (home nation first
    consideration: ``home_nation``), their nationalities, and their
    ``(role, nation)`` grants, all as the directory records them."""

    @property
    def person_id(self) -> str: ...

    @property
    def home_nation(self) -> str: ...

    @property
    def nationalities(self) -> frozenset[str]: ...

    @property
    def roles(self) -> frozenset[tuple[str, str]]: ...


@dataclass(frozen=True)
class Scope:
    """What a permission is asked for: the nations whose officers may act on the
    target, and the person the target is about (if any)."""

    nations: frozenset[str] = frozenset()
    subject: str | None = None

    @classmethod
    def of(cls, nations: Iterable[str], subject: str | None = None) -> Scope:
        return cls(frozenset(nations), subject)


class RuleKind(Enum):
    PUBLIC = "public"
    SIGNED_IN = "signed in"
    MEMBER = "member of scope"
    RELEASABLE = "releasable"
    ROLE = "role in scope"
    ATTESTED_ROLE = "role attested by home"
    ENGINE = "decision engine"


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    roles: frozenset[str] = frozenset()
    #: The person the target is about may act on it themself.
    self_allowed: bool = False
    #: The person the target is about may never act on it (nobody vets themself).
    self_forbidden: bool = False
    #: Record allowed decisions in the audit log too (denials always are).
    audit_allowed: bool = False


_OFFICERS = frozenset({"security_officer", "vetting_officer"})
_READERS = _OFFICERS | {"auditor"}


def _role(*roles: str, **flags: bool) -> Rule:
    return Rule(RuleKind.ROLE, frozenset(roles), **flags)


P = Permission
#: The table. Object permissions are answered by the decision engine.
RULES: dict[Permission, Rule] = {
    P.ADMIN_ADMISSIONS_WRITE: _role("security_officer"),
    P.ADMIN_PARTNERSHIPS_WRITE: _role("security_officer"),
    P.ADMIN_PROJECTS_WRITE: _role("security_officer"),
    P.AUDIT_ENTRIES_READ: _role("auditor", "security_officer", audit_allowed=True),
    P.AUDIT_INTEGRITY_REPORT: Rule(RuleKind.PUBLIC),
    P.AUDIT_LOG_READ: Rule(RuleKind.PUBLIC),
    P.AUDIT_PARTNER_ENTRIES_READ: Rule(
        RuleKind.ATTESTED_ROLE, frozenset({"auditor", "security_officer"}), audit_allowed=True
    ),
    P.AUDIT_WITNESS_WRITE: Rule(RuleKind.PUBLIC),
    P.CLEARANCES_ADJUDICATE: _role("vetting_officer", self_forbidden=True),
    P.CLEARANCES_READ: _role(*_READERS, self_allowed=True),
    P.CLEARANCES_REPORT: _role(*_OFFICERS, self_allowed=True),
    P.CLEARANCES_RESTRICT: _role(*_OFFICERS),
    P.CLEARANCES_SPONSOR: _role(*_OFFICERS, self_forbidden=True),
    P.CLEARANCES_SUPERVISE: _role(*_OFFICERS),
    P.CONSOLE_USE: Rule(RuleKind.SIGNED_IN),
    P.DECISIONS_EXPLAIN: _role(
        "security_officer", "auditor", self_allowed=True, audit_allowed=True
    ),
    P.DECISIONS_WHAT_IF: _role("security_officer", audit_allowed=True),
    # export control: the officers of the nation whose regime or object it is
    P.EXPORT_CHECK: _role("export_control_officer", "security_officer", audit_allowed=True),
    P.EXPORT_FACTS_READ: _role("export_control_officer", "security_officer", "auditor"),
    P.EXPORT_FACTS_WRITE: _role("export_control_officer", audit_allowed=True),
    P.EXPORT_RECORDS_READ: _role("export_control_officer", "auditor", audit_allowed=True),
    P.FEDERATION_ATTEST: Rule(RuleKind.MEMBER),
    P.FEDERATION_DESCRIPTOR_READ: Rule(RuleKind.PUBLIC),
    P.FEDERATION_STATUS_READ: Rule(RuleKind.PUBLIC),
    P.FEDERATION_TRUST_WRITE: _role("security_officer", audit_allowed=True),
    P.KAS_KEYS_READ: Rule(RuleKind.PUBLIC),
    P.KAS_KEYS_WRITE: _role("security_officer", audit_allowed=True),
    P.KAS_REWRAP: Rule(RuleKind.SIGNED_IN),
    P.NODE_OPERATE: Rule(RuleKind.PUBLIC),
    P.OBJECTS_CREATE: Rule(RuleKind.SIGNED_IN),
    P.OBJECTS_LIST: Rule(RuleKind.SIGNED_IN),
    P.OBJECTS_METADATA_READ: Rule(RuleKind.RELEASABLE),
    # a partner node offering signed changes: public, the signatures are the authority
    P.PARTNERSHIP_CHANGES_RECEIVE: Rule(RuleKind.PUBLIC),
    P.PARTNERSHIP_READ: Rule(RuleKind.MEMBER),
    P.PEOPLE_READ: _role(*_READERS, self_allowed=True),
    P.PEOPLE_WRITE: _role(*_OFFICERS),
    P.SESSION_MANAGE: Rule(RuleKind.PUBLIC),
    # leak tracing names people: the node's own security officers and auditors only
    P.TRACING_TRACE: _role("security_officer", "auditor", audit_allowed=True),
    **{p: Rule(RuleKind.ENGINE) for p in OBJECT_PERMISSIONS},
}


@dataclass(frozen=True)
class AuthzDecision:
    """The answer: allowed or not, with a stable code and a sentence on denial."""

    allowed: bool
    permission: Permission
    code: str = ""
    sentence: str = ""


def _deny(permission: Permission, code: str, sentence: str) -> AuthzDecision:
    return AuthzDecision(False, permission, code, sentence)


def decide(who: Grantee | None, permission: Permission, scope: Scope = Scope()) -> AuthzDecision:
    """May ``who`` (``None``: nobody signed in) use ``permission`` on ``scope``?

    Pure: reads only its arguments. Raises ``ValueError`` for an object permission
    (the decision engine answers those).
    """
    rule = RULES[permission]
    if rule.kind is RuleKind.ENGINE:
        raise ValueError(f"{permission} is decided by the decision engine, not by a role")
    if rule.kind is RuleKind.PUBLIC:
        return AuthzDecision(True, permission)
    if who is None:
        return _deny(permission, "NOT_AUTHENTICATED", "You are not signed in.")
    if rule.kind is RuleKind.SIGNED_IN:
        return AuthzDecision(True, permission)
    if rule.kind is RuleKind.MEMBER:
        if who.home_nation in scope.nations:
            return AuthzDecision(True, permission)
        return _deny(permission, "NOT_A_MEMBER", "Your nation does not take part in this.")
    if rule.kind is RuleKind.RELEASABLE:
        if who.nationalities & scope.nations:
            return AuthzDecision(True, permission)
        return _deny(
            permission, "NOT_RELEASABLE", "None of your nationalities is in Releasable To."
        )
    if rule.kind is RuleKind.ATTESTED_ROLE:
        return _attested_role(who, permission, rule, scope)
    about_self = scope.subject is not None and scope.subject == who.person_id
    if about_self and rule.self_forbidden:
        return _deny(permission, "SELF_NOT_ALLOWED", "Nobody may do this for their own record.")
    if about_self and rule.self_allowed:
        return AuthzDecision(True, permission)
    if any(role in rule.roles and nation in scope.nations for role, nation in who.roles):
        return AuthzDecision(True, permission)
    needed = " or ".join(sorted(rule.roles))
    where = ", ".join(sorted(scope.nations)) or "no nation"
    article = "an" if needed[:1] in "aeiou" else "a"
    return _deny(permission, "ROLE_NOT_HELD", f"This needs {article} {needed} of {where}.")


def _attested_role(who: Grantee, permission: Permission, rule: Rule, scope: Scope) -> AuthzDecision:
    """A role the person's home node attested, for their home nation alone. Only a
    grantee that carries ``attested_roles`` (a :class:`~relto.authz.Principal`
    signed in with an attestation) can hold one; anyone else is refused."""
    attested: frozenset[str] = getattr(who, "attested_roles", frozenset())
    needed = " or ".join(sorted(rule.roles))
    if not isinstance(attested, frozenset) or not attested & rule.roles:
        return _deny(
            permission,
            "ROLE_NOT_ATTESTED",
            f"This needs your home node to vouch for you as {needed}.",
        )
    if scope.nations != {who.home_nation}:
        return _deny(
            permission,
            "NOT_OWN_NATION",
            "A partner's auditor reads only what concerns their own nation.",
        )
    return AuthzDecision(True, permission)
