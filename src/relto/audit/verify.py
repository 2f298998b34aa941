"""Offline verification of a stored log against trusted checkpoints.

Every stored row is re-derived from its canonical body: the body must be canonical
JSON, carry its own index, hash to the stored leaf hash and to the stored level-0
node; every node the recomputed tree completes must equal the stored node; and the
recomputed root must equal each trusted checkpoint's root at its size. The report
names the *first* index where the stored log stops matching and what it looks like
(an edited, deleted, inserted or reordered row, or a rewritten history).

Only checkpoints the caller trusts (verified signatures, ideally cosigned by
witnesses) are anchors: the host's own stored checkpoints are signed with a key
its administrators hold, so they prove nothing against those administrators.

:class:`IncrementalVerifier` keeps the last tree head it verified (size, root and
the right edge of the tree it recomputed itself) and, for a newer checkpoint,
checks a consistency proof from that head to the checkpoint and re-derives only
the entries added since; a full re-verification is asked for explicitly
(``full=True``, ``relto audit verify``). It cannot see an *old* entry edited
after it was verified once without the roots changing: only a full
re-verification reads old rows again.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint
from relto.audit.entries import decode_entry
from relto.audit.errors import InvalidProof

__all__ = [
    "Finding",
    "IncrementalSource",
    "IncrementalVerifier",
    "LogRow",
    "LogSource",
    "VerifiedHead",
    "VerifyReport",
    "verify_log",
]

_CHUNK = 4096


@dataclass(frozen=True)
class LogRow:
    """A row as stored: its index column, leaf hash column and body."""

    index: int
    leaf_hash: bytes
    #: ``None``: the source does not show this reader the body (an entry about
    #: another nation); only its leaf hash takes part in the check.
    body: bytes | None
    kind: str | None = None  # the stored kind column, where the source has one


class LogSource(Protocol):
    """Where a log is read from: a database or a relto server."""

    def rows(self) -> Iterator[LogRow]:
        """Every stored row in index order."""
        ...

    def nodes(self, level: int, start: int, end: int) -> Mapping[int, bytes] | None:
        """Stored node hashes at ``level`` for ``[start, end)``; ``None`` if unavailable."""
        ...


class IncrementalSource(LogSource, Protocol):
    """A source that can start reading at an index and serve consistency proofs
    (a database; a server would serve ``/proof/consistency``)."""

    def rows_from(self, start: int) -> Iterator[LogRow]:
        """Stored rows from index ``start`` on, in index order."""
        ...

    def consistency(self, first: int, second: int) -> Sequence[bytes]:
        """The RFC 9162 consistency proof between trees of ``first`` and ``second``
        leaves, as the source serves it (it is checked, never trusted)."""
        ...


@dataclass(frozen=True)
class Finding:
    index: int
    kind: str  # edited | deleted | inserted | reordered | rewritten | node-altered
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    checkpoint_size: int
    checked: int
    finding: Finding | None
    #: Entries checked by their leaf hash alone (bodies this reader may not read).
    hashes_only: int = 0
    #: For an incremental check: the size of the tree head verified before, from
    #: which a consistency proof was checked and entries were re-derived
    #: (``None``: a full re-verification from index 0).
    since: int | None = None

    @property
    def ok(self) -> bool:
        return self.finding is None

    def describe(self) -> str:
        if self.finding is None and self.since is not None:
            added = self.checkpoint_size - self.since
            return (
                f"ok: the checkpoint of size {self.checkpoint_size} extends the tree head "
                f"of size {self.since} verified before (consistency proof checked) and the "
                f"{added} entries added since were re-derived"
            )
        if self.finding is None:
            hidden = (
                f", {self.hashes_only} of them by leaf hash only: their bodies concern "
                "other nations"
                if self.hashes_only
                else ""
            )
            return (
                f"ok: the stored log matches the checkpoint of size {self.checkpoint_size} "
                f"({self.checked} entries re-derived{hidden})"
            )
        f = self.finding
        return f"tampered: first mismatch at index {f.index} ({f.kind}): {f.detail}"


def verify_log(source: LogSource, trusted: Sequence[Checkpoint]) -> VerifyReport:
    """Re-derive the log from its rows and compare with ``trusted`` checkpoints."""
    if not trusted:
        raise ValueError("at least one trusted checkpoint is needed")
    anchors = sorted({(c.size, c.root) for c in trusted})
    return _verify(source.rows(), source, anchors, merkle.Frontier())[0]


def _verify(
    rows: Iterator[LogRow],
    source: LogSource,
    anchors: Sequence[tuple[int, bytes]],
    frontier: merkle.Frontier,
) -> tuple[VerifyReport, merkle.Frontier | None]:
    """Check ``rows`` (starting at ``frontier.size``, whose tree is already trusted)
    against ``anchors``; also returns the recomputed frontier at the largest anchor."""
    target = anchors[-1][0]
    start = frontier.size
    at_target = frontier.copy() if start == target else None
    good_anchor = start
    next_anchor = 0
    while next_anchor < len(anchors) and anchors[next_anchor][0] <= start:
        size, root = anchors[next_anchor]
        if size == 0 and not hmac.compare_digest(root, merkle.EMPTY_ROOT):
            return VerifyReport(target, 0, Finding(0, "rewritten", "empty-tree root differs")), None
        if size == start and start and not hmac.compare_digest(root, frontier.root()):
            differs = Finding(start, "rewritten", "the root differs from the one verified before")
            return VerifyReport(target, 0, differs), None
        next_anchor += 1

    position = start
    hidden = 0
    exhausted = False
    # Rows past the largest checkpoint are not covered by a trusted root, but each
    # must still be a well-formed entry in its place and in the stored tree.
    while not exhausted:
        chunk: list[LogRow] = []
        want = min(_CHUNK, target - position) if position < target else _CHUNK
        for row in rows:
            chunk.append(row)
            if len(chunk) >= want:
                break
        else:
            exhausted = True
        if not chunk:
            break
        hidden += sum(1 for row in chunk if row.body is None)
        finding, computed = _check_chunk(position, chunk, frontier, source)
        if finding is None:
            finding = _check_nodes(computed, source)
        # Compare roots at every anchor inside this chunk, in order.
        if finding is None:
            while next_anchor < len(anchors) and anchors[next_anchor][0] <= frontier.size:
                size, root = anchors[next_anchor]
                got = _root_at(size, computed, frontier)
                if not hmac.compare_digest(got, root):
                    finding = Finding(
                        good_anchor,
                        "rewritten",
                        f"the entries after index {good_anchor - 1 if good_anchor else 0} do "
                        f"not lead to the trusted root at size {size}: history was rewritten "
                        "consistently in the stored rows",
                    )
                    break
                good_anchor = size
                next_anchor += 1
        if finding is not None:
            checked = min(finding.index, position + len(chunk)) - start
            return VerifyReport(target, checked, finding), None
        position += len(chunk)
        if position == target:
            at_target = frontier.copy()
    if position < target:
        return VerifyReport(
            target,
            position - start,
            Finding(
                position,
                "deleted",
                f"the log holds {position} entries but the checkpoint commits to {target}",
            ),
        ), None
    return VerifyReport(target, position - start, None, hidden), at_target


@dataclass(frozen=True)
class VerifiedHead:
    """A tree head this process verified: its size and root, the right edge of the
    tree as recomputed from the entries (never read from storage), and when."""

    size: int
    root: bytes
    frontier: tuple[bytes, ...]
    at: datetime
    #: The size the last *full* re-verification covered, and when it ran.
    full_size: int
    full_at: datetime


class IncrementalVerifier:
    """Verifies a log against a trusted checkpoint, from the last verified head on.

    The first check (and any ``full=True`` one) re-derives the whole log
    (:func:`verify_log`); later ones check a consistency proof from the remembered
    head to the new checkpoint, then re-derive the entries added since, starting
    from the remembered right edge of the tree, so the new root is recomputed from
    hashes this verifier computed itself. A failed check forgets the head: the next
    check is a full one again. Thread-safe; one per process (memory only).
    """

    def __init__(self) -> None:
        self._head: VerifiedHead | None = None
        self._lock = threading.Lock()

    @property
    def head(self) -> VerifiedHead | None:
        return self._head

    def verify(
        self,
        source: IncrementalSource,
        checkpoint: Checkpoint,
        *,
        full: bool = False,
        now: datetime | None = None,
    ) -> VerifyReport:
        now = now or datetime.now(UTC)
        with self._lock:
            head = None if full else self._head
            if head is None:
                report, frontier = _verify(
                    source.rows(), source, [(checkpoint.size, checkpoint.root)], merkle.Frontier()
                )
                full_size, full_at = checkpoint.size, now
            else:
                report, frontier = self._since(source, checkpoint, head)
                full_size, full_at = head.full_size, head.full_at
            if not report.ok or frontier is None:
                self._head = None
                return report
            self._head = VerifiedHead(
                checkpoint.size,
                checkpoint.root,
                tuple(frontier.hashes),
                now,
                full_size,
                full_at,
            )
            return report

    @staticmethod
    def _since(
        source: IncrementalSource, checkpoint: Checkpoint, head: VerifiedHead
    ) -> tuple[VerifyReport, merkle.Frontier | None]:
        size = checkpoint.size
        if size < head.size:
            detail = (
                f"the checkpoint commits to {size} entries but a tree head of {head.size} "
                "was verified before: entries were removed or the log rolled back"
            )
            return VerifyReport(size, 0, Finding(size, "deleted", detail), since=head.size), None
        if head.size:
            try:
                proof = source.consistency(head.size, size)
                merkle.verify_consistency(head.size, size, proof, head.root, checkpoint.root)
            except InvalidProof as exc:
                detail = (
                    f"the checkpoint of size {size} does not extend the tree head of size "
                    f"{head.size} verified before ({exc}): history was rewritten"
                )
                finding = Finding(head.size, "rewritten", detail)
                return VerifyReport(size, 0, finding, since=head.size), None
        frontier = merkle.Frontier(head.size, list(head.frontier))
        report, at_target = _verify(
            source.rows_from(head.size), source, [(size, checkpoint.root)], frontier
        )
        return (
            VerifyReport(
                report.checkpoint_size,
                report.checked,
                report.finding,
                report.hashes_only,
                since=head.size,
            ),
            at_target,
        )


def _root_at(
    size: int, computed: Mapping[merkle.NodeKey, bytes], frontier: merkle.Frontier
) -> bytes:
    if size == frontier.size:
        return frontier.root()
    # An anchor inside the chunk: every perfect subtree of [0, size) was computed
    # either in this chunk or is on the frontier of the chunk's start.
    return merkle.range_hash(0, size, computed)


def _check_chunk(
    start: int, chunk: list[LogRow], frontier: merkle.Frontier, source: LogSource
) -> tuple[Finding | None, dict[merkle.NodeKey, bytes]]:
    computed: dict[merkle.NodeKey, bytes] = {}
    # Nodes on the frontier are needed to compute roots of anchors inside the chunk.
    for (level, idx), h in zip(merkle.Frontier.keys(frontier.size), frontier.hashes, strict=True):
        computed[(level, idx)] = h
    stored_leaves = source.nodes(0, start, start + len(chunk))
    if not stored_leaves:
        # No stored tree at all (e.g. read over HTTP, or wiped): rows and roots only.
        stored_leaves = None
    decoded: list[int | None] = []
    for row in chunk:
        try:
            decoded.append(None if row.body is None else decode_entry(row.body).index)
        except InvalidProof:
            decoded.append(None)
    body_positions = {b: i for i, b in enumerate(decoded) if b is not None}
    for offset, row in enumerate(chunk):
        p = start + offset
        if row.index != p:
            kind = "deleted" if row.index > p else "inserted"
            return Finding(p, kind, f"expected a row with index {p}, found index {row.index}"), {}
        if row.body is None:
            # Hidden from this reader: the leaf hash still has to lead to the root.
            h = row.leaf_hash
            for level, idx, value in frontier.append(h):
                computed[(level, idx)] = value
            continue
        b = decoded[offset]
        if b is None:
            try:
                decode_entry(row.body)
            except InvalidProof as exc:
                return Finding(p, "edited", f"entry body is not a valid entry ({exc})"), {}
        if b != p:
            if p in body_positions:
                kind = "reordered"
            elif b is not None and b > p:
                kind = "deleted"
            else:
                kind = "inserted"
            return Finding(p, kind, f"row {p} holds the body of entry {b}"), {}
        if row.kind is not None and row.kind != decode_entry(row.body).kind:
            return Finding(p, "edited", "the stored kind column differs from the entry"), {}
        h = merkle.leaf_hash(row.body)
        if not hmac.compare_digest(h, row.leaf_hash):
            return Finding(p, "edited", "entry body does not match its stored leaf hash"), {}
        if stored_leaves is not None:
            stored = stored_leaves.get(p)
            if stored is None:
                return Finding(p, "node-altered", "the stored Merkle tree lacks this entry"), {}
            if not hmac.compare_digest(stored, h):
                return Finding(p, "edited", "entry does not match the stored Merkle tree"), {}
        for level, idx, value in frontier.append(h):
            computed[(level, idx)] = value
    return None, computed


def _check_nodes(computed: Mapping[merkle.NodeKey, bytes], source: LogSource) -> Finding | None:
    by_level: dict[int, list[int]] = {}
    for level, idx in computed:
        if level > 0:
            by_level.setdefault(level, []).append(idx)
    first: Finding | None = None
    for level, idxs in sorted(by_level.items()):
        stored = source.nodes(level, min(idxs), max(idxs) + 1)
        if not stored:
            continue
        for idx in sorted(idxs):
            want = computed[(level, idx)]
            got = stored.get(idx)
            if got is None or not hmac.compare_digest(got, want):
                leaf = idx << level
                if first is None or leaf < first.index:
                    first = Finding(
                        leaf,
                        "node-altered",
                        f"stored subtree hash at level {level} covering index {leaf} differs "
                        "from the entries (proofs served from it would be wrong)",
                    )
                break
    return first
