"""``relto partnership``: the projects × nations matrix, admissions, the demo file.

Changes are recorded in the node's transparency log, like every other change.
Whoever runs these commands has the node's database in hand; ``--actor`` names
the person on whose authority the change is made, and the authorisation point
decides from the directory's record of them (a security officer of a member
nation), exactly as for the API. That is what the log records.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from relto.authz import Principal
from relto.config import load_settings
from relto.errors import ConfigError, InvalidInput
from relto.events import AuditSink
from relto.store import Database
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["register"]

partnership_app = typer.Typer(
    help="Partnerships: projects, admissions of nations, the demo file.", no_args_is_help=True
)

Db = Annotated[
    str | None,
    typer.Option("--db", help="Database URL [default: settings.effective_database_url]."),
]
At = Annotated[str | None, typer.Option("--at", help="When (ISO 8601 with timezone); default now.")]
ActorId = Annotated[
    str,
    typer.Option(
        "--actor",
        help="Who is making the change: a person id in this node's directory; their "
        "nation and roles are the directory's, never the command line's.",
    ),
]
Justification = Annotated[
    str,
    typer.Option(
        "--justification",
        help="Why the change is made (10 to 500 characters); recorded in the audit log.",
    ),
]


_ABBR = {
    "TOP SECRET": "TS",
    "SECRET": "S",
    "CONFIDENTIAL": "C",
    "RESTRICTED": "R",
    "UNCLASSIFIED": "U",
}


def _when(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(at)
    except ValueError:
        raise InvalidInput("--at must be ISO 8601, e.g. 2026-01-05T09:00:00Z") from None
    if value.tzinfo is None:
        raise InvalidInput("--at must include a timezone, e.g. Z or +09:00")
    return value


def _actor(database: Database, sink: AuditSink, person_id: str) -> Principal:
    """The acting person as the node's directory records them."""
    found = Directory(VettingService(database, sink)).principal(person_id, via="node")
    if found is None:
        raise InvalidInput(f"no person {person_id[:64]!r} in this node's directory")
    return found


def _open(db: str | None) -> tuple[Database, AuditSink]:
    from relto.audit.config import open_log
    from relto.store import create_database

    settings = load_settings()
    return create_database(db or settings.effective_database_url), open_log(settings)


@partnership_app.command("show")
def show(db: Db = None, at: At = None) -> None:
    """Print each partnership's projects × nations matrix of admitted ceilings."""
    from relto.partnership import MAX_PAGE, matrix
    from relto.store.partnership import SqlPartnershipRepository

    when = _when(at)
    database, _ = _open(db)
    console = Console(highlight=False)
    with database.session() as s:
        repo = SqlPartnershipRepository(s)
        partnerships = repo.list_partnerships(0, MAX_PAGE).items
        if not partnerships:
            console.print("no partnership is defined; try `relto partnership load-demo`")
        for p in partnerships:
            projects = list(repo.list_projects(p.id, 0, MAX_PAGE).items)
            admissions = [a for pr in projects for a in repo.admissions_for(pr.id)]
            m = matrix(p, projects, admissions, when)
            table = Table(
                title=f"{p.name} ({p.id}) at {when:%Y-%m-%d %H:%M} UTC",
                caption="TS top secret, S secret, C confidential, R restricted, U unclassified",
            )
            table.add_column("project", no_wrap=True)
            for n in p.nations:
                table.add_column(n, no_wrap=True, justify="center")
            for pr in projects:
                table.add_row(pr.id, *[_ABBR.get(m[pr.id][n] or "", "-") for n in p.nations])
            console.print(table)
            for pr in projects:
                if pr.joint_custody:
                    console.print(f"joint custody of {pr.id}: {', '.join(pr.joint_custody)}")
                if pr.export_relevant:
                    console.print(f"export relevant: {pr.id}")


@partnership_app.command("admissions")
def admissions(
    db: Db = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    nation: Annotated[str | None, typer.Option(help="Only this nation.")] = None,
    at: At = None,
) -> None:
    """List admissions with their ids, validity and status."""
    from relto.store.partnership import SqlPartnershipRepository

    when = _when(at)
    database, _ = _open(db)
    table = Table("id", "project", "nation", "ceiling", "from", "until", "status")
    with database.session() as s:
        page = SqlPartnershipRepository(s).list_admissions(
            project_id=project, nation=nation, offset=0, limit=200
        )
    for a in page.items:
        table.add_row(
            a.id,
            a.project_id,
            a.nation,
            a.ceiling,
            f"{a.valid_from:%Y-%m-%d}",
            f"{a.end:%Y-%m-%d}" if a.end else "-",
            a.status_at(when),
        )
    Console(highlight=False).print(table)


@partnership_app.command("admit")
def admit_cmd(
    project: Annotated[str, typer.Argument(help="Project id, e.g. undersea.")],
    nation: Annotated[str, typer.Argument(help="Nation to admit, e.g. JPN.")],
    ceiling: Annotated[str, typer.Argument(help="Ceiling on the common scale, e.g. SECRET.")],
    actor: ActorId,
    justification: Justification,
    until: Annotated[
        str | None, typer.Option(help="End of the admission (ISO 8601 with timezone).")
    ] = None,
    note: Annotated[str, typer.Option(help="Recorded with the admission.")] = "",
    db: Db = None,
    at: At = None,
) -> None:
    """Admit a nation to a project up to a ceiling (say why: --justification)."""
    from relto.partnership import admit
    from relto.store.partnership import SqlPartnershipRepository

    database, sink = _open(db)
    who = _actor(database, sink, actor)
    with database.session() as s:
        a = admit(
            SqlPartnershipRepository(s),
            sink,
            project_id=project,
            nation=nation.upper(),
            ceiling=ceiling.upper(),
            actor=who,
            at=_when(at),
            valid_until=_when(until) if until else None,
            note=note,
            justification=justification,
        )
    typer.echo(f"admitted {a.nation} to {a.project_id} up to {a.ceiling} (admission {a.id})")


@partnership_app.command("end")
def end_cmd(
    admission_id: Annotated[str, typer.Argument(help="Admission id (see `admissions`).")],
    actor: ActorId,
    justification: Justification,
    db: Db = None,
    at: At = None,
) -> None:
    """End an admission now (or at --at; say why: --justification)."""
    from relto.partnership import end_admission
    from relto.store.partnership import SqlPartnershipRepository

    database, sink = _open(db)
    who = _actor(database, sink, actor)
    with database.session() as s:
        a = end_admission(
            SqlPartnershipRepository(s),
            sink,
            admission_id=admission_id,
            actor=who,
            at=_when(at),
            justification=justification,
        )
    typer.echo(f"ended admission of {a.nation} to {a.project_id}")


@partnership_app.command("custody")
def custody_cmd(
    project: Annotated[str, typer.Argument(help="Project id, e.g. hypersonic.")],
    actor: ActorId,
    justification: Justification,
    nations: Annotated[
        list[str] | None,
        typer.Argument(help="Nations holding joint custody, e.g. GBR USA; none: no joint custody."),
    ] = None,
    db: Db = None,
    at: At = None,
) -> None:
    """Set the nations whose key access services each hold a share of the key of the
    project's new objects by default (joint custody; say why: --justification)."""
    from relto.partnership import set_joint_custody
    from relto.store.partnership import SqlPartnershipRepository

    database, sink = _open(db)
    who = _actor(database, sink, actor)
    with database.session() as s:
        p = set_joint_custody(
            SqlPartnershipRepository(s),
            sink,
            project_id=project,
            nations=[n.upper() for n in nations or ()],
            actor=who,
            at=_when(at),
            justification=justification,
        )
    held = ", ".join(p.joint_custody) or "none (the originator's key access service alone)"
    typer.echo(f"joint custody of {p.id}: {held}")


@partnership_app.command("export-relevant")
def export_relevant_cmd(
    project: Annotated[str, typer.Argument(help="Project id, e.g. undersea.")],
    actor: ActorId,
    justification: Justification,
    relevant: Annotated[
        bool,
        typer.Option(
            "--on/--off",
            help="Export relevant (the console asks each uploader for the export "
            "classification, and new objects are withheld until an officer classifies "
            "them) or not.",
        ),
    ] = True,
    db: Db = None,
    at: At = None,
) -> None:
    """Say whether the project's new objects need an export classification (say
    why: --justification)."""
    from relto.partnership import set_export_relevant
    from relto.store.partnership import SqlPartnershipRepository

    database, sink = _open(db)
    who = _actor(database, sink, actor)
    with database.session() as s:
        p = set_export_relevant(
            SqlPartnershipRepository(s),
            sink,
            project_id=project,
            relevant=relevant,
            actor=who,
            at=_when(at),
            justification=justification,
        )
    typer.echo(f"{p.id} is {'export relevant' if p.export_relevant else 'not export relevant'}")


@partnership_app.command("load-demo")
def load_demo_cmd(
    file: Annotated[
        Path | None, typer.Option(help="Demo file [default: RELTO_DEMO_FILE or the packaged one].")
    ] = None,
    db: Db = None,
    check: Annotated[bool, typer.Option("--check", help="Only check the file.")] = False,
) -> None:
    """Check a demo partnership file and load its partnership and people (idempotent).

    Loading runs only in demo mode (RELTO_DEMO=true): the demo people, with their
    clearances and roles, would otherwise become real people of this node.
    `--check` only reads the file and runs anywhere. Sample documents are protected
    by `relto serve --demo`, which runs the KAS.
    """
    from relto.demo import load_demo, read_demo

    if not check and not load_settings().demo:
        raise ConfigError(
            "load-demo loads demo people, clearances and roles: it runs only in demo mode "
            "(set RELTO_DEMO=true, on a node that holds no real data)"
        )
    data = read_demo(file)
    if check:
        typer.echo(
            f"ok: {data.partnership.id}: {len(data.projects)} projects, "
            f"{len(data.admissions)} admissions, {len(data.people)} people, "
            f"{len(data.documents)} documents"
        )
        return
    database, sink = _open(db)
    report = load_demo(database, sink, data, at=dt.datetime.now(dt.UTC))
    typer.echo(
        f"loaded {report.partnerships} partnership(s), {report.projects} project(s), "
        f"{report.admissions} admission(s), {report.people} people, "
        f"{report.clearances} clearance(s)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(partnership_app, name="partnership")
