"""The decision engine: may this person do this to this object, now, and why (not)?

Facts in (:class:`Subject`, :class:`Resource`, :class:`World`), an explained,
frozen :class:`Decision` out. :func:`evaluate` never raises for a denial;
:func:`enforce` does (:class:`AccessDenied`). Batch filtering
(:meth:`Engine.readable`, :meth:`Engine.readers`), what-if analysis
(:func:`what_if`) and scenario files (:func:`load_scenario`) sit on the same
engine. See ``docs/decisions.md``.
"""

from __future__ import annotations

from datetime import datetime

from relto.decisions._model import (
    ACTIONS,
    CLEARANCE_STATUSES,
    CODES,
    Action,
    Admission,
    ClearanceFact,
    Code,
    Decision,
    ExportFacts,
    Obligation,
    Reason,
    Resource,
    Subject,
    World,
)
from relto.decisions.engine import Engine
from relto.decisions.errors import AccessDenied, DecisionError, InvalidChange, InvalidScenario
from relto.decisions.protocols import (
    COMMON_SCHEME,
    Agreement,
    ExportBasis,
    ExportCheck,
    LevelMapper,
    Recognition,
    TableLevelMapper,
    TableRecognition,
)
from relto.decisions.scenario import Scenario, decide_scenario, load_scenario
from relto.decisions.whatif import (
    AddRelTo,
    Admit,
    Authorize,
    Change,
    EndAdmission,
    Exclude,
    ExpireClearance,
    ExpireLicence,
    Population,
    Recognise,
    RevokeClearance,
    SetRelTo,
    WhatIfResult,
    parse_change,
    what_if,
)
from relto.events import AuditSink

__all__ = [
    "ACTIONS",
    "CLEARANCE_STATUSES",
    "CODES",
    "COMMON_SCHEME",
    "AccessDenied",
    "Action",
    "AddRelTo",
    "Admission",
    "Admit",
    "Agreement",
    "Authorize",
    "Change",
    "ClearanceFact",
    "Code",
    "Decision",
    "DecisionError",
    "EndAdmission",
    "Engine",
    "Exclude",
    "ExpireClearance",
    "ExpireLicence",
    "ExportBasis",
    "ExportCheck",
    "ExportFacts",
    "InvalidChange",
    "InvalidScenario",
    "LevelMapper",
    "Obligation",
    "Population",
    "Reason",
    "Recognise",
    "Recognition",
    "Resource",
    "RevokeClearance",
    "Scenario",
    "SetRelTo",
    "Subject",
    "TableLevelMapper",
    "TableRecognition",
    "WhatIfResult",
    "World",
    "decide_scenario",
    "enforce",
    "evaluate",
    "load_scenario",
    "parse_change",
    "what_if",
]


def evaluate(
    subject: Subject, action: str, obj: Resource, *, at: datetime, engine: Engine
) -> Decision:
    """May ``subject`` do ``action`` to ``obj`` at ``at``? (see :meth:`Engine.evaluate`)."""
    return engine.evaluate(subject, action, obj, at=at)


def enforce(
    subject: Subject,
    action: str,
    obj: Resource,
    *,
    at: datetime,
    engine: Engine,
    sink: AuditSink | None = None,
) -> Decision:
    """Evaluate, record in ``sink``, and raise :class:`AccessDenied` on a denial."""
    return engine.enforce(subject, action, obj, at=at, sink=sink)
