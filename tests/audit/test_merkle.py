"""Proof generation from stored subtrees round-trips through verification."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.audit import merkle
from relto.audit.errors import InvalidProof


def _tree(n: int) -> tuple[list[bytes], dict[merkle.NodeKey, bytes], list[bytes]]:
    """Leaves, every stored node, and the root at every size 0..n."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    nodes: dict[merkle.NodeKey, bytes] = {}
    f = merkle.Frontier()
    roots = [f.root()]
    for h in leaves:
        for level, idx, value in f.append(h):
            nodes[(level, idx)] = value
        roots.append(f.root())
    return leaves, nodes, roots


def _fetch(nodes: Mapping[merkle.NodeKey, bytes]) -> merkle.Fetch:
    def fetch(keys: Sequence[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        return {k: nodes[k] for k in keys if k in nodes}

    return fetch


LEAVES, NODES, ROOTS = _tree(70)


def test_frontier_matches_naive_roots() -> None:
    for n in range(len(LEAVES) + 1):
        assert ROOTS[n] == merkle.root_from_leaves(LEAVES[:n])
        assert merkle.root_at(n, _fetch(NODES)) == ROOTS[n]


def test_every_inclusion_proof_verifies() -> None:
    for size in range(1, 40):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, _fetch(NODES))
            merkle.verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size])


def test_every_consistency_proof_verifies() -> None:
    for size2 in range(1, 40):
        for size1 in range(1, size2 + 1):
            proof = merkle.consistency_proof(size1, size2, _fetch(NODES))
            merkle.verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tampered_inclusion_proof_rejected(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 70))
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, _fetch(NODES))
    pos = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    bad = list(proof)
    bad[pos] = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(bad[pos]))
    with pytest.raises(InvalidProof):
        merkle.verify_inclusion(index, size, LEAVES[index], bad, ROOTS[size])


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 69), st.integers(1, 70))
def test_forked_tree_consistency_rejected(size1: int, size2: int) -> None:
    size1, size2 = sorted((size1, size2))
    if size1 == size2:
        size2 += 1
    proof = merkle.consistency_proof(size1, size2, _fetch(NODES))
    forked = merkle.node_hash(ROOTS[size1], ROOTS[size1])
    with pytest.raises(InvalidProof):
        merkle.verify_consistency(size1, size2, proof, forked, ROOTS[size2])
    with pytest.raises(InvalidProof):
        merkle.verify_consistency(size1, size2, proof, ROOTS[size1], forked)


def test_proof_length_checked_before_hashing() -> None:
    proof = merkle.inclusion_proof(3, 8, _fetch(NODES))
    with pytest.raises(InvalidProof, match="expected 3"):
        merkle.verify_inclusion(3, 8, LEAVES[3], [*proof, proof[0]], ROOTS[8])
    with pytest.raises(InvalidProof, match="32-byte"):
        merkle.verify_inclusion(3, 8, LEAVES[3], [proof[0] + b"x", *proof[1:]], ROOTS[8])


def test_missing_stored_node_is_an_error_not_a_wrong_proof() -> None:
    nodes = dict(NODES)
    del nodes[(0, 5)]
    with pytest.raises(InvalidProof, match="missing node"):
        merkle.inclusion_proof(4, 8, _fetch(nodes))


def test_proof_reads_are_logarithmic() -> None:
    calls: list[int] = []

    def fetch(keys: Sequence[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        calls.append(len(keys))
        return {k: NODES[k] for k in keys}

    merkle.inclusion_proof(0, 69, fetch)
    merkle.consistency_proof(5, 69, fetch)
    assert len(calls) == 2 and all(c <= 2 * 7 for c in calls)
