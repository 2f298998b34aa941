"""Product decider benchmark: what the KAS pays to ask ``ProductDecider.decide``.

Baseline, measured in the same run and interleaved call by call: the behaviour
before ADR 0078, rebuilding everything per call (the document row by policy
UUID, the person and clearances through ``VettingService``, every admission and
a new ``Engine``). Compared with it: ``ProductDecider.decide`` with the
per-process caches (one counter query when nothing changed), and the first
decision after a vetting change (the person's rows read again) or a partnership
change (admissions read again, engine rebuilt).

The demo partnership on SQLite; each call asks with a new ``at`` (as the KAS
does), alternating a permitted and a denied person.

Run: ``.venv/bin/python bench/product.py [calls]`` (default 300).
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

from sqlalchemy import select  # noqa: E402

from relto.config import Settings  # noqa: E402
from relto.decisions.adapters import subject_from_vetting  # noqa: E402
from relto.events import MemorySink  # noqa: E402
from relto.kas.decider import RewrapFacts  # noqa: E402
from relto.server import create_app  # noqa: E402
from relto.server.documents import (  # noqa: E402
    DocumentService,
    ProductDecider,
    _view,
    document_service,
)
from relto.store.facts import PARTNERSHIP, VETTING, bump  # noqa: E402
from relto.store.partnership import DocumentRow  # noqa: E402
from relto.vetting.service import VettingService  # noqa: E402

PEOPLE = ("usa-eng-ramirez", "jpn-eng-sato")  # permitted, denied


def rebuild_everything(svc: DocumentService, facts: RewrapFacts) -> bool:
    """The old ``ProductDecider.decide``: every fact read again, a new engine."""
    db = svc.ctx.db
    with db.session() as s:
        row = s.scalars(
            select(DocumentRow).where(DocumentRow.policy_uuid == facts.policy_uuid[:64])
        ).first()
        assert row is not None
        doc = _view(row)
    vetting = VettingService(db, svc.ctx.sink)
    sub = str(facts.subject["sub"])
    person = vetting.get_person(sub)
    clearances = vetting.list_clearances(limit=200, person_id=sub).items
    subject = subject_from_vetting(person, clearances, facts.at, vetting.policy)
    with db.session() as s:
        engine = svc._build_engine(s, None, ())
    return bool(engine.evaluate(subject, "read", svc.resource(doc), at=facts.at).allowed)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    data = Path(tempfile.mkdtemp(prefix="relto-bench-product-"))
    app = create_app(Settings(demo=True, data_dir=data), sink=MemorySink())
    ctx = app.state.ctx
    svc = document_service(ctx)
    decider = ProductDecider(svc)
    policy = svc.get("hyp-thermal-protection").policy_uuid

    def facts(i: int) -> RewrapFacts:
        return RewrapFacts(
            subject={"sub": PEOPLE[i % 2]},
            policy_uuid=policy,
            attributes=(),
            dissem=(),
            at=datetime.now(UTC),
        )

    def after_change(i: int, kind: str) -> Any:
        with ctx.db.session() as s:  # what any write of these facts does to its counter
            bump(s, kind)
        t = time.perf_counter()
        decider.decide(facts(i))
        return (time.perf_counter() - t) * 1000

    cases: dict[str, list[float]] = {"baseline": [], "cached": [], VETTING: [], PARTNERSHIP: []}
    agree = 0

    def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn()
        return (time.perf_counter() - t) * 1000, out

    for i in range(20):  # warm-up: imports, SPIF loads, the caches
        rebuild_everything(svc, facts(i))
        decider.decide(facts(i))
    for i in range(n):
        f = facts(i)
        ms, old = clock(lambda: rebuild_everything(svc, f))  # noqa: B023
        cases["baseline"].append(ms)
        ms, new = clock(lambda: decider.decide(f))  # noqa: B023
        cases["cached"].append(ms)
        agree += old == bool(new.allowed)
        if i % 10 == 0:
            cases[VETTING].append(after_change(i, VETTING))
        elif i % 10 == 5:
            cases[PARTNERSHIP].append(after_change(i, PARTNERSHIP))

    base, _ = summary(cases["baseline"])
    print(f"ProductDecider.decide on SQLite, demo partnership; {n} calls interleaved")
    print(f"agreement with the rebuild-everything baseline: {agree}/{n}")
    print("| path | calls | median ms | p99 ms | x baseline (median) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    labels = {
        "baseline": "rebuild everything per call (old behaviour) [baseline]",
        "cached": "cached facts and engine, counters unchanged",
        VETTING: "first decision after a vetting change (person read again)",
        PARTNERSHIP: "first decision after a partnership change (engine rebuilt)",
    }
    for key, samples in cases.items():
        med, p99 = summary(samples)
        print(f"| {labels[key]} | {len(samples)} | {med:.3f} | {p99:.3f} | {med / base:.2f} |")
    ctx.db.dispose()


if __name__ == "__main__":
    main()
