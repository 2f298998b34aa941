"""REST API for people and clearances (``/api/v1/people``, ``/api/v1/clearances``).

Thin edges: parse, call one :class:`relto.vetting.service.VettingService` method,
render. Every route takes the authenticated caller (``Depends``); the service
checks what the caller may do (``relto.vetting._access``) and refusals look like
"not found". The time of a change is the server's clock (``Edge.clock``,
replaceable in tests); reads accept ``?at=`` to ask "as of when".
"""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from relto.authz import Permission, Principal
from relto.server.edge import Edge, needs
from relto.vetting import (
    Clearance,
    ClearanceEvent,
    IncidentKind,
    ObligationKind,
    Person,
    ProjectMembership,
    Role,
    Status,
    VettingInputError,
)
from relto.vetting.service import MAX_PAGE, VettingService

__all__ = ["mount"]

Nation = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
After = Annotated[str | None, Query(max_length=64)]
AsOf = Annotated[AwareDatetime | None, Query(description="Evaluate status as of this instant")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MembershipIO(_Strict):
    project: Ident
    role: Text = "member"


class PersonIn(_Strict):
    id: Ident
    name: Text
    nationalities: Annotated[list[Nation], Field(min_length=1, max_length=32)]
    organisation: Text
    home_nation: Nation
    roles: Annotated[list[Role], Field(max_length=5)] = []
    projects: Annotated[list[MembershipIO], Field(max_length=256)] = []


class PersonOut(BaseModel):
    id: str
    name: str
    nationalities: list[str]
    organisation: str
    home_nation: str
    roles: list[str]
    projects: list[MembershipIO]


class ClearanceIn(_Strict):
    id: Ident | None = None
    person_id: Ident
    nation: Nation
    level: Annotated[str, Field(min_length=1, max_length=40)]
    sponsor: Text
    caveats: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=32)] = []
    reason: Reason


class TransitionIn(_Strict):
    to: Status
    reason: Reason
    valid_until: AwareDatetime | None = None


class ReportIn(_Strict):
    kind: ObligationKind
    occurred_on: dt.date
    reason: Reason
    expected: bool = Field(
        False, description="true: record that a report is owed (e.g. approved travel)"
    )
    ref: Annotated[int | None, Field(ge=1)] = None


class IncidentIn(_Strict):
    kind: IncidentKind
    reason: Reason


class ClearanceOut(BaseModel):
    id: str
    person_id: str
    nation: str
    level: str
    classification: str
    caveats: list[str]
    sponsor: str
    created_at: dt.datetime
    as_of: dt.datetime
    status: str | None
    recorded_status: str | None
    current: bool
    reason_code: str | None
    reason: str | None
    valid_until: dt.datetime | None


class EventOut(BaseModel):
    seq: int
    kind: str
    at: dt.datetime
    actor: str
    reason: str
    from_status: str | None = None
    to_status: str | None = None
    valid_until: dt.datetime | None = None
    obligation: str | None = None
    occurred_on: dt.date | None = None
    due_at: dt.datetime | None = None
    incident: str | None = None
    ref: int | None = None


class PeoplePage(BaseModel):
    items: list[PersonOut]
    next_after: str | None


class ClearancePage(BaseModel):
    items: list[ClearanceOut]
    next_after: str | None


class HistoryOut(BaseModel):
    clearance_id: str
    events: list[EventOut]


def _person(p: Person) -> PersonOut:
    return PersonOut(
        id=p.id,
        name=p.name,
        nationalities=sorted(p.nationalities),
        organisation=p.organisation,
        home_nation=p.home_nation,
        roles=sorted(r.value for r in p.roles),
        projects=[MembershipIO(project=m.project, role=m.role) for m in p.projects],
    )


def _clearance(c: Clearance, at: dt.datetime, service: VettingService) -> ClearanceOut:
    cur = c.currency(at, service.policy)
    recorded = c.recorded_status_at(at)
    return ClearanceOut(
        id=c.id,
        person_id=c.person_id,
        nation=c.nation,
        level=c.level,
        classification=c.classification,
        caveats=sorted(c.caveats),
        sponsor=c.sponsor,
        created_at=c.created_at,
        as_of=at,
        status=cur.status.value if cur.status else None,
        recorded_status=recorded.value if recorded else None,
        current=cur.current,
        reason_code=cur.code.value if cur.code else None,
        reason=cur.reason,
        valid_until=c.valid_until_at(at),
    )


def _event(e: ClearanceEvent) -> EventOut:
    return EventOut(
        seq=e.seq,
        kind=e.kind.value,
        at=e.at,
        actor=e.actor,
        reason=e.reason,
        from_status=e.from_status.value if e.from_status else None,
        to_status=e.to_status.value if e.to_status else None,
        valid_until=e.valid_until,
        obligation=e.obligation.value if e.obligation else None,
        occurred_on=e.occurred_on,
        due_at=e.due_at,
        incident=e.incident.value if e.incident else None,
        ref=e.ref,
    )


def mount(app: FastAPI, edge: Edge) -> None:
    service = edge.node.vetting
    Who = Annotated[Principal, Depends(edge.who)]
    router = APIRouter(prefix="/api/v1", tags=["vetting"])

    def now() -> dt.datetime:
        return edge.clock()

    @router.get("/people", summary="People the caller may see", **needs(Permission.PEOPLE_READ))
    def list_people(who: Who, limit: Limit = 50, after: After = None) -> PeoplePage:
        page = service.list_people(limit=limit, after=after, caller=who)
        return PeoplePage(items=[_person(p) for p in page.items], next_after=page.next_after)

    @router.post(
        "/people", status_code=201, summary="Register a person", **needs(Permission.PEOPLE_WRITE)
    )
    def post_person(body: PersonIn, who: Who) -> PersonOut:
        p = _person_from(body)
        return _person(service.register_person(p, at=now(), actor=who.person_id, caller=who))

    @router.put(
        "/people/{person_id}",
        summary="Replace a person's details",
        **needs(Permission.PEOPLE_WRITE),
    )
    def put_person(person_id: Ident, body: PersonIn, who: Who) -> PersonOut:
        if body.id != person_id:
            raise VettingInputError("the id in the body must match the URL")
        p = _person_from(body)
        return _person(service.update_person(p, at=now(), actor=who.person_id, caller=who))

    @router.get("/people/{person_id}", summary="One person", **needs(Permission.PEOPLE_READ))
    def get_person(person_id: Ident, who: Who) -> PersonOut:
        return _person(service.get_person(person_id, caller=who))

    @router.get(
        "/people/{person_id}/clearances",
        summary="A person's clearances",
        **needs(Permission.CLEARANCES_READ),
    )
    def person_clearances(
        person_id: Ident, who: Who, at: AsOf = None, limit: Limit = 50, after: After = None
    ) -> ClearancePage:
        service.get_person(person_id, caller=who)
        when = at or now()
        page = service.list_clearances(limit=limit, after=after, person_id=person_id, caller=who)
        return ClearancePage(
            items=[_clearance(c, when, service) for c in page.items], next_after=page.next_after
        )

    @router.get(
        "/clearances", summary="Clearances the caller may see", **needs(Permission.CLEARANCES_READ)
    )
    def list_clearances(
        who: Who,
        at: AsOf = None,
        limit: Limit = 50,
        after: After = None,
        person_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> ClearancePage:
        when = at or now()
        page = service.list_clearances(limit=limit, after=after, person_id=person_id, caller=who)
        return ClearancePage(
            items=[_clearance(c, when, service) for c in page.items], next_after=page.next_after
        )

    @router.post(
        "/clearances",
        status_code=201,
        summary="Sponsor a clearance",
        **needs(Permission.CLEARANCES_SPONSOR),
    )
    def post_clearance(body: ClearanceIn, who: Who) -> ClearanceOut:
        at = now()
        c = service.sponsor_clearance(
            person_id=body.person_id,
            nation=body.nation,
            level=body.level,
            sponsor=body.sponsor,
            at=at,
            actor=who.person_id,
            reason=body.reason,
            caveats=frozenset(body.caveats),
            clearance_id=body.id,
            caller=who,
        )
        return _clearance(c, at, service)

    @router.get(
        "/clearances/{clearance_id}",
        summary="One clearance and its status",
        **needs(Permission.CLEARANCES_READ),
    )
    def get_clearance(clearance_id: Ident, who: Who, at: AsOf = None) -> ClearanceOut:
        c = service.get_clearance(clearance_id, caller=who)
        return _clearance(c, at or now(), service)

    @router.post(
        "/clearances/{clearance_id}/transitions",
        summary="Move a clearance",
        **needs(Permission.CLEARANCES_ADJUDICATE),
    )
    def post_transition(clearance_id: Ident, body: TransitionIn, who: Who) -> ClearanceOut:
        at = now()
        c = service.transition(
            clearance_id,
            body.to,
            at=at,
            actor=who.person_id,
            reason=body.reason,
            valid_until=body.valid_until,
            caller=who,
        )
        return _clearance(c, at, service)

    @router.post(
        "/clearances/{clearance_id}/reports",
        summary="File or expect a report",
        **needs(Permission.CLEARANCES_REPORT),
    )
    def post_report(clearance_id: Ident, body: ReportIn, who: Who) -> ClearanceOut:
        at = now()
        if body.expected:
            c = service.expect_report(
                clearance_id,
                body.kind,
                occurred_on=body.occurred_on,
                at=at,
                actor=who.person_id,
                reason=body.reason,
                caller=who,
            )
        else:
            c = service.file_report(
                clearance_id,
                body.kind,
                occurred_on=body.occurred_on,
                at=at,
                actor=who.person_id,
                reason=body.reason,
                ref=body.ref,
                caller=who,
            )
        return _clearance(c, at, service)

    @router.post(
        "/clearances/{clearance_id}/incidents",
        summary="Record a security incident",
        **needs(Permission.CLEARANCES_SUPERVISE),
    )
    def post_incident(clearance_id: Ident, body: IncidentIn, who: Who) -> ClearanceOut:
        at = now()
        c = service.record_incident(
            clearance_id, body.kind, at=at, actor=who.person_id, reason=body.reason, caller=who
        )
        return _clearance(c, at, service)

    @router.get(
        "/clearances/{clearance_id}/history",
        summary="Every event, in order",
        **needs(Permission.CLEARANCES_READ),
    )
    def get_history(clearance_id: Ident, who: Who) -> HistoryOut:
        events = service.history(clearance_id, caller=who)
        return HistoryOut(clearance_id=clearance_id, events=[_event(e) for e in events])

    app.include_router(router)


def _person_from(body: PersonIn) -> Person:
    return Person(
        id=body.id,
        name=body.name,
        nationalities=frozenset(body.nationalities),
        organisation=body.organisation,
        home_nation=body.home_nation,
        roles=frozenset(body.roles),
        projects=tuple(ProjectMembership(m.project, m.role) for m in body.projects),
    )
