"""Protected documents on this node: upload = protect, open = decide + rewrap.

This is the product's glue between the capabilities, and nothing more:

* labels come from :mod:`relto.labels` (banner parsing, SPIF validation, STANAG
  4774 XML, the SPIF's page markings);
* containers from :mod:`relto.ztdf` (``protect`` / ``open_container``);
* keys from this node's key access service (:mod:`relto.kas`), called in-process
  for console users exactly as a remote client would call it over HTTP;
* decisions from :mod:`relto.decisions`, with facts from :mod:`relto.vetting`
  (people, clearances) and :mod:`relto.partnership` (admissions).

Every upload, open, denial and relabel is reported to the audit sink before the
caller sees its result. Payloads live in the blob store as ZTDF containers only;
plaintext is never written to disk outside a temporary folder removed at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.partnership import MAX_PAGE
from relto.store.facts import (
    DOCUMENTS,
    PARTNERSHIP,
    VETTING,
    VersionReader,
    bump,
    read_versions,
)
from relto.store.partnership import DocumentRow, SqlPartnershipRepository

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "DocumentService",
    "DocumentView",
    "LabelChoice",
    "ProductDecider",
    "document_service",
]

log = structlog.stdlib.get_logger("relto.documents")

#: Largest document accepted through the console and the API (bounded by settings too).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_TITLE = re.compile(r"^[^\x00-\x1f]{1,200}$")
_FILENAME = re.compile(r"[^A-Za-z0-9._ -]")


@dataclass(frozen=True)
class DocumentView:
    """What a list or page shows about a document (never its content)."""

    id: str
    title: str
    project_id: str
    originator: str
    banner: str
    top_marking: str
    bottom_marking: str
    classification: str
    rel_to: tuple[str, ...]
    owner: str
    filename: str
    media_type: str
    plaintext_size: int
    version: int
    created_at: datetime
    updated_at: datetime
    policy_uuid: str

    @property
    def common_level(self) -> str:
        """The classification on the partnership's common scale (for colour only)."""
        return _common_level(self.originator, self.classification)


def _common_level(originator: str, classification: str) -> str:
    try:
        from relto.decisions import COMMON_SCHEME

        return ProductLevelMapper().map_level(originator, classification, COMMON_SCHEME) or ""
    except Exception:
        return ""


@dataclass(frozen=True)
class LabelChoice:
    """What the upload form may offer a person: only values that make valid labels."""

    originator: str
    classifications: tuple[str, ...]
    nations: tuple[str, ...]
    projects: tuple[tuple[str, str], ...]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _markings(
    banner: str, originator: str, label_xml: str
) -> tuple[str, str, str, tuple[str, ...]]:
    """(top, bottom, classification, rel_to) as the originator's SPIF marks them."""
    from relto.labels import builtin_policy, marking, parse_banner, read_label
    from relto.labels.spif import Loc

    b = parse_banner(banner, originator=originator)
    try:
        spif = builtin_policy(originator)
        label = read_label(label_xml.encode())
        top = marking(label, spif, loc=Loc.PAGE_TOP)
        bottom = marking(label, spif, loc=Loc.PAGE_BOTTOM)
    except Exception:  # a marking rule we cannot apply: show the canonical banner
        top = bottom = b.render()
    return top or b.render(), bottom or b.render(), b.classification, tuple(b.rel_to)


def _view(row: DocumentRow) -> DocumentView:
    top, bottom, cls, rel = _markings(row.banner, row.originator, row.label_xml)
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
    )


class ProductLevelMapper:
    """The decision engine's level table, reading national SPIF level names too
    (demo mode only: it assumes equivalences no public source records, see ADR 0075).

    :mod:`relto.vetting` records what a clearance grants in the nation's SPIF
    (``GOKUHI``, ``CLASS III SECRET``) while the engine's table
    (:data:`relto.decisions.DEFAULT_SCHEMES`) spells levels in English. A SPIF name
    the table does not know is translated through :func:`relto.labels.map_level`
    to the USA scheme (the one every built-in SPIF has equivalences with) and back
    to the table's level of the same common rank. No equivalence: left as is, and
    the engine denies (fail closed).
    """

    def __init__(self) -> None:
        from relto.decisions import TableLevelMapper
        from relto.decisions.protocols import DEFAULT_SCHEMES

        self._table = TableLevelMapper()
        self._common = {
            (nation, name): common
            for nation, levels in DEFAULT_SCHEMES.items()
            for name, common in levels
        }
        self._levels = {nation: tuple(levels) for nation, levels in DEFAULT_SCHEMES.items()}
        self._cache: dict[tuple[str, str], str] = {}

    def _normalise(self, nation: str, level: str) -> str:
        key = (nation, level)
        if key in self._common:
            return level
        if key in self._cache:
            return self._cache[key]
        out = level
        try:
            from relto.labels import map_level

            usa = map_level(nation, level, "USA")
        except Exception:
            usa = None
        common = self._common.get(("USA", usa)) if usa else None
        if common is not None:
            for name, c in self._levels.get(nation, ()):
                if c == common:
                    out = name
        self._cache[key] = out
        return out

    def rank(self, nation: str, level: str) -> int | None:
        return self._table.rank(nation, self._normalise(nation, level))

    def map_level(self, from_nation: str, level: str, to_nation: str) -> str | None:
        return self._table.map_level(from_nation, self._normalise(from_nation, level), to_nation)


#: Decisions one cached engine serves before it is rebuilt from the facts: the
#: engine memoises some answers per evaluation time (``at``) without a bound, and
#: the KAS asks with a new ``at`` every time.
ENGINE_MAX_USES = 20_000
#: People whose vetting rows are kept per process (cleared when full).
_MAX_PEOPLE = 10_000
#: Documents (by policy UUID) kept per process (cleared when full).
_MAX_DOCUMENTS = 10_000


class _SharedEngine:
    """The process's decision engine, shared by its threads.

    :class:`relto.decisions.Engine` memoises in plain dictionaries and numbers
    object groups with a counter that is not atomic; two threads evaluating at
    once could give two groups one number and share their memoised decisions. So
    every call goes through one lock (an evaluation costs microseconds).
    """

    def __init__(self, engine: Any, version: int | None) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        #: The partnership counter the engine was built at (``None``: never reused).
        self.version = version
        self.uses = 0

    @property
    def world(self) -> Any:
        return self._engine.world

    @property
    def mapper(self) -> Any:
        return self._engine.mapper

    @property
    def recognition(self) -> Any:
        return self._engine.recognition

    def evaluate(self, subject: Any, action: str, obj: Any, *, at: datetime) -> Any:
        with self._lock:
            self.uses += 1
            return self._engine.evaluate(subject, action, obj, at=at)

    def enforce(
        self, subject: Any, action: str, obj: Any, *, at: datetime, sink: Any = None
    ) -> Any:
        with self._lock:
            self.uses += 1
            return self._engine.enforce(subject, action, obj, at=at, sink=sink)

    def readable(
        self, subject: Any, objects: Iterable[Any], *, at: datetime, action: str = "read"
    ) -> list[Any]:
        objects = list(objects)
        with self._lock:
            self.uses += 1
            return list(self._engine.readable(subject, objects, at=at, action=action))

    def readers(
        self, obj: Any, subjects: Iterable[Any], *, at: datetime, action: str = "read"
    ) -> list[Any]:
        subjects = list(subjects)
        with self._lock:
            self.uses += 1
            return list(self._engine.readers(obj, subjects, at=at, action=action))

    def evaluate_many(self, requests: Iterable[tuple[Any, str, Any]], *, at: datetime) -> list[Any]:
        requests = list(requests)
        with self._lock:
            self.uses += 1
            return list(self._engine.evaluate_many(requests, at=at))


class _FactCache:
    """What this process has read of the decision facts, each part with the
    counter (:mod:`relto.store.facts`) it was read at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: _SharedEngine | None = None
        self.vetting_version: int | None = None
        self.people: dict[str, tuple[Any, tuple[Any, ...]] | None] = {}
        self.documents_version: int | None = None
        #: policy UUID -> (document, its decision resource), or None: not ours
        self.documents: dict[str, tuple[DocumentView, Any] | None] = {}


class DocumentService:
    """Upload, list, decide, open and relabel protected documents on one node.

    Decision facts (admissions, people and their clearances, documents by policy)
    are cached per process and reused while the change counters in the database
    (:mod:`relto.store.facts`) still read what they were read at; every decision
    reads the counters first (one query), so a change committed by any process is
    seen by the next decision in every process (ADR 0078).
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._facts = _FactCache()
        self._versions: VersionReader | None = None

    # -- facts -------------------------------------------------------------------

    def _vetting(self) -> Any:
        from relto.server.routes.console import vetting_service

        return vetting_service(self.ctx)

    def engine(self, extra_admissions: Iterable[Any] = ()) -> Any:
        """A decision engine over the partnership's admissions as stored now.

        Without ``extra_admissions`` it is the process's shared engine, rebuilt
        only when the partnership counter moved; with them (what-if callers) a
        fresh engine that is never cached.
        """
        extra = tuple(extra_admissions)
        with self._reading() as (versions, session):
            if extra:
                return self._build_engine(session(), versions.get(PARTNERSHIP), extra)
            return self._engine_in(session, versions)

    @contextmanager
    def _reading(self) -> Iterator[tuple[Mapping[str, int], Callable[[], Any]]]:
        """The counters as committed now (one query on a plain connection) and a
        session opened only if a fact must be read again. It reads after the
        counters, so what it reads is never older than the counters say."""
        with self.ctx.db.engine.connect() as conn:
            versions = read_versions(conn)
        with ExitStack() as stack:
            opened: list[Any] = []

            def session() -> Any:
                if not opened:
                    opened.append(stack.enter_context(self.ctx.db.session()))
                return opened[0]

            yield versions, session

    def _engine_in(self, session: Callable[[], Any], versions: Mapping[str, int]) -> _SharedEngine:
        """The shared engine if it was built at ``versions``' partnership counter,
        else a new one built from ``session()``."""
        version = versions.get(PARTNERSHIP)
        cached = self._facts.engine
        if (
            cached is not None
            and version is not None
            and cached.version == version
            and cached.uses < ENGINE_MAX_USES
        ):
            return cached
        built = self._build_engine(session(), version, ())
        if version is not None:
            with self._facts.lock:
                self._facts.engine = built
        return built

    def _build_engine(self, s: Any, version: int | None, extra: Sequence[Any]) -> _SharedEngine:
        from relto.decisions import Admission as FactAdmission
        from relto.decisions import Engine, World
        from relto.decisions.adapters import (
            DEFAULT_CATEGORIES,
            default_recognition,
            world_review_keeps_access,
        )
        from relto.partnership import MEMBER_NATIONS, PARTNER_NATIONS

        admissions = SqlPartnershipRepository(s).all_admissions()
        facts = [
            FactAdmission(a.nation, a.project_id, a.ceiling, a.valid_from, a.end)
            for a in admissions
        ]
        facts.extend(extra)
        nations = (*MEMBER_NATIONS, *PARTNER_NATIONS)
        keeps = world_review_keeps_access(nations)
        label = "unversioned" if version is None else str(version)
        policy_version = f"partnership:{label}" + ("+what-if" if extra else "")
        world = World(
            admissions=tuple(facts),
            review_keeps_access=keeps,
            known_categories=DEFAULT_CATEGORIES,
            policy_version=policy_version,
        )
        engine = Engine(world, self.level_mapper(), default_recognition())
        return _SharedEngine(engine, None if extra else version)

    def _person_rows(
        self, session: Callable[[], Any], versions: Mapping[str, int], person_id: str
    ) -> tuple[Any, tuple[Any, ...]] | None:
        """The person and their clearances (``None``: unknown), cached per vetting
        counter."""
        from relto.store.vetting import SqlVettingRepository

        version = versions.get(VETTING)
        cache = self._facts
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
        self, session: Callable[[], Any], versions: Mapping[str, int], policy_uuid: str
    ) -> tuple[DocumentView, Any] | None:
        """The document protected under ``policy_uuid``, cached per documents counter
        (a relabel moves the counter, so an old policy UUID stops resolving)."""
        from sqlalchemy import select

        key = policy_uuid[:64]
        version = versions.get(DOCUMENTS)
        cache = self._facts
        if version is not None and cache.documents_version == version:
            try:
                return cache.documents[key]
            except KeyError:
                pass
        row = session().scalars(select(DocumentRow).where(DocumentRow.policy_uuid == key)).first()
        view = None
        if row is not None:
            doc = _view(row)
            view = (doc, self.resource(doc))
        if version is not None:
            with cache.lock:
                if cache.documents_version != version or len(cache.documents) >= _MAX_DOCUMENTS:
                    cache.documents = {}
                    cache.documents_version = version
                cache.documents[key] = view
        return view

    def level_mapper(self) -> Any:
        """Sourced equivalences only (``relto.labels``) outside demo mode; in demo mode
        the engine's table, which assumes levels of the same name and common rank are
        equivalent (see ADR 0075)."""
        if self.ctx.settings.demo:
            return ProductLevelMapper()
        from relto.decisions.adapters import default_mapper

        return default_mapper()

    def subject(self, person_id: str, at: datetime) -> Any | None:
        """The person as decision facts at ``at`` (``None``: unknown person)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
        return self._subject_of(rows, at)

    def _subject_of(self, rows: tuple[Any, tuple[Any, ...]] | None, at: datetime) -> Any | None:
        """Statuses depend on ``at``: computed on every call, from cached rows."""
        from relto.decisions.adapters import subject_from_vetting

        if rows is None:
            return None
        person, clearances = rows
        return subject_from_vetting(person, clearances, at, self._vetting().policy)

    def subjects(self, at: datetime) -> list[Any]:
        """Every person on this node as decision facts (for what-if and readers)."""
        from relto.decisions.adapters import subject_from_vetting

        vetting = self._vetting()
        people: list[Any] = []
        after: str | None = None
        while len(people) < 10_000:
            page = vetting.list_people(limit=200, after=after)
            people.extend(page.items)
            if page.next_after is None:
                break
            after = page.next_after
        out = []
        for p in people:
            clearances = vetting.list_clearances(limit=200, person_id=p.id).items
            out.append(subject_from_vetting(p, clearances, at, vetting.policy))
        return out

    @staticmethod
    def resource(doc: DocumentView) -> Any:
        from relto.decisions.adapters import resource_from_banner

        return resource_from_banner(
            doc.id, doc.banner, originator=doc.originator, project=doc.project_id
        )

    def decide(self, person_id: str, action: str, doc: DocumentView, at: datetime) -> Any:
        """The engine's explained decision (an unknown person is denied, with a reason)."""
        with self._reading() as (versions, session):
            rows = self._person_rows(session, versions, person_id)
            engine = self._engine_in(session, versions)
        return self._evaluate(engine, rows, action, self.resource(doc), at)

    def decide_policy(
        self, person_id: str, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Any]:
        """The document protected under ``policy_uuid`` and the decision on it
        (``(None, None)``: this node did not protect it). One query when nothing
        changed: the counters."""
        with self._reading() as (versions, session):
            found = self._document_by_policy(session, versions, policy_uuid)
            if found is None:
                return None, None
            rows = self._person_rows(session, versions, person_id)
            engine = self._engine_in(session, versions)
        doc, resource = found
        return doc, self._evaluate(engine, rows, action, resource, at)

    async def decide_policy_async(
        self, person_id: str, action: str, policy_uuid: str, at: datetime
    ) -> tuple[DocumentView | None, Any]:
        """:meth:`decide_policy` for an event loop. The counters are read off the
        loop (batched with other waiters, always by a query that starts after this
        call); when every fact is cached at those counters the decision is computed
        right here, else the whole of :meth:`decide_policy` runs on a worker thread.
        Either way the facts are as fresh as the synchronous path's."""
        if self._versions is None:
            self._versions = VersionReader(self.ctx.db)
        versions = await self._versions.read()

        def miss() -> Any:
            raise _CacheMiss

        try:
            found = self._document_by_policy(miss, versions, policy_uuid)
            if found is None:
                return None, None
            rows = self._person_rows(miss, versions, person_id)
            engine = self._engine_in(miss, versions)
        except _CacheMiss:
            return await asyncio.to_thread(self.decide_policy, person_id, action, policy_uuid, at)
        doc, resource = found
        return doc, self._evaluate(engine, rows, action, resource, at)

    def _evaluate(
        self,
        engine: _SharedEngine,
        rows: tuple[Any, tuple[Any, ...]] | None,
        action: str,
        resource: Any,
        at: datetime,
    ) -> Any:
        from relto.decisions import Decision, Reason

        subject = self._subject_of(rows, at)
        if subject is None:
            reason = Reason(
                "CLEARANCE_MISSING",
                "You have no vetting record on this node, so no clearance can count.",
            )
            return Decision(False, (reason,), reason.code, "none", ())
        return engine.evaluate(subject, action, resource, at=at)

    def record_decision(
        self, person_id: str, action: str, doc: DocumentView, decision: Any, at: datetime
    ) -> None:
        self.ctx.sink.record(
            "decision",
            {
                "subject": person_id,
                "action": action,
                "object": doc.id,
                "object_title": doc.title,
                "banner": doc.banner,
                "at": at.isoformat(),
                "allowed": bool(decision.allowed),
                "reasons": [{"code": r.code, "sentence": r.sentence} for r in decision.reasons],
                "rule": decision.rule,
                "policy_version": decision.policy_version,
            },
        )

    def may_explain(
        self,
        viewer_id: str,
        viewer_roles: frozenset[tuple[str, str]],
        person_id: str,
        doc: DocumentView,
    ) -> bool:
        """Anyone may see their own decisions; security officers and auditors those of
        people of their nation and those on their nation's documents."""
        if viewer_id == person_id:
            return True
        nations = {doc.originator}
        subject = self.subject(person_id, datetime.now(UTC))
        if subject is not None:
            nations |= set(subject.nationalities)
        return any(
            role in ("security_officer", "auditor") and nation in nations
            for role, nation in viewer_roles
        )

    def population(self, at: datetime, nation: str) -> Any:
        """Everyone and every document of ``nation``'s partnerships, as what-if facts."""
        from relto.decisions import Population
        from relto.decisions.adapters import default_recognition

        engine = self.engine()
        return Population(
            subjects=tuple(self.subjects(at)),
            objects=tuple(self.resource(d) for d in self.all_documents(nation)),
            world=engine.world,
            mapper=engine.mapper,
            recognition=default_recognition(),
            at=at,
        )

    def what_if(self, changes: Sequence[str], *, nation: str, at: datetime) -> Any:
        """Who would gain or lose read access to what if ``changes`` were made.

        ``changes`` use relto.decisions' syntax (``admit:JPN:undersea:SECRET``,
        ``rel-to:OBJECT:JPN``...). Nothing is written.
        """
        from relto.decisions import InvalidChange, parse_change, what_if

        try:
            parsed = [parse_change(c) for c in changes]
        except InvalidChange as exc:
            raise InvalidInput(str(exc)) from None
        return what_if(self.population(at, nation), parsed)

    # -- reading -------------------------------------------------------------------

    def get(self, doc_id: str) -> DocumentView:
        with self.ctx.db.session() as s:
            row = s.get(DocumentRow, doc_id[:64])
            if row is None:
                raise NotFound("no such document")
            return _view(row)

    def by_policy(self, policy_uuid: str) -> DocumentView | None:
        with self._reading() as (versions, session):
            found = self._document_by_policy(session, versions, policy_uuid)
        return None if found is None else found[0]

    def projects_of(self, nation: str) -> set[str]:
        """Projects of the partnerships ``nation`` belongs to."""
        with self.ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            return {
                pr.id
                for p in repo.list_partnerships(0, MAX_PAGE).items
                if nation in p.nations
                for pr in repo.list_projects(p.id, 0, MAX_PAGE).items
            }

    def visible_to(self, doc_id: str, nation: str) -> DocumentView:
        """The document if it belongs to a project of ``nation``'s partnerships."""
        doc = self.get(doc_id)
        if doc.project_id not in self.projects_of(nation):
            raise NotFound("no such document")
        return doc

    def all_documents(self, nation: str, cap: int = 10_000) -> list[DocumentView]:
        """Every document of ``nation``'s partnerships, up to ``cap`` (for what-if)."""
        out: list[DocumentView] = []
        while len(out) < cap:
            batch = self.list(nation, limit=MAX_PAGE, offset=len(out))
            if not batch:
                break
            out.extend(batch)
        return out[:cap]

    def count(self, nation: str) -> int:
        from sqlalchemy import func, select

        projects = self.projects_of(nation)
        with self.ctx.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(DocumentRow)
                    .where(DocumentRow.project_id.in_(projects))
                )
                or 0
            )

    def list(self, nation: str, *, limit: int = MAX_PAGE, offset: int = 0) -> list[DocumentView]:
        """Documents of the partnership projects ``nation`` belongs to (metadata only),
        newest first, at most :data:`MAX_PAGE` per call."""
        from sqlalchemy import select

        projects = self.projects_of(nation)
        with self.ctx.db.session() as s:
            rows = s.scalars(
                select(DocumentRow)
                .where(DocumentRow.project_id.in_(projects))
                .order_by(DocumentRow.created_at.desc(), DocumentRow.id)
                .offset(max(0, offset))
                .limit(max(1, min(limit, MAX_PAGE)))
            ).all()
            return [_view(r) for r in rows]

    def label_choice(self, person_id: str, nation: str) -> LabelChoice:
        """Classifications of the person's national scheme, the partnership's nations,
        and the projects the person works on."""
        from relto.labels import builtin_policy

        spif = builtin_policy(nation)
        classes = tuple(c.name for c in sorted(spif.classifications, key=lambda c: c.hierarchy))
        with self.ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            partnerships = [
                p for p in repo.list_partnerships(0, MAX_PAGE).items if nation in p.nations
            ]
            nations = tuple(n for p in partnerships for n in p.nations)
            all_projects = {
                pr.id: pr.name
                for p in partnerships
                for pr in repo.list_projects(p.id, 0, MAX_PAGE).items
            }
        try:
            person = self._vetting().get_person(person_id)
            mine = [m.project for m in person.projects if m.project in all_projects]
        except (NotFound, AccessDenied, InvalidInput):
            mine = []
        readable = self._readable_levels(person_id, nation, classes, mine)
        return LabelChoice(
            originator=nation,
            classifications=tuple(c for c in classes if c in readable),
            nations=tuple(dict.fromkeys(nations)),
            projects=tuple((pid, all_projects[pid]) for pid in mine),
        )

    def _readable_levels(
        self, person_id: str, nation: str, classes: Sequence[str], projects: Sequence[str]
    ) -> set[str]:
        """Levels the person could read themselves on at least one of their projects."""
        from relto.decisions import Resource

        at = datetime.now(UTC)
        subject = self.subject(person_id, at)
        if subject is None or not projects:
            return set()
        engine = self.engine()
        out: set[str] = set()
        for cls in classes:
            for pid in projects:
                probe = Resource(
                    id="label-probe",
                    originator=nation,
                    classification=cls,
                    rel_to=frozenset({nation}),
                    project=pid,
                )
                if engine.evaluate(subject, "read", probe, at=at).allowed:
                    out.add(cls)
                    break
        return out

    # -- changing --------------------------------------------------------------------

    def compose_banner(
        self, originator: str, classification: str, rel_to: Sequence[str]
    ) -> tuple[str, bytes]:
        """A valid banner and its STANAG 4774 label for the originator's scheme.

        REL TO always includes the originator; REL TO of the originator alone is
        written NOFORN. Anything the SPIF rejects raises :class:`InvalidInput`.
        """
        from relto.labels import (
            MarkingError,
            banner_to_label,
            builtin_policy,
            parse_banner,
            validate_label,
            write_label,
        )

        nations = sorted({originator, *(n.strip().upper() for n in rel_to if n.strip())})
        if len(nations) > 1:
            text = f"{classification}//REL TO {', '.join(nations)}"
        else:
            text = f"{classification}//NOFORN"
        try:
            banner = parse_banner(text, originator=originator)
            spif = builtin_policy(originator)
            label = banner_to_label(banner, spif)
        except (MarkingError, InvalidInput, ValueError) as exc:
            raise InvalidInput(f"not a valid marking: {exc}") from None
        result = validate_label(label, spif)
        if not result.valid:
            raise InvalidInput("not a valid label: " + "; ".join(result.reasons))
        return banner.render(), write_label(label, at=datetime.now(UTC))

    def _kas_target(self) -> Any:
        from relto.ztdf import KasTarget

        runtime = self.ctx.extras.get("kas")
        if runtime is None:
            raise InvalidInput("this node runs no key access service")
        info = runtime.service.store.active("rsa:2048")
        url = runtime.service.kas_url or (
            f"http://{self.ctx.settings.bind}:{self.ctx.settings.port}/kas"
        )
        return KasTarget(url=url, public_key_pem=info.public_key_pem, kid=info.kid)

    def upload(
        self,
        *,
        person_id: str,
        nation: str,
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
        """Protect ``data`` under a label the uploader could read themselves."""
        from relto.ztdf import protect
        from relto.ztdf.attributes import marking_attributes

        if not _TITLE.match(title or ""):
            raise InvalidInput("the title must be 1-200 printable characters")
        limit = min(MAX_DOCUMENT_BYTES, self.ctx.settings.max_upload_bytes)
        if len(data) > limit:
            raise InvalidInput(f"the document is larger than {limit} bytes")
        choice = self.label_choice(person_id, nation)
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
        banner, label_xml = self.compose_banner(nation, classification, rel_to)
        doc_id = doc_id or uuid.uuid4().hex
        draft = DocumentView(
            doc_id, title, project_id, nation, banner, banner, banner, classification,
            (), person_id, "", "", 0, 1, at, at, "",
        )  # fmt: skip
        decision = self.decide(person_id, "read", draft, at)
        if not decision.allowed:
            raise InvalidInput(
                "you could not read a document with that label yourself: "
                + " ".join(r.sentence for r in decision.reasons)
            )
        safe_name = _FILENAME.sub("_", Path(filename or "document").name)[:200] or "document"
        work = Path(tempfile.mkdtemp(prefix="relto-up-"))
        try:
            src, dst = work / "plain", work / "container.tdf"
            src.write_bytes(data)
            b = self._parsed(banner, nation)
            result = protect(
                src,
                dst,
                kas=[self._kas_target()],
                at=at,
                attributes=marking_attributes(
                    b.classification, b.rel_to, [project_id], self.ctx.settings.attribute_namespace
                ),
                label_xml=label_xml,
                mime_type=media_type or "application/octet-stream",
            )
            blob_key = f"document-{doc_id}-v1.tdf"
            with dst.open("rb") as f:
                self.ctx.blobs.put(blob_key, f)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with self.ctx.db.session() as s:
            if s.get(DocumentRow, doc_id) is not None:
                raise InvalidInput("a document with that id already exists")
            row = DocumentRow(
                id=doc_id,
                title=title,
                project_id=project_id,
                originator=nation,
                banner=banner,
                label_xml=label_xml.decode(),
                owner=person_id,
                filename=safe_name,
                media_type=media_type or "application/octet-stream",
                blob_key=blob_key,
                policy_uuid=result.policy.uuid,
                plaintext_size=result.plaintext_size,
                version=1,
                created_at=at,
                updated_at=at,
            )
            s.add(row)
            bump(s, DOCUMENTS)
            s.flush()
            self.ctx.sink.record(
                "document.protected",
                {
                    "document": doc_id,
                    "title": title,
                    "project": project_id,
                    "originator": nation,
                    "banner": banner,
                    "policy_uuid": result.policy.uuid,
                    "by": person_id,
                    "at": at.isoformat(),
                },
            )
            view = _view(row)
        log.info("document_protected", document=doc_id, banner=banner)
        return view

    @staticmethod
    def _parsed(banner: str, originator: str) -> Any:
        from relto.labels import parse_banner

        return parse_banner(banner, originator=originator)

    def open(
        self, *, person_id: str, nation: str, name: str, doc_id: str, at: datetime
    ) -> tuple[DocumentView, Any, bytes | None]:
        """Decide, record, and (when allowed) decrypt through the KAS."""
        doc = self.get(doc_id)
        decision = self.decide(person_id, "read", doc, at)
        self.record_decision(person_id, "read", doc, decision, at)
        if not decision.allowed:
            return doc, decision, None
        plaintext = self._decrypt(doc, self._kas_unwrap(person_id, nation, name, at))
        return doc, decision, plaintext

    def _decrypt(self, doc: DocumentView, unwrap: Any) -> bytes:
        from relto.ztdf import open_container

        with self.ctx.db.session() as s:
            row = s.get(DocumentRow, doc.id)
            assert row is not None
            blob_key = row.blob_key
        work = Path(tempfile.mkdtemp(prefix="relto-open-"))
        try:
            src, dst = work / "container.tdf", work / "plain"
            with self.ctx.blobs.open(blob_key) as f, src.open("wb") as out:
                shutil.copyfileobj(f, out)
            open_container(src, dst, unwrap=unwrap)
            return dst.read_bytes()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _kas_unwrap(self, person_id: str, nation: str, name: str, at: datetime) -> Any:
        """An ``Unwrap`` that asks this node's KAS in-process, as the signed-in person."""
        from cryptography.hazmat.primitives.asymmetric import ec

        from relto.kas.auth import Caller
        from relto.kas.wire import parse_request_body
        from relto.ztdf import KeyAccessDenied, hazmat

        runtime = self.ctx.extras.get("kas")
        if runtime is None:
            raise KeyAccessDenied("this node runs no key access service")
        caller = Caller(
            subject=person_id,
            claims={"sub": person_id, "relto_nation": nation, "name": name},
            identities=frozenset({person_id}),
        )

        def unwrap(ka: Any, policy_b64: str) -> bytes:
            priv = ec.generate_private_key(ec.SECP256R1())
            kao: dict[str, Any] = {
                "type": ka.type,
                "url": ka.url,
                "protocol": ka.protocol,
                "wrappedKey": ka.wrapped_key,
                "policyBinding": {"alg": ka.policy_binding.alg, "hash": ka.policy_binding.hash},
            }
            for key, value in (
                ("kid", ka.kid),
                ("sid", ka.sid),
                ("encryptedMetadata", ka.encrypted_metadata),
                ("ephemeralPublicKey", ka.ephemeral_public_key),
            ):
                if value:
                    kao[key] = value
            body = parse_request_body(
                json.dumps(
                    {
                        "clientPublicKey": hazmat.public_key_pem(priv),
                        "requests": [
                            {
                                "policy": {"id": "policy", "body": policy_b64},
                                "keyAccessObjects": [
                                    {"keyAccessObjectId": "kao-0", "keyAccessObject": kao}
                                ],
                            }
                        ],
                    }
                )
            )
            response = runtime.service.rewrap(
                body, caller, at=datetime.now(UTC), request_verified=False
            )
            result = response.responses[0].results[0]
            if result.status != "permit":
                raise KeyAccessDenied("the key access service did not release the key")
            return bytes(
                hazmat.ec_unwrap(priv, response.session_public_key, result.kas_wrapped_key)
            )

        return unwrap

    def _admin_unwrap(self) -> Any:
        """Unwrap with this node's own key store (administrative re-protection only)."""
        runtime = self.ctx.extras.get("kas")
        if runtime is None:
            raise InvalidInput("this node runs no key access service")
        store = runtime.service.store

        def unwrap(ka: Any, policy_b64: str) -> bytes:
            if ka.type != "wrapped":
                raise InvalidInput("only RSA-wrapped keys can be re-protected here")
            return bytes(store.rsa_decrypt(ka.kid, base64.b64decode(ka.wrapped_key)))

        return unwrap

    def relabel(
        self,
        *,
        person_id: str,
        roles: frozenset[tuple[str, str]],
        doc_id: str,
        rel_to: Sequence[str],
        at: datetime,
    ) -> DocumentView:
        """Change Releasable To: only a security officer of the originating nation may.

        The container is re-protected under the new policy (a new data key and a
        new policy binding) and the old version is kept in the blob store.
        """
        from relto.ztdf import protect
        from relto.ztdf.attributes import marking_attributes

        doc = self.get(doc_id)
        if ("security_officer", doc.originator) not in roles:
            raise AccessDenied(f"{person_id} is not a security officer of {doc.originator}")
        partners = set(self.label_choice(person_id, doc.originator).nations)
        outside = sorted({n.strip().upper() for n in rel_to} - partners)
        if outside:
            raise InvalidInput(f"not a nation of the partnership: {', '.join(outside)[:40]}")
        banner, label_xml = self.compose_banner(doc.originator, doc.classification, rel_to)
        work = Path(tempfile.mkdtemp(prefix="relto-relabel-"))
        try:
            plain = self._decrypt(doc, self._admin_unwrap())
            src, dst = work / "plain", work / "container.tdf"
            src.write_bytes(plain)
            b = self._parsed(banner, doc.originator)
            result = protect(
                src,
                dst,
                kas=[self._kas_target()],
                at=at,
                attributes=marking_attributes(
                    b.classification,
                    b.rel_to,
                    [doc.project_id],
                    self.ctx.settings.attribute_namespace,
                ),
                label_xml=label_xml,
                mime_type=doc.media_type,
            )
            version = doc.version + 1
            blob_key = f"document-{doc.id}-v{version}.tdf"
            with dst.open("rb") as f:
                self.ctx.blobs.put(blob_key, f)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with self.ctx.db.session() as s:
            row = s.get(DocumentRow, doc.id)
            assert row is not None
            before = row.banner
            row.banner = banner
            row.label_xml = label_xml.decode()
            row.blob_key = blob_key
            row.policy_uuid = result.policy.uuid
            row.version = version
            row.updated_at = at
            bump(s, DOCUMENTS)
            s.flush()
            self.ctx.sink.record(
                "document.relabelled",
                {
                    "document": doc.id,
                    "title": doc.title,
                    "from": before,
                    "to": banner,
                    "policy_uuid": result.policy.uuid,
                    "version": version,
                    "by": person_id,
                    "at": at.isoformat(),
                },
            )
            return _view(row)


class _CacheMiss(Exception):
    """A fact is not cached at the current counters: read it off the event loop."""


class ProductDecider:
    """The KAS decider of this node: the decision engine over this node's facts.

    The key access service hands over the token's claims and the policy; the
    document is found by its policy UUID (so the label, originator and project
    are those recorded when it was protected), the person through relto.vetting.
    A policy this node did not protect is denied. Facts come from the service's
    per-process caches, checked against the database's change counters on every
    call (one query when nothing changed).
    """

    #: It reads the document and the person from the database.
    blocking = True

    def __init__(self, service: DocumentService) -> None:
        self.service = service

    def decide(self, facts: Any) -> Any:
        subject = str(facts.subject.get("sub", ""))
        doc, decision = self.service.decide_policy(subject, "read", facts.policy_uuid, facts.at)
        return self._answer(doc, decision)

    async def decide_async(self, facts: Any) -> Any:
        """:meth:`decide` for the KAS's event loop (never waits on the database)."""
        subject = str(facts.subject.get("sub", ""))
        doc, decision = await self.service.decide_policy_async(
            subject, "read", facts.policy_uuid, facts.at
        )
        return self._answer(doc, decision)

    @staticmethod
    def _answer(doc: DocumentView | None, decision: Any) -> Any:
        from relto.kas.decider import KasDecision, Reason

        if doc is None:
            return KasDecision(
                False, (Reason("unknown_object", "this node did not protect that object"),)
            )
        return KasDecision(
            bool(decision.allowed),
            tuple(Reason(r.code, r.sentence) for r in decision.reasons),
            tuple(str(getattr(o, "kind", o)) for o in decision.obligations),
        )


def document_service(ctx: Any) -> DocumentService:
    """The node's :class:`DocumentService`, made once. Its :class:`ProductDecider`
    becomes the KAS's decision engine unless another one has been wired in."""
    existing = ctx.extras.get("documents")
    if isinstance(existing, DocumentService):
        return existing
    service = DocumentService(ctx)
    ctx.extras["documents"] = service
    # A KAS mounted after this point takes its decider from here.
    ctx.extras.setdefault("decider", ProductDecider(service))
    runtime = ctx.extras.get("kas")
    if runtime is not None:
        from relto.kas.decider import DenyAllDecider

        if isinstance(runtime.service.decider, DenyAllDecider):
            runtime.service.decider = ProductDecider(service)
            log.info("kas_decider_installed", decider="relto.server.documents.ProductDecider")
    return service
