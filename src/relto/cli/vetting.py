"""``relto person ...`` and ``relto clearance ...``: people and clearances for security
and vetting officers working on the node itself.

Thin edge: parse, call one :class:`relto.vetting.service.VettingService` method, print
JSON. Every change needs ``--actor`` (recorded in the history) and may give ``--at``
(ISO 8601 with a timezone; default now). ``--db`` picks the database (default:
``settings.effective_database_url``). The CLI runs with the operator's own access to
the database, so it does not apply the API's per-caller rules; every change is
appended to the node's transparency log (``relto.audit.config.open_log``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

from relto.config import load_settings
from relto.events import AuditSink, NullSink
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
    default_policy,
    recognition,
)
from relto.vetting.service import VettingService

__all__ = ["register"]

person_app = typer.Typer(help="People: nationalities, organisation, roles, projects.")
clearance_app = typer.Typer(help="Clearances: sponsor, move through the lifecycle, report.")

Db = Annotated[
    str | None,
    typer.Option("--db", help="Database URL [default: settings.effective_database_url]."),
]
Actor = Annotated[str, typer.Option("--actor", help="Who is making the change (person id).")]
At = Annotated[str | None, typer.Option("--at", help="When (ISO 8601 with timezone); default now.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")]


def _service(db: str | None, *, audited: bool = True) -> VettingService:
    """The service on ``--db``; changes are recorded in the node's transparency log."""
    from relto.store import create_database

    settings = load_settings()
    url = db or settings.effective_database_url
    sink: AuditSink = NullSink()
    if audited:
        from relto.audit.config import open_log

        sink = open_log(settings)
    return VettingService(create_database(url), sink)


def _when(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(at)
    except ValueError:
        raise VettingInputError("--at must be ISO 8601, e.g. 2026-01-05T09:00:00Z") from None
    if value.tzinfo is None:
        raise VettingInputError("--at must include a timezone, e.g. Z or +09:00")
    return value


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise VettingInputError(f"{what} must be a date, e.g. 2026-01-05") from None


def _print(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def person_json(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "nationalities": sorted(p.nationalities),
        "organisation": p.organisation,
        "home_nation": p.home_nation,
        "roles": sorted(r.value for r in p.roles),
        "projects": [{"project": m.project, "role": m.role} for m in p.projects],
    }


def clearance_json(c: Clearance, at: dt.datetime) -> dict[str, Any]:
    cur = c.currency(at, default_policy())
    until = c.valid_until_at(at)
    return {
        "id": c.id,
        "person_id": c.person_id,
        "nation": c.nation,
        "level": c.level,
        "classification": c.classification,
        "caveats": sorted(c.caveats),
        "sponsor": c.sponsor,
        "as_of": at.isoformat(),
        "status": cur.status.value if cur.status else None,
        "current": cur.current,
        "reason": cur.reason,
        "valid_until": until.isoformat() if until else None,
    }


def event_json(e: ClearanceEvent) -> dict[str, Any]:
    out = {
        "seq": e.seq,
        "kind": e.kind.value,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "reason": e.reason,
        "from_status": e.from_status.value if e.from_status else None,
        "to_status": e.to_status.value if e.to_status else None,
        "valid_until": e.valid_until.isoformat() if e.valid_until else None,
        "obligation": e.obligation.value if e.obligation else None,
        "occurred_on": e.occurred_on.isoformat() if e.occurred_on else None,
        "due_at": e.due_at.isoformat() if e.due_at else None,
        "incident": e.incident.value if e.incident else None,
        "ref": e.ref,
    }
    return {k: v for k, v in out.items() if v is not None}


def _person_from(
    id: str,
    name: str,
    nationality: list[str],
    organisation: str,
    home_nation: str,
    role: list[str] | None,
    project: list[str] | None,
) -> Person:
    try:
        roles = frozenset(Role(r) for r in role or [])
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise VettingInputError(f"--role must be one of {known}") from None
    memberships = []
    for item in project or []:
        name_, _, prole = item.partition(":")
        memberships.append(ProjectMembership(name_, prole or "member"))
    return Person(
        id=id,
        name=name,
        nationalities=frozenset(n.upper() for n in nationality),
        organisation=organisation,
        home_nation=home_nation.upper(),
        roles=roles,
        projects=tuple(memberships),
    )


@person_app.command("add")
def person_add(
    id: Annotated[str, typer.Option("--id", help="Person id.")],
    name: Annotated[str, typer.Option("--name")],
    nationality: Annotated[
        list[str], typer.Option("--nationality", help="ISO alpha-3; repeat for dual nationals.")
    ],
    organisation: Annotated[str, typer.Option("--organisation")],
    home_nation: Annotated[str, typer.Option("--home-nation")],
    actor: Actor,
    role: Annotated[list[str] | None, typer.Option("--role", help="Repeatable.")] = None,
    project: Annotated[
        list[str] | None, typer.Option("--project", help="PROJECT[:ROLE], repeatable.")
    ] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """Register a person."""
    p = _person_from(id, name, nationality, organisation, home_nation, role, project)
    _print(person_json(_service(db).register_person(p, at=_when(at), actor=actor)))


@person_app.command("update")
def person_update(
    id: Annotated[str, typer.Option("--id", help="Person id.")],
    name: Annotated[str, typer.Option("--name")],
    nationality: Annotated[list[str], typer.Option("--nationality")],
    organisation: Annotated[str, typer.Option("--organisation")],
    home_nation: Annotated[str, typer.Option("--home-nation")],
    actor: Actor,
    role: Annotated[list[str] | None, typer.Option("--role")] = None,
    project: Annotated[list[str] | None, typer.Option("--project")] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """Replace a person's details."""
    p = _person_from(id, name, nationality, organisation, home_nation, role, project)
    _print(person_json(_service(db).update_person(p, at=_when(at), actor=actor)))


@person_app.command("show")
def person_show(person_id: str, db: Db = None) -> None:
    """Show one person."""
    _print(person_json(_service(db, audited=False).get_person(person_id)))


@person_app.command("list")
def person_list(
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    after: Annotated[str | None, typer.Option(help="Continue after this id.")] = None,
    db: Db = None,
) -> None:
    """List people, a page at a time."""
    page = _service(db, audited=False).list_people(limit=limit, after=after)
    _print({"items": [person_json(p) for p in page.items], "next_after": page.next_after})


@clearance_app.command("sponsor")
def clearance_sponsor(
    person: Annotated[str, typer.Option("--person", help="Person id.")],
    nation: Annotated[str, typer.Option("--nation", help="Issuing nation (alpha-3).")],
    level: Annotated[str, typer.Option("--level", help="Level in that nation's scheme.")],
    sponsor: Annotated[str, typer.Option("--sponsor", help="Sponsoring organisation.")],
    reason: Reason,
    actor: Actor,
    caveat: Annotated[list[str] | None, typer.Option("--caveat", help="Repeatable.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Clearance id (default: new).")] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """Open a clearance at 'sponsored'."""
    when = _when(at)
    c = _service(db).sponsor_clearance(
        person_id=person,
        nation=nation.upper(),
        level=level.upper(),
        sponsor=sponsor,
        at=when,
        actor=actor,
        reason=reason,
        caveats=frozenset(caveat or []),
        clearance_id=id,
    )
    _print(clearance_json(c, when))


@clearance_app.command("show")
def clearance_show(clearance_id: str, at: At = None, db: Db = None) -> None:
    """Show a clearance and its status (as of --at)."""
    _print(clearance_json(_service(db, audited=False).get_clearance(clearance_id), _when(at)))


@clearance_app.command("list")
def clearance_list(
    person: Annotated[str | None, typer.Option("--person")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    after: Annotated[str | None, typer.Option()] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """List clearances, a page at a time."""
    when = _when(at)
    page = _service(db, audited=False).list_clearances(limit=limit, after=after, person_id=person)
    _print({"items": [clearance_json(c, when) for c in page.items], "next_after": page.next_after})


@clearance_app.command("transition")
def clearance_transition(
    clearance_id: str,
    to: Annotated[str, typer.Argument(help=", ".join(s.value for s in Status))],
    reason: Reason,
    actor: Actor,
    valid_until: Annotated[
        str | None, typer.Option("--valid-until", help="When granting (ISO 8601 with timezone).")
    ] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """Move a clearance through its lifecycle."""
    try:
        target = Status(to)
    except ValueError:
        raise VettingInputError(f"unknown status {to!r}") from None
    when = _when(at)
    c = _service(db).transition(
        clearance_id,
        target,
        at=when,
        actor=actor,
        reason=reason,
        valid_until=_when(valid_until) if valid_until else None,
    )
    _print(clearance_json(c, when))


@clearance_app.command("report")
def clearance_report(
    clearance_id: str,
    kind: Annotated[str, typer.Argument(help=", ".join(k.value for k in ObligationKind))],
    occurred_on: Annotated[str, typer.Option("--occurred-on", help="Date of the event.")],
    reason: Reason,
    actor: Actor,
    expected: Annotated[
        bool, typer.Option("--expected", help="Record that a report is owed, not filed.")
    ] = False,
    ref: Annotated[int | None, typer.Option("--ref", help="Expectation it fulfils.")] = None,
    at: At = None,
    db: Db = None,
) -> None:
    """File (or expect) a foreign travel / contact / change-of-circumstances report."""
    try:
        k = ObligationKind(kind)
    except ValueError:
        raise VettingInputError(f"unknown report kind {kind!r}") from None
    when = _when(at)
    svc = _service(db)
    day = _date(occurred_on, "--occurred-on")
    if expected:
        c = svc.expect_report(clearance_id, k, occurred_on=day, at=when, actor=actor, reason=reason)
    else:
        c = svc.file_report(
            clearance_id, k, occurred_on=day, at=when, actor=actor, reason=reason, ref=ref
        )
    _print(clearance_json(c, when))


@clearance_app.command("incident")
def clearance_incident(
    clearance_id: str,
    kind: Annotated[str, typer.Argument(help=", ".join(k.value for k in IncidentKind))],
    reason: Reason,
    actor: Actor,
    at: At = None,
    db: Db = None,
) -> None:
    """Record a security incident (breach, infringement, violation)."""
    try:
        k = IncidentKind(kind)
    except ValueError:
        raise VettingInputError(f"unknown incident kind {kind!r}") from None
    when = _when(at)
    c = _service(db).record_incident(clearance_id, k, at=when, actor=actor, reason=reason)
    _print(clearance_json(c, when))


@clearance_app.command("history")
def clearance_history(clearance_id: str, db: Db = None) -> None:
    """Every event of a clearance, in order."""
    _print([event_json(e) for e in _service(db, audited=False).history(clearance_id)])


@clearance_app.command("levels")
def clearance_levels(nation: Annotated[str | None, typer.Argument()] = None) -> None:
    """Vetting levels, what they grant, validity, and the sources (verified or not)."""
    policy = default_policy()
    out = {}
    for n, scheme in sorted(policy.schemes.items()):
        if nation and n != nation.upper():
            continue
        out[n] = {
            code: {
                "grants": lv.grants,
                "grants_verified": lv.grants_source.verified,
                "validity_years": lv.validity_years,
                "continuous_vetting": lv.continuous_vetting,
                "validity_verified": lv.validity_source.verified,
                "source": lv.validity_source.source,
            }
            for code, lv in scheme.levels.items()
        }
    _print(out)


@clearance_app.command("recognises")
def clearance_recognises(issuer: str, information: str, at: At = None) -> None:
    """Whether ISSUER's clearances count for INFORMATION nation's information."""
    r = recognition(issuer.upper(), information.upper(), _when(at))
    _print(
        {
            "recognised": r.recognised,
            "reason": r.reason,
            "agreement": r.agreement.id if r.agreement else None,
            "verified": r.agreement.verified if r.agreement else None,
        }
    )


def register(app: typer.Typer) -> None:
    app.add_typer(person_app, name="person")
    app.add_typer(clearance_app, name="clearance")
