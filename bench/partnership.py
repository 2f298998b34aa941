"""Product path benchmark: what opening a document through the console costs.

Baseline, measured in the same run: decrypting the same container with a key
share from the node's KAS, called in-process (``InProcessKas.unwrap_for``: a
fresh client key, a Rewrap request, policy binding, the KAS's decider, a
``kas.rewrap`` audit record, EC rewrap, then ``open_container``) -- no
visibility check, no console decision, no ``decision`` record. Until the
relto.documents refactor (8c8b047) the baseline decrypted with the node's raw
key store (``_admin_unwrap``: no decision, no KAS, no audit); that path is gone by
design (keys come only through the KAS), so this is the nearest real path and the
ratios below are not comparable with the earlier ones. For reference, the
container decryption alone is measured too, with the key share the KAS released
once reused (no key request).

Compared with the baseline:

- the decision alone (``DecisionFacts.decide``: cached facts, then the engine);
- ``DocumentService.open``: visibility, decision, recorded decision, in-process
  KAS rewrap (policy binding, KAS decider, ``kas.rewrap`` audit record, EC
  wrap), decrypt;
- a denied open (the document is releasable to the person's nation, but their
  clearance has expired and they have no need-to-know: visibility, decision,
  record; no key request);
- a probe for a document the person may not know exists (not releasable to
  their nation: ``NotFound``, the probe recorded);
- a console list page: ``DocumentService.with_decisions`` for one person;
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

from relto.authz import Principal  # noqa: E402
from relto.config import Settings  # noqa: E402
from relto.errors import NotFound  # noqa: E402
from relto.events import MemorySink  # noqa: E402
from relto.node import Node  # noqa: E402
from relto.partnership import MAX_PAGE, matrix  # noqa: E402
from relto.server import create_app  # noqa: E402
from relto.store.partnership import SqlPartnershipRepository  # noqa: E402
from relto.ztdf import KeyAccess, Unwrap  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> float:
    """Median milliseconds per call over ``n`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def released_once(unwrap: Unwrap) -> Unwrap:
    """``unwrap`` asked once; the released share reused afterwards (reference row)."""
    shares: dict[str, bytes] = {}

    def reuse(ka: KeyAccess, policy_b64: str) -> bytes:
        if ka.wrapped_key not in shares:
            shares[ka.wrapped_key] = unwrap(ka, policy_b64)
        return shares[ka.wrapped_key]

    return reuse


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="relto-bench-"))
    app = create_app(Settings(demo=True, data_dir=data), sink=MemorySink())
    node: Node = app.state.node
    svc = node.documents

    def who(person_id: str) -> Principal:
        p = node.directory.principal(person_id, via="node")
        assert p is not None, person_id
        return p

    owner, sato, tanaka, park = (
        who(p) for p in ("usa-eng-ramirez", "jpn-eng-sato", "jpn-eng-tanaka", "kor-eng-park")
    )
    now = datetime.now(UTC)
    payload = b"x" * (1 << 20)
    doc = svc.upload(
        owner,
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

    # Sanity: the paths measured do what their names say.
    assert svc.open(sato, doc.id, now)[2] == payload
    assert svc.open(tanaka, doc.id, now)[2] is None
    try:
        svc.visible(park, doc.id)
        raise AssertionError("KOR may not know of a document not releasable to KOR")
    except NotFound:
        pass

    rows: list[tuple[str, float]] = []
    base = timed(lambda: svc._decrypt(doc, svc._keys.unwrap_for("jpn-eng-sato", "JPN", "read")), n)
    rows.append(("decrypt 1 MiB, key share from the KAS in-process [baseline]", base))
    reused = released_once(svc._keys.unwrap_for("jpn-eng-sato", "JPN", "read"))
    rows.append(("decrypt 1 MiB, key share released once and reused", timed(
        lambda: svc._decrypt(doc, reused), n)))  # fmt: skip
    rows.append(
        ("decision (cached facts + engine), JPN engineer", timed(
            lambda: node.facts.decide("jpn-eng-sato", "read", doc, datetime.now(UTC)), n))
    )  # fmt: skip
    rows.append(
        ("open through the KAS (visible, decide, audit, rewrap, decrypt)", timed(
            lambda: svc.open(sato, doc.id, datetime.now(UTC)), n))
    )  # fmt: skip
    rows.append(
        ("denied open, JPN engineer off the project (decide, audit; no key)", timed(
            lambda: svc.open(tanaka, doc.id, datetime.now(UTC)), n))
    )  # fmt: skip

    def probe() -> None:
        try:
            svc.open(park, doc.id, datetime.now(UTC))
        except NotFound:
            return
        raise AssertionError("the probe was answered")

    rows.append(("probe, not releasable to KOR (not found, recorded)", timed(probe, n)))

    page = len(svc.page(sato))
    rows.append(
        (f"documents page decisions ({page} documents)", timed(
            lambda: svc.with_decisions(sato, datetime.now(UTC)), n))
    )  # fmt: skip

    def dashboard() -> None:
        with node.db.session() as s:
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
    node.db.dispose()


if __name__ == "__main__":
    main()
