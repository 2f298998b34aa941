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
