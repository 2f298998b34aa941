"""Transparency log: several processes calling ``record`` on one SQLite file.

What two uvicorn workers do to the embedded default (``<data_dir>/audit.db``,
``synchronous=FULL``): each process group-commits its own callers, and the
processes take turns on the file. Reports records/s and the latency of ``record``
(p50, p99, max). Baseline in the same run: one process with the same number of
calling threads (no cross-process contention).

Run: ``.venv/bin/python bench/audit_processes.py [--seconds 6] [--threads 16]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from relto.audit import TransparencyLog
from relto.store import create_database


def _worker(url: str, seconds: float, threads: int, start: Any, out: Any) -> None:
    log = TransparencyLog(create_database(url, migrate=False), sync_commits=True)
    log.size()
    latencies: list[float] = []
    start.wait(60)
    end = time.perf_counter() + seconds

    def run(t: int) -> None:
        i = 0
        while time.perf_counter() < end:
            s = time.perf_counter()
            log.record("decision", {"thread": t, "i": i, "pid": os.getpid()})
            latencies.append(time.perf_counter() - s)
            i += 1

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    log.db.dispose()
    out.put(latencies)


def measure(processes: int, threads: int, seconds: float) -> tuple[float, float, float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="relto-bench-audit-mp-"))
    url = f"sqlite:///{tmp / 'audit.db'}"
    create_database(url).dispose()
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, seconds, threads, start, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    lat = sorted(x for _ in procs for x in out.get())
    for p in procs:
        p.join()
    size = TransparencyLog(create_database(url, migrate=False)).size()
    assert size == len(lat), "lost or extra entries"

    def q(p: float) -> float:
        return lat[int(p * (len(lat) - 1))] * 1000

    return len(lat) / seconds, q(0.5), q(0.99), lat[-1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=16, help="calling threads per process")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    base = measure(1, 2 * args.threads, args.seconds)
    two = measure(2, args.threads, args.seconds)
    for label, (rate, p50, p99, top) in (
        (f"1 process x {2 * args.threads} threads (baseline)", base),
        (f"2 processes x {args.threads} threads", two),
    ):
        print(
            f"  {label:<38} {rate:>7,.0f} records/s"
            f"  p50 {p50:6.2f}  p99 {p99:7.2f}  max {top:6.0f} ms"
        )
    print(
        f"  2 processes / baseline: {two[0] / base[0]:.2f}x throughput, p99 {two[2] / base[2]:.2f}x"
    )


if __name__ == "__main__":
    main()
