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

from collections.abc import Hashable, Mapping
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

_ACTIONS = {a.value: a for a in Action}
_READ = Action.READ.value
_SHARE = Action.SHARE.value

#: Answers one check remembers before it forgets them all.
MAX_REMEMBERED = 65_536

_Answer = tuple[TransferDecision, str | None]
_NO_DATA = ObjectExport(None)


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
    _signatures: dict[int, tuple[ObjectExport, Hashable]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _parties: dict[tuple[str, frozenset[str]], tuple[Party, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def retransfer_to(self, recipient: str) -> ExportControlCheck:
        """The same check, where a ``share`` goes from the subject to ``recipient``."""
        return replace(self, recipient=recipient)

    def _party(self, pid: str, extra: frozenset[str]) -> tuple[Party, bool]:
        """The party ``pid`` with ``extra`` nationalities, and whether it is recorded
        (remembered: it depends on nothing else)."""
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

    def decide(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> TransferDecision:
        """The full decision (with its legal basis), failing closed on any error."""
        return self._answer(subject, action, obj, at)[0]

    def _key(self, subject: Subject, action: str, obj: Resource, at: datetime) -> Hashable:
        """Everything the answer depends on, or ``None`` where the answer names the
        object (no sender recorded, a share with no recipient) and so is not shared.

        ``_decide`` reads of the subject only its id and nationalities, of the
        object only its id (to find its export data) and of the data its item,
        sender and value: objects whose data have the same type and ``repr``
        (which tells a str from its StrEnum and ``1.0`` from ``1.00``) are decided
        alike. The time keeps its zone, should a sentence ever print it."""
        act = action if action in _ACTIONS else _READ
        if act == _SHARE and self.recipient is None:
            return None
        data = self.items.get(obj.id)
        if not isinstance(data, ObjectExport) or data.sender is None:
            return None
        known = self._signatures.get(id(data))
        if known is None or known[0] is not data:
            if len(self._signatures) >= MAX_REMEMBERED:
                self._signatures.clear()
            known = self._signatures[id(data)] = (data, (type(data), repr(data)))
        return (subject.id, subject.nationalities, act, known[1], at, at.tzinfo)

    def _answer(self, subject: Subject, action: str, obj: Resource, at: datetime) -> _Answer:
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
            d = self._decide(subject, action, obj, at)
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

    def _decide(
        self, subject: Subject, action: str, obj: Resource, at: datetime
    ) -> TransferDecision:
        act = _ACTIONS.get(action, Action.READ)
        data = self.items.get(obj.id, _NO_DATA)
        notes: list[Reason] = []
        if act is Action.SHARE:
            if self.recipient is None:
                return _deny(
                    "retransfer_recipient_missing",
                    f"A share of {obj.id} is a re-transfer from {subject.id}; "
                    "the request names no recipient, so it cannot be judged.",
                )
            sender, known_s = self._party(subject.id, subject.nationalities)
            recipient, known_r = self._party(self.recipient, frozenset())
        else:
            recipient, known_r = self._party(subject.id, subject.nationalities)
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
        return self._answer(subject, action, obj, at)[1]
