"""Transparency log benchmark (one run, a few minutes).

- appends/s on SQLite and PostgreSQL: one commit per event, batched commits
  (``append_many``), and group commit (8 threads calling the durable ``record``);
- inclusion and consistency proof time at 1,000,000 entries, read from the stored
  subtree hashes (the 1M tree is loaded through the bulk path, proofs are not);
- the same work with pymerkle 7 (in-memory tree and its SQLite backend).

Run: ``.venv/bin/python bench/audit.py``. Needs PostgreSQL binaries
(scripts/system-deps.sh) for the PostgreSQL rows.

``.venv/bin/python bench/audit.py console [N]`` measures only the console's audit
page (``/console/audit``, an auditor, demo node) over a log of ``N`` entries
(default 100,000): the first view, the views after it, and one view asking for a
full re-verification.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import platform
import pwd
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import rfc8785
from pymerkle import InmemoryTree, SqliteTree

from relto.audit import TransparencyLog, merkle
from relto.audit.entries import format_time
from relto.audit.service import node_id
from relto.store import create_database

N_PROOF_TREE = 1_000_000
AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
THREADS = 32


def payload(i: int) -> dict[str, object]:
    return {
        "person": f"urn:relto:person:{i % 5000}",
        "object": f"urn:relto:object:{i % 20000}",
        "action": "open",
        "allowed": i % 3 != 0,
        "reasons": ["clearance.ok", "releasability.ok"],
        "policy": "sha256:" + "ab" * 32,
    }


# -- a throwaway PostgreSQL (as tests/conftest.py PostgresServer) -------------------------


class Postgres:
    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("PostgreSQL binaries missing: run scripts/system-deps.sh")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="relto-bench-pg-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.dir.chmod(0o755)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> str:
        data = str(self.dir / "data")
        self._run(str(self.bin / "initdb"), "-D", data, "-U", "relto", "--auth=trust", "-E", "UTF8")
        # Durable settings (fsync on), unlike the test fixture: appends must be real commits.
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=50"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            data,
            "-o",
            opts,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )
        return f"postgresql+psycopg://relto@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


# -- measurements ----------------------------------------------------------------------


CPU_RATES: dict[str, float] = {}


def rate(n: int, fn: Callable[[], None], label: str = "") -> float:
    """Events per wall-clock second; also keeps events per CPU-second of this process
    (the machine is shared, so wall time includes waiting for a core)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if label:
        CPU_RATES[label] = n / cpu if cpu > 0 else float("inf")
    return n / wall


def appends(
    log: TransparencyLog, label: str, single: int, batched: int, grouped: int
) -> dict[str, float]:
    out: dict[str, float] = {}

    def one() -> None:
        for i in range(single):
            log.append("decision", payload(i), AT)

    out["single"] = rate(single, one, f"{label} single")

    def batch() -> None:
        for start in range(0, batched, 1000):
            log.append_many([("decision", payload(i), AT) for i in range(start, start + 1000)])

    out["batched"] = rate(batched, batch, f"{label} batched")

    def group() -> None:
        per = grouped // THREADS

        def worker(w: int) -> None:
            for i in range(per):
                log.record("decision", payload(w * per + i))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    out["group"] = rate(grouped, group, f"{label} group")
    print(
        f"  {label:<10} single {out['single']:>9,.0f}/s   batched(1000) {out['batched']:>9,.0f}/s"
        f"   group commit ({THREADS} threads) {out['group']:>9,.0f}/s"
    )
    return out


def pymerkle_appends(path: Path, single: int, batched: int) -> dict[str, float]:
    """pymerkle's SqliteTree doing the same work: canonical JSON entries, stored durably."""
    tree = SqliteTree(str(path))

    def entry(i: int) -> bytes:
        doc = {"index": i, "kind": "decision", "payload": payload(i), "time": format_time(AT)}
        return rfc8785.dumps(doc)

    def one() -> None:
        for i in range(single):
            tree.append_entry(entry(i))

    def batch() -> None:
        # append_entries is pymerkle's batch API (it still commits per entry).
        tree.append_entries([entry(i) for i in range(batched)])

    out = {
        "single": rate(single, one, "pymerkle single"),
        "batched": rate(batched, batch, "pymerkle batched"),
    }
    tree.close()
    print(
        f"  {'pymerkle':<10} single {out['single']:>9,.0f}/s"
        f"   batched       {out['batched']:>9,.0f}/s   (SqliteTree.append_entries)"
    )
    return out


@dataclass
class Timing:
    mean: float
    median: float
    p99: float
    cpu: float  # mean CPU milliseconds of this process per call

    def __str__(self) -> str:
        return (
            f"median {self.median:.3f} ms (mean {self.mean:.3f}, p99 {self.p99:.3f},"
            f" cpu {self.cpu:.3f})"
        )


def interleaved(
    samples: list[int], a: Callable[[int], object], b: Callable[[int], object]
) -> tuple[Timing, Timing]:
    times: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for s in samples:
        for k, fn in enumerate((a, b)):
            t, c = time.perf_counter(), time.process_time()
            fn(s)
            times[k].append((time.perf_counter() - t) * 1e3)
            cpus[k].append((time.process_time() - c) * 1e3)
    out = []
    for k in range(2):
        ts = sorted(times[k])
        out.append(
            Timing(statistics.mean(ts), statistics.median(ts), ts[max(0, int(len(ts) * 0.99) - 1)],
                   statistics.mean(cpus[k]))
        )  # fmt: skip
    return out[0], out[1]


def timed(samples: list[int], fn: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for s in samples:
        t = time.perf_counter()
        fn(s)
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.mean(times) * 1e3, times[int(len(times) * 0.99) - 1] * 1e3


def bodies(n: int) -> Iterator[tuple[str, bytes]]:
    # Bulk path: json.dumps with sorted keys equals RFC 8785 for these ASCII,
    # integer and boolean payloads (checked on a sample below).
    for i in range(n):
        doc = {
            "index": i,
            "kind": "decision",
            "payload": payload(i),
            "time": format_time(AT),
            "v": 1,
        }
        yield "decision", json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def bulk_build(path: Path, n: int) -> TransparencyLog:
    """Build the 1M-entry log file directly (no journal, index built afterwards), with
    the same rows ``TransparencyLog.append`` writes; proofs then read it normally."""
    create_database(f"sqlite:///{path}").dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("DROP INDEX ix_audit_entry_leaf_hash")
    f = merkle.Frontier()
    chunk: list[tuple[int, bytes, str, bytes]] = []
    nodes: list[tuple[int, bytes]] = []
    for i, (kind, body) in enumerate(bodies(n)):
        h = merkle.leaf_hash(body)
        chunk.append((i, h, kind, body))
        for level, idx, value in f.append(h):
            nodes.append((node_id(level, idx), value))
        if len(chunk) == 100_000:
            con.executemany("INSERT INTO audit_entry VALUES (?, ?, ?, ?)", chunk)
            con.executemany("INSERT INTO audit_node VALUES (?, ?)", nodes)
            chunk, nodes = [], []
    con.executemany("INSERT INTO audit_entry VALUES (?, ?, ?, ?)", chunk)
    con.executemany("INSERT INTO audit_node VALUES (?, ?)", nodes)
    con.execute("UPDATE audit_head SET size = ?, root = ? WHERE id = 1", (f.size, f.root()))
    con.execute("CREATE INDEX ix_audit_entry_leaf_hash ON audit_entry (leaf_hash)")
    con.commit()
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return TransparencyLog(create_database(f"sqlite:///{path}"))


def main() -> None:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"machine: nproc={os.cpu_count()} cpu={cpu} python={platform.python_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    results: dict[str, object] = {}
    tmp = Path(tempfile.mkdtemp(prefix="relto-bench-audit-"))
    try:
        print(
            "appends (SQLite: WAL, synchronous=FULL as open_log() sets it; SQLite-NRM:"
            " synchronous=NORMAL; PostgreSQL: fsync and synchronous_commit on):"
        )
        # The log's own SQLite file, as open_log() sets it up: fsync on every commit.
        log = TransparencyLog(create_database(f"sqlite:///{tmp / 'a.db'}"), sync_commits=True)
        results["sqlite"] = appends(log, "SQLite", 500, 50_000, 20_000)
        # The log inside a shared SQLite file (relto.store default: synchronous=NORMAL).
        log = TransparencyLog(create_database(f"sqlite:///{tmp / 'b.db'}"))
        results["sqlite_normal"] = appends(log, "SQLite-NRM", 2000, 50_000, 20_000)
        pg = Postgres()
        try:
            url = pg.start()
            log = TransparencyLog(create_database(url))
            results["postgresql"] = appends(log, "PostgreSQL", 1000, 20_000, 10_000)
            log.db.dispose()
        finally:
            pg.stop()
        results["pymerkle_appends"] = pymerkle_appends(tmp / "pm-a.db", 500, 2000)

        print(f"proofs at {N_PROOF_TREE:,} entries:")
        sample = list(bodies(50))
        for _kind, body in sample:
            doc = json.loads(body)
            assert rfc8785.dumps(doc) == body, "bulk encoding is not canonical"
        t = time.perf_counter()
        log = bulk_build(tmp / "big.db", N_PROOF_TREE)
        print(
            f"  bulk build of {N_PROOF_TREE:,} entries in SQLite: {time.perf_counter() - t:.1f} s"
        )
        size, root = log.head()
        rng = random.Random(7)
        idx = [rng.randrange(size) for _ in range(2000)]
        firsts = [rng.randrange(1, size) for _ in range(2000)]
        p = log.inclusion_proof(idx[0])
        merkle.verify_inclusion(p.index, size, p.leaf_hash, p.proof, root)
        c = log.consistency_proof(firsts[0])
        merkle.verify_consistency(c.first, size, c.proof, c.first_root, root)
        data = [b for _, b in bodies(N_PROOF_TREE)]
        t = time.perf_counter()
        mem = InmemoryTree()
        mem.append_entries(data)
        print(f"  pymerkle InmemoryTree build: {time.perf_counter() - t:.1f} s")
        assert mem.get_root(size) == root, "pymerkle and relto disagree on the root"
        # Interleave relto and pymerkle calls so both see the same load on a shared box.
        pm = {"tree": mem}
        del mem
        # Like pymerkle's prove_*, time the proof path alone; with leaf and roots below.
        ours_incl, pm_incl = interleaved(
            idx,
            lambda i: log.inclusion_path(i, size),
            lambda i: pm["tree"].prove_inclusion(i + 1, size),
        )
        ours_cons, pm_cons = interleaved(
            firsts,
            lambda s: log.consistency_path(s, size),
            lambda s: pm["tree"].prove_consistency(s, size),
        )
        full_incl, full_cons = interleaved(
            list(range(500)),
            lambda k: log.inclusion_proof(idx[k], size),
            lambda k: log.consistency_proof(firsts[k], size),
        )
        print(f"  relto (SQLite)     inclusion {ours_incl}   consistency {ours_cons}")
        print(f"  relto, with leaf and roots: inclusion {full_incl}   consistency {full_cons}")
        print(f"  pymerkle in-memory inclusion {pm_incl}   consistency {pm_cons}")
        pm.clear()  # free the in-memory tree
        st = SqliteTree(str(tmp / "pm-big.db"))
        with st.con:
            st.cur.executemany(
                "INSERT INTO leaf(entry, hash) VALUES (?, ?)",
                ((b, hashlib.sha256(b"\x00" + b).digest()) for b in data),
            )
        del data
        t = time.perf_counter()
        st.prove_inclusion(idx[0] + 1, size)
        cold = (time.perf_counter() - t) * 1e3
        ours_incl2, ps_incl = interleaved(
            idx[:60],
            lambda i: log.inclusion_path(i, size),
            lambda i: st.prove_inclusion(i + 1, size),
        )
        ours_cons2, ps_cons = interleaved(
            firsts[:60],
            lambda s: log.consistency_path(s, size),
            lambda s: st.prove_consistency(s, size),
        )
        print(
            f"  pymerkle SqliteTree inclusion {ps_incl} (first {cold:.0f} ms)"
            f"   consistency {ps_cons}"
        )
        st.close()
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("appends per CPU-second of this process (wall rates above include waiting):")
        for key, value in CPU_RATES.items():
            print(f"  {key:<22} {value:>9,.0f}/s")
        print("ratios (higher is better for relto):")
        sq, pa = results["sqlite"], results["pymerkle_appends"]
        assert isinstance(sq, dict) and isinstance(pa, dict)
        print(f"  appends single   relto/pymerkle-sqlite = {sq['single'] / pa['single']:.1f}x")
        cpu_b = CPU_RATES["SQLite batched"]
        print(
            f"  appends batched  relto/pymerkle-sqlite = {sq['batched'] / pa['batched']:.1f}x"
            f"   (target >= 20,000/s: wall {'met' if sq['batched'] >= 20_000 else 'MISSED'},"
            f" per CPU-second {'met' if cpu_b >= 20_000 else 'MISSED'})"
        )
        print(
            f"  inclusion        pymerkle-inmemory/relto = {pm_incl.median / ours_incl.median:.1f}x"
            f" (median),  pymerkle-sqlite/relto = {ps_incl.median / ours_incl2.median:.0f}x"
        )
        print(
            f"  consistency      pymerkle-inmemory/relto = {pm_cons.median / ours_cons.median:.1f}x"
            f" (median),  pymerkle-sqlite/relto = {ps_cons.median / ours_cons2.median:.0f}x"
        )
        print(
            f"  proofs under 1 ms at 1M (median / CPU mean): inclusion "
            f"{'met' if max(ours_incl.median, ours_incl.cpu) < 1 else 'MISSED'}, consistency "
            f"{'met' if max(ours_cons.median, ours_cons.cpu) < 1 else 'MISSED'}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def console_page(n: int = 100_000, views: int = 5) -> None:
    """Time ``GET /console/audit`` for an auditor over a log of ``n`` entries."""
    from fastapi.testclient import TestClient

    from relto.config import Settings
    from relto.server import create_app
    from relto.server.auth import SESSION_COOKIE

    print(f"machine: nproc={os.cpu_count()} python={platform.python_version()}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="relto-bench-console-"))
    try:
        app = create_app(Settings(demo=True, data_dir=tmp))
        log = app.state.node.log
        people = ("gbr-eng-harper", "gbr-so-whitfield", "usa-eng-ramirez", "jpn-eng-sato")
        docs = ("hyp-thermal-protection", "undersea-autonomy-icd")
        t = time.perf_counter()
        while log.size() < n:
            batch = min(MAX_BATCH_BENCH, n - log.size())
            log.append_many(
                [
                    (
                        "decision",
                        {
                            "subject": people[i % len(people)],
                            "object": docs[i % len(docs)],
                            "action": "read",
                            "allowed": i % 3 != 0,
                        },
                        AT,
                    )
                    for i in range(batch)
                ]
            )
        print(f"log filled to {log.size():,} entries in {time.perf_counter() - t:.1f} s")
        with TestClient(app, follow_redirects=False) as client:
            form = re.search(r'name="csrf" value="([^"]*)"', client.get("/login").text)
            r = client.post(
                "/login",
                data={
                    "person_id": "gbr-aud-patel",
                    "next": "/console",
                    "csrf": form.group(1) if form else "",
                },
            )
            assert r.status_code == 303 and client.cookies.get(SESSION_COOKIE)
            times = []
            for i in range(views):
                t = time.perf_counter()
                page = client.get("/console/audit")
                times.append(time.perf_counter() - t)
                assert page.status_code == 200 and "ok: " in page.text, page.text[-2000:]
                print(f"  view {i + 1}: {times[-1] * 1000:,.0f} ms")
            t = time.perf_counter()
            page = client.get("/console/audit", params={"verify": "full"})
            full = time.perf_counter() - t
            print(f"  view asking for a full re-verification: {full * 1000:,.0f} ms")
            later = statistics.median(times[1:]) if len(times) > 1 else times[0]
            print(
                f"audit page at {n:,} entries: first view {times[0] * 1000:,.0f} ms, "
                f"median of the next {len(times) - 1}: {later * 1000:,.1f} ms"
            )
        app.state.node.db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


MAX_BATCH_BENCH = 5000

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "console":
        console_page(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
        sys.exit(0)
    sys.exit(main())
