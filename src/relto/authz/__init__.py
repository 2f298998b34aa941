"""Authorisation: every permission named once, one table of who holds it, one
function that answers from the directory's records (see ``docs/authz.md``).

Object actions (read, download, relabel a protected object) are answered by the
decision engine (:mod:`relto.decisions`); everything else -- partnership
changes, vetting, what-if, the decision explorer, audit reads -- by
:func:`decide` here, and recorded by :class:`Authorizer`.
"""

from relto.authz._authorizer import AUDIT_KIND, Authorizer
from relto.authz._permissions import OBJECT_PERMISSIONS, Permission
from relto.authz._principal import Principal
from relto.authz._rules import RULES, AuthzDecision, Grantee, Rule, RuleKind, Scope, decide

__all__ = [
    "AUDIT_KIND",
    "OBJECT_PERMISSIONS",
    "RULES",
    "Authorizer",
    "AuthzDecision",
    "Grantee",
    "Permission",
    "Principal",
    "Rule",
    "RuleKind",
    "Scope",
    "decide",
]
