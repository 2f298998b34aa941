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

from relto.errors import NotFound, ReltoError
from relto.events import AuditSink
from relto.store.db import Database
from relto.store.vetting import SqlVettingRepository
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

    # -- people -----------------------------------------------------------------------

    def register_person(self, person: Person, *, at: dt.datetime, actor: str) -> Person:
        """Add a person; an existing id is refused (use :meth:`update_person`)."""
        check_id(actor, "actor")
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            if repo.get_person(person.id) is not None:
                raise VettingInputError(f"person {person.id} already exists")
            repo.put_person(person, at)
            self.sink.record("vetting.person.registered", _person_payload(person, at, actor))
        return person

    def update_person(self, person: Person, *, at: dt.datetime, actor: str) -> Person:
        """Replace a person's details (nationalities, roles, projects...)."""
        check_id(actor, "actor")
        with self.db.session() as s:
            repo = SqlVettingRepository(s)
            if repo.get_person(person.id) is None:
                raise NotFound("no such person")
            repo.put_person(person, at)
            self.sink.record("vetting.person.updated", _person_payload(person, at, actor))
        return person

    def get_person(self, person_id: str) -> Person:
        with self.db.session() as s:
            p = SqlVettingRepository(s).get_person(person_id)
        if p is None:
            raise NotFound("no such person")
        return p

    def list_people(self, *, limit: int | None = None, after: str | None = None) -> Page:
        n = page_limit(limit)
        with self.db.session() as s:
            items = SqlVettingRepository(s).list_people(limit=n, after=after)
        return Page(items, items[-1].id if len(items) == n else None)

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
    ) -> Clearance:
        """Open a clearance at ``sponsored`` for an existing person."""
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
            if repo.get_person(person_id) is None:
                raise NotFound("no such person")
            if repo.get_clearance(c.id) is not None:
                raise VettingInputError(f"clearance {c.id} already exists")
            repo.add_clearance(c)
            payload = event_payload(c, c.events[0])
            payload["sponsor"] = c.sponsor
            payload["classification"] = c.classification
            payload["caveats"] = sorted(c.caveats)
            self.sink.record("vetting.clearance.sponsored", payload)
        return c

    def get_clearance(self, clearance_id: str) -> Clearance:
        with self.db.session() as s:
            c = SqlVettingRepository(s).get_clearance(clearance_id)
        if c is None:
            raise NotFound("no such clearance")
        return c

    def list_clearances(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        person_id: str | None = None,
    ) -> Page:
        n = page_limit(limit)
        with self.db.session() as s:
            items = SqlVettingRepository(s).list_clearances(
                limit=n, after=after, person_id=person_id
            )
        return Page(items, items[-1].id if len(items) == n else None)

    def history(self, clearance_id: str) -> tuple[ClearanceEvent, ...]:
        return self.get_clearance(clearance_id).events

    def transition(
        self,
        clearance_id: str,
        to: Status,
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
        valid_until: dt.datetime | None = None,
    ) -> Clearance:
        return self._change(
            clearance_id,
            lambda c: c.transition(
                Status(to),
                at=at,
                actor=actor,
                reason=reason,
                policy=self.policy,
                valid_until=valid_until,
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
    ) -> Clearance:
        return self._change(
            clearance_id,
            lambda c: c.expect_report(
                ObligationKind(kind),
                occurred_on=occurred_on,
                at=at,
                actor=actor,
                reason=reason,
                policy=self.policy,
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
    ) -> Clearance:
        return self._change(
            clearance_id,
            lambda c: c.file_report(
                ObligationKind(kind),
                occurred_on=occurred_on,
                at=at,
                actor=actor,
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
    ) -> Clearance:
        return self._change(
            clearance_id,
            lambda c: c.record_incident(IncidentKind(kind), at=at, actor=actor, reason=reason),
        )

    def _change(self, clearance_id: str, step: Any) -> Clearance:
        try:
            with self.db.session() as s:
                repo = SqlVettingRepository(s)
                before = repo.get_clearance(clearance_id)
                if before is None:
                    raise NotFound("no such clearance")
                after: Clearance = step(before)
                new = after.events[len(before.events) :]
                repo.append_events(after.id, new)
                for e in new:
                    self.sink.record(_KIND[e.kind], event_payload(after, e))
        except IntegrityError:
            raise ConcurrentChange(
                "the clearance was changed by someone else at the same time; reload and retry"
            ) from None
        return after


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
