"""Product decider benchmark: what the KAS pays to ask ``ProductDecider.decide``.

Baseline, measured in the same run and interleaved call by call: the behaviour
before ADR 0078, rebuilding everything per call (the document row by policy
UUID, the person and clearances through ``VettingService``, every admission and
a new ``Engine``). Compared with it: ``ProductDecider.decide`` with the
per-process caches (one counter query when nothing changed), and the first
decision after a vetting change (the person's rows read again) or a partnership
change (admissions read again, engine rebuilt).

The demo partnership on SQLite; each call asks with a new ``at`` (as the KAS
does), alternating a permitted and a denied person. Since the relto.documents
refactor (8c8b047) the decider is ``ProductDecider(node.facts)`` and each
``RewrapFacts`` carries the nation the token's issuer vouches for (each person's
home nation here, so the denial is the engine's, not the issuer check's) and the
action (``read``); the baseline builds its engine with ``DecisionFacts._build_engine``
(the same construction the cache uses, never cached).

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

from relto.config import Settings  # noqa: E402
from relto.decisions.adapters import subject_from_vetting  # noqa: E402
from relto.documents import ProductDecider, document_view  # noqa: E402
from relto.documents._facts import resource_of  # noqa: E402
from relto.events import MemorySink  # noqa: E402
from relto.kas.decider import RewrapFacts  # noqa: E402
from relto.node import Node  # noqa: E402
from relto.server import create_app  # noqa: E402
from relto.store.documents import SqlDocumentRepository  # noqa: E402
from relto.store.facts import PARTNERSHIP, VETTING, bump  # noqa: E402
from relto.vetting.service import VettingService  # noqa: E402

PEOPLE = ("usa-eng-ramirez", "jpn-eng-sato")  # permitted, denied
HOME = {"usa-eng-ramirez": "USA", "jpn-eng-sato": "JPN"}  # the issuer vouches for these


def rebuild_everything(node: Node, facts: RewrapFacts) -> bool:
    """The old ``ProductDecider.decide``: every fact read again, a new engine."""
    db = node.db
    with db.session() as s:
        row = SqlDocumentRepository(s).by_policy(facts.policy_uuid[:64])
        assert row is not None
        doc = document_view(row)
    vetting = VettingService(db, node.sink)
    sub = str(facts.subject["sub"])
    person = vetting.get_person(sub)
    clearances = vetting.list_clearances(limit=200, person_id=sub).items
    subject = subject_from_vetting(person, clearances, facts.at, vetting.policy)
    with db.session() as s:  # built as the cache builds it, never cached
        engine = node.facts._build_engine(s, None, ())
    allowed = engine.evaluate(subject, facts.action, resource_of(doc), at=facts.at).allowed
    return bool(allowed) and person.home_nation == facts.nation  # ProductDecider's issuer check


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    data = Path(tempfile.mkdtemp(prefix="relto-bench-product-"))
    app = create_app(Settings(demo=True, data_dir=data), sink=MemorySink())
    node: Node = app.state.node
    decider = ProductDecider(node.facts)
    with node.db.session() as s:
        row = SqlDocumentRepository(s).get("hyp-thermal-protection")
        assert row is not None
        policy = row.policy_uuid

    def facts(i: int) -> RewrapFacts:
        return RewrapFacts(
            subject={"sub": PEOPLE[i % 2]},
            policy_uuid=policy,
            attributes=(),
            dissem=(),
            at=datetime.now(UTC),
            nation=HOME[PEOPLE[i % 2]],
            action="read",
        )

    def after_change(i: int, kind: str) -> Any:
        with node.db.session() as s:  # what any write of these facts does to its counter
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
        rebuild_everything(node, facts(i))
        decider.decide(facts(i))
    for i in range(n):
        f = facts(i)
        ms, old = clock(lambda: rebuild_everything(node, f))  # noqa: B023
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
    node.db.dispose()


if __name__ == "__main__":
    main()
