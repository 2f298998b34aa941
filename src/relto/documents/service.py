"""Sharing on one node: protect on upload, open through the KAS, relabel, list,
explain and what-if -- every action decided before it happens.

* Object actions (read, download, relabel) are decided by the decision engine
  on this node's facts (:class:`DecisionFacts`), recorded in the audit sink, and
  keys come only from the node's key access service (:class:`KeyAccessPort`),
  which decides and records again before it releases anything.
* Metadata is confidential: a document releasable to none of the person's
  nationalities (or outside their nation's partnerships) is *not found*
  everywhere -- page, list, count, what-if, decision explorer.
* Administrative actions (what-if, explaining another person's decision) are
  asked of :class:`relto.authz.Authorizer`.

An object may be held in joint custody (ADR 0132): its key split between this
node's KAS and the KAS of each other custodian nation, wrapped for the key of that
nation's *pinned* descriptor (:class:`CustodianKas`); opening it needs every
custodian to release its share -- this node's in-process, a partner's over HTTP
with this node's attestation of the person.

Payloads live in the blob store as ZTDF containers only, and plaintext is never
written to disk, not even for a moment: an upload is encrypted as it arrives
(:meth:`DocumentService.receive` -> :class:`Incoming`) into a staged ``0600`` file
in the blob store, and opening or relabelling decrypts into memory (documents are
bounded by ``max_upload_bytes``).

What is recorded is what committed (ADR 0100): the container is moved into the
blob store under a claim that says what will be recorded, the database row
commits, then the ``document.protected`` / ``document.relabelled`` entry is
appended. If that append fails the change is undone (the row removed or restored,
the new blob deleted) and the caller told; if the process dies in between,
:meth:`DocumentService.sweep` at the next start records the entry late (marked
``recovered_at_startup``) for a committed change, or deletes the blob and records
``document.orphan_swept`` for one that never committed.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import structlog

from relto.authz import Authorizer, Permission, Principal, Scope
from relto.decisions import (
    AddRelTo,
    Decision,
    ExpireClearance,
    InvalidChange,
    Population,
    Resource,
    RevokeClearance,
    parse_change,
    what_if,
)
from relto.decisions.engine import FINGERPRINT
from relto.documents._copies import CopyMaker, Release, ReleasedCopy
from relto.documents._custody import CustodianKas, CustodyUnavailable, custodian_unwrap, kas_path
from relto.documents._facts import DecisionFacts, document_view, resource_of
from relto.documents._keys import KeyAccessPort
from relto.documents._labels import compose_banner, parsed_banner
from relto.documents._model import MAX_DOCUMENT_BYTES, DocumentView, LabelChoice
from relto.documents.errors import ActionDenied
from relto.errors import AccessDenied, InvalidInput, NotFound, StorageError
from relto.events import AuditSink
from relto.labels import builtin_policy
from relto.metrics import DomainMetrics
from relto.partnership import MAX_PAGE, Partnership, check_justification
from relto.store import BlobStore, Database
from relto.store.blobs import StagedBlob
from relto.store.documents import DocumentRow, SqlDocumentRepository
from relto.store.partnership import SqlPartnershipRepository
from relto.vetting.service import VettingService
from relto.ztdf import ContainerWriter, KasTarget, ProtectResult, Unwrap, open_container
from relto.ztdf.attributes import custody_attributes, marking_attributes

__all__ = ["DocumentService", "Incoming", "WhatIfView"]

log = structlog.stdlib.get_logger("relto.documents")

_TITLE = re.compile(r"^[^\x00-\x1f]{1,200}$")
_FILENAME = re.compile(r"[^A-Za-z0-9._ -]")
#: How many documents a listing decides at most (what-if, readable lists).
MAX_SCAN = 10_000
#: Blob keys of document versions: ``document-<id>-v<version>.tdf``.
_BLOB_KEY = re.compile(r"^document-(?P<id>[A-Za-z0-9._-]{1,64})-v(?P<version>[0-9]{1,9})\.tdf$")


class Incoming:
    """A document's bytes as they arrive, encrypted at once into a staged container
    in the blob store (``0600``, ciphertext only: the plaintext never touches disk).

    :meth:`write` each chunk; :meth:`DocumentService.upload` seals and commits it
    (and owns it from then on). Leaving the ``with`` block without an upload, or
    :meth:`discard`, removes what was written.
    """

    def __init__(self, staged: StagedBlob, writer: ContainerWriter) -> None:
        self._staged = staged
        self._writer = writer

    @property
    def size(self) -> int:
        """Plaintext bytes received so far."""
        return self._writer.size

    def room(self) -> int:
        """Bytes a write can take before a segment is encrypted (a smaller write only
        copies into memory: cheap enough for an event loop)."""
        return self._writer.room()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """The next bytes; :class:`InvalidInput` past the node's upload limit."""
        self._writer.write(chunk)

    def discard(self) -> None:
        self._writer.close()
        self._staged.discard()

    def __enter__(self) -> Incoming:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


@dataclass(frozen=True)
class WhatIfView:
    """A what-if as a security officer may see it: pairs (person, object) only for
    people of their own nation, by name; everyone else as counts per nation;
    objects only those the officer may know exist."""

    changes: tuple[str, ...]
    gained: tuple[tuple[str, str], ...]
    lost: tuple[tuple[str, str], ...]
    names: dict[str, str]
    gained_elsewhere: dict[str, int]
    lost_elsewhere: dict[str, int]
    gained_by_nation: dict[str, int]
    gained_by_project: dict[str, int]
    lost_by_nation: dict[str, int]
    lost_by_project: dict[str, int]


class DocumentService:
    """Upload, list, decide, open and relabel protected documents on one node."""

    def __init__(
        self,
        *,
        facts: DecisionFacts,
        keys: KeyAccessPort,
        db: Database,
        blobs: BlobStore,
        sink: AuditSink,
        vetting: VettingService,
        authorizer: Authorizer,
        attribute_namespace: str,
        max_upload_bytes: int,
        metrics: DomainMetrics | None = None,
        custodians: CustodianKas | None = None,
        copies: CopyMaker | None = None,
    ) -> None:
        self.facts = facts
        self._copies = copies
        self._custodians = custodians
        self._metrics = metrics
        self._keys = keys
        self._db = db
        self._blobs = blobs
        self._sink = sink
        self._vetting = vetting
        self._authz = authorizer
        self._namespace = attribute_namespace
        if not 0 < max_upload_bytes <= MAX_DOCUMENT_BYTES:
            raise ValueError(f"max_upload_bytes must be 1..{MAX_DOCUMENT_BYTES}")
        self.max_upload_bytes = max_upload_bytes

    # -- the partnership around a person ----------------------------------------------

    @property
    def keys(self) -> KeyAccessPort:
        """This node's key access service, as the sharing capability reaches it."""
        return self._keys

    def _partnerships_of(self, nation: str) -> list[Partnership]:
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            return [p for p in repo.list_partnerships(0, MAX_PAGE).items if nation in p.nations]

    def projects_of(self, nation: str) -> dict[str, str]:
        """Projects (id -> name) of the partnerships ``nation`` belongs to."""
        with self._db.session() as s:
            repo = SqlPartnershipRepository(s)
            return {
                pr.id: pr.name
                for p in repo.list_partnerships(0, MAX_PAGE).items
                if nation in p.nations
                for pr in repo.list_projects(p.id, 0, MAX_PAGE).items
            }

    def export_relevant(self, project_id: str) -> bool:
        """Whether ``project_id`` is export relevant (its uploads need an export
        classification, which only the console asks for today)."""
        with self._db.session() as s:
            project = SqlPartnershipRepository(s).get_project(project_id[:63])
        return bool(project is not None and project.export_relevant)

    def partnership_nations(self, nation: str) -> tuple[str, ...]:
        """Every nation of the partnerships ``nation`` belongs to."""
        return tuple(dict.fromkeys(n for p in self._partnerships_of(nation) for n in p.nations))

    # -- reading ----------------------------------------------------------------------

    def _get(self, doc_id: str) -> DocumentView:
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(doc_id)
            if row is None:
                raise NotFound("no such document")
            return document_view(row)

    def originators(
        self, document_ids: Iterable[str], policy_uuids: Iterable[str]
    ) -> dict[str, str]:
        """Document id or policy UUID -> originating nation, for documents held here."""
        out: dict[str, str] = {}
        with self._db.session() as s:
            repo = SqlDocumentRepository(s)
            for key, row in repo.originators(document_ids, policy_uuids):
                out[key] = row
        return out

    def exists(self, doc_id: str) -> bool:
        """Whether the node holds ``doc_id`` (for loaders, never for people)."""
        with self._db.session() as s:
            return SqlDocumentRepository(s).get(doc_id) is not None

    def may_know(self, who: Principal, doc: DocumentView) -> bool:
        """Whether ``who`` may know ``doc`` exists: it belongs to a project of their
        nation's partnerships and one of their nationalities is in Releasable To."""
        return doc.project_id in self.projects_of(who.home_nation) and self._authz.allows(
            who, Permission.OBJECTS_METADATA_READ, Scope.of(doc.releasable)
        )

    def visible(self, who: Principal, doc_id: str) -> DocumentView:
        """The document, or :class:`NotFound` -- also when ``who`` may not know it.
        Asking for a document one may not know is recorded (a probe), under the
        document's id: the originator's auditors see it, never its title."""
        doc = self._get(doc_id)
        if doc.project_id not in self.projects_of(who.home_nation):
            raise NotFound("no such document")
        scope = Scope.of(doc.releasable)
        if not self._authz.check(
            who, Permission.OBJECTS_METADATA_READ, scope, target=doc.id
        ).allowed:
            raise NotFound("no such document")
        return doc

    def page(self, who: Principal, *, limit: int = MAX_PAGE, offset: int = 0) -> list[DocumentView]:
        """Documents ``who`` may know of (metadata only), newest first, at most
        :data:`MAX_PAGE` per call."""
        projects = self.projects_of(who.home_nation)
        with self._db.session() as s:
            rows = SqlDocumentRepository(s).list_visible(
                projects,
                who.nationalities,
                offset=max(0, offset),
                limit=max(1, min(limit, MAX_PAGE)),
            )
            return [document_view(r) for r in rows]

    def count(self, who: Principal) -> int:
        projects = self.projects_of(who.home_nation)
        with self._db.session() as s:
            return SqlDocumentRepository(s).count_visible(projects, who.nationalities)

    def all_visible(self, who: Principal, cap: int = MAX_SCAN) -> list[DocumentView]:
        out: list[DocumentView] = []
        while len(out) < cap:
            batch = self.page(who, limit=MAX_PAGE, offset=len(out))
            if not batch:
                break
            out.extend(batch)
        return out[:cap]

    def readable(self, who: Principal, at: datetime) -> list[DocumentView]:
        """Documents ``who`` may read now (up to :data:`MAX_SCAN` looked at)."""
        subject = self.facts.subject(who.person_id, at)
        if subject is None:
            return []
        engine = self.facts.engine()
        out: list[DocumentView] = []
        scanned = 0
        while scanned < MAX_SCAN:
            batch = self.page(who, limit=MAX_PAGE, offset=scanned)
            if not batch:
                break
            scanned += len(batch)
            keep = {r.id for r in engine.readable(subject, [resource_of(d) for d in batch], at=at)}
            out.extend(d for d in batch if d.id in keep)
        return out

    def with_decisions(self, who: Principal, at: datetime) -> list[tuple[DocumentView, Decision]]:
        """The documents ``who`` may know of, each with their own read decision
        (for display: not recorded)."""
        return [(d, self.facts.decide(who.person_id, "read", d, at)) for d in self.page(who)]

    def may(self, who: Principal, action: str, doc: DocumentView, at: datetime) -> bool:
        """Would the engine allow ``action`` now? For showing a form, never for acting."""
        return bool(self.facts.decide(who.person_id, action, doc, at).allowed)

    def label_choice(self, who: Principal) -> LabelChoice:
        """Classifications of the person's national scheme they could read themselves,
        the partnership's nations, and the projects the person works on."""
        nation = who.home_nation
        spif = builtin_policy(nation)
        classes = tuple(c.name for c in sorted(spif.classifications, key=lambda c: c.hierarchy))
        all_projects = self.projects_of(nation)
        person = self.facts.person(who.person_id)
        mine = [] if person is None else [m.project for m in person.projects]
        mine = [p for p in mine if p in all_projects]
        readable = self._readable_levels(who, classes, mine)
        return LabelChoice(
            originator=nation,
            classifications=tuple(c for c in classes if c in readable),
            nations=self.partnership_nations(nation),
            projects=tuple((pid, all_projects[pid]) for pid in mine),
        )

    def _readable_levels(
        self, who: Principal, classes: Sequence[str], projects: Sequence[str]
    ) -> set[str]:
        """Levels the person could read themselves on at least one of their projects."""
        at = datetime.now(UTC)
        subject = self.facts.subject(who.person_id, at)
        if subject is None or not projects:
            return set()
        engine = self.facts.engine()
        out: set[str] = set()
        for cls in classes:
            for pid in projects:
                probe = Resource(
                    id="label-probe",
                    originator=who.home_nation,
                    classification=cls,
                    rel_to=frozenset({who.home_nation}),
                    project=pid,
                )
                if engine.evaluate(subject, "read", probe, at=at).allowed:
                    out.add(cls)
                    break
        return out

    # -- decisions ----------------------------------------------------------------------

    def record_decision(
        self, person_id: str, action: str, doc: DocumentView, decision: Decision, at: datetime
    ) -> None:
        self._sink.record(
            "decision",
            {
                "subject": person_id,
                "action": action,
                "object": doc.id,
                "object_title": doc.title,
                "originator": doc.originator,
                "banner": doc.banner,
                "at": at.isoformat(),
                "allowed": bool(decision.allowed),
                "reasons": [{"code": r.code, "sentence": r.sentence} for r in decision.reasons],
                "rule": decision.rule,
                "policy_version": decision.policy_version,
            },
        )
        if self._metrics is not None:  # counted once recorded; codes only, never ids
            self._metrics.decided(action, decision.allowed, decision.codes)

    def explain(
        self, who: Principal, person_id: str, doc_id: str, action: str, at: datetime
    ) -> tuple[DocumentView, Decision]:
        """The explained decision on ``doc_id`` for ``person_id``. Anyone may see their
        own; security officers and auditors those of the people of their nation
        (recorded either way). Documents ``who`` may not know are not found."""
        doc = self.visible(who, doc_id)
        if who.attested is not None:
            # a partner's person: only their own decision, made on what their home
            # node attested (the KAS decides on the same facts)
            if person_id != who.person_id:
                raise NotFound(f"no such person: {person_id[:64]}")
            self._authz.require(
                who,
                Permission.DECISIONS_EXPLAIN,
                Scope(who.attested.nationalities | {who.home_nation}, who.person_id),
                target=f"{who.person_id} {action} {doc.id}",
            )
            _, attested = self.facts.decide_attested(who.attested, action, doc.policy_uuid, at)
            if attested is None:
                raise NotFound(f"no such document: {doc_id[:64]}")
            return doc, attested
        person = self.facts.person(person_id[:64])
        nations = frozenset() if person is None else person.nationalities | {person.home_nation}
        self._authz.require(
            who,
            Permission.DECISIONS_EXPLAIN,
            Scope(nations, person_id[:64]),
            target=f"{person_id[:64]} {action} {doc.id}",
        )
        return doc, self.facts.decide(person_id[:64], action, doc, at)

    # -- what-if ------------------------------------------------------------------------

    def what_if(self, who: Principal, changes: Sequence[str], at: datetime) -> WhatIfView:
        """Who would gain or lose read access to what if ``changes`` were made.

        ``changes`` use relto.decisions' syntax (``admit:JPN:undersea:SECRET``,
        ``rel-to:OBJECT:JPN``...). Only a security officer, for their own nation;
        objects they may not know of are neither counted nor shown. Nothing is
        written but the record of the question.
        """
        self._authz.require(
            who,
            Permission.DECISIONS_WHAT_IF,
            Scope.of([who.home_nation]),
            target="; ".join(changes)[:200],
        )
        try:
            parsed = [parse_change(c) for c in changes]
        except InvalidChange as exc:
            raise InvalidInput(str(exc)) from None
        docs = self.all_visible(who)
        known = {d.id for d in docs}
        for change in parsed:
            if isinstance(change, AddRelTo) and change.object_id not in known:
                raise InvalidInput(f"no document {change.object_id[:64]!r}")
            if isinstance(change, RevokeClearance | ExpireClearance):
                try:
                    self._vetting.get_clearance(change.clearance_id, caller=who)
                except (NotFound, AccessDenied):
                    raise InvalidInput(f"no clearance {change.clearance_id[:60]!r}") from None
        engine = self.facts.engine()
        population = Population(
            subjects=tuple(self.facts.subjects(at)),
            objects=tuple(engine.tag(resource_of(d)) for d in docs),
            world=engine.world,
            mapper=engine.mapper,
            recognition=engine.recognition,
            at=at,
            # export changes (licence-expire:, authorize:, exclude:) act on the
            # export facts stored here
            export_check=engine.export.check,
        )
        try:
            result = what_if(population, parsed)
        except InvalidChange as exc:
            raise InvalidInput(str(exc)) from None
        home: dict[str, str] = {}
        names: dict[str, str] = {}
        for pid, _ in (*result.gained, *result.lost):
            if pid not in home:
                person = self.facts.person(pid)
                home[pid] = person.home_nation if person else ""
                if person is not None and person.home_nation == who.home_nation:
                    names[pid] = person.name

        def mine(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
            return tuple(p for p in pairs if home[p[0]] == who.home_nation)

        def elsewhere(pairs: tuple[tuple[str, str], ...]) -> dict[str, int]:
            counts: dict[str, int] = {}
            for pid, _ in pairs:
                if home[pid] != who.home_nation:
                    counts[home[pid] or "?"] = counts.get(home[pid] or "?", 0) + 1
            return dict(sorted(counts.items()))

        return WhatIfView(
            changes=tuple(changes),
            gained=mine(result.gained),
            lost=mine(result.lost),
            names=names,
            gained_elsewhere=elsewhere(result.gained),
            lost_elsewhere=elsewhere(result.lost),
            gained_by_nation=dict(result.gained_by_nation),
            gained_by_project=dict(result.gained_by_project),
            lost_by_nation=dict(result.lost_by_nation),
            lost_by_project=dict(result.lost_by_project),
        )

    # -- changing -----------------------------------------------------------------------

    def upload(
        self,
        who: Principal,
        *,
        title: str,
        project_id: str,
        classification: str,
        rel_to: Sequence[str],
        filename: str,
        media_type: str,
        data: bytes | Incoming,
        at: datetime,
        doc_id: str | None = None,
        custody: Sequence[str] | None = None,
    ) -> DocumentView:
        """Protect ``data`` under a label the uploader could read themselves. The
        originator is the uploader's home nation, as the directory records it.

        ``custody``: the nations holding joint custody (``None``: the project's
        default; empty: none). The uploader's nation always holds a share; each
        other custodian's share is wrapped for the KAS key of its pinned
        descriptor, and a nation not pinned, or without a usable key, is refused
        (:class:`CustodyUnavailable`).

        ``data`` is the document's bytes, or an :class:`Incoming` they were streamed
        into (already encrypted); either way this call owns it and, on any refusal
        or failure, nothing is kept."""
        if isinstance(data, Incoming):
            with data:
                return self._upload(
                    who, title, project_id, classification, rel_to, filename, media_type,
                    data, at, doc_id, custody,
                )  # fmt: skip
        if len(data) > self.max_upload_bytes:
            raise InvalidInput(f"the document is larger than {self.max_upload_bytes} bytes")
        with self.receive(at) as incoming:
            incoming.write(data)
            return self._upload(
                who, title, project_id, classification, rel_to, filename, media_type,
                incoming, at, doc_id, custody,
            )  # fmt: skip

    def receive(self, at: datetime) -> Incoming:
        """Somewhere to stream a document's bytes into, encrypted as they arrive (for
        :meth:`upload`). Nothing is decided yet: the label is checked on upload."""
        staged = self._blobs.stage()
        try:
            writer = ContainerWriter(
                staged.file, kas=[self._keys.target()], at=at, max_size=self.max_upload_bytes
            )
        except BaseException:
            staged.discard()
            raise
        return Incoming(staged, writer)

    def _upload(
        self,
        who: Principal,
        title: str,
        project_id: str,
        classification: str,
        rel_to: Sequence[str],
        filename: str,
        media_type: str,
        incoming: Incoming,
        at: datetime,
        doc_id: str | None,
        custody: Sequence[str] | None = None,
    ) -> DocumentView:
        if not _TITLE.match(title or ""):
            raise InvalidInput("the title must be 1-200 printable characters")
        nation = who.home_nation
        choice = self.label_choice(who)
        if project_id not in {p for p, _ in choice.projects}:
            raise InvalidInput("you can only upload to a project you work on")
        if classification not in choice.classifications:
            raise InvalidInput(
                "you cannot protect a document at that classification: it must be a level "
                "of your nation's scheme that you could read yourself on one of your projects"
            )
        bad = [n for n in rel_to if n not in choice.nations]
        if bad:
            raise InvalidInput(f"not a nation of the partnership: {', '.join(bad)[:40]}")
        banner, label_xml = compose_banner(nation, classification, rel_to, at=at)
        doc_id = doc_id or uuid.uuid4().hex
        draft = DocumentView(
            doc_id, title, project_id, nation, banner, banner, banner, classification,
            (), who.person_id, "", "", 0, 1, at, at, "",
        )  # fmt: skip
        decision = self.facts.decide(who.person_id, "read", draft, at)
        if not decision.allowed:
            raise InvalidInput(
                "you could not read a document with that label yourself: "
                + " ".join(r.sentence for r in decision.reasons)
            )
        safe_name = _FILENAME.sub("_", Path(filename or "document").name)[:200] or "document"
        media = media_type or "application/octet-stream"
        blob_key = f"document-{doc_id}-v1.tdf"
        if self.exists(doc_id):
            raise InvalidInput("a document with that id already exists")
        held = self._custody_for(nation, project_id, custody, choice.nations)
        targets = self._targets(nation, held, at)
        sealed = self._seal(
            incoming, banner, label_xml, project_id, nation, media, doc_id, held, targets
        )
        policy_uuid, size = sealed.policy.uuid, sealed.plaintext_size
        entry = {
            "document": doc_id,
            "title": title,
            "project": project_id,
            "originator": nation,
            "banner": banner,
            "policy_uuid": policy_uuid,
            "by": who.person_id,
            "at": at.isoformat(),
            **({"custody": list(held)} if held else {}),
        }
        staged = incoming._staged
        staged.publish(blob_key, _intent("document.protected", doc_id, 1, entry))
        b = parsed_banner(banner, nation)
        with self._db.session() as s:
            repo = SqlDocumentRepository(s)
            if repo.get(doc_id) is not None:
                raise InvalidInput("a document with that id already exists")
            row = DocumentRow(
                id=doc_id,
                title=title,
                project_id=project_id,
                originator=nation,
                banner=banner,
                label_xml=label_xml.decode(),
                owner=who.person_id,
                filename=safe_name,
                media_type=media,
                blob_key=blob_key,
                policy_uuid=policy_uuid,
                plaintext_size=size,
                version=1,
                created_at=at,
                updated_at=at,
                custody=",".join(held),
            )
            repo.add(row, {nation, *b.rel_to})
            view = document_view(row)
        try:
            self._sink.record("document.protected", entry)
        except BaseException:
            # Committed but not recorded: undo, so nothing exists that the log lacks.
            with self._db.session() as s:
                SqlDocumentRepository(s).remove(doc_id)
            staged.discard()
            log.error("document_upload_undone", document=doc_id, reason="audit append failed")
            raise StorageError("the upload could not be recorded; nothing was kept") from None
        staged.release()
        log.info("document_protected", document=doc_id, banner=banner)
        return view

    def _custody_for(
        self,
        nation: str,
        project_id: str,
        requested: Sequence[str] | None,
        nations: Sequence[str],
    ) -> tuple[str, ...]:
        """The custodians of a new object of ``project_id`` uploaded on this node of
        ``nation``: those requested, else the project's default, with ``nation``
        added; ``()`` when that leaves ``nation`` alone. Each must be a nation of
        the partnership (``nations``)."""
        if requested is None:
            with self._db.session() as s:
                project = SqlPartnershipRepository(s).get_project(project_id)
            requested = () if project is None else project.joint_custody
        wanted = {str(n).strip().upper() for n in requested if str(n).strip()}
        outside = sorted(wanted - set(nations))
        if outside:
            raise InvalidInput(
                f"joint custody by a nation outside the partnership: {', '.join(outside)[:40]}"
            )
        if not wanted - {nation}:
            return ()
        return tuple(sorted(wanted | {nation}))

    def _targets(self, nation: str, custody: Sequence[str], at: datetime) -> list[KasTarget]:
        """Where the key's shares are wrapped: this node's KAS alone, or one share per
        custodian -- this node's KAS for its own, each partner's KAS key from its
        pinned descriptor at its base URL plus this node's KAS path."""
        own = self._keys.target()
        if not custody:
            return [own]
        if self._custodians is None:
            raise CustodyUnavailable("this node is not set up for joint custody")
        path = kas_path(own.url)
        return [
            replace(own, sid=nation.lower())
            if n == nation
            else self._custodians.target(n, kas_path=path, at=at)
            for n in custody
        ]

    def _seal(
        self,
        incoming: Incoming,
        banner: str,
        label_xml: bytes,
        project_id: str,
        originator: str,
        media_type: str,
        doc_id: str,
        custody: Sequence[str] = (),
        targets: Sequence[KasTarget] | None = None,
    ) -> ProtectResult:
        """Finish ``incoming``'s container under the label: the policy's attributes,
        the label assertion, the media type (the payload is already encrypted).
        Held in joint custody, the policy also names the originator, the object and
        the custodians, and the key is split for ``targets``."""
        b = parsed_banner(banner, originator)
        writer = incoming._writer
        attributes = marking_attributes(b.classification, b.rel_to, [project_id], self._namespace)
        if not custody:
            return writer.finish(attributes=attributes, label_xml=label_xml, mime_type=media_type)
        attributes += custody_attributes(originator, doc_id, custody, self._namespace)
        return writer.finish(
            attributes=attributes, label_xml=label_xml, mime_type=media_type, kas=targets
        )

    def open(
        self, who: Principal, doc_id: str, at: datetime, *, action: str = "read"
    ) -> tuple[DocumentView, Decision, bytes | None]:
        """Decide, record, and (when allowed) decrypt with a key from the KAS, to
        show: ``action`` is ``read``. A copy that leaves the node comes from
        :meth:`download`, never from here."""
        if action != "read":
            raise ValueError(f"open is for read; a {action!r} is a copy: use download()")
        doc = self.visible(who, doc_id)
        decision = self.facts.decide(who.person_id, action, doc, at)
        self.record_decision(who.person_id, action, doc, decision, at)
        if not decision.allowed:
            return doc, decision, None
        if _fingerprinted(decision):  # the engine asks for a copy: never raw plaintext
            raise ValueError("this decision asks for a fingerprinted copy: use download()")
        return doc, decision, self._decrypt(doc, self._unwrap(who, doc, action, at))

    def download(
        self, who: Principal, doc_id: str, at: datetime, *, action: str = "download"
    ) -> tuple[DocumentView, Decision, ReleasedCopy | None]:
        """Decide and record a copy leaving the node (``download`` or ``share``);
        when allowed, the recipient's own copy: a decision with the ``fingerprint``
        obligation is released only through the node's copy maker, which records
        the copy (ledger and ``trace.copy`` entry) before returning it. Without a
        copy maker such a release is refused (:class:`StorageError`)."""
        if action not in ("download", "share"):
            raise ValueError(f"download is for download or share, not {action!r}")
        doc = self.visible(who, doc_id)
        decision = self.facts.decide(who.person_id, action, doc, at)
        self.record_decision(who.person_id, action, doc, decision, at)
        if not decision.allowed:
            return doc, decision, None
        if not _fingerprinted(decision):
            raise ValueError(f"a {action} is always fingerprinted; the engine did not ask")
        if self._copies is None:
            raise StorageError("this node cannot fingerprint copies; nothing was released")
        content = self._decrypt(doc, self._unwrap(who, doc, action, at))
        release = Release(
            doc=doc,
            label_xml=self._label_xml(doc.id),
            attributes=self._attributes(doc),
            content=content,
            action=action,
        )
        return doc, decision, self._copies.copy_for(who, release, at)

    def reference(self, doc_id: str, unwrap: Unwrap) -> tuple[DocumentView, bytes]:
        """The object and its plaintext, opened with ``unwrap`` for the node's own
        comparison with a leaked file (tracing): never shown to anyone, and for a
        person never: people open through :meth:`open` and :meth:`download`."""
        doc = self._get(doc_id)
        return doc, self._decrypt(doc, unwrap)

    def _label_xml(self, doc_id: str) -> bytes:
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(doc_id)
            if row is None:
                raise NotFound("no such document")
            return row.label_xml.encode()

    def _attributes(self, doc: DocumentView) -> tuple[str, ...]:
        """The policy attributes the object's container carries."""
        b = parsed_banner(doc.banner, doc.originator)
        attributes = marking_attributes(
            b.classification, b.rel_to, [doc.project_id], self._namespace
        )
        if doc.custody:
            attributes += custody_attributes(doc.originator, doc.id, doc.custody, self._namespace)
        return tuple(attributes)

    def _unwrap(self, who: Principal, doc: DocumentView, action: str, at: datetime) -> Unwrap:
        """The key through this node's KAS (in-process) and, for an object held in
        joint custody, each other custodian's share through its KAS over HTTP, asked
        with this node's attestation of ``who`` (:class:`CustodyUnavailable` when
        that cannot be done: the message names the custodian)."""
        local = self._keys.unwrap_for(who.person_id, who.home_nation, action)
        others = [n for n in doc.custody if n != doc.originator]
        if not others:
            return local
        if self._custodians is None:
            raise CustodyUnavailable(
                f"this object needs the {', '.join(others)} key access service too: "
                "open it with the client SDK"
            )
        path = kas_path(self._keys.target().url)
        remote = {n: self._custodians.unwrap_for(who, n, kas_path=path, at=at) for n in others}
        return custodian_unwrap(doc.originator, local, remote)

    def container(self, who: Principal, doc_id: str) -> tuple[DocumentView, BinaryIO]:
        """The protected container (ciphertext) of a document ``who`` may know of,
        to open client-side through this node's KAS, which decides and records
        there; :class:`NotFound` otherwise, as for its metadata. The caller
        closes the file."""
        doc = self.visible(who, doc_id)
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(doc.id)
            if row is None:
                raise NotFound("no such document")
            blob_key = row.blob_key
        return doc, self._blobs.open(blob_key)

    def _decrypt(self, doc: DocumentView, unwrap: Unwrap) -> bytes:
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(doc.id)
            if row is None:
                raise NotFound("no such document")
            blob_key = row.blob_key
        # Into memory, never to disk: documents are bounded by max_upload_bytes.
        out = io.BytesIO()
        with self._blobs.open(blob_key) as f:
            open_container(f, out, unwrap=unwrap)
        return out.getvalue()

    def relabel(
        self,
        who: Principal,
        doc_id: str,
        rel_to: Sequence[str],
        at: datetime,
        *,
        justification: str | None = None,
    ) -> DocumentView:
        """Change Releasable To. ``relabel`` is an object action: the engine decides
        it (clearance for the object, need-to-know, the originator's nationality, a
        security officer of the originating nation), the decision is recorded, the
        key comes through the KAS (which decides and records again), and the
        container is re-protected under the new policy (a new data key and policy
        binding); the old version stays in the blob store. ``justification``
        (:func:`relto.partnership.check_justification`) is recorded in the
        ``document.relabelled`` entry; the console and the API require one."""
        why = None if justification is None else check_justification(justification)
        doc = self.visible(who, doc_id)
        decision = self.facts.decide(who.person_id, "relabel", doc, at)
        self.record_decision(who.person_id, "relabel", doc, decision, at)
        if not decision.allowed:
            raise ActionDenied(decision)
        partners = set(self.partnership_nations(doc.originator))
        wanted = {n.strip().upper() for n in rel_to if n.strip()}
        outside = sorted(wanted - partners)
        if outside:
            raise InvalidInput(f"not a nation of the partnership: {', '.join(outside)[:40]}")
        banner, label_xml = compose_banner(
            doc.originator, doc.classification, sorted(wanted), at=at
        )
        targets = self._targets(doc.originator, doc.custody, at)  # refused before decrypting
        plain = self._decrypt(doc, self._unwrap(who, doc, "relabel", at))
        version = doc.version + 1
        blob_key = f"document-{doc.id}-v{version}.tdf"
        before = doc.banner  # the row's, read again when the change commits
        with self.receive(at) as incoming:
            incoming.write(plain)
            del plain
            sealed = self._seal(
                incoming, banner, label_xml, doc.project_id, doc.originator, doc.media_type,
                doc.id, doc.custody, targets,
            )  # fmt: skip
            policy_uuid = sealed.policy.uuid
            return self._commit_relabel(
                doc,
                incoming,
                blob_key,
                banner,
                label_xml,
                at,
                {
                    "document": doc.id,
                    "title": doc.title,
                    "originator": doc.originator,
                    "from": before,
                    "to": banner,
                    "policy_uuid": policy_uuid,
                    "version": version,
                    "by": who.person_id,
                    "at": at.isoformat(),
                    **({} if why is None else {"justification": why}),
                },
            )

    def _commit_relabel(
        self,
        doc: DocumentView,
        incoming: Incoming,
        blob_key: str,
        banner: str,
        label_xml: bytes,
        at: datetime,
        entry: dict[str, object],
    ) -> DocumentView:
        """Publish the re-protected container, point the row at it, then record the
        ``document.relabelled`` entry (undone if the entry cannot be recorded)."""
        version = doc.version + 1
        staged = incoming._staged
        staged.publish(blob_key, _intent("document.relabelled", doc.id, version, entry))
        b = parsed_banner(banner, doc.originator)
        with self._db.session() as s:
            repo = SqlDocumentRepository(s)
            row = repo.get(doc.id)
            if row is None:
                raise NotFound("no such document")
            previous = (row.banner, row.label_xml, row.blob_key, row.policy_uuid, row.version)
            previous_rel_to = {doc.originator, *parsed_banner(row.banner, doc.originator).rel_to}
            entry["from"] = row.banner
            row.banner = banner
            row.label_xml = label_xml.decode()
            row.blob_key = blob_key
            row.policy_uuid = str(entry["policy_uuid"])
            row.version = version
            row.updated_at = at
            repo.changed(row, {doc.originator, *b.rel_to})
            view = document_view(row)
        try:
            self._sink.record("document.relabelled", entry)
        except BaseException:
            # Committed but not recorded: put the previous version back.
            with self._db.session() as s:
                repo = SqlDocumentRepository(s)
                row = repo.get(doc.id)
                if row is not None and row.blob_key == blob_key:
                    row.banner, row.label_xml, row.blob_key, row.policy_uuid = previous[:4]
                    row.version = previous[4]
                    row.updated_at = doc.updated_at
                    repo.changed(row, previous_rel_to)
            staged.discard()
            log.error("document_relabel_undone", document=doc.id, reason="audit append failed")
            raise StorageError("the relabel could not be recorded; nothing was changed") from None
        staged.release()
        return view

    # -- start-up -----------------------------------------------------------------------

    def sweep(self, at: datetime) -> list[str]:
        """Clean up after writers that died (run at start-up, before serving; other
        live workers' uploads are left alone). Returns what was swept.

        * staged upload files (ciphertext of uploads that never finished) are removed;
        * a claimed blob whose database change committed gets its audit entry now,
          marked ``recovered_at_startup`` (the writer may have died before appending
          it); one whose change never committed is deleted;
        * a document blob no row names (no such document, or a version above the
          row's) is deleted.

        Each deletion is logged and recorded as ``document.orphan_swept``.
        """
        swept: list[str] = []
        for name in self._blobs.sweep_staging():
            log.warning("upload_temp_swept", file=name)
            swept.append(name)
        for claim in self._blobs.stale_claims():
            try:
                intent = json.loads(claim.intent)
            except ValueError:
                intent = None  # a sweeper's own claim: the orphan pass below decides
            if not isinstance(intent, dict):
                claim.resolve(delete_blob=False)
                continue
            doc_id = str(intent.get("document", ""))
            with self._db.session() as s:
                row = SqlDocumentRepository(s).get(doc_id)
                committed = row is not None and row.blob_key == claim.key
            if committed:
                payload = {**intent.get("payload", {}), "recovered_at_startup": at.isoformat()}
                self._sink.record(str(intent.get("kind")), payload)
                log.warning("document_entry_recovered", document=doc_id, blob=claim.key)
                claim.resolve(delete_blob=False)
                continue
            self._orphan_swept(claim.key, doc_id, "its upload or relabel never committed", at)
            claim.resolve(delete_blob=True)
            swept.append(claim.key)
        keys = {k: m for k in self._blobs.keys() if (m := _BLOB_KEY.match(k))}  # noqa: SIM118
        with self._db.session() as s:
            versions = SqlDocumentRepository(s).versions({m["id"] for m in keys.values()})
        for key, m in sorted(keys.items()):
            doc_id, version = m["id"], int(m["version"])
            if doc_id in versions and version <= versions[doc_id]:
                continue

            def still_orphan(doc_id: str = doc_id, version: int = version) -> bool:
                with self._db.session() as s:
                    row = SqlDocumentRepository(s).get(doc_id)
                    return row is None or version > row.version

            if self._blobs.delete_unclaimed(key, still_orphan):
                self._orphan_swept(key, doc_id, "no document row names it", at)
                swept.append(key)
        return swept

    def _orphan_swept(self, key: str, doc_id: str, reason: str, at: datetime) -> None:
        log.warning("document_orphan_swept", blob=key, document=doc_id, reason=reason)
        self._sink.record(
            "document.orphan_swept",
            {"blob": key, "document": doc_id, "reason": reason, "at": at.isoformat()},
        )


def _fingerprinted(decision: Decision) -> bool:
    return any(o.kind == FINGERPRINT.kind for o in decision.obligations)


def _intent(kind: str, doc_id: str, version: int, payload: Mapping[str, object]) -> bytes:
    """What a claim on a new blob says will be recorded once its row commits."""
    return json.dumps(
        {"kind": kind, "document": doc_id, "version": version, "payload": payload},
        separators=(",", ":"),
    ).encode()
