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

from relto.errors import AccessDenied
from relto.vetting._lifecycle import Status

__all__ = ["Action", "Caller", "authorise"]


class Action(StrEnum):
    WRITE_PERSON = "write_person"
    SPONSOR = "sponsor"
    ADJUDICATE = "adjudicate"
    RESTRICT = "restrict"
    SUPERVISE = "supervise"
    FILE_REPORT = "file_report"
    READ = "read"


_OFFICERS = frozenset({"security_officer", "vetting_officer"})
_ALLOWED: dict[Action, frozenset[str]] = {
    Action.WRITE_PERSON: _OFFICERS,
    Action.SPONSOR: _OFFICERS,
    Action.ADJUDICATE: frozenset({"vetting_officer"}),
    Action.RESTRICT: _OFFICERS,
    Action.SUPERVISE: _OFFICERS,
    Action.FILE_REPORT: _OFFICERS,
    Action.READ: _OFFICERS | {"auditor"},
}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: their person id and ``(role, nation)`` grants."""

    person_id: str
    roles: frozenset[tuple[str, str]]


def action_for(to: Status) -> Action:
    """Suspending or opening a review restricts; every other move adjudicates."""
    return Action.RESTRICT if to in (Status.SUSPENDED, Status.UNDER_REVIEW) else Action.ADJUDICATE


def authorise(
    caller: Caller, action: Action, nations: frozenset[str], subject: str | None = None
) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do ``action``.

    ``nations`` are the nations whose officers may act (issuing nation, or home nation
    of a person); ``subject`` is the person the record is about.
    """
    if subject is not None and caller.person_id == subject:
        if action in (Action.READ, Action.FILE_REPORT):
            return
        if action in (Action.SPONSOR, Action.ADJUDICATE):
            raise AccessDenied(f"{caller.person_id} may not vet themself")
    allowed = _ALLOWED[action]
    if any(role in allowed and nation in nations for role, nation in caller.roles):
        return
    raise AccessDenied(f"{caller.person_id} may not {action.value} here")
