"""The product decider's per-process fact caches never outlive the facts.

Each server worker is a process with its own :class:`DocumentService`; a change
committed by one must make the very next decision in every other one use it.
Workers are simulated by services over separate :class:`Database` objects (their
own connection pools) on the same SQLite file or PostgreSQL database, and once
by a real second process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from relto.demo import loader
from relto.demo.data import read_demo
from relto.documents import DecisionFacts, DocumentView, ProductDecider, compose_banner
from relto.documents import document_view as view_of
from relto.events import MemorySink
from relto.kas.decider import RewrapFacts
from relto.partnership import Actor, admit, end_admission
from relto.store import Database
from relto.store.db import create_database
from relto.store.documents import DocumentRow, SqlDocumentRepository
from relto.store.facts import KINDS, read_versions
from relto.store.partnership import (
    AdmissionRow,
    PartnershipRow,
    ProjectRow,
    SqlPartnershipRepository,
)
from relto.vetting import Status
from relto.vetting.service import VettingService

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
READER = "gbr-eng-harper"  # GBR, SC, works on hypersonic
READER_CLEARANCE = f"demo-{READER}-1"
GBR_ADMISSION = "demo-hypersonic-gbr"
GBR_OFFICER = Actor("gbr-so-whitfield", "GBR", frozenset({("security_officer", "GBR")}))
ROOT = Path(__file__).resolve().parents[2]

#: (policy uuid, document id, project, originator, classification, rel to)
DOCS = (
    ("pol-hyp", "doc-hyp", "hypersonic", "USA", "SECRET", ("AUS", "CAN", "GBR", "JPN")),
    ("pol-ew", "doc-ew", "electronic-warfare", "GBR", "OFFICIAL", ("KOR", "USA")),
    ("pol-inn", "doc-inn", "innovation", "USA", "UNCLASSIFIED", ("AUS", "JPN", "NZL")),
)
PEOPLE = ("gbr-eng-harper", "aus-eng-nguyen", "jpn-eng-sato", "kor-eng-park", "usa-eng-ramirez")


def _url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def _service(db: Database, tmp_path: Path) -> DecisionFacts:
    """A worker's decision facts: nothing shared with another but the database."""
    return DecisionFacts(db, VettingService(db, MemorySink()), demo=True)


def _doc(db: Database, doc_id: str) -> DocumentView:
    with db.session() as s:
        row = SqlDocumentRepository(s).get(doc_id)
        assert row is not None
        return view_of(row)


def _load(db: Database, tmp_path: Path) -> None:
    """The demo partnership and people, and three documents (rows only: the
    decider reads labels from the database, never the containers)."""
    loader.load_demo(db, MemorySink(), read_demo(), at=NOW)
    with db.session() as s:
        for policy, doc_id, project, orig, cls, rel in DOCS:
            banner, label = compose_banner(orig, cls, rel)
            SqlDocumentRepository(s).add(
                DocumentRow(
                    id=doc_id,
                    title=doc_id,
                    project_id=project,
                    originator=orig,
                    banner=banner,
                    label_xml=label.decode(),
                    owner="test",
                    filename="x",
                    media_type="text/plain",
                    blob_key=f"{doc_id}.tdf",
                    policy_uuid=policy,
                    plaintext_size=1,
                    version=1,
                    created_at=NOW,
                    updated_at=NOW,
                ),
                {orig, *rel},
            )


def _ask(service: DecisionFacts, person: str, policy: str = "pol-hyp") -> Any:
    nation = person.split("-")[0].upper()
    facts = RewrapFacts(
        subject={"sub": person},
        policy_uuid=policy,
        attributes=(),
        dissem=(),
        at=NOW,
        nation=nation,
    )
    return ProductDecider(service).decide(facts)


@dataclass
class Workers:
    db: Database
    a: DecisionFacts
    b: DecisionFacts
    b_db: Database


@pytest.fixture
def workers(database: Database, tmp_path: Path) -> Iterator[Workers]:
    """Two workers on one migrated database (SQLite and PostgreSQL), demo loaded."""
    _load(database, tmp_path)
    other = create_database(_url(database), migrate=False)
    try:
        yield Workers(database, _service(database, tmp_path), _service(other, tmp_path), other)
    finally:
        other.dispose()


def _end_gbr_admission(db: Database) -> None:
    with db.session() as s:
        end_admission(
            SqlPartnershipRepository(s),
            MemorySink(),
            admission_id=GBR_ADMISSION,
            actor=GBR_OFFICER,
            at=NOW - timedelta(hours=1),
        )


def test_ended_admission_denies_in_another_worker_on_the_next_decision(
    workers: Workers,
) -> None:
    assert _ask(workers.b, READER).allowed  # worker B has now cached its facts
    _end_gbr_admission(workers.db)  # worker A's change
    assert not _ask(workers.b, READER).allowed
    assert not workers.b.decide(READER, "read", _doc(workers.db, "doc-hyp"), NOW).allowed


def test_suspended_clearance_denies_in_another_worker_on_the_next_decision(
    workers: Workers,
) -> None:
    assert _ask(workers.b, READER).allowed
    VettingService(workers.db, MemorySink()).transition(
        READER_CLEARANCE,
        Status.SUSPENDED,
        at=NOW - timedelta(hours=1),
        actor="gbr-vo-okafor",
        reason="security concern",
    )
    decision = _ask(workers.b, READER)
    assert not decision.allowed
    assert workers.b.subject(READER, NOW) is not None


def test_person_removed_from_a_project_denied_in_another_worker(workers: Workers) -> None:
    from dataclasses import replace

    assert _ask(workers.b, READER).allowed
    vetting = VettingService(workers.db, MemorySink())
    person = vetting.get_person(READER)
    kept = tuple(m for m in person.projects if m.project != "hypersonic")
    vetting.update_person(
        replace(person, projects=kept), at=NOW - timedelta(hours=1), actor="gbr-vo-okafor"
    )
    assert not _ask(workers.b, READER).allowed


def test_ended_admission_in_another_process_denies_on_the_next_decision(
    workers: Workers,
) -> None:
    """A real second process (its own interpreter and pool) ends the admission."""
    assert _ask(workers.b, READER).allowed
    script = textwrap.dedent(
        f"""
        from datetime import datetime, timedelta, UTC
        from relto.events import MemorySink
        from relto.partnership import Actor, end_admission
        from relto.store.db import create_database
        from relto.store.partnership import SqlPartnershipRepository
        db = create_database({_url(workers.db)!r}, migrate=False)
        with db.session() as s:
            end_admission(
                SqlPartnershipRepository(s), MemorySink(), admission_id={GBR_ADMISSION!r},
                actor=Actor("gbr-so-whitfield", "GBR", frozenset({{("security_officer", "GBR")}})),
                at=datetime({NOW.year}, {NOW.month}, {NOW.day}, tzinfo=UTC),
            )
        db.dispose()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not _ask(workers.b, READER).allowed


def test_relabel_makes_the_old_policy_unknown_in_another_worker(
    demo_app: Any, tmp_path: Path
) -> None:
    """A relabelled document's old container must not be opened under its old label."""
    from .conftest import node_of, principal

    node = node_of(demo_app)
    a = node.documents
    before = a._get("hyp-thermal-protection")
    other = create_database(_url(node.db), migrate=False)
    try:
        b = _service(other, tmp_path)
        facts = RewrapFacts(
            subject={"sub": "usa-eng-ramirez"},
            policy_uuid=before.policy_uuid,
            attributes=(),
            dissem=(),
            at=datetime.now(UTC),
            nation="USA",
        )
        assert ProductDecider(b).decide(facts).allowed  # cached in worker B
        a.relabel(
            principal(demo_app, "gbr-so-whitfield"), before.id, ["USA", "AUS"], datetime.now(UTC)
        )
        decision = ProductDecider(b).decide(facts)
        assert not decision.allowed and decision.reasons[0].code == "unknown_object"
    finally:
        other.dispose()


def test_cached_engine_reused_while_nothing_changes(workers: Workers) -> None:
    """The speed-up: one counter query per decision and the same engine object."""
    svc = workers.b
    _outcomes(svc)  # warm: each person's and document's rows read once
    engine = svc.engine()
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(workers.b_db.engine, "before_cursor_execute", count)
    try:
        for person in PEOPLE:
            for policy, *_ in DOCS:
                _ask(svc, person, policy)
    finally:
        event.remove(workers.b_db.engine, "before_cursor_execute", count)
    assert svc.engine() is engine
    assert len(statements) == len(PEOPLE) * len(DOCS)
    assert all("fact_version" in q for q in statements), statements


def test_what_if_engine_never_replaces_the_shared_one(workers: Workers) -> None:
    from relto.decisions import Admission as FactAdmission

    svc = workers.b
    shared = svc.engine()
    extra = FactAdmission("JPN", "hypersonic", "SECRET", NOW - timedelta(days=1), None)
    what_if = svc.engine(extra_admissions=[extra])
    assert what_if is not shared
    assert svc.engine() is shared
    assert len(what_if.world.admissions) == len(shared.world.admissions) + 1


def test_policy_version_moves_when_an_admission_ends(workers: Workers) -> None:
    """The old ``admissions:{count}:{max id}`` stayed the same when one ended."""
    svc = workers.b
    before = svc.decide(READER, "read", _doc(workers.db, "doc-inn"), NOW).policy_version
    _end_gbr_admission(workers.db)
    after = svc.decide(READER, "read", _doc(workers.db, "doc-inn"), NOW).policy_version
    assert before != after and after.startswith("partnership:")


def test_counters_seeded_when_an_existing_database_is_upgraded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A database made before the counters existed gets them, and writes move them."""
    from alembic import command
    from alembic.config import Config

    from relto.store import db as store_db

    for url in (f"sqlite:///{tmp_path / 'old.db'}", request.getfixturevalue("postgres_url")):
        db = create_database(url, migrate=False)
        try:
            cfg = Config()
            cfg.set_main_option("script_location", str(store_db._MIGRATIONS))
            with db.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                for branch in ("audit", "partnership", "vetting"):
                    command.upgrade(cfg, f"{branch}@head")
            with db.session() as s:  # facts written before the counters existed
                s.add(PartnershipRow(id="p", name="p", members="GBR,USA", partners=""))
                s.flush()
                s.add(ProjectRow(id="hypersonic", partnership_id="p", name="h"))
                s.flush()
                s.add(
                    AdmissionRow(
                        id=GBR_ADMISSION,
                        project_id="hypersonic",
                        nation="GBR",
                        ceiling="SECRET",
                        valid_from=NOW - timedelta(days=9),
                    )
                )
            db.migrate()
            with db.session() as s:
                assert dict(read_versions(s)) == dict.fromkeys(KINDS, 0)
            _end_gbr_admission(db)
            with db.session() as s:
                assert read_versions(s)["partnership"] == 1
        finally:
            db.dispose()


# -- cached and fresh decisions agree --------------------------------------------------

_CHANGES = st.lists(
    st.tuples(
        st.sampled_from(["end", "admit", "suspend", "reinstate", "leave", "join"]),
        st.sampled_from(["hypersonic", "electronic-warfare", "innovation"]),
        st.sampled_from(["GBR", "AUS", "JPN", "KOR", "USA"]),
        st.sampled_from(["RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"]),
        st.sampled_from(PEOPLE),
    ),
    min_size=1,
    max_size=6,
)


def _apply(db: Database, change: tuple[str, str, str, str, str], step: int) -> None:
    from dataclasses import replace

    from relto.errors import ReltoError
    from relto.vetting import ProjectMembership

    kind, project, nation, ceiling, person_id = change
    at = NOW - timedelta(minutes=30) + timedelta(seconds=step)
    officer = Actor("so", nation, frozenset(("security_officer", n) for n in ("GBR", "USA", "AUS")))
    vetting = VettingService(db, MemorySink())
    try:
        if kind in ("end", "admit"):
            with db.session() as s:
                repo = SqlPartnershipRepository(s)
                current = [a for a in repo.admissions_for(project, nation) if a.active_at(at)]
                if kind == "end" and current:
                    end_admission(
                        repo, MemorySink(), admission_id=current[0].id, actor=officer, at=at
                    )
                elif kind == "admit" and not current:
                    admit(
                        repo,
                        MemorySink(),
                        project_id=project,
                        nation=nation,
                        ceiling=ceiling,
                        actor=officer,
                        at=at,
                    )
        elif kind in ("suspend", "reinstate"):
            to = Status.SUSPENDED if kind == "suspend" else Status.GRANTED
            vetting.transition(f"demo-{person_id}-1", to, at=at, actor="vo", reason="test")
        else:
            person = vetting.get_person(person_id)
            others = tuple(m for m in person.projects if m.project != project)
            projects = (*others, ProjectMembership(project)) if kind == "join" else others
            vetting.update_person(replace(person, projects=projects), at=at, actor="vo")
    except ReltoError:
        pass  # an illegal change (wrong transition, overlap): nothing was written


def _outcomes(service: DecisionFacts) -> list[tuple[bool, tuple[str, ...]]]:
    out = []
    for person in PEOPLE:
        for policy, *_ in DOCS:
            d = _ask(service, person, policy)
            out.append((bool(d.allowed), tuple(r.code for r in d.reasons)))
    return out


def test_cached_and_fresh_decisions_agree_over_random_changes(
    workers: Workers, tmp_path: Path
) -> None:
    step = iter(range(1_000_000))

    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(changes=_CHANGES)
    def run(changes: list[tuple[str, str, str, str, str]]) -> None:
        cached = workers.b
        _outcomes(cached)  # warm the caches at the facts as they are
        for change in changes:
            _apply(workers.db, change, next(step))
            fresh = _service(workers.b_db, tmp_path)  # empty caches: reads everything
            assert _outcomes(cached) == _outcomes(fresh), change

    run()


def test_threads_sharing_one_engine_get_the_same_decisions(
    workers: Workers, tmp_path: Path
) -> None:
    """KAS requests run on worker threads; the shared engine must not mix up
    memoised decisions between them."""
    from concurrent.futures import ThreadPoolExecutor

    expected = _outcomes(_service(workers.b_db, tmp_path))
    svc = workers.b

    def run(_: int) -> list[tuple[bool, tuple[str, ...]]]:
        return _outcomes(svc)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(16)))
    assert all(r == expected for r in results)


def test_engine_rebuilt_before_its_unbounded_memo_grows_without_end(workers: Workers) -> None:
    """The engine memoises recognition per ``at`` without a bound; the KAS asks with
    a new ``at`` every time, so the shared engine is replaced after a fixed number
    of uses."""
    from relto.documents import ENGINE_MAX_USES

    svc = workers.b
    engine = svc.engine()
    engine.uses = ENGINE_MAX_USES
    assert _ask(svc, READER).allowed
    assert svc.engine() is not engine
    assert svc.engine() is svc.engine()
