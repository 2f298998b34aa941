"""Load the demo partnership into a node's database, idempotently.

Run by ``relto serve --demo`` on start. Every record has a stable id derived from
the file, so loading twice changes nothing; a record that exists is left alone
(edits made through the console survive a restart). People, clearances and sample
documents are handed to the capabilities that own them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from relto.demo.data import DemoData
from relto.events import AuditSink
from relto.partnership import Actor, admit, create_partnership, create_project
from relto.store import Database
from relto.store.partnership import SqlPartnershipRepository

__all__ = ["DEMO_EPOCH", "LoadReport", "load_demo", "loader_actor"]

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
    return report
