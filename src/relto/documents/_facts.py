"""The decision facts of this node, cached per process behind change counters.

Admissions (as a decision engine), people with their clearances, and documents
by policy UUID are read from the database once and reused while the change
counters (:mod:`relto.store.facts`) still read what they were read at; every
decision reads the counters first (one query), so a change committed by any
process is seen by the next decision in every process (ADR 0078).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from relto.decisions import Admission as FactAdmission
from relto.decisions import (
    ClearanceFact,
    Decision,
    Engine,
    LevelMapper,
    Reason,
    Recognition,
    Resource,
    Subject,
    World,
)
from relto.decisions.adapters import (
    DEFAULT_CATEGORIES,
    VettingRecognition,
    default_mapper,
    default_recognition,
    resource_from_banner,
    subject_from_vetting,
    vetting_grant,
    world_review_keeps_access,
)
from relto.decisions.export_hook import ExportControlCheck
from relto.documents._export import ExportView, export_view, transfer_record
from relto.documents._labels import ProductLevelMapper, common_level, markings
from relto.documents._model import DocumentView
from relto.export_control import Reason as ExportReason
from relto.export_control import TransferDecision
from relto.export_control.records import TransferRecord
from relto.federation.attestation import AttestedPerson
from relto.partnership import MEMBER_NATIONS, PARTNER_NATIONS, RecordedAgreement
from relto.store import Database
from relto.store.documents import DocumentRow, SqlDocumentRepository
from relto.store.export_control import SqlExportRepository
from relto.store.facts import (
    DOCUMENTS,
    EXPORT,
    PARTNERSHIP,
    VETTING,
    VersionReader,
    read_versions,
)
from relto.store.partnership import SqlPartnershipRepository
from relto.store.vetting import SqlVettingRepository
from relto.vetting import Agreement, Clearance, Person, default_policy
from relto.vetting.service import VettingService

__all__ = [
    "ENGINE_MAX_USES",
    "DecisionFacts",
    "SharedEngine",
    "document_view",
    "subject_from_attestation",
]

#: Decisions one cached engine serves before it is rebuilt from the facts: the
#: engine memoises some answers per evaluation time (``at``), and the KAS asks
#: with a new ``at`` every time.
ENGINE_MAX_USES = 20_000
#: People whose vetting rows are kept per process (cleared when full).
_MAX_PEOPLE = 10_000
#: Documents (by policy UUID) kept per process (cleared when full).
_MAX_DOCUMENTS = 10_000
#: People read for what-if at most.
_MAX_SUBJECTS = 10_000

PersonRows = tuple[Person, tuple[Clearance, ...]]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def document_view(row: DocumentRow) -> DocumentView:
    top, bottom, cls, rel = markings(row.banner, row.originator, row.label_xml)
    return DocumentView(
        id=row.id,
        title=row.title,
        project_id=row.project_id,
        originator=row.originator,
        banner=row.banner,
        top_marking=top,
        bottom_marking=bottom,
        classification=cls,
        rel_to=rel,
        owner=row.owner,
        filename=row.filename,
        media_type=row.media_type,
        plaintext_size=row.plaintext_size,
        version=row.version,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        policy_uuid=row.policy_uuid,
        common_level=common_level(row.originator, cls),
        custody=tuple(n for n in (row.custody or "").split(",") if n),
    )


def resource_of(doc: DocumentView) -> Resource:
    """A document as decision facts (its label as recorded when it was protected)."""
    return resource_from_banner(
        doc.id, doc.banner, originator=doc.originator, project=doc.project_id
    )


#: Attested clearance statuses under which the clearance's caveats are held (with
#: ``under_review`` where the issuing nation keeps access during review).
_CURRENT = frozenset({"granted", "interim"})


def subject_from_attestation(
    person: AttestedPerson, at: datetime, review_keeps_access: frozenset[str] = frozenset()
) -> Subject:
    """A person of another nation as decision facts at ``at``, from what their home
    node attested -- never from this node's directory.

    Each clearance keeps its issuing nation and its level in that nation's scheme
    (a vetting level such as ``SC`` read as the classification it grants); one
    past its ``valid_until`` counts as expired. Caveats are held only through
    clearances current at ``at``. Roles are dropped: roles are held for the home
    nation and grant nothing on this node.
    """
    today = _utc(at).date()
    clearances = []
    caveats: set[str] = set()
    for i, c in enumerate(person.clearances):
        expired = c.valid_until is not None and c.valid_until < today
        status = "expired" if expired and c.status in (*_CURRENT, "under_review") else c.status
        cause = (
            f"expired on {c.valid_until.isoformat()}, as attested by the {person.home_nation} node"
            if expired and c.valid_until is not None
            else f"as attested by the {person.home_nation} node"
        )
        level = vetting_grant(c.issuer, c.level) or c.level
        clearances.append(ClearanceFact(f"attested:{c.issuer}:{i}", c.issuer, level, status, cause))
        if status in _CURRENT or (status == "under_review" and c.issuer in review_keeps_access):
            caveats.update(c.caveats)
    return Subject(
        id=person.person_id,
        nationalities=person.nationalities,
        clearances=tuple(clearances),
        caveats=frozenset(caveats),
        projects=person.projects,
        roles=frozenset(),
    )


def recognition_with(recorded: Sequence[RecordedAgreement]) -> Recognition:
    """Recognition through relto.vetting's sourced agreements and those the
    partnership recorded by its members' quorum (``agreement.record``); a recorded
    agreement replaces a sourced one of the same id (a deployment recording the
    entry into force relto could not confirm, or an end)."""
    if not recorded:
        return default_recognition()
    base = default_policy()
    mine = {
        a.id: Agreement(
            id=a.id,
            parties=frozenset(a.parties),
            title=a.title,
            signed=None,
            in_force=a.in_force,
            terminated=a.terminated,
            scope=a.scope,
            verified=True,
            sources=a.sources,
            note=f"recorded by the partnership {a.partnership_id}, {a.recorded_by}",
        )
        for a in recorded
    }
    kept = tuple(x for x in base.agreements if x.id not in mine)
    return VettingRecognition(replace(base, agreements=(*kept, *mine.values())))


class SharedEngine:
    """The process's decision engine, shared by its threads.

    :class:`relto.decisions.Engine` memoises in plain dictionaries; every call goes
    through one lock (an evaluation costs microseconds).
    """

    def __init__(
        self,
        engine: Engine,
        version: tuple[int, int] | None,
        export: ExportView | None = None,
    ) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        #: The partnership and export counters the engine was built at (``None``:
        #: never reused).
        self.version = version
        self.uses = 0
        #: Which objects are export controlled here, and the engine's hook on them.
        self.export = export or ExportView(None, {})

    @property
    def world(self) -> World:
        return self._engine.world

    @property
    def mapper(self) -> LevelMapper:
        return self._engine.mapper

    @property
    def recognition(self) -> Recognition:
        return self._engine.recognition

    def tag(self, obj: Resource) -> Resource:
        """``obj`` as decisions see it here: marked export controlled when the
        export-control office classified it."""
        return self.export.tag(obj)

    def evaluate(self, subject: Subject, action: str, obj: Resource, *, at: datetime) -> Decision:
        obj = self.export.tag(obj)
        with self._lock:
            self.uses += 1
            return self._engine.evaluate(subject, action, obj, at=at)

    def transfer_record(
        self,
        subject: Subject,
        action: str,
        obj: Resource,
        title: str,
        decision: Decision,
        at: datetime,
    ) -> TransferRecord | None:
        """What to record of an allowed release of a controlled item (``None``:
        nothing)."""
        with self._lock:
            return transfer_record(
                self.export, subject, action, self.export.tag(obj), title, decision, at
            )

    def readable(
        self, subject: Subject, objects: Iterable[Resource], *, at: datetime, action: str = "read"
    ) -> list[Resource]:
        tag = self.export.tag
        objects = [tag(o) for o in objects]
        with self._lock:
            self.uses += 1
            return list(self._engine.readable(subject, objects, at=at, action=action))


class _CacheMiss(Exception):
    """A fact is not cached at the current counters: read it off the event loop."""


class _FactCache:
    """What this process has read of the decision facts, each part with the
    counter it was read at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: SharedEngine | None = None
        self.vetting_version: int | None = None
        self.people: dict[str, PersonRows | None] = {}
        self.documents_version: int | None = None
        #: policy UUID -> (document, its decision resource), or None: not ours
        self.documents: dict[str, tuple[DocumentView, Resource] | None] = {}


SessionFactory = Callable[[], Session]


class DecisionFacts:
    """Decisions on this node's documents, from this node's records only.

    ``demo``: the engine reads national SPIF level names through the demo level
    bridge (:class:`ProductLevelMapper`, ADR 0075); otherwise only sourced
    equivalences count.
    """

    def __init__(self, db: Database, vetting: VettingService, *, demo: bool) -> None:
        self._db = db
        self._vetting = vetting
        self._demo = demo
        self._cache = _FactCache()
        self._versions: VersionReader | None = None

    # -- reading the facts ------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[tuple[Mapping[str, int], SessionFactory]]:
        """The counters as committed now (one query on a plain connection) and a
        session opened only if a fact must be read again. It reads after the
        counters, so what it reads is never older than the counters say."""
        with self._db.engine.connect() as conn:
            versions = read_versions(conn)
        with ExitStack() as stack:
            opened: list[Session] = []

            def session() -> Session:
                if not opened:
                    opened.append(stack.enter_context(self._db.session()))
                return opened[0]

            yield versions, session

    def level_mapper(self) -> LevelMapper:
        """Sourced equivalences only (``relto.labels``) outside demo mode; in demo mode
        the engine's table bridged to SPIF names (ADR 0075)."""
        return ProductLevelMapper() if self._demo else default_mapper()

    def engine(self, extra_admissions: Sequence[FactAdmission] = ()) -> SharedEngine:
        """A decision engine over the partnership's admissions as stored now.

        Without ``extra_admissions`` it is the process's shared engine, rebuilt
        only when the partnership counter moved; with them (what-if) a fresh
        engine that is never cached.
        """
        with self._reading() as (versions, session):
            if extra_admissions:
                return self._build_engine(session(), None, extra_admissions)
            return self._engine_in(session, versions)

    def _engine_in(self, session: SessionFactory, versions: Mapping[str, int]) -> SharedEngine:
        p, x = versions.get(PARTNERSHIP), versions.get(EXPORT)
        version = None if p is None or x is None else (p, x)
        cached = self._cache.engine
        if (
            cached is not None
            and version is not None
            and cached.version == version
            and cached.uses < ENGINE_MAX_USES
        ):
            return cached
        built = self._build_engine(session(), version, ())
        if version is not None:
            with self._cache.lock:
                self._cache.engine = built
        return built

    def _build_engine(
        self, s: Session, version: tuple[int, int] | None, extra: Sequence[FactAdmission]
    ) -> SharedEngine:
        facts = [
            FactAdmission(a.nation, a.project_id, a.ceiling, a.valid_from, a.end)
            for a in SqlPartnershipRepository(s).all_admissions()
        ]
        facts.extend(extra)
        recorded = SqlPartnershipRepository(s).agreements()
        nations = (*MEMBER_NATIONS, *PARTNER_NATIONS)
        label = "unversioned" if version is None else str(version[0])
        if version is not None and version[1]:
            label += f"+export:{version[1]}"
        world = World(
            admissions=tuple(facts),
            review_keeps_access=world_review_keeps_access(nations),
            known_categories=DEFAULT_CATEGORIES,
            policy_version=f"partnership:{label}" + ("+what-if" if extra else ""),
        )
        export = export_view(SqlExportRepository(s).stored())
        engine = Engine(world, self.level_mapper(), recognition_with(recorded), export.check)
        return SharedEngine(engine, None if extra else version, export)

    def _person_rows(
        self, session: SessionFactory, versions: Mapping[str, int], person_id: str
    ) -> PersonRows | None:
        """The person and their clearances (``None``: unknown), cached per vetting
        counter."""
        version = versions.get(VETTING)
        cache = self._cache
        if version is not None and cache.vetting_version == version:
            try:
                return cache.people[person_id]
            except KeyError:
                pass
        repo = SqlVettingRepository(session())
        person = repo.get_person(person_id)
        rows = (
            None
            if person is None
            else (person, tuple(repo.list_clearances(limit=200, after=None, person_id=person_id)))
        )
        if version is not None:
            with cache.lock:
                if cache.vetting_version != version or len(cache.people) >= _MAX_PEOPLE:
                    cache.people = {}
                    cache.vetting_version = version
                cache.people[person_id] = rows
        return rows

    def _document_by_policy(
        self, session: SessionFactory, versions: Mapping[str, int], policy_uuid: str
    ) -> tuple[DocumentView, Resource] | None:
        """The document protected under ``policy_uuid``, cached per documents counter
        (a relabel moves the counter, so an old policy UUID stops resolving)."""
        key = policy_uuid[:64]
        version = versions.get(DOCUMENTS)
        cache = self._cache
        if version is not None and cache.documents_version == version:
            try:
                return cache.documents[key]
            except KeyError:
                pass
        row = SqlDocumentRepository(session()).by_policy(key)
        found = None
        if row is not None:
            doc = document_view(row)
            found = (doc, resource_of(doc))
        if version is not None:
            with cache.lock:
                if cache.documents_version != version or len(cache.documents) >= _MAX_DOCUMENTS:
                    cache.documents = {}
                    cache.documents_version = version
                cache.documents[key] = found
        return found

    # -- people as facts ----------------------------------------------------------

    def person(self, person_id: str) -> Person | None:
        """The directory's record of ``person_id`` (``None``: unknown here)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
        return None if rows is None else rows[0]

    def subject(self, person_id: str, at: datetime) -> Subject | None:
        """The person as decision facts at ``at`` (``None``: unknown person)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
        return self._subject_of(rows, at)

    def _subject_of(self, rows: PersonRows | None, at: datetime) -> Subject | None:
        """Statuses depend on ``at``: computed on every call, from cached rows."""
        if rows is None:
            return None
        person, clearances = rows
        return subject_from_vetting(person, clearances, at, self._vetting.policy)

    def subjects(self, at: datetime) -> list[Subject]:
        """Every person on this node as decision facts (what-if)."""
        people = self._vetting.all_people(_MAX_SUBJECTS)
        out = []
        for p in people:
            clearances = self._vetting.list_clearances(limit=200, person_id=p.id).items
            out.append(subject_from_vetting(p, clearances, at, self._vetting.policy))
        return out

    # -- decisions ----------------------------------------------------------------

    def decide(self, person_id: str, action: str, doc: DocumentView, at: datetime) -> Decision:
        """The engine's explained decision (an unknown person is denied, with a reason)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
            engine = self._engine_in(session, versions)
        return self._evaluate(engine, rows, action, resource_of(doc), at)

    def decide_policy(
        self, person_id: str, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Decision | None, Person | None]:
        """The document protected under ``policy_uuid``, the decision on it and the
        person asked about (``(None, None, None)``: this node did not protect it).
        One query when nothing changed: the counters."""
        with self._reading() as (versions, session):
            found = self._document_by_policy(session, versions, policy_uuid)
            if found is None:
                return None, None, None
            rows = self._person_rows(session, versions, person_id)
            engine = self._engine_in(session, versions)
        doc, resource = found
        decision = self._evaluate(engine, rows, action, resource, at)
        return doc, decision, None if rows is None else rows[0]

    async def decide_policy_async(
        self, person_id: str, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Decision | None, Person | None]:
        """:meth:`decide_policy` for an event loop. The counters are read off the
        loop (batched with other waiters, always by a query that starts after this
        call); when every fact is cached at those counters the decision is computed
        right here, else the whole of :meth:`decide_policy` runs on a worker thread.
        Either way the facts are as fresh as the synchronous path's."""
        if self._versions is None:
            self._versions = VersionReader(self._db)
        versions = await self._versions.read()

        def miss() -> Session:
            raise _CacheMiss

        try:
            found = self._document_by_policy(miss, versions, policy_uuid)
            if found is None:
                return None, None, None
            rows = self._person_rows(miss, versions, person_id)
            engine = self._engine_in(miss, versions)
        except _CacheMiss:
            return await asyncio.to_thread(self.decide_policy, person_id, action, policy_uuid, at)
        doc, resource = found
        decision = self._evaluate(engine, rows, action, resource, at)
        return doc, decision, None if rows is None else rows[0]

    def decide_attested(
        self, person: AttestedPerson, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Decision | None]:
        """The document protected under ``policy_uuid`` and the decision on it for a
        person of another nation as their home node attested them (``(None,
        None)``: this node did not protect it). This node's world decides:
        admissions, recognition, the document's own label."""
        with self._reading() as (versions, session):
            found = self._document_by_policy(session, versions, policy_uuid)
            if found is None:
                return None, None
            engine = self._engine_in(session, versions)
        return found[0], self._evaluate_attested(engine, person, action, found[1], at)

    async def decide_attested_async(
        self, person: AttestedPerson, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Decision | None]:
        """:meth:`decide_attested` for an event loop (as :meth:`decide_policy_async`)."""
        if self._versions is None:
            self._versions = VersionReader(self._db)
        versions = await self._versions.read()

        def miss() -> Session:
            raise _CacheMiss

        try:
            found = self._document_by_policy(miss, versions, policy_uuid)
            if found is None:
                return None, None
            engine = self._engine_in(miss, versions)
        except _CacheMiss:
            return await asyncio.to_thread(self.decide_attested, person, action, policy_uuid, at)
        return found[0], self._evaluate_attested(engine, person, action, found[1], at)

    def decide_resource(
        self, person_id: str, action: str, resource: Resource, at: datetime
    ) -> tuple[Decision, Person | None]:
        """The decision on an object this node does not hold (a partner's, held here
        in joint custody) described by ``resource``, for a person of this node's
        directory, and that person (``None``: unknown, and denied)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
            engine = self._engine_in(session, versions)
        decision = self._evaluate(engine, rows, action, resource, at)
        return decision, None if rows is None else rows[0]

    def decide_attested_resource(
        self, person: AttestedPerson, action: str, resource: Resource, at: datetime
    ) -> Decision:
        """:meth:`decide_resource` for a person of another nation as attested."""
        return self._evaluate_attested(self.engine(), person, action, resource, at)

    def decide_attested_document(
        self, person: AttestedPerson, action: str, doc: DocumentView, at: datetime
    ) -> Decision:
        """The decision on ``doc`` for an attested person (listing what they may read)."""
        return self._evaluate_attested(self.engine(), person, action, resource_of(doc), at)

    def export_decision(
        self, person_id: str, action: str, doc: DocumentView, at: datetime, to: str | None = None
    ) -> TransferDecision | None:
        """The export check alone on ``doc`` for ``person_id`` (a ``share`` is a
        re-transfer to ``to``), with its legal basis or every missing condition;
        ``None`` when the object is not classified here or the person is unknown."""
        engine = self.engine()
        check = engine.export.check
        obj = engine.tag(resource_of(doc))
        subject = self.subject(person_id, at)
        if obj.export is None or subject is None or check is None:
            return None
        if isinstance(check, ExportControlCheck):
            if to is not None:
                check = check.retransfer_to(to)
            return check.decide(subject, action, obj, at)
        sentence = check.check(subject, action, obj, at)
        code, _, text = (sentence or "").partition(": ")
        return TransferDecision(False, None, (ExportReason(code, text),))

    def transfer_record(
        self,
        person: str | AttestedPerson,
        action: str,
        doc: DocumentView,
        decision: Decision,
        at: datetime,
    ) -> TransferRecord | None:
        """What to record of an allowed release of ``doc`` to ``person`` (a person of
        this node's directory by id, or one their home node attested): ``None``
        unless it is a controlled item allowed under a legal basis."""
        if not decision.allowed or not decision.legal_basis:
            return None
        engine = self.engine()
        if isinstance(person, AttestedPerson):
            subject: Subject | None = subject_from_attestation(
                person, at, engine.world.review_keeps_access
            )
        else:
            subject = self.subject(person, at)
        if subject is None:
            return None
        return engine.transfer_record(subject, action, resource_of(doc), doc.title, decision, at)

    @staticmethod
    def _evaluate_attested(
        engine: SharedEngine, person: AttestedPerson, action: str, resource: Resource, at: datetime
    ) -> Decision:
        subject = subject_from_attestation(person, at, engine.world.review_keeps_access)
        return engine.evaluate(subject, action, resource, at=at)

    def _evaluate(
        self,
        engine: SharedEngine,
        rows: PersonRows | None,
        action: str,
        resource: Resource,
        at: datetime,
    ) -> Decision:
        subject = self._subject_of(rows, at)
        if subject is None or rows is None:
            reason = Reason(
                "CLEARANCE_MISSING",
                "You have no vetting record on this node, so no clearance can count.",
            )
            return Decision(False, (reason,), reason.code, "none", ())
        if action == "relabel" and rows[0].home_nation != resource.originator:
            # Roles are held for the person's home nation: relabelling needs them
            # for the object's originating nation.
            subject = replace(subject, roles=frozenset())
        return engine.evaluate(subject, action, resource, at=at)
