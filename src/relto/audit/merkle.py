"""RFC 9162 Merkle trees: hashing, proofs from stored subtrees, proof verification.

Hashing is SHA-256 with the RFC's domain separation: a leaf is
``SHA-256(0x00 || entry)``, an interior node ``SHA-256(0x01 || left || right)``, the
empty tree ``SHA-256("")``.

Proofs are built from *perfect subtrees* ("complete subtrees"): the node at
``(level, index)`` is the root of leaves ``[index * 2**level, (index + 1) * 2**level)``.
Any range the RFC's recursion asks for is a right-folded list of such nodes, so a
proof needs O(log n) stored hashes and never a rebuild. Callers hand in a
``fetch`` function that returns the stored hashes for a batch of node keys; this
module never touches storage itself.

Verification checks the proof's length and every hash's length *before* hashing,
and compares roots with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from relto.audit.errors import InvalidProof

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Fetch",
    "Frontier",
    "NodeKey",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_nodes",
    "range_hash",
    "root_at",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]

HASH_SIZE = 32
#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``(level, index)`` of a perfect subtree.
NodeKey = tuple[int, int]
#: Returns the stored hash of every requested node (missing ones may be left out).
Fetch = Callable[[Sequence[NodeKey]], Mapping[NodeKey, bytes]]

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree head of the given leaf hashes, computed in full (O(n))."""
    f = Frontier()
    for h in leaf_hashes:
        f.append(h)
    return f.root()


# -- stored-structure layout -------------------------------------------------------


def perfect_nodes(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees that make up leaves ``[start, end)``, largest first.

    ``start`` must be aligned as in the RFC's recursion (always true for the ranges
    produced by :func:`inclusion_ranges` and :func:`consistency_ranges`).
    """
    if not 0 <= start < end:
        raise ValueError("empty or negative range")
    out: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start & ((1 << level) - 1):
            raise ValueError("range is not aligned to a subtree")
        out.append((level, start >> level))
        start += 1 << level
    return out


def range_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH of leaves ``[start, end)`` from the stored perfect-subtree hashes."""
    keys = perfect_nodes(start, end)
    try:
        h = nodes[keys[-1]]
        for key in reversed(keys[:-1]):
            h = node_hash(nodes[key], h)
    except KeyError as exc:
        raise InvalidProof(f"stored tree is missing node {exc.args[0]}") from None
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make up ``PATH(index, D[0:size])``, in proof order."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make up ``PROOF(size1, D[0:size2])``, in proof order."""
    if not 0 <= size1 <= size2:
        raise ValueError("sizes must satisfy 0 <= size1 <= size2")
    if size1 == 0 or size1 == size2:
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m -= k
            lo = lo + k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def _resolve(ranges: Sequence[tuple[int, int]], fetch: Fetch) -> list[bytes]:
    plans = [perfect_nodes(a, b) for a, b in ranges]
    nodes = fetch(list(dict.fromkeys(k for plan in plans for k in plan)))
    out: list[bytes] = []
    try:
        for plan in plans:
            h = nodes[plan[-1]]
            for key in reversed(plan[:-1]):
                h = _sha256(b"\x01" + nodes[key] + h).digest()
            out.append(h)
    except KeyError as exc:
        raise InvalidProof(f"stored tree is missing node {exc.args[0]}") from None
    return out


def inclusion_proof(index: int, size: int, fetch: Fetch) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return _resolve(inclusion_ranges(index, size), fetch)


def consistency_proof(size1: int, size2: int, fetch: Fetch) -> list[bytes]:
    """The consistency proof between the trees of ``size1`` and ``size2`` leaves."""
    return _resolve(consistency_ranges(size1, size2), fetch)


def root_at(size: int, fetch: Fetch) -> bytes:
    """The tree head at ``size`` from stored subtrees (O(log n) reads)."""
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], fetch)[0]


@dataclass
class Frontier:
    """The right edge of a growing tree: one perfect subtree per set bit of its size.

    ``append`` returns every node it completes, so a log can store them; the root is
    available at any time in O(log n).
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[NodeKey, bytes]) -> Frontier:
        """Rebuild the frontier of a tree of ``size`` leaves from its stored nodes."""
        if size == 0:
            return cls()
        keys = perfect_nodes(0, size)
        try:
            return cls(size, [nodes[k] for k in keys])
        except KeyError as exc:
            raise InvalidProof(f"stored tree is missing node {exc.args[0]}") from None

    @staticmethod
    def keys(size: int) -> list[NodeKey]:
        return perfect_nodes(0, size) if size else []

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))

    def append(self, h: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the new nodes ``(level, index, hash)``, leaf first."""
        index = self.size
        out = [(0, index, h)]
        level = 0
        n = index
        while n & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            n >>= 1
            out.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1
        return out

    def extend(self, hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        out: list[tuple[int, int, bytes]] = []
        for h in hashes:
            out.extend(self.append(h))
        return out

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h


# -- verification ----------------------------------------------------------------


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise InvalidProof(f"{what} is not a {HASH_SIZE}-byte hash")
    return bytes(value)


def _check_proof(proof: Sequence[bytes], want: int) -> list[bytes]:
    if len(proof) != want:
        raise InvalidProof(f"proof has {len(proof)} hashes, expected {want}")
    return [_check_hash(p, "proof element") for p in proof]


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise InvalidProof(f"{what} is out of range")


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Number of inner and border hashes in an inclusion proof."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    _check_size(index, "leaf index")
    _check_size(size, "tree size")
    if index >= size:
        raise InvalidProof("leaf index is not inside the tree")
    leaf = _check_hash(leaf, "leaf hash")
    inner, border = _decompose(index, size)
    hashes = _check_proof(proof, inner + border)
    r = _chain_inner(leaf, hashes[:inner], index)
    return _chain_border_right(r, hashes[inner:])


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`InvalidProof` unless ``proof`` shows leaf ``index`` is in ``root``."""
    root = _check_hash(root, "root")
    got = _root_from_inclusion(index, size, leaf, proof)
    if not _equal(got, root):
        raise InvalidProof("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise :class:`InvalidProof` unless ``proof`` shows tree 1 is a prefix of tree 2."""
    _check_size(size1, "first size")
    _check_size(size2, "second size")
    if size2 < size1:
        raise InvalidProof("second tree is smaller than the first")
    if size1 == 0:
        # As in transparency-dev/merkle: a proof from the empty tree proves nothing,
        # so it is refused rather than silently accepted.
        raise InvalidProof("consistency with the empty tree is meaningless")
    if size1 == size2:
        _check_proof(proof, 0)
        if not isinstance(root1, bytes) or not isinstance(root2, bytes):
            raise InvalidProof("roots must be bytes")
        if not _equal(root1, root2):
            raise InvalidProof("trees of equal size have different roots")
        return
    root1 = _check_hash(root1, "first root")
    root2 = _check_hash(root2, "second root")
    if len(proof) == 0:
        raise InvalidProof("consistency proof is empty")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    start = 0 if size1 == 1 << shift else 1
    hashes = _check_proof(proof, start + inner + border)
    seed = root1 if start == 0 else hashes[0]
    hashes = hashes[start:]
    mask = (size1 - 1) >> shift
    h1 = _chain_border_right(_chain_inner_right(seed, hashes[:inner], mask), hashes[inner:])
    if not _equal(h1, root1):
        raise InvalidProof("consistency proof does not lead to the first root")
    h2 = _chain_border_right(_chain_inner(seed, hashes[:inner], mask), hashes[inner:])
    if not _equal(h2, root2):
        raise InvalidProof("consistency proof does not lead to the second root")


# -- subtrees (draft-ietf-plants-merkle-tree-certs) --------------------------------------


def _check_subtree(start: int, end: int) -> None:
    _check_size(start, "subtree start")
    _check_size(end, "subtree end")
    if end <= start:
        raise InvalidProof("subtree is empty")
    width = end - start
    ceil = 1 << (width - 1).bit_length()
    if start % ceil:
        raise InvalidProof("subtree start is not aligned to its width")


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Inclusion of leaf ``index`` in the subtree ``[start, end)`` with hash ``root``."""
    _check_subtree(start, end)
    _check_size(index, "leaf index")
    if not start <= index < end:
        raise InvalidProof("leaf index is not inside the subtree")
    verify_inclusion(index - start, end - start, leaf, proof, root)


def verify_subtree_consistency(
    start: int,
    end: int,
    size: int,
    proof: Sequence[bytes],
    subtree_root: bytes,
    root: bytes,
) -> None:
    """Subtree ``[start, end)`` with hash ``subtree_root`` sits inside the tree ``root``.

    The procedure of draft-ietf-plants-merkle-tree-certs ("Verifying a Subtree
    Consistency Proof"); the proof's length is worked out from the sizes first.
    """
    _check_size(start, "subtree start")
    _check_size(end, "subtree end")
    _check_size(size, "tree size")
    if end > size:
        raise InvalidProof("subtree ends beyond the tree")
    if start == end:
        # As in transparency-dev/merkle: the empty subtree (hash of the empty string)
        # sits inside every tree, with an empty proof.
        _check_proof(proof, 0)
        if not isinstance(subtree_root, bytes) or not _equal(subtree_root, EMPTY_ROOT):
            raise InvalidProof("empty subtree does not have the empty root")
        return
    _check_subtree(start, end)
    if start == 0 and end == size:
        _check_proof(proof, 0)
        if not isinstance(subtree_root, bytes) or not isinstance(root, bytes):
            raise InvalidProof("roots must be bytes")
        if not _equal(subtree_root, root):
            raise InvalidProof("the subtree is the whole tree but the roots differ")
        return
    subtree_root = _check_hash(subtree_root, "subtree root")
    root = _check_hash(root, "root")
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    # Dry run on the cursors alone: how many hashes the proof must hold.
    seeded = fn != sn
    f, s, t, want = fn, sn, tn, 0
    while t != 0:
        if s & 1 or s == t:
            while s & 1 == 0:
                f, s, t = f >> 1, s >> 1, t >> 1
        f, s, t = f >> 1, s >> 1, t >> 1
        want += 1
    hashes = _check_proof(proof, want + (1 if seeded else 0))
    if seeded:
        fr = sr = hashes[0]
        rest = hashes[1:]
    else:
        fr = sr = subtree_root
        rest = hashes
    for c in rest:
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while sn & 1 == 0:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0:
        raise InvalidProof("subtree consistency proof is too short")
    if not _equal(fr, subtree_root):
        raise InvalidProof("subtree consistency proof does not lead to the subtree root")
    if not _equal(sr, root):
        raise InvalidProof("subtree consistency proof does not lead to the root")
