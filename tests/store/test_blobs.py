"""The local blob store: atomic writes, safe keys, nothing partial left behind."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from relto.errors import InvalidInput, NotFound
from relto.store import BlobStore, LocalBlobStore


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_round_trip_bytes_stream_and_iterable(store: LocalBlobStore) -> None:
    assert isinstance(store, BlobStore)
    assert store.put("a", b"hello") == 5
    assert store.put("b", io.BytesIO(b"x" * 3_000_000)) == 3_000_000
    assert store.put("c", iter([b"ab", b"cd"])) == 4
    with store.open("a") as f:
        assert f.read() == b"hello"
    with store.open("c") as f:
        assert f.read() == b"abcd"
    assert list(store.keys()) == ["a", "b", "c"]


def test_missing_blob_is_not_found(store: LocalBlobStore) -> None:
    with pytest.raises(NotFound):
        store.open("nope")
    assert not store.exists("nope")


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", "a/b", "", ".hidden", "x" * 300, "a..b"]
)
def test_path_traversal_key_rejected(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put(key, b"x")


def test_failed_write_keeps_old_blob_and_leaves_no_temp_file(store: LocalBlobStore) -> None:
    store.put("doc", b"original")

    def broken() -> Iterator[bytes]:
        yield b"partial-new-content"
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        store.put("doc", broken())
    with store.open("doc") as f:
        assert f.read() == b"original"
    assert [p.name for p in store.root.iterdir()] == ["doc"]


def test_replace_is_atomic_for_readers(store: LocalBlobStore) -> None:
    store.put("doc", b"v1")
    reader = store.open("doc")
    store.put("doc", b"v2-longer")
    assert reader.read() == b"v1"  # an open reader keeps the old, whole blob
    reader.close()
    with store.open("doc") as f:
        assert f.read() == b"v2-longer"


def test_delete(store: LocalBlobStore) -> None:
    store.put("doc", b"v1")
    store.delete("doc")
    store.delete("doc")
    assert not store.exists("doc")


def test_staged_blob_is_private_and_never_listed(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.file.write(b"ciphertext")
        (tmp,) = [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]
        assert tmp.stat().st_mode & 0o777 == 0o600
        assert list(store.keys()) == []
    assert list(store.root.iterdir()) == []  # left without release: discarded


def test_live_staged_file_survives_another_workers_sweep(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.file.write(b"ciphertext")
        assert LocalBlobStore(store.root).sweep_staging() == []
        staged.publish("doc-v1", b'{"kind": "x"}')
        assert list(LocalBlobStore(store.root).stale_claims()) == []
        assert not LocalBlobStore(store.root).delete_unclaimed("doc-v1", lambda: True)
        staged.release()
    with store.open("doc-v1") as f:
        assert f.read() == b"ciphertext"
    assert [p.name for p in store.root.iterdir()] == ["doc-v1"]


def test_dead_writers_leftovers_are_swept(store: LocalBlobStore) -> None:
    """A writer killed mid-upload leaves a staged file and a claim: both go at start-up,
    and the claim says what the writer meant to record."""
    import os

    staged = store.stage()
    staged.file.write(b"half")
    staged.file.flush()
    dead = store.stage()
    dead.file.write(b"whole")
    dead.publish("doc-v2", b"intent")
    # The process dies: its descriptors close and the kernel drops its locks.
    os.close(staged.file.fileno())
    assert dead._claim is not None
    os.close(dead._claim)
    os.close(dead.file.fileno())
    assert len(store.sweep_staging()) == 1
    (claim,) = list(store.stale_claims())
    assert (claim.key, claim.intent, claim.published) == ("doc-v2", b"intent", True)
    claim.resolve(delete_blob=True)
    assert list(store.root.iterdir()) == []


def test_orphan_deleted_only_when_still_orphan(store: LocalBlobStore) -> None:
    store.put("doc-v1", b"x")
    assert not store.delete_unclaimed("doc-v1", lambda: False)
    assert store.exists("doc-v1")
    assert store.delete_unclaimed("doc-v1", lambda: True)
    assert not store.exists("doc-v1")
    assert list(store.root.iterdir()) == []


def test_released_blob_survives_a_later_discard(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.file.write(b"ciphertext")
        staged.publish("doc-v1")
        staged.release()
        staged.discard()
    assert store.exists("doc-v1")
