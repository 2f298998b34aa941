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

Payloads live in the blob store as ZTDF containers only; plaintext is never
written to disk outside a temporary folder removed at once.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
from relto.decisions.adapters import default_recognition
from relto.documents._facts import DecisionFacts, document_view, resource_of
from relto.documents._keys import KeyAccessPort
from relto.documents._labels import compose_banner, parsed_banner
from relto.documents._model import MAX_DOCUMENT_BYTES, DocumentView, LabelChoice
from relto.documents.errors import ActionDenied
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.events import AuditSink
from relto.labels import builtin_policy
from relto.metrics import DomainMetrics
from relto.partnership import MAX_PAGE, Partnership, check_justification
from relto.store import BlobStore, Database
from relto.store.documents import DocumentRow, SqlDocumentRepository
from relto.store.partnership import SqlPartnershipRepository
from relto.vetting.service import VettingService
from relto.ztdf import Unwrap, open_container, protect
from relto.ztdf.attributes import marking_attributes

__all__ = ["DocumentService", "WhatIfView"]

log = structlog.stdlib.get_logger("relto.documents")

_TITLE = re.compile(r"^[^\x00-\x1f]{1,200}$")
_FILENAME = re.compile(r"[^A-Za-z0-9._ -]")
#: How many documents a listing decides at most (what-if, readable lists).
MAX_SCAN = 10_000


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
    ) -> None:
        self.facts = facts
        self._metrics = metrics
        self._keys = keys
        self._db = db
        self._blobs = blobs
        self._sink = sink
        self._vetting = vetting
        self._authz = authorizer
        self._namespace = attribute_namespace
        self.max_upload_bytes = min(MAX_DOCUMENT_BYTES, max_upload_bytes)

    # -- the partnership around a person ----------------------------------------------

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
            objects=tuple(resource_of(d) for d in docs),
            world=engine.world,
            mapper=engine.mapper,
            recognition=default_recognition(),
            at=at,
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
        data: bytes,
        at: datetime,
        doc_id: str | None = None,
    ) -> DocumentView:
        """Protect ``data`` under a label the uploader could read themselves. The
        originator is the uploader's home nation, as the directory records it."""
        if not _TITLE.match(title or ""):
            raise InvalidInput("the title must be 1-200 printable characters")
        if len(data) > self.max_upload_bytes:
            raise InvalidInput(f"the document is larger than {self.max_upload_bytes} bytes")
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
        policy_uuid, size = self._protect_into(
            data, banner, label_xml, project_id, nation, media, blob_key, at
        )
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
            )
            repo.add(row, {nation, *b.rel_to})
            self._sink.record(
                "document.protected",
                {
                    "document": doc_id,
                    "title": title,
                    "project": project_id,
                    "originator": nation,
                    "banner": banner,
                    "policy_uuid": policy_uuid,
                    "by": who.person_id,
                    "at": at.isoformat(),
                },
            )
            view = document_view(row)
        log.info("document_protected", document=doc_id, banner=banner)
        return view

    def _protect_into(
        self,
        data: bytes,
        banner: str,
        label_xml: bytes,
        project_id: str,
        originator: str,
        media_type: str,
        blob_key: str,
        at: datetime,
    ) -> tuple[str, int]:
        """Encrypt ``data`` into a container under the label, store it at ``blob_key``;
        (policy UUID, plaintext size)."""
        b = parsed_banner(banner, originator)
        work = Path(tempfile.mkdtemp(prefix="relto-up-"))
        try:
            src, dst = work / "plain", work / "container.tdf"
            src.write_bytes(data)
            result = protect(
                src,
                dst,
                kas=[self._keys.target()],
                at=at,
                attributes=marking_attributes(
                    b.classification, b.rel_to, [project_id], self._namespace
                ),
                label_xml=label_xml,
                mime_type=media_type,
            )
            with dst.open("rb") as f:
                self._blobs.put(blob_key, f)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return result.policy.uuid, result.plaintext_size

    def open(
        self, who: Principal, doc_id: str, at: datetime, *, action: str = "read"
    ) -> tuple[DocumentView, Decision, bytes | None]:
        """Decide, record, and (when allowed) decrypt with a key from the KAS.
        ``action``: ``read`` (shown) or ``download`` (a copy leaves the node)."""
        if action not in ("read", "download"):
            raise ValueError(f"open is for read or download, not {action!r}")
        doc = self.visible(who, doc_id)
        decision = self.facts.decide(who.person_id, action, doc, at)
        self.record_decision(who.person_id, action, doc, decision, at)
        if not decision.allowed:
            return doc, decision, None
        unwrap = self._keys.unwrap_for(who.person_id, who.home_nation, action)
        return doc, decision, self._decrypt(doc, unwrap)

    def _decrypt(self, doc: DocumentView, unwrap: Unwrap) -> bytes:
        with self._db.session() as s:
            row = SqlDocumentRepository(s).get(doc.id)
            if row is None:
                raise NotFound("no such document")
            blob_key = row.blob_key
        work = Path(tempfile.mkdtemp(prefix="relto-open-"))
        try:
            src, dst = work / "container.tdf", work / "plain"
            with self._blobs.open(blob_key) as f, src.open("wb") as out:
                shutil.copyfileobj(f, out)
            open_container(src, dst, unwrap=unwrap)
            return dst.read_bytes()
        finally:
            shutil.rmtree(work, ignore_errors=True)

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
        plain = self._decrypt(doc, self._keys.unwrap_for(who.person_id, who.home_nation, "relabel"))
        version = doc.version + 1
        blob_key = f"document-{doc.id}-v{version}.tdf"
        policy_uuid, _size = self._protect_into(
            plain, banner, label_xml, doc.project_id, doc.originator, doc.media_type, blob_key, at
        )
        b = parsed_banner(banner, doc.originator)
        with self._db.session() as s:
            repo = SqlDocumentRepository(s)
            row = repo.get(doc.id)
            if row is None:
                raise NotFound("no such document")
            before = row.banner
            row.banner = banner
            row.label_xml = label_xml.decode()
            row.blob_key = blob_key
            row.policy_uuid = policy_uuid
            row.version = version
            row.updated_at = at
            repo.changed(row, {doc.originator, *b.rel_to})
            self._sink.record(
                "document.relabelled",
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
            return document_view(row)
