"""Clearances: who granted what to whom, and what it is worth at a given moment.

A :class:`Clearance` is an immutable value: its identity, and the ordered tuple of
every event that ever happened to it. Nothing is stored as "current status": the
status at any moment is computed from the events up to that moment and the validity
date (:meth:`Clearance.status_at`). Changing a clearance returns a new value with one
or more events appended; events are never edited or removed, and an event may not be
dated before the last one (no back-dating).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from relto.vetting._data import LevelInfo, VettingPolicy
from relto.vetting._lifecycle import ACTIVE, FINAL, Status, is_legal
from relto.vetting._people import check_id, check_nation, check_text
from relto.vetting._time import check_date, utc
from relto.vetting.errors import IllegalTransition, VettingInputError

__all__ = [
    "AUTOMATIC_ACTOR",
    "Clearance",
    "ClearanceEvent",
    "Currency",
    "EventKind",
    "IncidentKind",
    "NotCurrent",
    "ObligationKind",
    "business_deadline",
    "expiry_after",
]

#: The actor recorded for transitions relto makes itself (late report, incident).
AUTOMATIC_ACTOR = "relto"
_CAVEAT = re.compile(r"^[A-Z0-9][A-Z0-9 _/-]{0,31}$")
_MAX_EVENTS = 10_000
_MAX_REASON = 1000


class EventKind(StrEnum):
    TRANSITION = "transition"
    OBLIGATION_EXPECTED = "obligation_expected"
    OBLIGATION_REPORTED = "obligation_reported"
    INCIDENT = "incident"


class ObligationKind(StrEnum):
    FOREIGN_TRAVEL = "foreign_travel"
    FOREIGN_CONTACT = "foreign_contact"
    CHANGE_OF_CIRCUMSTANCES = "change_of_circumstances"


class IncidentKind(StrEnum):
    """Security incidents, in increasing gravity (PSR/PSPF terms)."""

    BREACH = "breach"
    INFRINGEMENT = "infringement"
    VIOLATION = "violation"


class NotCurrent(StrEnum):
    """Why a clearance does not count now (a stable code for the decision engine)."""

    NOT_GRANTED = "not_granted"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    UNDER_REVIEW = "under_review"
    REVOKED = "revoked"
    DENIED = "denied"
    LAPSED = "lapsed"


_utc = utc


def _midnight(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)


def expiry_after(granted_at: dt.datetime, years: int) -> dt.datetime:
    """Midnight UTC at the start of the same calendar date ``years`` later.

    A grant on 29 February expires on 28 February (the earlier date: fail closed).
    """
    d = _utc(granted_at).date()
    try:
        end = d.replace(year=d.year + years)
    except ValueError:
        end = d.replace(year=d.year + years, day=28)
    return _midnight(end)


def business_deadline(occurred_on: dt.date, business_days: int) -> dt.datetime:
    """The instant a report becomes late: the end (UTC) of the Nth business day after.

    Business days are Monday to Friday; the day of the event itself is day 0.
    """
    d = occurred_on
    counted = 0
    while counted < business_days:
        d += dt.timedelta(days=1)
        if d.weekday() < 5:
            counted += 1
    return _midnight(d + dt.timedelta(days=1))


@dataclass(frozen=True)
class ClearanceEvent:
    """One immutable entry of a clearance's history."""

    seq: int
    kind: EventKind
    at: dt.datetime
    actor: str
    reason: str
    from_status: Status | None = None
    to_status: Status | None = None
    valid_until: dt.datetime | None = None
    obligation: ObligationKind | None = None
    occurred_on: dt.date | None = None
    due_at: dt.datetime | None = None
    incident: IncidentKind | None = None
    ref: int | None = None


@dataclass(frozen=True)
class _State:
    recorded: Status | None
    effective: Status | None
    until: dt.datetime | None
    overdue: tuple[ClearanceEvent, ...]
    open: tuple[ClearanceEvent, ...]


@dataclass(frozen=True)
class Currency:
    """Whether a clearance counts at a moment, and if not, why (code + sentence)."""

    current: bool
    status: Status | None
    code: NotCurrent | None
    reason: str | None


@dataclass(frozen=True)
class Clearance:
    """A clearance granted (or being processed) by ``nation``'s vetting authority.

    ``level`` is the level in that nation's scheme (e.g. ``NV1``); ``classification``
    is the classification name it grants access to in that nation's SPIF (e.g.
    ``SECRET``), taken from the vetting data when the clearance was sponsored.
    ``caveats`` are the caveats held (e.g. ``SCI``).
    """

    id: str
    person_id: str
    nation: str
    level: str
    classification: str
    caveats: frozenset[str]
    sponsor: str
    events: tuple[ClearanceEvent, ...]

    # -- creation -----------------------------------------------------------------

    @classmethod
    def sponsor_new(
        cls,
        *,
        id: str,
        person_id: str,
        nation: str,
        level: str,
        sponsor: str,
        at: dt.datetime,
        actor: str,
        reason: str,
        policy: VettingPolicy,
        caveats: frozenset[str] = frozenset(),
    ) -> Clearance:
        """Open a clearance at ``sponsored`` (the only way one comes into being)."""
        check_id(id, "clearance id")
        check_id(person_id, "person id")
        check_nation(nation, "issuing nation")
        info = policy.level(nation, level)
        check_text(sponsor, "sponsor")
        _check_caveats(caveats)
        first = ClearanceEvent(
            seq=1,
            kind=EventKind.TRANSITION,
            at=_utc(at),
            actor=_actor(actor),
            reason=_reason(reason),
            from_status=None,
            to_status=Status.SPONSORED,
        )
        return cls(id, person_id, nation, level, info.grants, frozenset(caveats), sponsor, (first,))

    # -- reading ------------------------------------------------------------------

    @property
    def created_at(self) -> dt.datetime:
        return self.events[0].at

    @property
    def last_event_at(self) -> dt.datetime:
        return self.events[-1].at

    def _replay(self, at: dt.datetime) -> _State:
        """One pass over the history up to ``at`` (events are in time order)."""
        at = _utc(at)
        recorded: Status | None = None
        until: dt.datetime | None = None
        expected: dict[int, ClearanceEvent] = {}
        for e in self.events:
            if e.at > at:
                break
            if e.kind is EventKind.TRANSITION:
                recorded = e.to_status
                if e.to_status in ACTIVE:
                    until = e.valid_until
            elif e.kind is EventKind.OBLIGATION_EXPECTED:
                expected[e.seq] = e
            elif e.kind is EventKind.OBLIGATION_REPORTED and e.ref is not None:
                expected.pop(e.ref, None)
        overdue = tuple(e for e in expected.values() if e.due_at is not None and at >= e.due_at)
        if recorded is None or recorded in FINAL:
            effective = recorded
        elif until is not None and at >= until:
            effective = Status.EXPIRED
        elif recorded in ACTIVE and overdue:
            effective = Status.UNDER_REVIEW
        else:
            effective = recorded
        return _State(recorded, effective, until, overdue, tuple(expected.values()))

    def recorded_status_at(self, at: dt.datetime) -> Status | None:
        """The last recorded status at ``at`` (``None`` before the clearance existed)."""
        return self._replay(at).recorded

    def valid_until_at(self, at: dt.datetime) -> dt.datetime | None:
        """The validity date in force at ``at`` (``None``: no fixed end)."""
        return self._replay(at).until

    def overdue_reports_at(self, at: dt.datetime) -> list[ClearanceEvent]:
        """Expected reports not filed by their deadline, as of ``at``."""
        return list(self._replay(at).overdue)

    def open_expectations_at(self, at: dt.datetime) -> list[ClearanceEvent]:
        return list(self._replay(at).open)

    def status_at(self, at: dt.datetime) -> Status | None:
        """The status at ``at``, with expiry and overdue reports applied.

        Past its validity date a clearance is ``expired`` (from that instant on);
        an active clearance with an overdue report is ``under_review``.
        """
        return self._replay(at).effective

    def currency(self, at: dt.datetime, policy: VettingPolicy) -> Currency:
        """Whether the clearance counts at ``at`` and, if not, a code and a sentence."""
        state = self._replay(at)
        status = state.effective
        what = f"the {self.nation} {self.level} clearance"
        if status in ACTIVE:
            return Currency(True, status, None, None)
        if status is Status.UNDER_REVIEW:
            overdue = state.overdue
            if overdue and overdue[0].obligation is not None and overdue[0].due_at is not None:
                kind = overdue[0].obligation.value.replace("_", " ")
                why = f"a {kind} report due {overdue[0].due_at:%Y-%m-%d} has not been filed"
            else:
                why = "it is under review"
            if not policy.under_review_suspends(self.nation):
                return Currency(True, status, None, None)
            return Currency(
                False,
                status,
                NotCurrent.UNDER_REVIEW,
                f"{what} is under review ({why}) and {self.nation} policy suspends access "
                "during review",
            )
        if status is Status.EXPIRED:
            until = state.until
            when = f" on {until:%Y-%m-%d %H:%M} UTC" if until else ""
            return Currency(False, status, NotCurrent.EXPIRED, f"{what} expired{when}")
        if status is Status.SUSPENDED:
            return Currency(False, status, NotCurrent.SUSPENDED, f"{what} is suspended")
        if status is Status.REVOKED:
            return Currency(False, status, NotCurrent.REVOKED, f"{what} was revoked")
        if status is Status.DENIED:
            return Currency(False, status, NotCurrent.DENIED, f"{what} was denied")
        if status is Status.LAPSED:
            return Currency(
                False, status, NotCurrent.LAPSED, f"{what} lapsed because its sponsorship ended"
            )
        shown = "did not exist yet" if status is None else f"is still {status.value}"
        return Currency(
            False, status, NotCurrent.NOT_GRANTED, f"{what} has not been granted (it {shown})"
        )

    def is_current(self, at: dt.datetime, policy: VettingPolicy) -> bool:
        """Granted or interim and not expired at ``at``; under review counts only where
        the issuing nation's policy says review does not suspend access."""
        return self.currency(at, policy).current

    def not_current_reason(self, at: dt.datetime, policy: VettingPolicy) -> str | None:
        """A sentence saying why the clearance does not count at ``at`` (``None`` if it does)."""
        return self.currency(at, policy).reason

    # -- changing -----------------------------------------------------------------

    def _append(self, *events: ClearanceEvent) -> Clearance:
        if len(self.events) + len(events) > _MAX_EVENTS:
            raise VettingInputError("this clearance has too many events; sponsor a new one")
        return replace(self, events=self.events + events)

    def _check_time(self, at: dt.datetime) -> dt.datetime:
        at = _utc(at)
        if at < self.last_event_at:
            raise VettingInputError(
                "an event may not be dated before the clearance's last event (no back-dating)"
            )
        return at

    def transition(
        self,
        to: Status,
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
        policy: VettingPolicy,
        valid_until: dt.datetime | None = None,
    ) -> Clearance:
        """Move to ``to`` if the lifecycle allows it at ``at``; returns the new value."""
        if not isinstance(to, Status):
            raise TypeError("to must be a Status")
        at = self._check_time(at)
        frm = self.status_at(at)
        assert frm is not None  # the first event exists and is not after at
        if to is Status.EXPIRED:
            raise IllegalTransition("expired is computed from the validity date, never recorded")
        if not is_legal(frm, to):
            raise IllegalTransition(f"a clearance cannot go from {frm.value} to {to.value}")
        info = policy.level(self.nation, self.level)
        if valid_until is not None:
            valid_until = _utc(valid_until, "valid_until")
            if to not in ACTIVE:
                raise VettingInputError("valid_until can only be given when granting")
            if valid_until <= at:
                raise VettingInputError("valid_until must be after the grant")
        new_until: dt.datetime | None = None
        if frm in (Status.SUSPENDED, Status.UNDER_REVIEW) and to in ACTIVE:
            # Reinstatement returns to the status held before, never upgrades.
            before = self._last_active()
            if before is not to:
                raise IllegalTransition(
                    f"a clearance that was {before.value if before else 'never active'} "
                    f"cannot be reinstated as {to.value}"
                )
            current = self.valid_until_at(at)
            if valid_until is not None:
                # Reinstating may shorten validity, never extend it (that is revalidation).
                if current is not None and valid_until > current:
                    raise VettingInputError("reinstatement cannot extend valid_until")
                if current is None:
                    self._grant_expiry(info, at, valid_until)
            new_until = valid_until or current
        elif to is Status.GRANTED:
            new_until = self._grant_expiry(info, at, valid_until)
        elif to is Status.INTERIM:
            # An interim clearance may end earlier than a grant would, never later.
            if valid_until is not None and info.validity_years is not None:
                self._grant_expiry(info, at, valid_until)
            new_until = valid_until
        event = ClearanceEvent(
            seq=self.events[-1].seq + 1,
            kind=EventKind.TRANSITION,
            at=at,
            actor=_actor(actor),
            reason=_reason(reason),
            from_status=frm,
            to_status=to,
            valid_until=new_until,
        )
        return self._append(event)

    def _last_active(self) -> Status | None:
        for e in reversed(self.events):
            if e.kind is EventKind.TRANSITION and e.to_status in ACTIVE:
                return e.to_status
        return None

    @staticmethod
    def _grant_expiry(
        info: LevelInfo, at: dt.datetime, given: dt.datetime | None
    ) -> dt.datetime | None:
        if info.validity_years is not None:
            limit = expiry_after(at, info.validity_years)
            if given is not None and given > limit:
                raise VettingInputError(
                    f"valid_until is later than the {info.nation} {info.code} revalidation "
                    f"period of {info.validity_years} years allows"
                )
            return given or limit
        if info.needs_explicit_expiry and given is None:
            raise VettingInputError(
                f"{info.nation} {info.code} has no recorded revalidation period: "
                "give valid_until when granting"
            )
        return given

    def expect_report(
        self,
        kind: ObligationKind,
        *,
        occurred_on: dt.date,
        at: dt.datetime,
        actor: str,
        reason: str,
        policy: VettingPolicy,
    ) -> Clearance:
        """Record that a report is owed (e.g. travel approved, return on ``occurred_on``).

        If it is not filed by the scheme's deadline, the clearance is under review
        from that instant, at decision time, without any job running.
        """
        at = self._check_time(at)
        self._not_final(at)
        rule = policy.obligation(self.nation, ObligationKind(kind).value)
        event = ClearanceEvent(
            seq=self.events[-1].seq + 1,
            kind=EventKind.OBLIGATION_EXPECTED,
            at=at,
            actor=_actor(actor),
            reason=_reason(reason),
            obligation=ObligationKind(kind),
            occurred_on=_date(occurred_on),
            due_at=business_deadline(occurred_on, rule.business_days),
        )
        return self._append(event)

    def file_report(
        self,
        kind: ObligationKind,
        *,
        occurred_on: dt.date,
        at: dt.datetime,
        actor: str,
        reason: str,
        policy: VettingPolicy,
        ref: int | None = None,
    ) -> Clearance:
        """File a report. A late report puts an active clearance under review."""
        at = self._check_time(at)
        self._not_final(at)
        kind = ObligationKind(kind)
        occurred_on = _date(occurred_on)
        if occurred_on > at.date():
            raise VettingInputError("a report cannot be about an event after it is filed")
        if ref is not None:
            match = [e for e in self.open_expectations_at(at) if e.seq == ref]
            if not match or match[0].obligation is not kind:
                raise VettingInputError(f"no open {kind.value} expectation #{ref}")
        rule = policy.obligation(self.nation, kind.value)
        due = business_deadline(occurred_on, rule.business_days)
        seq = self.events[-1].seq + 1
        report = ClearanceEvent(
            seq=seq,
            kind=EventKind.OBLIGATION_REPORTED,
            at=at,
            actor=_actor(actor),
            reason=_reason(reason),
            obligation=kind,
            occurred_on=occurred_on,
            due_at=due,
            ref=ref,
        )
        out = self._append(report)
        recorded = self.recorded_status_at(at)
        if at >= due and recorded in ACTIVE and self.status_at(at) is not Status.EXPIRED:
            out = out._append(
                ClearanceEvent(
                    seq=seq + 1,
                    kind=EventKind.TRANSITION,
                    at=at,
                    actor=AUTOMATIC_ACTOR,
                    reason=f"{kind.value.replace('_', ' ')} report filed after its "
                    f"deadline of {due:%Y-%m-%d %H:%M} UTC",
                    from_status=recorded,
                    to_status=Status.UNDER_REVIEW,
                )
            )
        return out

    def record_incident(
        self,
        kind: IncidentKind,
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
    ) -> Clearance:
        """Record a security incident; an active clearance goes under review."""
        at = self._check_time(at)
        kind = IncidentKind(kind)
        seq = self.events[-1].seq + 1
        out = self._append(
            ClearanceEvent(
                seq=seq,
                kind=EventKind.INCIDENT,
                at=at,
                actor=_actor(actor),
                reason=_reason(reason),
                incident=kind,
            )
        )
        recorded = self.recorded_status_at(at)
        status = self.status_at(at)
        if recorded in ACTIVE and status is not Status.EXPIRED:
            out = out._append(
                ClearanceEvent(
                    seq=seq + 1,
                    kind=EventKind.TRANSITION,
                    at=at,
                    actor=AUTOMATIC_ACTOR,
                    reason=f"security {kind.value} recorded",
                    from_status=recorded,
                    to_status=Status.UNDER_REVIEW,
                )
            )
        return out

    def _not_final(self, at: dt.datetime) -> None:
        status = self.status_at(at)
        if status is None or status in FINAL:
            shown = status.value if status else "absent"
            raise IllegalTransition(f"nothing can be recorded on a clearance that is {shown}")


def _actor(actor: str) -> str:
    return check_id(actor, "actor")


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise VettingInputError("every change needs a reason")
    if len(reason) > _MAX_REASON:
        raise VettingInputError(f"reason must be at most {_MAX_REASON} characters")
    if any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in reason):
        raise VettingInputError("reason must not contain control characters")
    return reason


def _date(d: dt.date) -> dt.date:
    return check_date(d, "occurred_on")


def _check_caveats(caveats: frozenset[str]) -> None:
    if not isinstance(caveats, frozenset) or len(caveats) > 32:
        raise VettingInputError("caveats must be a set of at most 32 names")
    for c in caveats:
        if not isinstance(c, str) or not _CAVEAT.match(c):
            raise VettingInputError("a caveat must be 1-32 upper-case letters, digits, ' _/-'")
