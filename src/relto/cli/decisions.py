"""``relto decide`` and ``relto whatif``: the decision engine on scenario files.

Thin edge: parse the arguments, call :mod:`relto.decisions`, print JSON lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def decide(
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario YAML file.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="Evaluation time (ISO 8601) for requests without their own."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add the reason sentences to each line.")
    ] = False,
) -> None:
    """Decide every request of a scenario: one JSON line per request."""
    from relto.decisions import decide_scenario, load_scenario
    from relto.decisions.scenario import parse_time

    sc = load_scenario(scenario)
    when = parse_time(at) if at is not None else None
    for req, decision in decide_scenario(sc, at=when):
        if decision is None:
            line: dict[str, object] = {
                "request": req.id,
                "allowed": False,
                "reasons": ["UNKNOWN_ATTRIBUTE"],
            }
            if explain:
                line["explanation"] = ["The request names an unknown person or object."]
        else:
            line = {
                "request": req.id,
                "allowed": decision.allowed,
                "reasons": list(decision.codes),
            }
            if decision.legal_basis is not None:  # an export-controlled object
                line["legal_basis"] = decision.legal_basis
            if explain:
                line["explanation"] = [r.sentence for r in decision.reasons]
        typer.echo(json.dumps(line))


def whatif(
    scenario: Annotated[Path, typer.Option("--scenario", help="Scenario YAML file.")],
    change: Annotated[
        list[str],
        typer.Option(
            "--change",
            help="admit:NATION:project:LEVEL[:FROM[:UNTIL]], end:NATION:project, "
            "revoke:ID, expire:ID, rel-to:OBJECT:NATION[,NATION], "
            "set-rel-to:OBJECT:[NATION[,NATION]], recognise:ISSUER:NATION; on export "
            "facts: licence-expire:NUMBER, authorize:PARTY:REGIME[:IDENTIFIER], "
            "exclude:REGIME:PATTERN (repeatable).",
        ),
    ],
    at: Annotated[str | None, typer.Option("--at", help="Analysis time (ISO 8601).")] = None,
    action: Annotated[str, typer.Option("--action", help="Action to analyse.")] = "read",
) -> None:
    """Who would gain or lose access under hypothetical changes (nothing is written)."""
    from datetime import UTC, datetime

    from relto.decisions import load_scenario, parse_change, what_if
    from relto.decisions.scenario import parse_time

    sc = load_scenario(scenario)
    changes = [parse_change(c) for c in change]
    when = parse_time(at) if at is not None else (sc.at or datetime.now(UTC))
    result = what_if(sc.population(when), changes, action=action)
    for person, obj in result.gained:
        typer.echo(json.dumps({"change": "gained", "person": person, "object": obj}))
    for person, obj in result.lost:
        typer.echo(json.dumps({"change": "lost", "person": person, "object": obj}))
    typer.echo(
        json.dumps(
            {
                "summary": {
                    "gained": len(result.gained),
                    "lost": len(result.lost),
                    "gained_by_nation": dict(result.gained_by_nation),
                    "gained_by_project": dict(result.gained_by_project),
                    "lost_by_nation": dict(result.lost_by_nation),
                    "lost_by_project": dict(result.lost_by_project),
                }
            }
        )
    )


def register(app: typer.Typer) -> None:
    app.command("decide")(decide)
    app.command("whatif")(whatif)
