"""Key files created by several workers at once: every worker ends up with the one
key that was written, and nobody ever reads a half-written file."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from relto.audit.keys import load_or_create_signer
from relto.federation.keyfiles import load_or_create_key
from relto.fsatomic import create_new, replace_file


def _signer_vkey(path: str, barrier) -> str:  # type: ignore[no-untyped-def]
    barrier.wait()
    return load_or_create_signer(Path(path), "relto.test/log").verifier().vkey


def _node_key_jwk(path: str, barrier) -> str:  # type: ignore[no-untyped-def]
    barrier.wait()
    return load_or_create_key(Path(path)).fingerprint


@pytest.mark.parametrize("make", [_signer_vkey, _node_key_jwk], ids=["log-key", "node-key"])
def test_workers_racing_to_create_a_key_all_load_the_one_written(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("spawn")
    workers = 6
    for round_ in range(3):
        path = str(tmp_path / f"r{round_}" / "k.key")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(workers)
            with ctx.Pool(workers) as pool:
                results = pool.starmap(make, [(path, barrier)] * workers)
        assert len(set(results)) == 1
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not [p for p in Path(path).parent.iterdir() if p.name.startswith(".tmp-")]


def test_create_new_leaves_an_existing_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "k"
    assert create_new(path, b"first\n")
    assert not create_new(path, b"second\n")
    assert path.read_bytes() == b"first\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_replace_file_swaps_whole_content(tmp_path: Path) -> None:
    path = tmp_path / "k.pub"
    replace_file(path, b"old\n")
    replace_file(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pub"]
