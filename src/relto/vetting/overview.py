"""What a person may see of the node's people and clearances, at a time: each
clearance's status, and the clearances due for revalidation soon."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from relto.authz import Grantee
from relto.vetting._clearance import Clearance
from relto.vetting._data import VettingPolicy
from relto.vetting._people import Person
from relto.vetting.service import VettingService

__all__ = [
    "REVALIDATION_HORIZON_DAYS",
    "ClearanceView",
    "PeopleOverview",
    "PersonRow",
    "Revalidation",
    "clearance_view",
    "people_overview",
]

#: Clearances whose validity ends within this many days are listed as due.
REVALIDATION_HORIZON_DAYS = 90
_WATCHED = frozenset({"granted", "interim", "under_review", "suspended"})


@dataclass(frozen=True)
class ClearanceView:
    clearance: Clearance
    status: str
    until: datetime | None
    reason: str | None


@dataclass(frozen=True)
class PersonRow:
    person: Person
    roles: list[str]
    projects: list[str]
    clearances: list[ClearanceView]


@dataclass(frozen=True)
class Revalidation:
    person: Person
    clearance: Clearance
    status: str
    until: datetime
    days: int


@dataclass(frozen=True)
class PeopleOverview:
    rows: list[PersonRow]
    upcoming: list[Revalidation]
    horizon_days: int


def clearance_view(c: Clearance, at: datetime, policy: VettingPolicy) -> ClearanceView:
    status = c.status_at(at)
    return ClearanceView(
        clearance=c,
        status=status.value if status is not None else "none",
        until=c.valid_until_at(at),
        reason=c.currency(at, policy).reason,
    )


def people_overview(
    service: VettingService,
    caller: Grantee,
    at: datetime,
    horizon_days: int = REVALIDATION_HORIZON_DAYS,
) -> PeopleOverview:
    """The first page of people and clearances ``caller`` may read, as of ``at``."""
    persons = list(service.list_people(limit=200, caller=caller).items)
    clearances = list(service.list_clearances(limit=200, caller=caller).items)
    views = [(c, clearance_view(c, at, service.policy)) for c in clearances]
    by_person: dict[str, list[ClearanceView]] = {}
    for c, v in views:
        by_person.setdefault(c.person_id, []).append(v)
    rows = [
        PersonRow(
            person=p,
            roles=sorted(r.value for r in p.roles),
            projects=[m.project for m in p.projects],
            clearances=by_person.get(p.id, []),
        )
        for p in sorted(persons, key=lambda p: (p.home_nation, p.name))
    ]
    names = {p.id: p for p in persons}
    upcoming = [
        Revalidation(names[c.person_id], c, v.status, v.until, max(0, (v.until - at).days))
        for c, v in views
        if v.until is not None
        and v.status in _WATCHED
        and v.until - at <= timedelta(days=horizon_days)
        and c.person_id in names
    ]
    upcoming.sort(key=lambda r: r.until)
    return PeopleOverview(rows, upcoming, horizon_days)
