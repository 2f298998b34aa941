"""``relto export``: the export-control office on the node's own data folder.

``classify``, ``users``, ``licences``, ``lists`` and ``rules`` record export facts;
``check`` asks the export check alone; ``records`` writes the transfer records for
a regulator (CSV or JSON). Each command calls one
:class:`relto.export_office.ExportOffice` method of the node that
:func:`relto.node.build_node` builds from the settings (the same wiring as the
server's).

Whoever runs these commands has the node's database in hand; ``--actor`` names the
person on whose authority the call is made, and the one authorisation point decides
from the directory's record of them (an export-control officer of the nation whose
fact it is), exactly as for the API, and records it. Every change takes a
``--justification``, recorded with it in the transparency log.

Facts are read from YAML files (the scenario's mappings, docs/export_control.md):
at most :data:`MAX_FILE_BYTES`, no aliases, nested at most :data:`MAX_DEPTH` levels;
the office's strict loaders check the rest before anything is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from relto.config import load_settings
from relto.errors import InvalidInput

if TYPE_CHECKING:
    from relto.authz import Principal
    from relto.export_office import ExportOffice

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "register"]

#: Largest facts file read (an excluded list of 10,000 entries fits well).
MAX_FILE_BYTES = 8 << 20
#: How deep a facts file may nest (a list's entries are three levels down).
MAX_DEPTH = 6
#: Exit code of ``check`` when the transfer is denied (errors exit 1).
EXIT_DENIED = 3

export_app = typer.Typer(
    help="The export-control office: classifications, authorized users, licences, "
    "excluded lists, rules, checks and transfer records (docs/export_control.md).",
    no_args_is_help=True,
)
users_app = typer.Typer(
    help="Export parties: authorized users, people and organisations.", no_args_is_help=True
)
licences_app = typer.Typer(help="Licences and agreements.", no_args_is_help=True)
lists_app = typer.Typer(help="Excluded technology lists.", no_args_is_help=True)
rules_app = typer.Typer(help="A regime's rules.", no_args_is_help=True)
export_app.add_typer(users_app, name="users")
export_app.add_typer(licences_app, name="licences")
export_app.add_typer(lists_app, name="lists")
export_app.add_typer(rules_app, name="rules")

ActorId = Annotated[
    str,
    typer.Option(
        "--actor",
        help="On whose authority: a person id in this node's directory; their nation and "
        "roles are the directory's, never the command line's.",
    ),
]
Justification = Annotated[
    str,
    typer.Option(
        "--justification",
        help="Why the change is made (10 to 500 characters); recorded in the audit log.",
    ),
]
FactsFile = Annotated[
    Path, typer.Option("--file", "-f", help="YAML file with the mapping (docs/export_control.md).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class Format(StrEnum):
    csv = "csv"
    json = "json"


class _NoAliases(yaml.SafeLoader):
    """Safe YAML without anchors and aliases (one alias can stand for a huge tree)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases are not accepted in a facts file", mark
            )
        return super().compose_node(parent, index)


def _depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def read_facts(path: Path) -> dict[str, Any]:
    """The mapping in a YAML facts file, or :class:`InvalidInput` naming the file."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = yaml.load(data, Loader=_NoAliases)  # noqa: S506 -- a SafeLoader, aliases refused
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InvalidInput(f"{path.name}{where}: {problem}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path.name}: expected a mapping of keys to values")
    if _depth(doc) > MAX_DEPTH:
        raise InvalidInput(f"{path.name}: nested deeper than {MAX_DEPTH} levels")
    return doc


def _setting(pair: str) -> tuple[str, object]:
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--set takes key=value, not {pair[:60]!r}")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return key.strip(), lowered == "true"
    return key.strip(), value


def parse_bound(value: str | None, option: str) -> dt.datetime | None:
    """An ISO date (00:00 UTC that day) or an ISO datetime with a timezone."""
    if value is None:
        return None
    try:
        if "T" in value or " " in value:
            t = dt.datetime.fromisoformat(value)
        else:
            d = dt.date.fromisoformat(value)
            t = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    except ValueError:
        raise InvalidInput(
            f"{option} must be an ISO date (2026-01-31) or a datetime with a timezone "
            "(2026-01-31T09:00:00Z)"
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidInput(f"{option} needs a timezone, e.g. 2026-01-31T09:00:00Z")
    return t


@contextmanager
def _office(actor: str) -> Iterator[tuple[ExportOffice, Principal]]:
    """The node's export office and the acting person as its directory records them.

    While the node runs, whatever it prints (its log lines, unconfigured outside the
    server) goes to stderr: stdout carries the command's output alone, so a records
    export piped to a file is only the export."""
    from relto.node import build_node

    with redirect_stdout(sys.stderr):
        node = build_node(load_settings())
        try:
            if node.exports is None:
                raise InvalidInput("this node keeps no export facts")
            who = node.directory.principal(actor, via="node")
            if who is None:
                raise InvalidInput(f"no person {actor[:64]!r} in this node's directory")
            yield node.exports, who
        finally:
            node.db.dispose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _print(rows: Sequence[Mapping[str, Any]], as_json: bool, table: Table) -> None:
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=str))
        return
    Console(highlight=False).print(table)


def _table(title: str, *columns: str) -> Table:
    """A table whose long ids fold onto the next line rather than being cut."""
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


# -- classify -----------------------------------------------------------------------------


@export_app.command("classify")
def classify_cmd(
    object_id: Annotated[str, typer.Argument(help="The object (document id) to classify.")],
    actor: ActorId,
    justification: Justification,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="YAML file with the export block."),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value of the export block (repeatable; over --file's); true and "
            "false are booleans, anything else text, e.g. --set controlled=true "
            "--set kind=technical_data --set regime=ITAR --set usml_category=XI.",
        ),
    ] = None,
) -> None:
    """Record an object's export classification (an officer of its originating nation)."""
    if file is None and not settings:
        raise InvalidInput("give the export block with --file or --set key=value")
    block: dict[str, Any] = read_facts(file) if file is not None else {}
    block.update(_setting(s) for s in settings or ())
    with _office(actor) as (office, who):
        version = office.classify(who, object_id, block, justification=justification, at=_now())
    typer.echo(f"classified {object_id} (classification version {version})")


# -- users (export parties) ---------------------------------------------------------------


@users_app.command("add")
def users_add(file: FactsFile, actor: ActorId, justification: Justification) -> None:
    """Record (or change) a person or organisation as an export party."""
    party = read_facts(file)
    with _office(actor) as (office, who):
        pid = office.put_party(who, party, justification=justification, at=_now())
    typer.echo(f"recorded export party {pid}")


@users_app.command("list")
def users_list(actor: ActorId, as_json: AsJson = False) -> None:
    """Every export party recorded on this node, with its authorizations."""
    with _office(actor) as (office, who):
        parties = office.summary(who).parties
    table = _table(
        "export parties", "id", "kind", "location", "nationalities", "organisation",
        "registered", "debarred", "authorized",
    )  # fmt: skip
    for p in parties:
        authorized = [
            f"{a.get('regime')} {a.get('identifier')} until {a.get('valid_until')}"
            for a in p.get("authorized", [])
            if isinstance(a, Mapping)
        ]
        table.add_row(
            str(p.get("id")), str(p.get("kind", "person")), _cell(p.get("location")),
            _cell(p.get("nationalities")), _cell(p.get("organisation")),
            _cell(p.get("ddtc_registered", False)), _cell(p.get("debarred", False)),
            _cell(authorized),
        )  # fmt: skip
    _print(parties, as_json, table)


# -- licences -----------------------------------------------------------------------------


@licences_app.command("add")
def licences_add(file: FactsFile, actor: ActorId, justification: Justification) -> None:
    """Record (or amend) a licence or agreement; its consumption so far is kept."""
    licence = read_facts(file)
    with _office(actor) as (office, who):
        number = office.put_licence(who, licence, justification=justification, at=_now())
    typer.echo(f"recorded licence {number}")


@licences_app.command("list")
def licences_list(actor: ActorId, as_json: AsJson = False) -> None:
    """Every licence with its validity, ceiling and consumption so far."""
    with _office(actor) as (office, who):
        licences = office.summary(who).licences
    table = _table(
        "licences", "number", "regime", "kind", "valid from", "valid until", "ceiling",
        "consumed", "transfers", "nationalities",
    )  # fmt: skip
    for lic in licences:
        table.add_row(
            str(lic.get("number")), str(lic.get("regime")), str(lic.get("kind")),
            _cell(lic.get("valid_from")), _cell(lic.get("valid_until")),
            _cell(lic.get("value_ceiling")), _cell(lic.get("value_consumed")),
            _cell(lic.get("quantity_consumed")), _cell(lic.get("nationalities")),
        )  # fmt: skip
    _print(licences, as_json, table)


# -- excluded lists -----------------------------------------------------------------------


@lists_app.command("load")
def lists_load(file: FactsFile, actor: ActorId, justification: Justification) -> None:
    """Load a new version of an excluded technology list (it replaces the active one)."""
    data = read_facts(file)
    with _office(actor) as (office, who):
        regime, name, version = office.load_list(who, data, justification=justification, at=_now())
    typer.echo(f"loaded {regime} list {name!r} version {version}")


@lists_app.command("list")
def lists_list(actor: ActorId, as_json: AsJson = False) -> None:
    """Every loaded version of every excluded list; the active ones decide."""
    with _office(actor) as (office, who):
        lists = office.summary(who).lists
    table = _table(
        "excluded lists", "regime", "name", "version", "entries", "active", "source",
        "loaded by", "loaded at",
    )  # fmt: skip
    for x in lists:
        entries = x.get("entries")
        table.add_row(
            str(x.get("regime")), str(x.get("name")), str(x.get("version")),
            str(len(entries) if isinstance(entries, list) else 0), _cell(x.get("active")),
            _cell(x.get("source")), _cell(x.get("loaded_by")), _cell(x.get("loaded_at")),
        )  # fmt: skip
    _print(lists, as_json, table)


# -- rules --------------------------------------------------------------------------------


@rules_app.command("set")
def rules_set(
    regime: Annotated[str, typer.Argument(help="ITAR, EAR, UK_STRATEGIC or AUS_DSGL.")],
    file: FactsFile,
    actor: ActorId,
    justification: Justification,
) -> None:
    """Set a regime's rules (dual_national_rules, value_threshold), replacing them."""
    data = read_facts(file)
    with _office(actor) as (office, who):
        office.put_rules(who, regime, data, justification=justification, at=_now())
    typer.echo(f"recorded the rules of {regime}")


# -- check --------------------------------------------------------------------------------


@export_app.command("check")
def check_cmd(
    person: Annotated[str, typer.Argument(help="Who would receive the object (person id).")],
    object_id: Annotated[str, typer.Argument(help="The object (document id).")],
    actor: ActorId,
    action: Annotated[
        str, typer.Option(help="read, download, share, ship or manufacture.")
    ] = "read",
    to: Annotated[
        str | None, typer.Option("--to", help="For a share: the person it goes on to.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When (ISO date or datetime); default now.")
    ] = None,
) -> None:
    """The export check alone: allowed with its legal basis, or every missing
    condition. Exit 0 allowed, 3 denied, 1 on an error."""
    if action not in ("read", "download", "share", "ship", "manufacture"):
        raise InvalidInput("--action must be read, download, share, ship or manufacture")
    when = parse_bound(at, "--at") or _now()
    with _office(actor) as (office, who):
        d = office.check(who, person, object_id, action=action, to=to, at=when)
    if d.allowed:
        typer.echo(f"allowed: {d.legal_basis}")
        return
    typer.echo("denied")
    for r in d.reasons:
        typer.echo(f"  {r.code}: {r.sentence}")
    raise typer.Exit(EXIT_DENIED)


# -- records ------------------------------------------------------------------------------


@export_app.command("records")
def records_cmd(
    actor: ActorId,
    since: Annotated[
        str | None,
        typer.Option("--from", help="First instant (ISO date = 00:00 UTC, or datetime)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--to", help="End, exclusive (ISO date = 00:00 UTC, or datetime)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="csv or json.")] = Format.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Transfer records for a regulator: every allowed transfer of a controlled item
    with from <= time < to that concerns a nation the actor reads records for."""
    from relto.export_control.records import to_csv, to_json

    start, end = parse_bound(since, "--from"), parse_bound(until, "--to")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("--to must be after --from")
    with _office(actor) as (office, who):
        records = office.records(who, since=start, until=end)
    text = to_csv(records) if fmt is Format.csv else to_json(records)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {len(records)} transfer records to {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
