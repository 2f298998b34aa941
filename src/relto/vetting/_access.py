"""Who may change or read vetting records (pure; no HTTP, no database).

Clearances are never self-asserted: only the issuing nation's vetting and security
officers record them. The rules, for a caller holding ``(role, nation)`` grants:

=====================================  ============================================
action                                 allowed to
=====================================  ============================================
register / update a person             security or vetting officer of the person's
                                       (current) home nation
sponsor a clearance                    security or vetting officer of the issuing
                                       nation, for a person that nation may read
grant, interim, deny, revoke, lapse,   vetting officer of the issuing nation
investigate, adjudicate, reinstate
suspend, put under review              vetting or security officer of the issuing
                                       nation
record an incident / expect a report   vetting or security officer of the issuing
                                       nation
file a report                          the clearance holder, or those above
read a person or clearance             the person; security/vetting officers and
                                       auditors of the issuing or home nation
=====================================  ============================================

Refusals raise :class:`relto.errors.AccessDenied`, which callers outside see as
"not found" (they learn nothing about whether the record exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from relto.authz import Grantee, Permission, Scope, decide
from relto.errors import AccessDenied
from relto.vetting._lifecycle import Status

__all__ = ["PERMISSIONS", "Action", "Caller", "authorise"]


class Action(StrEnum):
    WRITE_PERSON = "write_person"
    SPONSOR = "sponsor"
    ADJUDICATE = "adjudicate"
    RESTRICT = "restrict"
    SUPERVISE = "supervise"
    FILE_REPORT = "file_report"
    READ = "read"
    READ_PERSON = "read_person"


#: Each vetting action is one of relto's named permissions; the rule table in
#: :mod:`relto.authz` says who holds it.
PERMISSIONS: dict[Action, Permission] = {
    Action.WRITE_PERSON: Permission.PEOPLE_WRITE,
    Action.SPONSOR: Permission.CLEARANCES_SPONSOR,
    Action.ADJUDICATE: Permission.CLEARANCES_ADJUDICATE,
    Action.RESTRICT: Permission.CLEARANCES_RESTRICT,
    Action.SUPERVISE: Permission.CLEARANCES_SUPERVISE,
    Action.FILE_REPORT: Permission.CLEARANCES_REPORT,
    Action.READ: Permission.CLEARANCES_READ,
    Action.READ_PERSON: Permission.PEOPLE_READ,
}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: their person id and ``(role, nation)`` grants, as
    the directory records them (any :class:`relto.authz.Grantee` will do)."""

    person_id: str
    roles: frozenset[tuple[str, str]]
    home_nation: str = ""
    nationalities: frozenset[str] = frozenset()


def action_for(to: Status) -> Action:
    """Suspending or opening a review restricts; every other move adjudicates."""
    return Action.RESTRICT if to in (Status.SUSPENDED, Status.UNDER_REVIEW) else Action.ADJUDICATE


def authorise(
    caller: Grantee, action: Action, nations: frozenset[str], subject: str | None = None
) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do ``action`` (pure: the
    service records its denials through :class:`relto.authz.Authorizer`).

    ``nations`` are the nations whose officers may act (issuing nation, or home nation
    of a person); ``subject`` is the person the record is about.
    """
    decision = decide(caller, PERMISSIONS[action], Scope(nations, subject))
    if not decision.allowed:
        raise AccessDenied(f"{caller.person_id} may not {action.value} here")
