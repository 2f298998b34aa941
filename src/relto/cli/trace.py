"""``relto trace LEAKED_FILE [--object ID] --actor PERSON``: trace a leaked file on the
node's own data folder (issue 17).

Calls :meth:`relto.tracing.service.TracingService.trace` of the node that
:func:`relto.node.build_node` builds from the settings (the same wiring as the
server's). ``--actor`` names the person on whose authority the trace runs; the one
authorisation point decides from the directory's record of them (a security
officer or auditor of this node's nation) and records the refusal or the run
(``trace.run``). Prints the verdict, each accused recipient with their score and
the ``trace.copy`` entries proving they received a copy (with the checkpoint the
inclusion proof leads to), or that nobody is accused; ``--json`` prints the
REST API's answer instead.

Exit codes: 0 somebody accused, 3 nobody accused (too weak, or no object matched),
4 an index given to nobody was accused (a forgery or a copy outside the ledger),
1 errors.
"""

from __future__ import annotations

import json
import sys
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from relto.config import load_settings
from relto.errors import InvalidInput

__all__ = ["EXIT_NOBODY", "EXIT_UNASSIGNED", "register"]

#: Exit code when nobody is accused.
EXIT_NOBODY = 3
#: Exit code when an index given to nobody reached the threshold.
EXIT_UNASSIGNED = 4


def trace(
    leaked: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The leaked file.")
    ],
    actor: Annotated[
        str,
        typer.Option(
            "--actor",
            help="On whose authority: a security officer or auditor in this node's directory.",
        ),
    ],
    object_id: Annotated[
        str | None, typer.Option("--object", help="The object it is a copy of, if known.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Trace a leaked file to the recipients whose copies made it."""
    from relto.node import build_node
    from relto.server.routes.tracing import result_out
    from relto.tracing.service import MAX_LEAK_BYTES

    if leaked.stat().st_size > MAX_LEAK_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_LEAK_BYTES // (1024 * 1024)} MiB")
    data = leaked.read_bytes()
    with redirect_stdout(sys.stderr):  # the node's log lines never mix with the answer
        node = build_node(load_settings())
        try:
            if node.tracing is None:
                raise InvalidInput("this node does not trace")
            who = node.directory.principal(actor, via="node")
            if who is None:
                raise InvalidInput(f"no person {actor[:64]!r} in this node's directory")
            result = node.tracing.trace(who, data, object_id, datetime.now(UTC))
        finally:
            node.db.dispose()
    if as_json:
        typer.echo(json.dumps(result_out(result).model_dump(mode="json"), indent=2))
    else:
        typer.echo(result.verdict)
        typer.echo(f"file sha256 {result.file_sha256}")
        if result.object_id is not None:
            typer.echo(
                f"object {result.object_id} (match {result.located:.2f}); "
                f"{result.bits_read} of {result.length} bits read, {result.bits_erased} erased; "
                f"threshold {result.threshold:.2f}; false-accusation bound "
                f"{result.false_accusation_bound:g}; {result.recipients} recipients"
            )
        for a in result.accused:
            name = f"{a.person_id} ({a.nation})"
            typer.echo(f"  {name} index {a.recipient_index} score {a.score:.2f}")
            for c in a.copies:
                proof = (
                    f"log entry {c.log_index}, proven in checkpoint of size {c.tree_size}"
                    if not c.unproven
                    else f"not proven: {c.unproven}"
                )
                typer.echo(f"    copy {c.copy_number} at {c.at.isoformat()}: {proof}")
        for i, s in result.unassigned_accused:
            typer.echo(f"  index {i} (given to nobody) score {s:.2f}")
    if result.unassigned_accused:
        raise typer.Exit(EXIT_UNASSIGNED)
    if not result.accused:
        raise typer.Exit(EXIT_NOBODY)


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)
