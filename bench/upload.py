"""Upload benchmark: what protecting a large document costs, through the service and
through the HTTP API (multipart, as a browser or ``curl -F`` sends it).

Rows, for a 64 MiB document (the service's cap is raised for the run; the node's
default is 20 MiB):

- ``DocumentService.upload`` with the document in memory (the demo loader's and
  the tests' path): label checks, encryption into a staged container, the move into
  the blob store, the database row, the ``document.protected`` record;
- ``POST /api/v1/objects`` in-process (Starlette's TestClient): the multipart body
  parsed as it arrives and each chunk encrypted as it comes, then the same commit.

Each row prints the median seconds, the throughput, and the peak of Python
allocations during one call (``tracemalloc``; the request body the client holds
is counted in the HTTP row).

Run: ``.venv/bin/python bench/upload.py [MiB]``.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

from fastapi.testclient import TestClient  # noqa: E402

import relto.documents.service  # noqa: E402
from relto.config import Settings  # noqa: E402
from relto.events import MemorySink  # noqa: E402
from relto.node import Node  # noqa: E402
from relto.server import create_app  # noqa: E402
from relto.server.auth import SESSION_COOKIE  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(median seconds over ``n`` calls after one warm-up, peak MiB of one call)."""
    fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(samples), peak / (1 << 20)


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    size = mib << 20
    data = Path(tempfile.mkdtemp(prefix="relto-bench-"))
    # The node caps documents at 20 MiB; raised for the run (service and request guard).
    relto.documents.service.MAX_DOCUMENT_BYTES = size + (1 << 20)  # type: ignore[misc]
    settings = Settings(demo=True, data_dir=data, max_upload_bytes=size + (1 << 20))
    app = create_app(settings, sink=MemorySink())
    node: Node = app.state.node
    svc = node.documents
    harper = node.directory.principal("gbr-eng-harper", via="node")
    assert harper is not None
    payload = os.urandom(size)

    def service_upload() -> None:
        svc.upload(
            harper,
            title="bench",
            project_id="hypersonic",
            classification="SECRET",
            rel_to=["USA"],
            filename="bench.bin",
            media_type="application/octet-stream",
            data=payload,
            at=datetime.now(UTC),
        )

    client = TestClient(app, follow_redirects=False)
    login = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post(
        "/login", data={"person_id": "gbr-eng-harper", "next": "/console", "csrf": login}
    )
    cookie = client.cookies.get(SESSION_COOKIE)
    assert r.status_code == 303 and cookie
    csrf = app.state.edge.auth.signer.csrf(cookie)

    def api_upload() -> None:
        r = client.post(
            "/api/v1/objects",
            headers={"X-CSRF-Token": csrf},
            data={
                "title": "bench",
                "project_id": "hypersonic",
                "classification": "SECRET",
                "rel_to": ["USA"],
            },
            files={"file": ("bench.bin", payload, "application/octet-stream")},
        )
        assert r.status_code == 201, r.text

    n = 5
    print(f"upload of {mib} MiB, median of {n}")
    for name, fn in (
        ("DocumentService.upload", service_upload),
        ("POST /api/v1/objects", api_upload),
    ):
        secs, peak = timed(fn, n)
        print(f"  {name:<24} {secs:7.3f} s  {mib / secs:7.1f} MiB/s  peak {peak:6.1f} MiB")


if __name__ == "__main__":
    main()
