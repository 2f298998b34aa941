"""The export-control office of a node: the facts officers record, the checks they
run, and the transfer records a regulator asks for.

Every change goes through the one authorisation point (``export:facts:write``
for the nation whose fact it is), is validated by the strict loaders of
:mod:`relto.export_control` before anything is written, is recorded in the
transparency log with the officer's justification, and commits with its audit
entry or not at all. Decisions read the stored facts through
:class:`~relto.documents.DecisionFacts` (the ``export`` fact counter tells every
process when to read them again).

An object uploaded to an export-relevant project is withheld from its upload
until an officer classifies it: :meth:`ExportOffice.mark_pending` (its owner,
once, before anything was ever recorded for it) stores a controlled item with no
designator, which every decision denies, and keeps the uploader's proposed
classification for the officer to confirm through :meth:`ExportOffice.classify`.

Transfer records are written by :meth:`ExportOffice.record_transfers`, which the
key access service calls before it releases a key for a controlled item: the
record, the licence's consumption and an ``export.transfer`` log entry commit
together, and a licence whose ceiling a concurrent transfer used up refuses the
release.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.documents import DecisionFacts, document_view
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.events import AuditSink
from relto.export_control import ExportFactsError, Regime, TransferDecision, load_facts
from relto.export_control import Reason as ExportReason
from relto.export_control._parties import load_item, load_parties
from relto.export_control.errors import TransferRefused
from relto.export_control.records import TransferRecord
from relto.export_control.rules import canonical
from relto.partnership.service import check_justification
from relto.store import Database
from relto.store.documents import SqlDocumentRepository
from relto.store.export_control import SqlExportRepository
from relto.store.partnership import SqlPartnershipRepository

__all__ = [
    "REGIME_NATION",
    "ExportOffice",
    "FactsSummary",
    "TransferRefused",
    "proposed_classification",
]

#: The nation whose officers keep each regime's licences, lists and rules.
REGIME_NATION: Mapping[Regime, str] = {
    Regime.ITAR: "USA",
    Regime.EAR: "USA",
    Regime.UK_STRATEGIC: "GBR",
    Regime.AUS_DSGL: "AUS",
}
#: Records one call returns at most.
MAX_RECORDS = 100_000
_MAX_ID = 200


@dataclass(frozen=True)
class FactsSummary:
    """What is stored, for the officer's overview."""

    items: Mapping[str, Mapping[str, Any]]
    parties: Sequence[Mapping[str, Any]]
    licences: Sequence[Mapping[str, Any]]
    lists: Sequence[Mapping[str, Any]]
    rules: Mapping[str, Mapping[str, Any]]
    #: Objects withheld until an officer classifies them, by id: the uploader's
    #: ``proposed`` classification, ``proposed_by``, ``proposed_at``.
    pending: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _regime(value: object) -> Regime:
    try:
        return Regime(str(value))
    except ValueError:
        raise InvalidInput(
            f"unknown regime {str(value)[:20]!r}; expected one of "
            + ", ".join(r.value for r in Regime)
        ) from None


def _ident(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_ID:
        raise InvalidInput(f"{what} must be 1 to {_MAX_ID} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{what} must be plain text")
    return value


def _invalid(exc: ExportFactsError) -> InvalidInput:
    return InvalidInput(str(exc)[:300])


class ExportOffice:
    """``facts``: the node's decision facts (:meth:`check` asks them)."""

    def __init__(
        self,
        db: Database,
        sink: AuditSink,
        authorizer: Authorizer,
        facts: DecisionFacts | None = None,
    ) -> None:
        self._db = db
        self._sink = sink
        self._authz = authorizer
        self._facts = facts

    # -- checking ---------------------------------------------------------------------

    def check(
        self,
        who: Grantee,
        person_id: str,
        document_id: str,
        *,
        action: str = "read",
        to: str | None = None,
        at: datetime,
    ) -> TransferDecision:
        """The export check alone: may ``document_id`` go to ``person_id`` (or, for a
        ``share``, from them to ``to``), on what legal basis, or what is missing.
        An officer of the object's originating nation (``export:check``); asking is
        recorded."""
        if self._facts is None:
            raise InvalidInput("this node has no decision facts to check against")
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(document_id[:64])
            if row is None:
                raise NotFound("no such document")
        self._authz.require(
            who,
            Permission.EXPORT_CHECK,
            Scope.of([row.originator]),
            target=f"{person_id[:64]} {action} {row.id}" + (f" to {to[:64]}" if to else ""),
        )
        doc = document_view(row)
        found = self._facts.export_decision(person_id[:64], action, doc, at, to)
        if found is None:
            if self._facts.person(person_id[:64]) is None:
                raise NotFound(f"no such person: {person_id[:64]}")
            return TransferDecision(
                False,
                None,
                (
                    ExportReason(
                        "not_classified",
                        f"{row.id} has no export classification recorded here: export "
                        "control gives no legal basis, and does not take part in its decisions.",
                    ),
                ),
            )
        return found

    # -- writing facts ----------------------------------------------------------------

    def _write_check(self, who: Grantee, nation: str, target: str) -> None:
        self._authz.require(who, Permission.EXPORT_FACTS_WRITE, Scope.of([nation]), target=target)

    def classify(
        self,
        who: Grantee,
        document_id: str,
        block: Mapping[str, Any],
        *,
        justification: str,
        at: datetime,
    ) -> int:
        """Record ``document_id``'s export classification (an ``export`` block:
        ``controlled``, ``kind``, ``regime``, ``usml_category``, ``usml_paragraph``,
        ``sme``, ``eccn``, ``dsgl_item``, ``sender``, ``value``); an officer of the
        document's originating nation only. Returns the classification's version."""
        why = check_justification(justification)
        try:
            item = load_item(dict(block), "classification")
        except ExportFactsError as exc:
            raise _invalid(exc) from None
        c = item.item
        if c is not None and c.controlled and c.designator is None:
            raise InvalidInput(
                "a controlled item needs its USML category (ITAR), ECCN (EAR) or DSGL item"
            )
        if c is not None and c.controlled and c.regime is Regime.ITAR and not canonical(c):
            raise InvalidInput(
                "write the USML category as I to XXI and its paragraphs like (a)(1): "
                "another spelling matches no excluded-list entry"
            )
        with self._db.session() as s:
            doc = SqlDocumentRepository(s).get(document_id[:64])
            if doc is None:
                raise NotFound("no such document")
            self._write_check(who, doc.originator, f"classify {doc.id}")
            repo = SqlExportRepository(s)
            if item.sender is not None and repo.get_party(item.sender) is None:
                raise InvalidInput(f"no export party {item.sender[:60]!r}; record it first")
            data = {k: v for k, v in dict(block).items() if v is not None}
            version = repo.put_item(doc.id, doc.originator, data, who.person_id, at)
            self._sink.record(
                "export.classified",
                {
                    "by": who.person_id,
                    "nation": who.home_nation,
                    "object": doc.id,
                    "originator": doc.originator,
                    "classification": _plain(data),
                    "version": version,
                    "justification": why,
                    "at": at.isoformat(),
                },
            )
            return version

    def put_party(
        self, who: Grantee, data: Mapping[str, Any], *, justification: str, at: datetime
    ) -> str:
        """Record a person or organisation as an export party (the scenario party
        mapping). A new party belongs to the officer's nation; an existing one can
        be changed only by an officer of the nation that recorded it."""
        why = check_justification(justification)
        try:
            party = load_parties([dict(data)], "party")
        except ExportFactsError as exc:
            raise _invalid(exc) from None
        (pid,) = party
        _ident(pid, "the party id")
        if pid == who.person_id:
            raise AccessDenied("Nobody records export facts about themself.")
        with self._db.session() as s:
            repo = SqlExportRepository(s)
            found = repo.get_party(pid)
            nation = who.home_nation if found is None else found[0].nation
            self._write_check(who, nation, f"party {pid}")
            clean = _plain({k: v for k, v in dict(data).items() if v is not None})
            repo.put_party(pid, nation, clean, who.person_id, at)
            self._sink.record(
                "export.party.recorded",
                {
                    "by": who.person_id,
                    "nation": nation,
                    "party": pid,
                    "record": clean,
                    "new": found is None,
                    "justification": why,
                    "at": at.isoformat(),
                },
            )
            return pid

    def put_licence(
        self, who: Grantee, data: Mapping[str, Any], *, justification: str, at: datetime
    ) -> str:
        """Record (or amend) a licence or agreement of the regime's nation; its
        consumption so far is kept, and cannot be set here."""
        why = check_justification(justification)
        clean = _plain({k: v for k, v in dict(data).items() if v is not None})
        if "value_consumed" in clean:
            raise InvalidInput("value_consumed is counted by relto from the transfer records")
        try:
            (lic,) = load_facts({"licences": [clean]}).licences
        except ExportFactsError as exc:
            raise _invalid(exc) from None
        _ident(lic.number, "the licence number")
        with self._db.session() as s:
            self._write_check(who, REGIME_NATION[lic.regime], f"licence {lic.number}")
            repo = SqlExportRepository(s)
            old = repo.get_licence(lic.number)
            if old is not None and old.regime != lic.regime.value:
                raise InvalidInput(f"licence {lic.number} is an {old.regime} licence")
            repo.put_licence(lic.number, lic.regime.value, clean, who.person_id, at)
            self._sink.record(
                "export.licence.recorded",
                {
                    "by": who.person_id,
                    "nation": REGIME_NATION[lic.regime],
                    "licence": lic.number,
                    "regime": lic.regime.value,
                    "record": clean,
                    "new": old is None,
                    "justification": why,
                    "at": at.isoformat(),
                },
            )
            return lic.number

    def load_list(
        self, who: Grantee, data: Mapping[str, Any], *, justification: str, at: datetime
    ) -> tuple[str, str, str]:
        """Load a new version of an excluded technology list (regime, name, version,
        source, entries each with their source); it replaces the list's earlier
        version in decisions, which stays on record. A version is loaded once."""
        why = check_justification(justification)
        clean = _plain(dict(data))
        try:
            (lst,) = load_facts({"excluded_lists": [clean]}).excluded_lists
        except ExportFactsError as exc:
            raise _invalid(exc) from None
        name = _ident(lst.name, "the list name")
        version = _ident(lst.version, "the list version")
        with self._db.session() as s:
            self._write_check(who, REGIME_NATION[lst.regime], f"list {name} {version}")
            repo = SqlExportRepository(s)
            if repo.list_row(lst.regime.value, name, version) is not None:
                raise InvalidInput(f"version {version} of {name} is already loaded")
            repo.load_list(lst.regime.value, name, version, clean, who.person_id, at)
            self._sink.record(
                "export.list.loaded",
                {
                    "by": who.person_id,
                    "nation": REGIME_NATION[lst.regime],
                    "regime": lst.regime.value,
                    "list": name,
                    "version": version,
                    "source": lst.source,
                    "entries": len(lst.entries),
                    "justification": why,
                    "at": at.isoformat(),
                },
            )
            return lst.regime.value, name, version

    def put_rules(
        self,
        who: Grantee,
        regime: str,
        data: Mapping[str, Any],
        *,
        justification: str,
        at: datetime,
    ) -> None:
        """Set a regime's rules as data: ``dual_national_rules`` (§126.18, each with
        its source) and ``value_threshold`` (the §123.15 amount), replacing the
        regime's earlier rules."""
        why = check_justification(justification)
        reg = _regime(regime)
        clean = _plain(dict(data))
        unknown = set(clean) - {"dual_national_rules", "value_threshold"}
        if unknown:
            raise InvalidInput(f"unknown keys {sorted(unknown)[:5]}")
        trial: dict[str, Any] = {"dual_national_rules": clean.get("dual_national_rules", [])}
        if clean.get("value_threshold") is not None:
            trial["value_thresholds"] = {reg.value: clean["value_threshold"]}
        try:
            load_facts(trial)
        except ExportFactsError as exc:
            raise _invalid(exc) from None
        with self._db.session() as s:
            self._write_check(who, REGIME_NATION[reg], f"rules {reg.value}")
            SqlExportRepository(s).put_rules(reg.value, clean, who.person_id, at)
            self._sink.record(
                "export.rules.recorded",
                {
                    "by": who.person_id,
                    "nation": REGIME_NATION[reg],
                    "regime": reg.value,
                    "record": clean,
                    "justification": why,
                    "at": at.isoformat(),
                },
            )

    # -- a classification proposed at upload ----------------------------------------------

    def mark_pending(
        self, who: Grantee, document_id: str, proposed: Mapping[str, Any], *, at: datetime
    ) -> None:
        """Withhold ``document_id``, just uploaded to an export-relevant project, until
        an officer classifies it, and keep the uploader's ``proposed`` classification
        (an ``export`` block, checked as for :meth:`classify`) for that officer to
        confirm. Recorded as ``export.classification.proposed``.

        It grants nothing, so it needs no officer: only the document's owner may ask,
        only for an object of an export-relevant project still at its first version,
        and only while nothing was ever recorded for it (it never replaces an
        officer's classification). What it stores is a controlled item with no
        designator, which every decision denies (``classification_incomplete``)
        until :meth:`classify` replaces it."""
        clean = proposed_classification(proposed)
        item = load_item(clean, "proposed classification").item
        if item is None:  # pragma: no cover - load_item always classifies
            raise InvalidInput("the proposed classification is empty")
        with self._db.session() as s:
            doc = SqlDocumentRepository(s).get(document_id[:64])
            if doc is None:
                raise NotFound("no such document")
            if doc.owner != who.person_id:
                raise AccessDenied("Only the uploader proposes an object's export classification.")
            project = SqlPartnershipRepository(s).get_project(doc.project_id)
            if project is None or not project.export_relevant:
                raise InvalidInput(f"project {doc.project_id} is not export relevant")
            repo = SqlExportRepository(s)
            if doc.version != 1 or repo.get_item(doc.id) is not None:
                raise InvalidInput(
                    f"{doc.id} has an export classification already; its officers change it"
                )
            if repo.get_proposal(doc.id) is not None:  # pragma: no cover - it has an item
                raise InvalidInput(f"a classification of {doc.id} was proposed already")
            regime = item.regime or next(
                (r for r, n in REGIME_NATION.items() if n == doc.originator), Regime.ITAR
            )
            withheld = {"controlled": True, "kind": item.kind.value, "regime": regime.value}
            version = repo.put_item(doc.id, doc.originator, withheld, who.person_id, at)
            repo.add_proposal(doc.id, clean, version, who.person_id, at)
            self._sink.record(
                "export.classification.proposed",
                {
                    "by": who.person_id,
                    "nation": who.home_nation,
                    "object": doc.id,
                    "originator": doc.originator,
                    "project": doc.project_id,
                    "proposed": clean,
                    "withheld": withheld,
                    "at": at.isoformat(),
                },
            )

    # -- reading ------------------------------------------------------------------------

    def summary(self, who: Grantee) -> FactsSummary:
        """Every stored export fact (``export:facts:read``)."""
        self._authz.require(
            who, Permission.EXPORT_FACTS_READ, Scope.of([who.home_nation]), target="export facts"
        )
        with self._db.session() as s:
            repo = SqlExportRepository(s)
            licences = []
            for row in repo.licence_rows():
                lic = dict(_loads(row.data))
                lic["value_consumed"] = row.value_consumed
                lic["quantity_consumed"] = row.quantity_consumed
                licences.append(lic)
            lists = [
                {
                    **_loads(r.data),
                    "active": r.active,
                    "loaded_by": r.loaded_by,
                    "loaded_at": r.loaded_at.isoformat(),
                }
                for r in repo.list_rows()
            ]
            return FactsSummary(
                items=repo.items(),
                parties=repo.parties(),
                licences=licences,
                lists=lists,
                rules=repo.rules(),
                pending=repo.pending(),
            )

    def records(
        self,
        who: Grantee,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[TransferRecord]:
        """The transfer records with ``since <= at < until`` that concern a nation
        ``who`` reads records for (the regime's nation or the object's originator),
        oldest first. Asking is recorded."""
        self._authz.require(
            who,
            Permission.EXPORT_RECORDS_READ,
            Scope.of([who.home_nation]),
            target=f"export records {since} .. {until}",
        )
        out: list[TransferRecord] = []
        with self._db.session() as s:
            repo = SqlExportRepository(s)
            after = 0
            while len(out) <= MAX_RECORDS:
                batch = repo.transfers(since, until, after_id=after, limit=1000)
                if not batch:
                    break
                for rid, _, data in batch:
                    rec = TransferRecord.from_dict(data, rid)
                    scope = {data.get("originator", ""), _nation_of(rec.regime)}
                    if self._authz.allows(who, Permission.EXPORT_RECORDS_READ, Scope.of(scope)):
                        out.append(rec)
                after = batch[-1][0]
        if len(out) > MAX_RECORDS:
            # never a silently shortened export for a regulator
            raise InvalidInput(
                f"more than {MAX_RECORDS:,} records in that window: ask for a shorter one"
            )
        return out

    # -- recording transfers (the key access service, before it releases a key) ------

    def record_transfers(self, records: Sequence[tuple[TransferRecord, str]]) -> None:
        """Record each allowed transfer (with the object's originator) and count it
        against its licence, all in one transaction with its log entries.
        :class:`TransferRefused` if a licence's ceiling no longer has room (another
        transfer took it since the decision): then nothing is recorded."""
        if not records:
            return
        with self._db.session() as s:
            repo = SqlExportRepository(s)
            entries = []
            for rec, originator in records:
                if rec.licence_number is not None:
                    row = repo.get_licence(rec.licence_number)
                    ceiling = None
                    if row is not None:
                        raw = _loads(row.data).get("value_ceiling")
                        ceiling = None if raw is None else Decimal(str(raw))
                    if row is None or not repo.consume(rec.licence_number, rec.value, ceiling):
                        raise TransferRefused(
                            f"licence {rec.licence_number} has no room left for this transfer"
                        )
                data = {**rec.as_dict(), "originator": originator}
                data.pop("record_id", None)
                rid = repo.add_transfer(
                    at=rec.at,
                    document_id=rec.document_id,
                    regime=rec.regime,
                    licence_number=rec.licence_number,
                    record=data,
                )
                entries.append({**data, "record": rid})
            # logged once every record and consumption is in place, so a refusal
            # leaves no log entry of a transfer that did not happen
            for entry in entries:
                self._sink.record("export.transfer", entry)


def proposed_classification(block: Mapping[str, Any]) -> dict[str, Any]:
    """``block`` checked as an object's classification (the ``export`` block of
    :meth:`ExportOffice.classify`; a controlled item needs its designator), as it
    would be stored; :class:`InvalidInput` naming what is wrong. Pure: for checking
    an uploader's proposal before anything is stored."""
    clean = _plain({k: v for k, v in dict(block).items() if v is not None})
    try:
        item = load_item(clean, "classification").item
    except ExportFactsError as exc:
        raise _invalid(exc) from None
    if item is not None and item.controlled and item.designator is None:
        raise InvalidInput(
            "a controlled item needs its USML category (ITAR), ECCN (EAR) or DSGL item"
        )
    if item is not None and item.controlled and item.regime is Regime.ITAR and not canonical(item):
        raise InvalidInput(
            "write the USML category as I to XXI and its paragraphs like (a)(1): "
            "another spelling matches no excluded-list entry"
        )
    return dict(clean)


def _nation_of(regime: str) -> str:
    try:
        return REGIME_NATION[Regime(regime)]
    except ValueError:
        return ""


def _loads(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    """Dates and datetimes as ISO strings, so what is stored and logged is JSON and
    reads back through the loaders unchanged."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
