"""RFC 6962 / 9162 proof vectors from transparency-dev/merkle: every case, every wantErr."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from relto.audit import merkle
from relto.audit.errors import InvalidProof

CONFORMANCE = Path(__file__).resolve().parents[2] / "tests" / "data" / "conformance" / "merkle"


def _cases(kind: str) -> list[Any]:
    files = sorted((CONFORMANCE / kind).glob("*/*.json"))
    return [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in files]


def _b(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b(p) for p in value or []]


def _outcome(call: Any) -> bool:
    try:
        call()
    except InvalidProof:
        return False
    return True


def test_conformance_data_is_present(conformance_dir: Path) -> None:
    for kind in ("inclusion", "consistency", "subtreeinclusion", "subtreeconsistency"):
        assert len(list((conformance_dir / "merkle" / kind).glob("*/*.json"))) > 10


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_inclusion(
            c["leafIdx"], c["treeSize"], _b(c["leafHash"]), _proof(c["proof"]), _b(c["root"])
        )
    )
    assert ok is not c["wantErr"], c["desc"]


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_consistency(
            c["size1"], c["size2"], _proof(c["proof"]), _b(c["root1"]), _b(c["root2"])
        )
    )
    assert ok is not c["wantErr"], c["desc"]


@pytest.mark.parametrize("path", _cases("subtreeinclusion"))
def test_subtree_inclusion_vector(path: Path) -> None:
    c = json.loads(path.read_text())
    if "start" in c:
        call = lambda: merkle.verify_subtree_inclusion(  # noqa: E731
            c["leafIdx"], c["start"], c["end"], _b(c["leafHash"]), _proof(c["proof"]), _b(c["root"])
        )
    else:
        call = lambda: merkle.verify_inclusion(  # noqa: E731
            c["leafIdx"], c["treeSize"], _b(c["leafHash"]), _proof(c["proof"]), _b(c["root"])
        )
    assert _outcome(call) is not c["wantErr"], c["desc"]


@pytest.mark.parametrize("path", _cases("subtreeconsistency"))
def test_subtree_consistency_vector(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _outcome(
        lambda: merkle.verify_subtree_consistency(
            c["start"], c["end"], c["size"], _proof(c["proof"]), _b(c["root1"]), _b(c["root2"])
        )
    )
    assert ok is not c["wantErr"], c["desc"]


def test_roots_known_answers() -> None:
    data = json.loads((CONFORMANCE / "roots.json").read_text())
    leaves = [merkle.leaf_hash(bytes.fromhex(x)) for x in data["leaf_inputs"]]
    for n, want in enumerate(data["roots"]):
        assert merkle.root_from_leaves(leaves[:n]).hex() == want
