"""``relto federation demo``: four federated nodes (AUS, GBR, USA, JPN) on loopback,
each with its own OpenID provider, until Ctrl-C (:mod:`relto.launcher.federation`).

``relto federation demo-load --root ROOT`` is the launcher's own step (hidden): it
loads a node's share of the demo partnership outside demo mode, and is refused
unless the node is one of the launcher's (its data folder ``ROOT/<nation>``, a
folder the launcher marked, loopback only). ``relto partnership load-demo`` keeps
refusing outside demo mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relto.cli.federation import federation_app
from relto.config import load_settings

__all__ = ["register"]

Root = Annotated[
    Path,
    typer.Option("--root", help="The launcher's folder; each node's data is in <root>/<nation>."),
]


def demo(
    root: Root = Path(".relto-federation"),
    node_port: Annotated[
        int, typer.Option(min=1024, max=65000, help="Port of the first node (AUS); then +1 each.")
    ] = 8101,
    idp_port: Annotated[
        int,
        typer.Option(min=1024, max=65000, help="Port of the first OpenID provider; then +1 each."),
    ] = 8201,
    replicate_seconds: Annotated[
        int,
        typer.Option(
            min=1, max=3600, help="How often each node offers partnership changes to the others."
        ),
    ] = 30,
) -> None:
    """Start four pinned nodes (AUS, GBR, USA, JPN), each with its own OpenID provider.

    Loopback only; Ctrl-C stops them all.
    """
    from relto.launcher.federation import run

    code = run(
        root,
        node_base=node_port,
        idp_base=idp_port,
        replicate_seconds=replicate_seconds,
        echo=lambda s: typer.echo(s),
    )
    raise typer.Exit(code)


def demo_load(root: Root) -> None:
    """Load this node's share of the demo partnership (launcher only)."""
    from relto.launcher.federation import load_share

    report = load_share(load_settings(), root)
    typer.echo(
        f"loaded {report.people} people, {report.clearances} clearance(s), "
        f"{report.documents} document(s)"
    )
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped}")


def register(app: typer.Typer) -> None:
    federation_app.command("demo")(demo)
    federation_app.command("demo-load", hidden=True)(demo_load)
