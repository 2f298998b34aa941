"""The transparency log on the database: appends (with group commit), proofs,
entries, checkpoints and tiles.

This is the adapter: SQL lives here, the Merkle, note and checkpoint logic in the
pure modules next to it. Every write takes the ``audit_head`` row first, so writers
from several processes (or several relto nodes on one PostgreSQL) are serialised;
appends read the tree's right edge (O(log n) nodes, cached while nobody else
writes) and store the nodes they complete. Proofs read O(log n) stored nodes.

On a SQLite file, writers of every process first take a blocking ``flock`` on
``<database>.lock`` (held until after the commit): the kernel hands the lock to
the next waiter at once, where SQLite's busy handler would sleep with growing
back-off (up to 100 ms a try) and leave some appends waiting near a second when
several server workers share the file. See docs/adr/0061.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, event, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_body
from relto.audit.entries import check_kind, encode_entry
from relto.audit.errors import AuditError, InvalidProof
from relto.audit.note import Note, NoteSigner, Signature, add_signatures, parse_note
from relto.audit.tiles import TILE_HEIGHT, TILE_WIDTH, TilePath
from relto.batching import settle_futures
from relto.errors import NotFound, StorageError
from relto.metrics import CheckpointState, DomainMetrics
from relto.store import Database
from relto.store.audit import (
    NODE_LEVEL_SHIFT,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    AuditNode,
)

__all__ = [
    "MAX_PAGE",
    "ConsistencyProof",
    "InclusionProof",
    "StoredEntry",
    "TransparencyLog",
    "node_id",
]

#: Most entries one read returns.
MAX_PAGE = 1000
#: Most events one group commit writes.
MAX_BATCH = 5000

_entry: Table = cast(Table, AuditEntry.__table__)
_node: Table = cast(Table, AuditNode.__table__)
_head: Table = cast(Table, AuditHead.__table__)
_checkpoint: Table = cast(Table, AuditCheckpoint.__table__)


def node_id(level: int, index: int) -> int:
    return (level << NODE_LEVEL_SHIFT) | index


def _as_bytes(value: object) -> bytes:
    """Stored blobs as bytes; a value of another type (tampering) is kept comparable."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return b"" if value is None else str(value).encode()


def _mark(conn: Connection) -> str:
    """The DB-API positional placeholder (SQLite ``?``, psycopg ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _insert_rows(
    conn: Connection, entries: list[tuple[int, bytes, str, bytes]], nodes: list[tuple[int, bytes]]
) -> None:
    m = _mark(conn)
    conn.exec_driver_sql(
        f"INSERT INTO audit_entry (idx, leaf_hash, kind, body) VALUES ({m}, {m}, {m}, {m})",  # noqa: S608
        entries,
    )
    conn.exec_driver_sql(
        f"INSERT INTO audit_node (node_id, hash) VALUES ({m}, {m})",  # noqa: S608
        nodes,
    )


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf_hash: bytes
    body: bytes


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    root: bytes


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    proof: tuple[bytes, ...]
    first_root: bytes
    second_root: bytes


@dataclass
class _Pending:
    kind: str
    payload: Mapping[str, Any]
    at: datetime
    index: int = -1
    error: BaseException | None = None
    done: bool = False
    #: Set for :meth:`TransparencyLog.record_async`: settled on its loop once done.
    future: asyncio.Future[int] | None = None


@functools.lru_cache(maxsize=256)
def _nodes_sql(mark: str, n: int) -> str:
    marks = ",".join([mark] * n)
    return f"SELECT node_id, hash FROM audit_node WHERE node_id IN ({marks})"  # noqa: S608


class _Reader:
    """Proof reads on one raw DB-API connection."""

    def __init__(self, log: TransparencyLog, raw: Any, mark: str) -> None:
        self._log, self._raw, self._mark = log, raw, mark

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        cur = self._raw.cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def size(self, size: int | None) -> int:
        log = self._log
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise NotFound("no tree of that size")
            # The log only grows: a size seen before needs no second look at the head.
            if size <= log._known_size:
                return size
        rows = self._query("SELECT size FROM audit_head WHERE id = 1", ())
        current = int(rows[0][0])
        log._known_size = max(log._known_size, current)
        if size is None:
            return current
        if size > current:
            raise NotFound("no tree of that size")
        return size

    def fetch(self, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        if not keys:
            return {}
        ids = {(level << NODE_LEVEL_SHIFT) | idx: (level, idx) for level, idx in keys}
        cur = self._raw.cursor()
        try:
            cur.execute(_nodes_sql(self._mark, len(ids)), tuple(ids))
            return {ids[nid]: bytes(h) for nid, h in cur.fetchall()}
        finally:
            cur.close()


def _sqlite_full_sync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _FileLock:
    """A blocking, exclusive cross-process lock: ``flock`` on a file.

    Each process opens its own descriptor (a descriptor inherited through ``fork``
    shares the parent's lock, so it would not exclude the parent). Callers in one
    process must serialise themselves: ``flock`` does not exclude threads.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1
        self._pid = -1

    def acquire(self) -> None:
        try:
            if self._pid != os.getpid():
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StorageError(f"audit log writer lock unavailable: {type(exc).__name__}") from exc

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def _sqlite_lock_path(db: Database) -> str | None:
    """``<database file>.lock`` for a SQLite file; ``None`` otherwise (PostgreSQL,
    in-memory, URI file names), where the head row alone serialises writers."""
    if db.dialect != "sqlite":
        return None
    name = db.engine.url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return f"{os.path.abspath(name)}.lock"


class TransparencyLog:
    """An append-only RFC 9162 log stored in a relto database.

    Also a durable :class:`relto.events.AuditSink`: :meth:`record` returns once the
    entry is committed; concurrent callers share one transaction (group commit).
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sync_commits: bool = False,
        metrics: DomainMetrics | None = None,
    ) -> None:
        """``sync_commits``: on SQLite, fsync every commit (``synchronous=FULL``) so an
        entry survives power loss, not only a crash. Only for a database the log owns
        (it changes the setting for every connection of the engine); PostgreSQL
        commits are synchronous by default. ``metrics``: where appends are counted."""
        self.db = db
        self._metrics = metrics
        if sync_commits and db.dialect == "sqlite":
            event.listen(db.engine, "connect", _sqlite_full_sync)
            db.engine.dispose()  # pooled connections pick the setting up on reconnect
        self._clock = clock
        self._write_lock = threading.Lock()
        path = _sqlite_lock_path(db)
        self._file_lock = None if path is None else _FileLock(path)
        self._frontier: merkle.Frontier | None = None
        self._known_size = 0
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._queue: list[_Pending] = []
        self._leader = False
        self._committer: threading.Thread | None = None

    # -- writing -----------------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """Held around a write transaction until after its commit: the in-process
        lock, then (SQLite file) the cross-process file lock."""
        with self._write_lock:
            if self._file_lock is None:
                yield
                return
            self._file_lock.acquire()
            try:
                yield
            finally:
                self._file_lock.release()

    def _exclusive(self) -> AbstractContextManager[None]:
        """:meth:`_writer` on a SQLite file; nothing extra elsewhere (the head row
        lock already blocks properly on PostgreSQL)."""
        return self._writer() if self._file_lock is not None else nullcontext()

    def record(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Append one event; returns only once it is committed (AuditSink)."""
        self.submit(kind, payload)

    def submit(self, kind: str, payload: Mapping[str, Any], at: datetime | None = None) -> int:
        """Append one event through group commit; returns its index once committed."""
        check_kind(kind)
        req = _Pending(kind, payload, at or self._clock())
        with self._cv:
            self._queue.append(req)
            while not req.done:
                if self._leader:
                    self._cv.wait()
                    continue
                self._leader = True
                self._cv.release()
                try:
                    self._lead()
                except BaseException:
                    # No batch was taken (the writer lock failed): withdraw our event.
                    with self._cv:
                        if req in self._queue:
                            self._queue.remove(req)
                    raise
                finally:
                    self._cv.acquire()
                    self._leader = False
                    self._cv.notify_all()
        if req.error is not None:
            raise req.error
        return req.index

    async def record_async(self, kind: str, payload: Mapping[str, Any]) -> int:
        """:meth:`record` for an event loop: the event joins the same group commit,
        written by a committer thread, and the coroutine resumes once it is
        committed (returns its index; raises what the append raised). The loop
        itself never waits on the database or the writer lock."""
        check_kind(kind)
        loop = asyncio.get_running_loop()
        req = _Pending(kind, payload, self._clock(), future=loop.create_future())
        with self._cv:
            self._queue.append(req)
            if self._committer is None or not self._committer.is_alive():
                self._committer = threading.Thread(
                    target=self._commit_forever, name="relto-audit-committer", daemon=True
                )
                self._committer.start()
            self._cv.notify_all()
        assert req.future is not None
        return await req.future

    def _commit_forever(self) -> None:
        """The committer thread: leads a group commit whenever events of
        :meth:`record_async` wait and no other thread is leading one."""
        with self._cv:
            while True:
                while self._leader or not any(r.future is not None for r in self._queue):
                    self._cv.wait()
                self._leader = True
                self._cv.release()
                try:
                    self._lead()
                except BaseException as exc:  # the writer lock failed: nothing was taken
                    with self._cv:
                        failed = [r for r in self._queue if r.future is not None]
                        self._queue = [r for r in self._queue if r.future is None]
                    for r in failed:
                        r.error, r.done = exc, True
                    self._wake(failed)
                finally:
                    self._cv.acquire()
                    self._leader = False
                    self._cv.notify_all()

    @staticmethod
    def _wake(batch: Sequence[_Pending]) -> None:
        """Settle the :meth:`record_async` events of ``batch``: one call per loop."""
        settle_futures(
            (r.future, r.index if r.error is None else r.error)
            for r in batch
            if r.future is not None
        )

    def _lead(self) -> None:
        """Commit the queued events as one batch. The batch is taken only once the
        writer lock is held, so everything that queued while this process waited
        for another one's commit joins it."""
        with self._writer():
            with self._cv:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._commit_batch(batch)
        self._wake(batch)

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Commit ``batch`` (writer lock held) and settle every event in it."""
        try:
            indexes = self._append_locked([(r.kind, r.payload, r.at) for r in batch])
        except BaseException as exc:
            # One bad event must not sink the others: retry them one by one.
            if len(batch) > 1 and isinstance(exc, ValueError | TypeError):
                for r in batch:
                    self._commit_batch([r])
                return
            for r in batch:
                r.error, r.done = exc, True
            return
        for r, i in zip(batch, indexes, strict=True):
            r.index, r.done = i, True

    def append(self, kind: str, payload: Mapping[str, Any], at: datetime | None = None) -> int:
        """Append one event in its own transaction; returns its index."""
        return self.append_many([(kind, payload, at or self._clock())])[0]

    def append_many(self, events: Sequence[tuple[str, Mapping[str, Any], datetime]]) -> list[int]:
        """Append events in one transaction; returns their indexes."""
        if not events:
            return []
        with self._writer():
            return self._append_locked(events)

    def _append_locked(
        self, events: Sequence[tuple[str, Mapping[str, Any], datetime]]
    ) -> list[int]:
        """:meth:`append_many` with :meth:`_writer` already held."""
        started = time.perf_counter()
        try:
            with self.db.engine.begin() as conn:
                size, frontier = self._lock_head(conn)
                entries: list[tuple[int, bytes, str, bytes]] = []
                nodes: list[tuple[int, bytes]] = []
                f = frontier.copy()
                for i, (kind, payload, at) in enumerate(events):
                    index = size + i
                    body = encode_entry(index, kind, payload, at)
                    h = merkle.leaf_hash(body)
                    entries.append((index, h, kind, body))
                    for level, idx, value in f.append(h):
                        nodes.append((node_id(level, idx), value))
                _insert_rows(conn, entries, nodes)
                m = _mark(conn)
                conn.exec_driver_sql(
                    f"UPDATE audit_head SET size = {m}, root = {m} WHERE id = 1",  # noqa: S608
                    (f.size, f.root()),
                )
        except SQLAlchemyError as exc:
            self._frontier = None
            if self._metrics is not None:
                self._metrics.append_failed(len(events))
            raise StorageError(f"audit log append failed: {type(exc).__name__}") from exc
        except BaseException:
            self._frontier = None
            raise
        if self._metrics is not None:
            self._metrics.appended(len(events), time.perf_counter() - started)
        self._frontier = f
        self._known_size = max(self._known_size, f.size)
        return list(range(size, size + len(events)))

    def _lock_head(self, conn: Connection) -> tuple[int, merkle.Frontier]:
        # Writing the head row first takes the write lock (SQLite) or row lock (PostgreSQL).
        size = int(
            conn.exec_driver_sql(
                "UPDATE audit_head SET size = size WHERE id = 1 RETURNING size"
            ).scalar_one()
        )
        cached = self._frontier
        if cached is not None and cached.size == size:
            return size, cached
        keys = merkle.Frontier.keys(size)
        frontier = merkle.Frontier.from_nodes(size, self._fetch(conn, keys))
        return size, frontier

    # -- reading -----------------------------------------------------------------

    @staticmethod
    def _fetch(conn: Connection, keys: Sequence[merkle.NodeKey]) -> dict[merkle.NodeKey, bytes]:
        if not keys:
            return {}
        ids = {node_id(level, idx): (level, idx) for level, idx in keys}
        marks = ",".join([_mark(conn)] * len(ids))
        rows = conn.exec_driver_sql(
            f"SELECT node_id, hash FROM audit_node WHERE node_id IN ({marks})",  # noqa: S608
            tuple(ids),
        ).fetchall()
        return {ids[nid]: bytes(h) for nid, h in rows}

    def _fetcher(self, conn: Connection) -> merkle.Fetch:
        return lambda keys: self._fetch(conn, keys)

    @contextmanager
    def _reader(self) -> Iterator[_Reader]:
        """A pooled DB-API connection for proof reads (no ORM/Core overhead)."""
        raw = self.db.engine.raw_connection()
        try:
            yield _Reader(self, raw, "?" if self.db.engine.dialect.paramstyle == "qmark" else "%s")
        finally:
            raw.close()

    def head(self) -> tuple[int, bytes]:
        """Current ``(size, root)``."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(_head.c.size, _head.c.root).where(_head.c.id == 1)).one()
            return int(row.size), bytes(row.root)

    def size(self) -> int:
        return self.head()[0]

    def root_at(self, size: int | None = None) -> bytes:
        with self._reader() as r:
            size = r.size(size)
            return merkle.root_at(size, r.fetch)

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: current)."""
        with self._reader() as r:
            size = r.size(size)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
                raise NotFound("no entry at that index")
            fetch = r.fetch
            ranges = merkle.inclusion_ranges(index, size)
            keys = [(0, index), *(k for a, b in ranges for k in merkle.perfect_nodes(a, b))]
            keys += merkle.perfect_nodes(0, size)
            nodes = fetch(list(dict.fromkeys(keys)))
            proof = tuple(merkle.range_hash(a, b, nodes) for a, b in ranges)
            leaf = merkle.range_hash(index, index + 1, nodes)
            root = merkle.range_hash(0, size, nodes)
            return InclusionProof(index, size, leaf, proof, root)

    def inclusion_path(self, index: int, size: int) -> tuple[bytes, ...]:
        """Only the audit path of :meth:`inclusion_proof` (no leaf or root): the least
        work a proof needs, for callers that hold the root already."""
        with self._reader() as r:
            size = r.size(size)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
                raise NotFound("no entry at that index")
            return tuple(merkle.inclusion_proof(index, size, r.fetch))

    def consistency_path(self, first: int, second: int) -> tuple[bytes, ...]:
        """Only the hashes of :meth:`consistency_proof` (no roots)."""
        with self._reader() as r:
            second = r.size(second)
            if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= second:
                raise NotFound("no tree of that size")
            return tuple(merkle.consistency_proof(first, second, r.fetch))

    def inclusion_proof_by_hash(self, leaf_hash: bytes, size: int | None = None) -> InclusionProof:
        with self.db.engine.connect() as conn:
            index = conn.execute(
                select(_entry.c.idx).where(_entry.c.leaf_hash == leaf_hash).order_by(_entry.c.idx)
            ).scalar()
        if index is None:
            raise NotFound("no entry with that leaf hash")
        return self.inclusion_proof(int(index), size)

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``first`` leaves is a prefix of the one of ``second``."""
        with self._reader() as r:
            second = r.size(second)
            if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= second:
                raise NotFound("no tree of that size")
            fetch = r.fetch
            ranges = merkle.consistency_ranges(first, second)
            keys = [k for a, b in ranges for k in merkle.perfect_nodes(a, b)]
            if first:
                keys += merkle.perfect_nodes(0, first)
            if second:
                keys += merkle.perfect_nodes(0, second)
            nodes = fetch(list(dict.fromkeys(keys)))
            proof = tuple(merkle.range_hash(a, b, nodes) for a, b in ranges)
            r1 = merkle.range_hash(0, first, nodes) if first else merkle.EMPTY_ROOT
            r2 = merkle.range_hash(0, second, nodes) if second else merkle.EMPTY_ROOT
            return ConsistencyProof(first, second, proof, r1, r2)

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Entries ``[start, end)``, at most :data:`MAX_PAGE` of them."""
        if start < 0 or end < start:
            raise ValueError("bad range")
        end = min(end, start + MAX_PAGE)
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(_entry.c.idx, _entry.c.leaf_hash, _entry.c.body)
                .where(_entry.c.idx >= start, _entry.c.idx < end)
                .order_by(_entry.c.idx)
            )
            return [StoredEntry(int(i), _as_bytes(h), _as_bytes(b)) for i, h, b in rows]

    def iter_rows(
        self, chunk: int = MAX_PAGE, start: int = 0
    ) -> Iterator[tuple[int, bytes, bytes, str]]:
        """Every stored row ``(index, leaf hash, body, kind)`` from index ``start`` on,
        in index order, exactly as stored, for verification (values of a wrong type
        are coerced, not trusted)."""
        last: int | None = start - 1 if start > 0 else None
        while True:
            with self.db.engine.connect() as conn:
                query = select(_entry.c.idx, _entry.c.leaf_hash, _entry.c.body, _entry.c.kind)
                if last is not None:
                    query = query.where(_entry.c.idx > last)
                rows = conn.execute(query.order_by(_entry.c.idx).limit(chunk)).all()
            if not rows:
                return
            for i, h, b, k in rows:
                yield int(i), _as_bytes(h), _as_bytes(b), str(k)
            last = int(rows[-1][0])

    def iter_entries(self, chunk: int = MAX_PAGE) -> Iterator[StoredEntry]:
        """Every stored row in index order, as stored."""
        for i, h, b, _k in self.iter_rows(chunk):
            yield StoredEntry(i, h, b)

    def stored_nodes(self, level: int, start: int, end: int) -> dict[int, bytes]:
        """Stored hashes of nodes ``[start, end)`` at ``level`` (tiles, verification)."""
        if not 0 <= level < 64 or start < 0 or end < start:
            raise ValueError("bad node range")
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(_node.c.node_id, _node.c.hash).where(
                    _node.c.node_id >= node_id(level, start), _node.c.node_id < node_id(level, end)
                )
            )
            mask = (1 << NODE_LEVEL_SHIFT) - 1
            return {int(n) & mask: bytes(h) for n, h in rows}

    # -- tlog-tiles -----------------------------------------------------------------

    def tile(self, tile: TilePath) -> bytes:
        """A hash tile or an entry bundle; :class:`NotFound` unless the tree covers it."""
        size = self.size()
        level = 0 if tile.level is None else tile.level
        # The tile's last hash covers leaves up to (index*256 + width) * 256**level.
        if (tile.index * TILE_WIDTH + tile.width) << (TILE_HEIGHT * level) > size:
            raise NotFound("no such tile")
        start = tile.index * TILE_WIDTH
        end = start + tile.width
        if tile.level is None:
            bodies = [e.body for e in self.entries(start, end)]
            if len(bodies) != tile.width:
                raise NotFound("no such tile")
            return b"".join(len(b).to_bytes(2, "big") + b for b in bodies)
        nodes = self.stored_nodes(TILE_HEIGHT * tile.level, start, end)
        if len(nodes) != tile.width:
            raise NotFound("no such tile")
        return b"".join(nodes[i] for i in range(start, end))

    # -- checkpoints ---------------------------------------------------------------

    def sign_checkpoint(self, signer: NoteSigner, at: datetime | None = None) -> str:
        """Sign the current tree head as a C2SP checkpoint, store it, return the note.

        Refuses (and signs nothing) if the stored tree is not consistent with the
        last checkpoint this node signed: a log must never sign a fork.
        """
        at = at or self._clock()
        with self._exclusive(), self.db.engine.begin() as conn:
            conn.execute(update(_head).where(_head.c.id == 1).values(size=_head.c.size))
            size, root = conn.execute(
                select(_head.c.size, _head.c.root).where(_head.c.id == 1)
            ).one()
            size, root = int(size), bytes(root)
            fetch = self._fetcher(conn)
            if merkle.root_at(size, fetch) != root:
                raise AuditError("stored tree does not match its head; refusing to sign")
            last = conn.execute(
                select(_checkpoint.c.size, _checkpoint.c.root, _checkpoint.c.note)
                .order_by(_checkpoint.c.size.desc())
                .limit(1)
            ).first()
            if last is not None:
                if int(last.size) == size and bytes(last.root) == root:
                    stored = parse_note(str(last.note))
                    if any(
                        sg.name == signer.name and sg.key_id == signer.key_id
                        for sg in stored.signatures
                    ):
                        return str(last.note)
                    # Another key (e.g. after rotation): sign afresh, keep the stored one.
                    body = Checkpoint(signer.name, size, root).body()
                    return Note(body, (signer.sign(body),)).encode()
                if int(last.size) > size:
                    raise AuditError("log is smaller than its last checkpoint; refusing to sign")
                if int(last.size) > 0:
                    proof = merkle.consistency_proof(int(last.size), size, fetch)
                    try:
                        merkle.verify_consistency(
                            int(last.size), size, proof, bytes(last.root), root
                        )
                    except InvalidProof:
                        raise AuditError(
                            "log is not consistent with its last checkpoint; refusing to sign"
                        ) from None
            body = Checkpoint(signer.name, size, root).body()
            note = parse_note(body + "\n" + signer.sign(body).line()).encode()
            conn.execute(insert(_checkpoint).values(size=size, root=root, note=note, created_at=at))
            return note

    def latest_checkpoint(self) -> str | None:
        with self.db.engine.connect() as conn:
            note = conn.execute(
                select(_checkpoint.c.note).order_by(_checkpoint.c.size.desc()).limit(1)
            ).scalar()
        return None if note is None else str(note)

    def checkpoint_state(self) -> CheckpointState:
        """The log's size and its latest checkpoint's size and signing time (for
        the scrape-time gauges): two indexed reads."""
        with self.db.engine.connect() as conn:
            size = int(conn.execute(select(_head.c.size).where(_head.c.id == 1)).scalar_one())
            last = conn.execute(
                select(_checkpoint.c.size, _checkpoint.c.created_at)
                .order_by(_checkpoint.c.size.desc())
                .limit(1)
            ).first()
        if last is None:
            return CheckpointState(size, None, None)
        at = last.created_at
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        return CheckpointState(size, int(last.size), at)

    def checkpoint(self, size: int) -> str | None:
        """The checkpoint this node signed at ``size`` (as stored), or ``None``."""
        with self.db.engine.connect() as conn:
            note = conn.execute(
                select(_checkpoint.c.note).where(_checkpoint.c.size == size)
            ).scalar()
        return None if note is None else str(note)

    def checkpoint_sizes(self, *, at_most: int, limit: int) -> list[int]:
        """The sizes of the checkpoints this node signed, at most ``at_most``,
        largest first, at most ``limit`` of them."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(_checkpoint.c.size)
                .where(_checkpoint.c.size <= at_most)
                .order_by(_checkpoint.c.size.desc())
                .limit(limit)
            )
            return [int(r) for r in rows.scalars()]

    def checkpoints(self) -> list[str]:
        with self.db.engine.connect() as conn:
            return [str(n) for n in conn.execute(select(_checkpoint.c.note).order_by("size"))]

    def add_cosignatures(self, note: str, log_key: Any, *signatures: Signature) -> str:
        """Attach witness cosignatures to the stored checkpoint they cosign."""
        signed = open_checkpoint(note, log_key)
        cp = signed.checkpoint
        with self._exclusive(), self.db.engine.begin() as conn:
            stored = conn.execute(
                select(_checkpoint.c.note).where(_checkpoint.c.size == cp.size)
            ).scalar()
            if stored is None:
                raise NotFound("no checkpoint of that size")
            if parse_checkpoint_body(parse_note(str(stored)).text).root != cp.root:
                raise AuditError("cosigned checkpoint does not match the stored one")
            merged = add_signatures(str(stored), *signatures)
            conn.execute(
                update(_checkpoint).where(_checkpoint.c.size == cp.size).values(note=merged)
            )
            return merged
