"""Load the demo partnership into a node's database, idempotently.

Run by ``relto serve --demo`` on start. Every record has a stable id derived from
the file, so loading twice changes nothing; a record that exists is left alone
(edits made through the console survive a restart). People, clearances and sample
documents are handed to the capabilities that own them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import structlog

from relto.demo.data import DemoData
from relto.documents import DocumentService
from relto.errors import NotFound, ReltoError
from relto.events import AuditSink
from relto.labels import parse_banner
from relto.partnership import Actor, admit, create_partnership, create_project
from relto.store import Database
from relto.store.partnership import SqlPartnershipRepository
from relto.vetting import Person, ProjectMembership, Role, Status
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["DEMO_EPOCH", "LoadReport", "load_demo", "load_demo_documents", "loader_actor"]

log = structlog.stdlib.get_logger("relto.demo")

#: When the demo admissions start.
DEMO_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class LoadReport:
    """What a load added (zero everywhere on a second load)."""

    partnerships: int = 0
    projects: int = 0
    admissions: int = 0
    people: int = 0
    clearances: int = 0
    documents: int = 0
    skipped: list[str] = field(default_factory=list)


def loader_actor(data: DemoData) -> Actor:
    """The demo loader acts as a security officer of every member nation."""
    return Actor(
        "demo-loader",
        data.partnership.members[0],
        frozenset(("security_officer", n) for n in data.partnership.members),
    )


def load_demo(db: Database, sink: AuditSink, data: DemoData, *, at: datetime) -> LoadReport:
    report = LoadReport()
    actor = loader_actor(data)
    with db.session() as s:
        repo = SqlPartnershipRepository(s)
        if repo.get_partnership(data.partnership.id) is None:
            create_partnership(repo, sink, partnership=data.partnership, actor=actor, at=at)
            report.partnerships += 1
        for project in data.projects:
            if repo.get_project(project.id) is None:
                create_project(repo, sink, project=project, actor=actor, at=at)
                report.projects += 1
        for project_id, nation, ceiling in data.admissions:
            admission_id = f"demo-{project_id}-{nation.lower()}"
            if repo.get_admission(admission_id) is None and not repo.admissions_for(
                project_id, nation
            ):
                admit(
                    repo,
                    sink,
                    project_id=project_id,
                    nation=nation,
                    ceiling=ceiling,
                    actor=actor,
                    at=at,
                    valid_from=DEMO_EPOCH,
                    note="demo partnership",
                    admission_id=admission_id,
                )
                report.admissions += 1
    _load_people(db, sink, data, at, report)
    return report


def _load_people(
    db: Database, sink: AuditSink, data: DemoData, at: datetime, report: LoadReport
) -> None:
    """People and clearances, through relto.vetting (the only way they change)."""
    service = VettingService(db, sink)
    actor = "demo-loader"
    for p in data.people:
        try:
            service.get_person(p.id)
        except NotFound:
            service.register_person(
                Person(
                    id=p.id,
                    name=p.name,
                    nationalities=frozenset({p.nationality}),
                    organisation=p.organisation or "-",
                    home_nation=p.nationality,
                    roles=frozenset(Role(r) for r in p.roles),
                    projects=tuple(ProjectMembership(x) for x in p.projects),
                ),
                at=min(at, DEMO_EPOCH),
                actor=actor,
            )
            report.people += 1
        for i, c in enumerate(p.clearances):
            cid = f"demo-{p.id}-{i + 1}"
            try:
                service.get_clearance(cid)
                continue
            except NotFound:
                pass
            granted = datetime.combine(c.granted, time(9, 0), tzinfo=UTC)
            expires = datetime.combine(c.expires, time(0, 0), tzinfo=UTC)
            service.sponsor_clearance(
                person_id=p.id,
                nation=p.nationality,
                level=c.level,
                sponsor=p.organisation or p.nationality,
                at=granted - timedelta(days=90),
                actor=actor,
                reason="demo: sponsored for partnership work",
                clearance_id=cid,
            )
            service.transition(
                cid,
                Status.INVESTIGATING,
                at=granted - timedelta(days=60),
                actor=actor,
                reason="demo: investigation opened",
            )
            if c.status == "interim":
                service.transition(
                    cid,
                    Status.INTERIM,
                    at=granted,
                    actor=actor,
                    reason="demo: interim clearance while adjudication completes",
                    valid_until=expires,
                )
                report.clearances += 1
                continue
            service.transition(
                cid,
                Status.ADJUDICATING,
                at=granted - timedelta(days=30),
                actor=actor,
                reason="demo: investigation complete",
            )
            service.transition(
                cid,
                Status.GRANTED,
                at=granted,
                actor=actor,
                reason="demo: granted",
                valid_until=expires,
            )
            later = max(granted + timedelta(days=1), at - timedelta(days=7))
            if c.status == "suspended":
                service.transition(
                    cid,
                    Status.SUSPENDED,
                    at=later,
                    actor=actor,
                    reason="demo: suspended pending a security incident inquiry",
                )
            elif c.status == "under_review":
                service.transition(
                    cid,
                    Status.UNDER_REVIEW,
                    at=later,
                    actor=actor,
                    reason="demo: review opened after a change of circumstances",
                )
            report.clearances += 1


def load_demo_documents(
    documents: DocumentService,
    directory: Directory,
    data: DemoData,
    report: LoadReport,
    *,
    at: datetime,
) -> None:
    """Protect the demo file's sample documents (once each), as their owners: each
    upload is decided and recorded like any other."""
    for d in data.documents:
        if documents.exists(d.id):
            continue
        owner = directory.principal(d.owner, via="node")
        if owner is None:
            report.skipped.append(f"document {d.id}: no person {d.owner}")
            continue
        banner = parse_banner(d.label, originator=d.originator)
        try:
            documents.upload(
                owner,
                title=d.title,
                project_id=d.project,
                classification=banner.classification,
                rel_to=list(banner.rel_to),
                filename=f"{d.id}.txt",
                media_type="text/plain",
                data=d.text.encode(),
                at=at,
                doc_id=d.id,
            )
            report.documents += 1
        except ReltoError as exc:
            report.skipped.append(f"document {d.id}: {exc}")
            log.warning("demo_document_skipped", document=d.id, owner=d.owner, error=str(exc))
