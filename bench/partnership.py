"""Product path benchmark: what opening a document through the console costs.

Baseline, measured in the same run: decrypting the same container with the node's
own key store (``open_container`` + a direct RSA unwrap, no decision, no KAS, no
audit). Compared with it:

- the decision alone (facts from vetting and admissions, then the engine);
- ``DocumentService.open``: decision, recorded decision, in-process KAS rewrap
  (policy binding, KAS decider, ``kas.rewrap`` audit record, EC wrap), decrypt;
- a console list page: every document's decision for one person;
- the dashboard matrix for the demo partnership.

Run: ``.venv/bin/python bench/partnership.py``.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

from relto.config import Settings  # noqa: E402
from relto.events import MemorySink  # noqa: E402
from relto.partnership import MAX_PAGE, matrix  # noqa: E402
from relto.server import create_app  # noqa: E402
from relto.server.documents import document_service  # noqa: E402
from relto.store.partnership import SqlPartnershipRepository  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> float:
    """Median milliseconds per call over ``n`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="relto-bench-"))
    app = create_app(Settings(demo=True, data_dir=data), sink=MemorySink())
    ctx = app.state.ctx
    svc = document_service(ctx)
    now = datetime.now(UTC)
    payload = b"x" * (1 << 20)
    doc = svc.upload(
        person_id="usa-eng-ramirez",
        nation="USA",
        title="bench",
        project_id="ai-autonomy",
        classification="SECRET",
        rel_to=["AUS", "CAN", "GBR", "JPN"],
        filename="bench.bin",
        media_type="application/octet-stream",
        data=payload,
        at=now,
    )
    n = 30

    rows: list[tuple[str, float]] = []
    base = timed(lambda: svc._decrypt(doc, svc._admin_unwrap()), n)
    rows.append(("decrypt 1 MiB with the node's key store [baseline]", base))
    rows.append(
        ("decision (facts + engine), JPN engineer", timed(
            lambda: svc.decide("jpn-eng-sato", "read", doc, datetime.now(UTC)), n))
    )  # fmt: skip
    rows.append(
        ("open through the KAS (decide, audit, rewrap, decrypt)", timed(
            lambda: svc.open(person_id="jpn-eng-sato", nation="JPN", name="b",
                             doc_id=doc.id, at=datetime.now(UTC)), n))
    )  # fmt: skip
    rows.append(
        ("denied open (decide, audit; no key request)", timed(
            lambda: svc.open(person_id="kor-eng-park", nation="KOR", name="b",
                             doc_id=doc.id, at=datetime.now(UTC)), n))
    )  # fmt: skip

    def list_page() -> None:
        at = datetime.now(UTC)
        subject = svc.subject("jpn-eng-sato", at)
        engine = svc.engine()
        for d in svc.list("JPN"):
            engine.evaluate(subject, "read", svc.resource(d), at=at)

    rows.append(
        (f"documents page decisions ({len(svc.list('JPN'))} documents)", timed(list_page, n))
    )

    def dashboard() -> None:
        with ctx.db.session() as s:
            repo = SqlPartnershipRepository(s)
            p = repo.get_partnership("aukus-p2")
            assert p is not None
            projects = list(repo.list_projects(p.id, 0, MAX_PAGE).items)
            admissions = [a for pr in projects for a in repo.admissions_for(pr.id)]
        matrix(p, projects, admissions, datetime.now(UTC))

    rows.append(
        ("dashboard matrix (8 projects x 7 nations, from the database)", timed(dashboard, n))
    )

    width = max(len(r[0]) for r in rows)
    print(f"{'operation':<{width}}  {'ms (median)':>11}  {'x baseline':>10}")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:>11.2f}  {ms / base:>10.2f}")


if __name__ == "__main__":
    main()
