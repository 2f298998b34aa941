"""The export-control hook: :class:`ExportControlCheck` answers the engine's
:class:`~relto.decisions.protocols.ExportCheck` with :mod:`relto.export_control`.

It builds one :class:`~relto.export_control.Transfer` per question:

- **recipient**: the export party whose id is the subject's id, with the engine's
  nationalities added to the party's (more nationalities never widen access). A
  subject with no party record is judged on the engine's nationalities alone, in
  an unknown location, with no organisation and no status: it fails closed.
- **sender**: the party the object's ``export`` block names as ``sender``. No
  sender, or one with no party record, fails closed (an unrecorded sender meets no
  §126.7(b)(2) condition and no licence names it).
- **place**: the recipient's location.
- **action**: the engine's action when export control knows it (``read``,
  ``download``, ``share``, ``ship``, ``manufacture``); any other action gives the
  subject the data, so it is judged as a ``read``.
- **re-transfer**: a ``share`` is a new transfer from the subject to a named
  recipient (:meth:`ExportControlCheck.retransfer_to`); a ``share`` with no named
  recipient is denied.

``check`` returns ``None`` when allowed, else every reason, each with its code.
Any error denies with a sentence saying the export facts could not be read.

A check remembers its answers (bounded), keyed by everything an answer depends on:
the subject's id and nationalities, the action as judged, the object's export data
(its item, sender and value; objects with equal data share answers), the time and
the re-transfer recipient. Its facts, parties, items and nationalities are read as
given and must not be changed afterwards: new facts need a new check. The parties
it builds (a recorded person with the engine's nationalities added) are remembered
the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from relto.decisions._model import Resource, Subject
from relto.export_control import (
    Action,
    ExportFacts,
    Party,
    PartyKind,
    Reason,
    Transfer,
    TransferDecision,
    decide_transfer,
)
from relto.export_control._parties import ObjectExport

__all__ = ["UNKNOWN_LOCATION", "ExportControlCheck"]

#: The location of a party relto has no record of (never an AUKUS territory).
UNKNOWN_LOCATION = "unknown"

#: Stands for the subject's id in a remembered answer: people whose export facts
#: are alike share one answer, and each reads it with their own id put back.
_SUBJECT = "\x00subject\x00"

_ACTIONS = {a.value: a for a in Action}
_READ = Action.READ.value

#: Answers one check remembers before it forgets them all.
MAX_REMEMBERED = 65_536

_Answer = tuple[TransferDecision, str | None]
_NO_DATA = ObjectExport(None)


def _statuses(p: Party) -> tuple[tuple[object, datetime, datetime], ...]:
    """A party's authorized-user statuses as the rules read them: regime and
    window (the identifier is the officer's reference, read by no rule)."""
    return tuple(sorted(((a.regime, a.valid_from, a.valid_until) for a in p.authorized), key=repr))


def _deny(code: str, sentence: str) -> TransferDecision:
    return TransferDecision(False, None, (Reason(code, sentence),))


@dataclass(frozen=True)
class ExportControlCheck:
    """``facts``: the officer's loaded facts; ``parties``: export parties by id;
    ``items``: each object's :class:`ObjectExport` by object id; ``nationalities``:
    what else is known of people with no party record (by id); ``recipient``: set
    by :meth:`retransfer_to` for a re-transfer."""

    facts: ExportFacts
    parties: Mapping[str, Party] = field(default_factory=dict)
    items: Mapping[str, ObjectExport] = field(default_factory=dict)
    nationalities: Mapping[str, frozenset[str]] = field(default_factory=dict)
    recipient: str | None = None
    _answers: dict[Hashable, _Answer] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _signatures: dict[int, tuple[ObjectExport, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _parties: dict[tuple[str, frozenset[str]], tuple[Party, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _classes: dict[tuple[str, frozenset[str]], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Each distinct class or export data signature as a small number, so that a
    #: remembered answer's key hashes a few ints, not the facts themselves.
    _numbers: dict[Hashable, int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Numbers handed out, never reused: a number kept across a forgetting names
    #: nothing else afterwards, so it can only miss.
    _counter: Iterator[int] = field(
        default_factory=itertools.count, init=False, repr=False, compare=False
    )

    def retransfer_to(self, recipient: str) -> ExportControlCheck:
        """The same check, where a ``share`` goes from the subject to ``recipient``."""
        return replace(self, recipient=recipient)

    def party(self, pid: str, extra: frozenset[str] = frozenset()) -> tuple[Party, bool]:
        """The party ``pid`` as transfers judge it (a recorded person with ``extra``
        nationalities added), and whether it is recorded."""
        return self._party(pid, extra)

    def _party(self, pid: str, extra: frozenset[str]) -> tuple[Party, bool]:
        """:meth:`party`, remembered: it depends on nothing else."""
        key = (pid, extra)
        try:
            got = self._parties.get(key)
        except TypeError:  # unhashable nationalities (not a frozenset): built afresh
            return self._make_party(pid, extra)
        if got is None:
            got = self._make_party(pid, extra)
            if len(self._parties) >= MAX_REMEMBERED:
                self._parties.clear()
            self._parties[key] = got
        return got

    def _make_party(self, pid: str, extra: frozenset[str]) -> tuple[Party, bool]:
        p = self.parties.get(pid)
        nats = extra | self.nationalities.get(pid, frozenset())
        if p is None:
            return Party(pid, PartyKind.PERSON, UNKNOWN_LOCATION, nats), False
        if p.kind is PartyKind.ORGANISATION:
            return p, True
        return replace(p, nationalities=p.nationalities | nats), True

    def _number(self, value: Hashable) -> int:
        got = self._numbers.get(value)
        if got is None:
            if len(self._numbers) >= MAX_REMEMBERED:
                # numbers are forgotten with the answers keyed by them
                self._numbers.clear()
                self._answers.clear()
                self._classes.clear()
                self._signatures.clear()
            # next() of a C iterator is atomic: two threads never get one number
            got = self._numbers[value] = next(self._counter)
        return got

    def _class(self, pid: str, extra: frozenset[str]) -> int:
        """What the export rules read of the subject as a party, with its id left
        out: a recorded person's every field but the id, and whether they are
        recorded. An organisation is judged by its id (licences name it), so it
        is its own class."""
        key = (pid, extra)
        got = self._classes.get(key)
        if got is None:
            got = self._number(self._class_of(pid, extra))
            if len(self._classes) >= MAX_REMEMBERED:
                self._classes.clear()
            self._classes[key] = got
        return got

    def _class_of(self, pid: str, extra: frozenset[str]) -> Hashable:
        party, known = self._party(pid, extra)
        if party.kind is PartyKind.PERSON:
            return (
                PartyKind.PERSON, party.location, party.nationalities, party.organisation_id,
                party.ddtc_registered, party.debarred, party.government_body_of,
                _statuses(party), known,
            )  # fmt: skip
        return (PartyKind.ORGANISATION, pid, known)

    @staticmethod
    def _signature(data: object) -> Hashable | None:
        """Export data decided alike: same type and ``repr`` (which tells a str from
        its StrEnum and ``1.0`` from ``1.00``); ``None`` when there is no sender,
        so an answer would name the object itself."""
        if not isinstance(data, ObjectExport) or data.sender is None:
            return None
        return (type(data), repr(data))

    def decide(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> TransferDecision:
        """The full decision (with its legal basis), failing closed on any error."""
        d = self._answer(subject, action, obj, at)[0]
        if d.allowed or not any(_SUBJECT in r.sentence for r in d.reasons):
            return d
        return replace(
            d,
            reasons=tuple(
                Reason(r.code, r.sentence.replace(_SUBJECT, subject.id)) for r in d.reasons
            ),
        )

    def _key(self, subject: Subject, action: str, obj: Resource, at: datetime) -> Hashable:
        """Everything the answer depends on, or ``None`` where the answer names the
        object (no sender recorded, a share with no recipient) and so is not shared.

        ``_decide`` reads of the subject only its id and nationalities, of the
        object only its id (to find its export data) and of the data its item,
        sender and value: objects whose data have the same type and ``repr``
        (which tells a str from its StrEnum and ``1.0`` from ``1.00``) are decided
        alike. The time keeps its zone, should a sentence ever print it. A share
        on a check with no re-transfer recipient is denied in words that name only
        the subject, so it is shared like any other answer."""
        act = action if action in _ACTIONS else _READ
        data = self.items.get(obj.id)
        if data is None:
            return None
        known = self._signatures.get(id(data))
        if known is None or known[0] is not data:
            signature = self._signature(data)
            if signature is None:
                return None
            if len(self._signatures) >= MAX_REMEMBERED:
                self._signatures.clear()
            known = self._signatures[id(data)] = (data, self._number(signature))
        if _SUBJECT in subject.id:
            return None  # an id that looks like the stand-in: decided afresh
        who = self._class(subject.id, subject.nationalities)
        return (who, act, known[1], at, at.tzinfo)

    def _answer(
        self,
        subject: Subject,
        action: str,
        obj: Resource,
        at: datetime,
        *,
        stand_in: bool | None = None,
    ) -> _Answer:
        """The decision and its ``check`` sentence, remembered under :meth:`_key`
        (a failure is never remembered)."""
        try:
            key = self._key(subject, action, obj, at)
            got = None if key is None else self._answers.get(key)
        except Exception:  # no key (odd data): decided afresh, as it always was
            key = got = None
        if got is not None:
            return got
        try:
            # remembered answers are made for the stand-in id, shared by the class
            use = key is not None if stand_in is None else stand_in
            d = self._decide(subject, action, obj, at, stand_in=use)
        except Exception:
            d = _deny(
                "export_facts_unreadable",
                "The export facts could not be read; the transfer is denied.",
            )
            key = None
        answer = (d, None if d.allowed else " ".join(f"{r.code}: {r.sentence}" for r in d.reasons))
        if key is not None:
            if len(self._answers) >= MAX_REMEMBERED:
                self._answers.clear()
            self._answers[key] = answer
        return answer

    def _subject_party(self, subject: Subject, stand_in: bool) -> tuple[Party, bool]:
        p, known = self._party(subject.id, subject.nationalities)
        if stand_in and p.kind is PartyKind.PERSON:
            p = replace(p, id=_SUBJECT)
        return p, known

    def _decide(
        self, subject: Subject, action: str, obj: Resource, at: datetime, *, stand_in: bool = False
    ) -> TransferDecision:
        act = _ACTIONS.get(action, Action.READ)
        data = self.items.get(obj.id, _NO_DATA)
        notes: list[Reason] = []
        if act is Action.SHARE:
            if self.recipient is None:
                who = _SUBJECT if stand_in else subject.id
                return _deny(
                    "retransfer_recipient_missing",
                    f"A share is a re-transfer from {who}; the request names no "
                    "recipient, so it cannot be judged.",
                )
            sender, known_s = self._subject_party(subject, stand_in)
            recipient, known_r = self._party(self.recipient, frozenset())
        else:
            recipient, known_r = self._subject_party(subject, stand_in)
            if data.sender is None:
                notes.append(
                    Reason(
                        "sender_not_recorded",
                        f"Object {obj.id} names no export sender; an unrecorded sender "
                        "meets no condition.",
                    )
                )
                sender, known_s = (
                    Party(
                        f"unrecorded sender of {obj.id}", PartyKind.ORGANISATION, UNKNOWN_LOCATION
                    ),
                    True,
                )
            else:
                sender, known_s = self._party(data.sender, frozenset())
        for p, known in ((sender, known_s), (recipient, known_r)):
            if not known:
                notes.append(
                    Reason(
                        "party_not_recorded",
                        f"{p.id} has no export party record; judged on the nationalities "
                        "relto knows only.",
                    )
                )
        transfer = Transfer(
            item=data.item,
            sender=sender,
            recipient=recipient,
            action=act,
            place=recipient.location,
            at=at,
            value=data.value,
        )
        d = decide_transfer(transfer, self.facts)
        if d.allowed:
            return d
        return TransferDecision(False, None, (*notes, *d.reasons))

    def legal_basis(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
        """The legal basis of an allowed request (``None``: denied)."""
        d = self.decide(subject, action, obj, at)
        return d.legal_basis if d.allowed else None

    def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
        sentence = self._answer(subject, action, obj, at)[1]
        if sentence is None or _SUBJECT not in sentence:
            return sentence
        return sentence.replace(_SUBJECT, subject.id)

    def subject_class(self, subject: Subject) -> Hashable | None:
        """What the export rules read of ``subject`` as a party, id left out (equal
        for people whose answers differ only by their id); ``None``: judge alone."""
        if _SUBJECT in subject.id:
            return None
        try:
            return self._class_of(subject.id, subject.nationalities)
        except TypeError:
            return None

    def object_signature(self, obj: Resource) -> Hashable | None:
        """What the export rules read of ``obj`` (its export data by type and
        ``repr``); ``None`` when an answer would name the object itself."""
        return self._signature(self.items.get(obj.id))

    #: The stand-in for the subject's id in :meth:`raw_answer`'s sentences.
    stand_in = _SUBJECT

    def raw_answer(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> tuple[str | None, str | None]:
        """:meth:`export_answer` as made for the subject's class: its sentence may
        hold :attr:`stand_in` where the subject's id goes. Every subject of the
        same :meth:`subject_class` with an object of the same
        :meth:`object_signature` gets this answer for the same action and time."""
        d, sentence = self._answer(subject, action, obj, at, stand_in=True)
        return (d.legal_basis if d.allowed else None), sentence

    def export_answer(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> tuple[str | None, str | None]:
        """:meth:`legal_basis` and :meth:`check` in one look-up: ``(basis, None)``
        when allowed, ``(None, sentence)`` when denied."""
        d, sentence = self._answer(subject, action, obj, at)
        if sentence is not None and _SUBJECT in sentence:
            sentence = sentence.replace(_SUBJECT, subject.id)
        return (d.legal_basis if d.allowed else None), sentence
