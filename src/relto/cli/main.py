"""``relto``: the command line.

Each capability adds its commands in its own module of this package through a
``register(app)`` function listed in ``_COMMAND_MODULES``. Errors print one clear
line on stderr and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer._click.exceptions import ClickException  # typer vendors click

from relto import __version__
from relto.config import load_settings
from relto.errors import ReltoError

__all__ = ["app", "main"]

app = typer.Typer(
    name="relto",
    help="relto: provably controlled sharing of sensitive technology between allied nations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Inspect relto's configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_err = Console(stderr=True, highlight=False, soft_wrap=True)

_COMMAND_MODULES: tuple[str, ...] = (
    # one line per capability module exposing register(app), e.g. "relto.cli.labels",
    "relto.cli.audit",
    "relto.cli.decisions",
    "relto.cli.labels",
    "relto.cli.ztdf",
    "relto.cli.kas",
    "relto.cli.vetting",
    "relto.cli.partnership",
    "relto.cli.export",
    "relto.cli.changes",
    "relto.cli.federation",
    "relto.cli.federation_demo",
    "relto.cli.remote",
    "relto.cli.trace",
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when a command fails.")
    ] = False,
) -> None:
    """relto: provably controlled sharing of sensitive technology between allied nations."""


@app.command()
def version() -> None:
    """Print relto's version."""
    typer.echo(__version__)


@app.command()
def serve(
    demo: Annotated[
        bool | None,
        typer.Option("--demo/--no-demo", help="Load the demo partnership and demo login."),
    ] = None,
    bind: Annotated[str | None, typer.Option(help="Address to listen on [RELTO_BIND].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [RELTO_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 1,
) -> None:
    """Start the relto server (API, KAS and web console)."""
    from relto.server.run import run_server

    overrides: dict[str, object] = {}
    if demo is not None:
        overrides["demo"] = demo
    if bind is not None:
        overrides["bind"] = bind
    if port is not None:
        overrides["port"] = port
    run_server(load_settings(**overrides), workers=workers)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked."""
    settings = load_settings()
    table = Table("setting", "value", title="relto configuration")
    for key, value in settings.masked().items():
        table.add_row(key, value)
    Console(highlight=False).print(table)


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning failures into one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="relto", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        _err.print("relto: aborted")
        return 130
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except ReltoError as exc:
        if debug:
            traceback.print_exc()
        _err.print(f"relto: error: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err.print(
            f"relto: internal error ({type(exc).__name__}); rerun with --debug for details",
            markup=False,
        )
        return 70
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
