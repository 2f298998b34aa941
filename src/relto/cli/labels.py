"""``relto label ...``: markings, validation, access checks, translation, parsing.

LABEL and CLEARANCE files are STANAG 4774 XML or spiffing's small XML form. SPIF
arguments are files or the names of built-in policies (USA, GBR, ..., PARTNERSHIP);
without ``--spif`` the built-in policies are used. SPIFs load leniently
(spiffing-compatible, warnings on stderr) unless ``--strict`` is given.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from relto.labels.banner import parse_banner
from relto.labels.engine import (
    access_check,
    clearance_marking,
    marking,
    translate,
    validate_label,
)
from relto.labels.errors import LabelsError, SpifUnreadable, UnknownPolicy
from relto.labels.label import (
    SLAB_NS,
    Clearance,
    Label,
    read_clearance,
    read_label_any,
    write_label,
)
from relto.labels.national import (
    NATIONS,
    POLICIES,
    banner_to_label,
    builtin_policy,
    builtin_registry,
)
from relto.labels.spif import Spif, load_spif

__all__ = ["register"]

label_app = typer.Typer(
    help="Security labels: markings, validation, access checks, translation.",
    no_args_is_help=True,
)

SpifOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--spif",
        help="SPIF file or built-in policy name; repeat for equivalent policies.",
    ),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Validate SPIFs against the SPIF 2.1 schema.")
]
LabelOpt = Annotated[
    Path, typer.Option("--label", help="Label file (STANAG 4774 or spiffing XML).")
]


def _warn(text: str) -> None:
    print(f"relto: warning: {text}", file=sys.stderr)


def _load_spifs(sources: list[str] | None, strict: bool) -> list[Spif]:
    if not sources:
        return list(builtin_registry().values())
    out: list[Spif] = []
    for src in sources:
        path = Path(src)
        if not path.exists() and src.strip().upper() in POLICIES:
            out.append(builtin_policy(src))
            continue
        spif = load_spif(path, strict=strict)
        for w in spif.warnings:
            _warn(w)
        out.append(spif)
    return out


def _registry(spifs: list[Spif]) -> dict[str, Spif]:
    reg: dict[str, Spif] = {}
    for s in spifs:
        reg.setdefault(s.policy_id, s)
    return reg


def _policy_for(policy: str, policy_id: str | None, spifs: list[Spif]) -> Spif:
    if policy_id:
        for s in spifs:
            if s.policy_id == policy_id:
                return s
        raise UnknownPolicy(f"Unknown policy id: {policy_id}")
    for s in spifs:
        if s.name.casefold() == policy.casefold():
            return s
    raise UnknownPolicy(f"Unknown policy: {policy}")


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SpifUnreadable(f"{what} {path}: cannot read ({exc.strerror})") from None


def _read_label(path: Path, reg: Mapping[str, Spif]) -> Label:
    data = _read_file(path, "label")
    # the CLI says it itself, on one line, instead of the library's log record
    logger = logging.getLogger("relto.labels.label")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        label = read_label_any(data, reg, lenient=True)
    finally:
        logger.setLevel(level)
    if label.creation_time is None and SLAB_NS.encode() in data:
        _warn(f"label {path.name} has no CreationDateTime (ADatP-4774 requires it); read leniently")
    return label


def _read_clearance(path: Path, reg: Mapping[str, Spif]) -> Clearance:
    return read_clearance(_read_file(path, "clearance"), reg)


@label_app.command("marking")
def marking_cmd(
    spif: SpifOpt = None,
    label: Annotated[Path | None, typer.Option("--label", help="Label file.")] = None,
    clearance: Annotated[Path | None, typer.Option("--clearance", help="Clearance file.")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Language tag, e.g. fr.")] = None,
    strict: StrictOpt = False,
) -> None:
    """Print the marking of a label (or of a clearance) by the SPIF's marking rules."""
    if (label is None) == (clearance is None):
        raise typer.BadParameter("give exactly one of --label or --clearance")
    spifs = _load_spifs(spif, strict)
    reg = _registry(spifs)
    if label is not None:
        lbl = _read_label(label, reg)
        typer.echo(marking(lbl, _policy_for(lbl.policy, lbl.policy_id, spifs), lang))
    else:
        assert clearance is not None
        clr = _read_clearance(clearance, reg)
        typer.echo(clearance_marking(clr, _policy_for(clr.policy, clr.policy_id, spifs), lang))


@label_app.command("validate")
def validate_cmd(
    spif: SpifOpt = None,
    label: Annotated[Path | None, typer.Option("--label", help="Label file.")] = None,
    strict: StrictOpt = False,
) -> None:
    """Validate a label (without --label: the SPIFs). Exit 0 valid, 1 invalid, 2 unreadable.

    Reasons go to stderr, one per line.
    """
    try:
        spifs = _load_spifs(spif, strict)
    except SpifUnreadable as exc:
        print(f"relto: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except LabelsError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        raise typer.Exit(1 if label is None else 2) from None
    if label is None:
        for s in spifs:
            typer.echo(f"valid: {s.name} ({s.policy_id})")
        return
    try:
        lbl = _read_label(label, _registry(spifs))
        policy = _policy_for(lbl.policy, lbl.policy_id, spifs)
    except LabelsError as exc:
        print(f"relto: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    result = validate_label(lbl, policy)
    if result.valid:
        typer.echo("valid")
        return
    typer.echo("invalid")
    for reason in result.reasons:
        print(f"invalid: {reason}", file=sys.stderr)
    raise typer.Exit(1)


@label_app.command("access")
def access_cmd(
    label: LabelOpt,
    clearance: Annotated[Path, typer.Option("--clearance", help="Clearance file.")],
    spif: SpifOpt = None,
    strict: StrictOpt = False,
) -> None:
    """Print granted or denied: does the clearance dominate the label? (exit 0 either way)"""
    spifs = _load_spifs(spif, strict)
    reg = _registry(spifs)
    lbl = _read_label(label, reg)
    clr = _read_clearance(clearance, reg)
    policy = _policy_for(lbl.policy, lbl.policy_id, spifs)
    if clr.policy_id is None:
        clr_policy = _policy_for(clr.policy, None, spifs)
        clr = Clearance(clr.policy, clr.classifications, clr.categories, clr_policy.policy_id)
    typer.echo("granted" if access_check(clr, lbl, policy, policies=reg) else "denied")


@label_app.command("translate")
def translate_cmd(
    label: LabelOpt,
    to: Annotated[str, typer.Option("--to", help="Target policy id (or name).")],
    spif: SpifOpt = None,
    lang: Annotated[str | None, typer.Option("--lang", help="Language tag.")] = None,
    strict: StrictOpt = False,
) -> None:
    """Print the label's marking in an equivalent policy (through the SPIF's equivalences)."""
    spifs = _load_spifs(spif, strict)
    reg = _registry(spifs)
    lbl = _read_label(label, reg)
    policy = _policy_for(lbl.policy, lbl.policy_id, spifs)
    target = reg.get(to) or _policy_for(to, None, spifs)
    out = translate(lbl, policy, target.policy_id, policies=reg)
    typer.echo(marking(out, target, lang))


@label_app.command("parse")
def parse_cmd(
    text: Annotated[str, typer.Argument(metavar="MARKING", help="Banner or portion marking.")],
    originator: Annotated[
        str | None, typer.Option("--originator", help="Originating nation (trigraph).")
    ] = None,
    portion: Annotated[
        bool, typer.Option("--portion", help="Also print the portion form.")
    ] = False,
) -> None:
    """Print the canonical marking and the label as STANAG 4774 XML.

    A portion marking input is printed as a canonical portion marking.
    """
    banner = parse_banner(text, originator)
    if text.strip().startswith("("):
        typer.echo(banner.render_portion())  # a portion marking stays a portion marking
    else:
        typer.echo(banner.render())
        if portion:
            typer.echo(banner.render_portion())
    nation = banner.originator or "USA"
    if nation not in NATIONS:
        _warn(f"no built-in scheme for {nation}: no STANAG 4774 label printed")
        return
    label = banner_to_label(banner, builtin_policy(nation))
    typer.echo(write_label(label, datetime.now(UTC)).decode("utf-8"), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(label_app, name="label")
