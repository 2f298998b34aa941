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
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint
from relto.audit.entries import decode_entry
from relto.audit.errors import InvalidProof

__all__ = ["Finding", "LogRow", "LogSource", "VerifyReport", "verify_log"]

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

    @property
    def ok(self) -> bool:
        return self.finding is None

    def describe(self) -> str:
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
    target = anchors[-1][0]
    frontier = merkle.Frontier()
    good_anchor = 0
    next_anchor = 0
    while next_anchor < len(anchors) and anchors[next_anchor][0] == 0:
        if not hmac.compare_digest(anchors[next_anchor][1], merkle.EMPTY_ROOT):
            return VerifyReport(target, 0, Finding(0, "rewritten", "empty-tree root differs"))
        next_anchor += 1

    rows = source.rows()
    position = 0
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
            return VerifyReport(target, min(finding.index, position + len(chunk)), finding)
        position += len(chunk)
    if position < target:
        return VerifyReport(
            target,
            position,
            Finding(
                position,
                "deleted",
                f"the log holds {position} entries but the checkpoint commits to {target}",
            ),
        )
    return VerifyReport(target, position, None, hidden)


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
