"""The one way vetting state changes: every change goes through a function here.

Each change is validated by the pure core, written in one database transaction, and
reported to the :class:`~relto.events.AuditSink` *inside* that transaction, before it
commits: if the sink refuses, nothing is stored (no unaudited change). Every change
takes the acting person and ``at`` (timezone-aware), so tests never sleep and
nothing reads the clock here.

Audit event kinds: ``vetting.person.registered``, ``vetting.person.updated``,
``vetting.clearance.sponsored``, ``vetting.clearance.transition``,
``vetting.clearance.report_expected``, ``vetting.clearance.report_filed``,
``vetting.clearance.incident``. Payloads carry identifiers, statuses, dates and the
reason given; never more personal detail than that.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from relto.authz import Authorizer, Grantee, Scope
from relto.errors import AccessDenied, NotFound, ReltoError
from relto.events import AuditSink
from relto.store.db import Database
from relto.store.vetting import SqlVettingRepository
from relto.vetting._access import PERMISSIONS, Action, action_for, authorise
from relto.vetting._clearance import (
    Clearance,
    ClearanceEvent,
    EventKind,
    IncidentKind,
    ObligationKind,
)
from relto.vetting._data import VettingPolicy, default_policy
from relto.vetting._lifecycle import Status
from relto.vetting._people import Person, check_id
from relto.vetting.errors import VettingInputError

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "ConcurrentChange",
    "Page",
    "VettingService",
    "event_payload",
]

DEFAULT_PAGE = 50
MAX_PAGE = 200


class ConcurrentChange(ReltoError):
    """Someone else changed the same clearance at the same time; retry."""

    code = "concurrent_change"


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_after: str | None


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise VettingInputError(f"limit must be 1-{MAX_PAGE}")
    return limit


def event_payload(c: Clearance, e: ClearanceEvent) -> dict[str, Any]:
    """The audit payload of one clearance event (JSON-serialisable)."""
    out: dict[str, Any] = {
        "clearance_id": c.id,
        "person_id": c.person_id,
        "nation": c.nation,
        "level": c.level,
        "seq": e.seq,
        "kind": e.kind.value,
        "at": e.at.isoformat(),
        "actor": e.actor,
        "reason": e.reason,
    }
    optional: Mapping[str, Any] = {
        "from_status": e.from_status.value if e.from_status else None,
        "to_status": e.to_status.value if e.to_status else None,
        "valid_until": e.valid_until.isoformat() if e.valid_until else None,
        "obligation": e.obligation.value if e.obligation else None,
        "occurred_on": e.occurred_on.isoformat() if e.occurred_on else None,
        "due_at": e.due_at.isoformat() if e.due_at else None,
        "incident": e.incident.value if e.incident else None,
        "ref": e.ref,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


_KIND = {
    EventKind.TRANSITION: "vetting.clearance.transition",
    EventKind.OBLIGATION_EXPECTED: "vetting.clearance.report_expected",
    EventKind.OBLIGATION_REPORTED: "vetting.clearance.report_filed",
    EventKind.INCIDENT: "vetting.clearance.incident",
}


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


class VettingService:
    """People and clearances, stored and audited."""

    def __init__(self, db: Database, sink: AuditSink, policy: VettingPolicy | None = None) -> None:
        self.db = db
        self.sink = sink
        self.policy = policy or default_policy()
        self._authz = Authorizer(sink)

    # -- people -----------------------------------------------------------------------

    def register_person(
        self, person: Person, *, at: dt.datetime, actor: str, caller: Grantee | None = None
    ) -> Person:
        """Add a person; an existing id is refused (use :meth:`update_person`)."""
        actor = self._who(actor, caller, Action.WRITE_PERSON, frozenset({person.home_nation}))
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            if repo.get_person(person.id) is not None:
                raise VettingInputError(f"person {person.id} already exists")
            repo.put_person(person, at)
            self.sink.record("vetting.person.registered", _person_payload(person, at, actor))
        return person

    def update_person(
        self, person: Person, *, at: dt.datetime, actor: str, caller: Grantee | None = None
    ) -> Person:
        """Replace a person's details (nationalities, roles, projects...)."""
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            old = repo.get_person(person.id)
            if old is None:
                raise NotFound("no such person")
            # Authority over the record as it stands: no taking over another nation's person.
            nations = frozenset({old.home_nation})
            actor = self._who(actor, caller, Action.WRITE_PERSON, nations)
            repo.put_person(person, at)
            self.sink.record("vetting.person.updated", _person_payload(person, at, actor))
        return person

    def get_person(self, person_id: str, *, caller: Grantee | None = None) -> Person:
        with self.db.session() as s:
            p = SqlVettingRepository(s).get_person(person_id)
        if p is None:
            raise NotFound("no such person")
        if caller is not None:
            self._require(caller, Action.READ_PERSON, _person_nations(p), p.id)
        return p

    def list_people(
        self, *, limit: int | None = None, after: str | None = None, caller: Grantee | None = None
    ) -> Page:
        """A page of people (only those ``caller`` may read, when given)."""
        n = page_limit(limit)
        with self.db.session() as s:
            items = SqlVettingRepository(s).list_people(limit=n, after=after)
        nxt = items[-1].id if len(items) == n else None
        if caller is not None:
            items = [p for p in items if _may(caller, Action.READ_PERSON, _person_nations(p), p.id)]
        return Page(items, nxt)

    def all_people(self, cap: int = 10_000) -> list[Person]:
        """Every person on this node (the node itself asks: no caller), up to ``cap``."""
        people: list[Person] = []
        after: str | None = None
        while len(people) < cap:
            page = self.list_people(limit=MAX_PAGE, after=after)
            people.extend(page.items)
            if page.next_after is None:
                break
            after = page.next_after
        return people[:cap]

    # -- clearances -------------------------------------------------------------------

    def sponsor_clearance(
        self,
        *,
        person_id: str,
        nation: str,
        level: str,
        sponsor: str,
        at: dt.datetime,
        actor: str,
        reason: str,
        caveats: frozenset[str] = frozenset(),
        clearance_id: str | None = None,
        caller: Grantee | None = None,
    ) -> Clearance:
        """Open a clearance at ``sponsored`` for an existing person."""
        actor = self._who(actor, caller, Action.SPONSOR, frozenset({nation}), person_id)
        c = Clearance.sponsor_new(
            id=clearance_id or _new_id("clr"),
            person_id=person_id,
            nation=nation,
            level=level,
            sponsor=sponsor,
            at=at,
            actor=actor,
            reason=reason,
            policy=self.policy,
            caveats=caveats,
        )
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            holder = repo.get_person(person_id)
            if holder is None:
                raise NotFound("no such person")
            if caller is not None:
                # Only for a person the caller's nation manages (or who is its national).
                self._require(caller, Action.READ_PERSON, _person_nations(holder), holder.id)
            if repo.get_clearance(c.id) is not None:
                raise VettingInputError(f"clearance {c.id} already exists")
            repo.add_clearance(c)
            payload = event_payload(c, c.events[0])
            payload["sponsor"] = c.sponsor
            payload["classification"] = c.classification
            payload["caveats"] = sorted(c.caveats)
            self.sink.record("vetting.clearance.sponsored", payload)
        return c

    def get_clearance(self, clearance_id: str, *, caller: Grantee | None = None) -> Clearance:
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            c = repo.get_clearance(clearance_id)
            if c is None:
                raise NotFound("no such clearance")
            if caller is not None:
                self._require(caller, Action.READ, self._read_nations(repo, c), c.person_id)
        return c

    @staticmethod
    def _read_nations(repo: SqlVettingRepository, c: Clearance) -> frozenset[str]:
        p = repo.get_person(c.person_id)
        return frozenset({c.nation}) | (_person_nations(p) if p else frozenset())

    def list_clearances(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        person_id: str | None = None,
        caller: Grantee | None = None,
    ) -> Page:
        """A page of clearances (only those ``caller`` may read, when given)."""
        n = page_limit(limit)
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            items = repo.list_clearances(limit=n, after=after, person_id=person_id)
            nxt = items[-1].id if len(items) == n else None
            if caller is not None:
                people = repo.get_people(c.person_id for c in items)  # one query per page

                def nations(c: Clearance) -> frozenset[str]:
                    p = people.get(c.person_id)
                    return frozenset({c.nation}) | (_person_nations(p) if p else frozenset())

                items = [c for c in items if _may(caller, Action.READ, nations(c), c.person_id)]
        return Page(items, nxt)

    def clearance_expiries(self, at: dt.datetime, within: dt.timedelta) -> tuple[int, int]:
        """``(expired, expiring)`` as of ``at``: granted or interim clearances past
        their validity date that nobody renewed or closed, and those whose validity
        ends within ``within``. Counts only -- for the node's metrics, which name
        no one -- so no caller is asked for."""
        with self.db.session() as s:
            return SqlVettingRepository(s).expiry_counts(at, at + within)

    def history(
        self, clearance_id: str, *, caller: Grantee | None = None
    ) -> tuple[ClearanceEvent, ...]:
        return self.get_clearance(clearance_id, caller=caller).events

    def transition(
        self,
        clearance_id: str,
        to: Status,
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
        valid_until: dt.datetime | None = None,
        caller: Grantee | None = None,
    ) -> Clearance:
        """Move a clearance through its lifecycle (see the transition table)."""
        to = Status(to)
        return self._change(
            clearance_id,
            caller,
            action_for(to),
            actor,
            lambda c, who: c.transition(
                to, at=at, actor=who, reason=reason, policy=self.policy, valid_until=valid_until
            ),
        )

    def expect_report(
        self,
        clearance_id: str,
        kind: ObligationKind,
        *,
        occurred_on: dt.date,
        at: dt.datetime,
        actor: str,
        reason: str,
        caller: Grantee | None = None,
    ) -> Clearance:
        """Record that a report is owed; unfiled by its deadline it puts the clearance
        under review at decision time."""
        kind = ObligationKind(kind)
        return self._change(
            clearance_id,
            caller,
            Action.SUPERVISE,
            actor,
            lambda c, who: c.expect_report(
                kind, occurred_on=occurred_on, at=at, actor=who, reason=reason, policy=self.policy
            ),
        )

    def file_report(
        self,
        clearance_id: str,
        kind: ObligationKind,
        *,
        occurred_on: dt.date,
        at: dt.datetime,
        actor: str,
        reason: str,
        ref: int | None = None,
        caller: Grantee | None = None,
    ) -> Clearance:
        """File a foreign travel / contact / change-of-circumstances report."""
        kind = ObligationKind(kind)
        return self._change(
            clearance_id,
            caller,
            Action.FILE_REPORT,
            actor,
            lambda c, who: c.file_report(
                kind,
                occurred_on=occurred_on,
                at=at,
                actor=who,
                reason=reason,
                policy=self.policy,
                ref=ref,
            ),
        )

    def record_incident(
        self,
        clearance_id: str,
        kind: IncidentKind,
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
        caller: Grantee | None = None,
    ) -> Clearance:
        """Record a security breach, infringement or violation."""
        kind = IncidentKind(kind)
        return self._change(
            clearance_id,
            caller,
            Action.SUPERVISE,
            actor,
            lambda c, who: c.record_incident(kind, at=at, actor=who, reason=reason),
        )

    def _change(
        self, clearance_id: str, caller: Grantee | None, action: Action, actor: str, step: Any
    ) -> Clearance:
        try:
            with self.db.session() as s:
                repo = SqlVettingRepository(s)
                before = repo.get_clearance(clearance_id)
                if before is None:
                    raise NotFound("no such clearance")
                if caller is not None:
                    # Someone who may not even read it learns nothing ("not found").
                    self._require(
                        caller, Action.READ, self._read_nations(repo, before), before.person_id
                    )
                who = self._who(actor, caller, action, frozenset({before.nation}), before.person_id)
                after: Clearance = step(before, who)
                new = after.events[len(before.events) :]
                repo.append_events(after.id, new)
                for e in new:
                    self.sink.record(_KIND[e.kind], event_payload(after, e))
        except IntegrityError:
            raise ConcurrentChange(
                "the clearance was changed by someone else at the same time; reload and retry"
            ) from None
        return after

    def _require(
        self, caller: Grantee, action: Action, nations: frozenset[str], subject: str | None
    ) -> None:
        """The authorisation point's answer, recorded; a denial raises AccessDenied."""
        self._authz.require(
            caller, PERMISSIONS[action], Scope(nations, subject), target=subject or ""
        )

    def _who(
        self,
        actor: str,
        caller: Grantee | None,
        action: Action,
        nations: frozenset[str],
        subject: str | None = None,
    ) -> str:
        """The actor to record: the authenticated caller when there is one."""
        if caller is None:
            return check_id(actor, "actor")
        self._require(caller, action, nations, subject)
        return caller.person_id


def _person_nations(p: Person) -> frozenset[str]:
    return frozenset({p.home_nation}) | p.nationalities


def _may(caller: Grantee, action: Action, nations: frozenset[str], subject: str | None) -> bool:
    try:
        authorise(caller, action, nations, subject)
    except AccessDenied:
        return False
    return True


def _person_payload(p: Person, at: dt.datetime, actor: str) -> dict[str, Any]:
    return {
        "person_id": p.id,
        "at": at.isoformat(),
        "actor": actor,
        "nationalities": sorted(p.nationalities),
        "home_nation": p.home_nation,
        "organisation": p.organisation,
        "roles": sorted(r.value for r in p.roles),
        "projects": [m.project for m in p.projects],
    }
