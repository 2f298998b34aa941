"""Export control in this node's decisions: the engine's export hook over the facts
the export-control office stored, and the transfer record of an allowed release.

The stored facts are read back through the same strict loaders that validated
them when an officer recorded them. If they cannot be read (a bug, a hand-edited
row), every classified object is denied with a sentence saying so: fail closed.
An object with no stored classification is not export controlled here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from relto.decisions import Decision, ExportCheck, Resource, Subject
from relto.decisions import ExportFacts as EngineExport
from relto.decisions.export_hook import ExportControlCheck
from relto.export_control import ExportFactsError, load_facts
from relto.export_control._parties import ObjectExport, load_item, load_parties
from relto.export_control.records import TransferRecord
from relto.store.export_control import StoredFacts

__all__ = ["ExportView", "export_view", "transfer_record"]

_UNREADABLE = (
    "export_facts_unreadable: The export facts stored on this node could not be read; "
    "the transfer is denied."
)


class _Unreadable:
    """Denies every classified object, naming no basis."""

    def check(self, subject: Subject, action: str, obj: Resource, at: datetime) -> str | None:
        return _UNREADABLE

    def legal_basis(self, subject: Subject, action: str, obj: Resource, at: datetime) -> None:
        return None


@dataclass(frozen=True)
class ExportView:
    """The hook for the engine, and which objects are classified (by id)."""

    check: ExportCheck | None
    flags: Mapping[str, EngineExport]

    def tag(self, obj: Resource) -> Resource:
        """``obj`` marked export controlled when it is classified here."""
        flag = self.flags.get(obj.id)
        if flag is None or obj.export is not None:
            return obj
        return _with_export(obj, flag)


def _with_export(obj: Resource, flag: EngineExport) -> Resource:
    return replace(obj, export=flag)


def _flag(item: ObjectExport) -> EngineExport:
    c = item.item
    if c is None:
        return EngineExport("unclassified", "no classification")
    if not c.controlled:
        return EngineExport("none", "not controlled")
    return EngineExport(str(c.regime), c.designator or "incomplete")


def export_view(stored: StoredFacts) -> ExportView:
    """The engine's view of the stored export facts."""
    if not stored.items:
        return ExportView(None, {})
    try:
        facts = load_facts(dict(stored.facts))
        parties = load_parties(list(stored.parties), "party")
        items = {
            doc_id: load_item(dict(data), f"classification of {doc_id}")
            for doc_id, data in stored.items.items()
        }
    except (ExportFactsError, TypeError, ValueError):
        flags = {doc_id: EngineExport("unknown", "unreadable") for doc_id in stored.items}
        return ExportView(_Unreadable(), flags)
    check = ExportControlCheck(facts, parties, items)
    return ExportView(check, {doc_id: _flag(item) for doc_id, item in items.items()})


def transfer_record(
    view: ExportView,
    subject: Subject,
    action: str,
    obj: Resource,
    title: str,
    decision: Decision,
    at: datetime,
) -> TransferRecord | None:
    """What to record of an allowed release of a controlled item to ``subject``
    (``None``: nothing to record -- denied, not classified, or not controlled)."""
    check = view.check
    if not decision.allowed or not isinstance(check, ExportControlCheck):
        return None
    item = check.items.get(obj.id)
    if item is None or item.item is None or not item.item.controlled:
        return None
    c = item.item
    sender, _ = check.party(item.sender or "")
    recipient, _ = check.party(subject.id, subject.nationalities)
    td = check.decide(subject, action, obj, at)
    return TransferRecord(
        at=at,
        decision_id="",
        action=action,
        document_id=obj.id,
        item_description=title,
        regime=str(c.regime),
        designator=c.designator or "",
        item_kind=str(c.kind),
        sme=c.sme,
        sender=item.sender or "",
        sender_organisation=sender.organisation or "",
        recipient=subject.id,
        recipient_organisation=recipient.organisation or "",
        recipient_nationalities=tuple(sorted(recipient.nationalities)),
        recipient_location=recipient.location,
        legal_basis=decision.legal_basis or td.legal_basis or "",
        licence_number=td.licence_number,
        value=item.value,
    )
