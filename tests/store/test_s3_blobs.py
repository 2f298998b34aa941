"""The S3 blob store against a real S3 server (SeaweedFS, started by the fixture, with
real authentication): nothing partial ever visible, exact ranged reads, a published
blob never replaced, dead writers' claims and orphans swept only after their grace,
credentials in no error message."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from relto.config import Settings
from relto.documents import DocumentService
from relto.errors import ConfigError, NotFound, StorageError, StorageUnavailable
from relto.events import MemorySink
from relto.node import open_blob_store
from relto.server import create_app
from relto.store import BlobStore, LocalBlobStore
from relto.store.s3 import S3BlobStore, S3Options
from s3_testing import S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, SeaweedS3

pytestmark = pytest.mark.xdist_group("s3")

MiB = 1 << 20
BUCKET = "relto-tests"
PART = 5 * MiB


@pytest.fixture(scope="module")
def bucket(s3_server: SeaweedS3) -> str:
    return s3_server.bucket(BUCKET)


class Clock:
    """Now, as the store's sweep sees it; tests move it forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _options(server: SeaweedS3, prefix: str, **kw: Any) -> S3Options:
    base: dict[str, Any] = {
        "bucket": BUCKET,
        "prefix": prefix,
        "access_key_id": S3_ACCESS_KEY_ID,
        "secret_access_key": S3_SECRET_ACCESS_KEY,
        "endpoint_url": server.endpoint,
        "part_size": PART,
        "max_attempts": 2,
        "connect_timeout": 2.0,
        "read_timeout": 10.0,
        "grace": timedelta(minutes=10),
    }
    return S3Options(**{**base, **kw})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(s3_server: SeaweedS3, bucket: str, tmp_path: Path, clock: Clock) -> S3BlobStore:
    prefix = f"t-{secrets.token_hex(4)}/"
    return S3BlobStore(_options(s3_server, prefix), tmp_path / "staging", clock=clock)


def _uploads(store: S3BlobStore) -> list[str]:
    got = store._client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.options.prefix)
    return [u["Key"] for u in got.get("Uploads", [])]


def _objects(store: S3BlobStore) -> list[str]:
    got = store._client.list_objects_v2(Bucket=BUCKET, Prefix=store.options.prefix)
    return [o["Key"][len(store.options.prefix) :] for o in got.get("Contents", [])]


# -- the protocol ------------------------------------------------------------------------


def test_round_trip_bytes_stream_and_iterable(store: S3BlobStore) -> None:
    assert isinstance(store, BlobStore)
    big = os.urandom(11 * MiB)  # three parts: a multipart upload
    assert store.put("a", b"hello") == 5
    assert store.put("b", io.BytesIO(big)) == len(big)
    assert store.put("c", iter([b"ab", b"cd"])) == 4
    with store.open("a") as f:
        assert f.read() == b"hello"
    with store.open("b") as f:
        assert f.read() == big
    assert list(store.keys()) == ["a", "b", "c"]
    assert store.exists("c") and not store.exists("d")
    store.delete("c")
    assert list(store.keys()) == ["a", "b"]
    assert store.probe() == "ok"
    with pytest.raises(NotFound):
        store.open("c")


def test_ranged_read_returns_exact_bytes(store: S3BlobStore) -> None:
    data = os.urandom(9 * MiB + 12345)
    store.put("doc-v1", data)
    with store.open("doc-v1") as f:
        for start, length in [(0, 1), (7, 100), (MiB - 3, 7), (8 * MiB - 1, 2 * MiB), (0, 0)]:
            f.seek(start)
            assert f.read(length) == data[start : start + length]
            assert f.tell() == min(start + length, len(data))
        f.seek(-10, io.SEEK_END)
        assert f.read(100) == data[-10:]
        assert f.read(1) == b""
        f.seek(len(data) + 5)
        assert f.read(3) == b""


def test_ranged_reads_never_mix_two_versions(store: S3BlobStore) -> None:
    store.put("doc", b"A" * (2 * MiB))
    f = store.open("doc")
    assert f.read(10) == b"A" * 10
    store.put("doc", b"B" * (2 * MiB))  # replaced under an open reader
    f.seek(MiB + 5)
    with pytest.raises(StorageError):
        f.read(10)
    f.close()


# -- atomic visibility -------------------------------------------------------------------


def test_partial_multipart_upload_never_visible(store: S3BlobStore, clock: Clock) -> None:
    """A stream that fails after two parts leaves no object and no open upload; a
    writer that died mid-upload leaves an invisible upload the sweep aborts after
    the grace period."""

    def broken() -> Iterator[bytes]:
        yield os.urandom(11 * MiB)
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError):
        store.put("doc-v1", broken())
    assert not store.exists("doc-v1")
    assert list(store.keys()) == [] and _uploads(store) == []

    staged = store.stage()
    staged.file.write(os.urandom(6 * MiB))
    name = store.options.prefix + "doc-v2"
    dead = store._client.create_multipart_upload(Bucket=BUCKET, Key=name)["UploadId"]
    store._client.upload_part(
        Bucket=BUCKET, Key=name, UploadId=dead, PartNumber=1, Body=b"x" * PART
    )
    with pytest.raises(NotFound):
        store.open("doc-v2")
    assert list(store.keys()) == []
    assert store.sweep_staging() == []  # young: its writer may be alive
    staged.discard()
    clock.now += store.options.grace + timedelta(minutes=5)
    assert store.sweep_staging() == [f"upload:{name}"]
    assert _uploads(store) == []


def test_published_blob_never_replaced(store: S3BlobStore) -> None:
    """Two writers of one key: the second is refused, the first's blob stays whole."""
    with store.stage() as first, store.stage() as second:
        first.file.write(b"first" * 1000)
        second.file.write(b"second" * 1000)
        first.publish("doc-v1", b'{"kind":"a"}')
        with pytest.raises(StorageError, match="another writer"):
            second.publish("doc-v1", b'{"kind":"b"}')
        first.release()
    with store.open("doc-v1") as f:
        assert f.read() == b"first" * 1000
    with store.stage() as third:  # the claim is gone, but the object stays
        third.file.write(b"third")
        with pytest.raises(StorageError, match="never replaced"):
            third.publish("doc-v1")
    with store.open("doc-v1") as f:
        assert f.read() == b"first" * 1000
    assert _objects(store) == ["doc-v1"] and list(store.staging.iterdir()) == []


def test_discarded_publish_leaves_nothing(store: S3BlobStore) -> None:
    with store.stage() as staged:
        staged.file.write(os.urandom(7 * MiB))
        staged.publish("doc-v3", b"intent")
        assert store.exists("doc-v3")
    assert _objects(store) == [] and list(store.staging.iterdir()) == []


# -- dead writers and orphans ------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _writer_dies(store: S3BlobStore, key: str) -> None:
    """The writer of ``key``'s claim dies: the claim now names a process that is gone."""
    claim = store._claim(key)
    body = json.loads(store._client.get_object(Bucket=BUCKET, Key=claim)["Body"].read())
    body["writer"]["pid"] = _dead_pid()
    store._client.put_object(Bucket=BUCKET, Key=claim, Body=json.dumps(body).encode())


def test_dead_writers_claim_swept_live_writers_kept(store: S3BlobStore, clock: Clock) -> None:
    live = store.stage()
    live.file.write(b"live")
    live.publish("doc-v1", b'{"kind":"live"}')
    dead = store.stage()
    dead.file.write(b"dead")
    dead.publish("doc-v2", b'{"kind":"dead"}')
    _writer_dies(store, "doc-v2")

    other = S3BlobStore(store.options, store.staging, clock=clock)  # another worker
    (stale,) = list(other.stale_claims())
    assert (stale.key, stale.intent, stale.published) == ("doc-v2", b'{"kind":"dead"}', True)
    assert list(other.stale_claims()) == []  # taken over: a second sweeper leaves it
    assert not other.delete_unclaimed("doc-v1", lambda: True)  # the live writer's
    stale.resolve(delete_blob=True)
    assert sorted(_objects(store)) == [".claims/doc-v1", "doc-v1"]
    live.release()
    assert _objects(store) == ["doc-v1"]

    abandoned = store.stage()  # a live process whose claim outlived the grace period
    abandoned.file.write(b"x")
    abandoned.publish("doc-v4", b"{}")
    assert list(other.stale_claims()) == []
    clock.now += store.options.grace + timedelta(minutes=5)
    assert [c.key for c in other.stale_claims()] == ["doc-v4"]


def test_orphan_objects_swept_after_grace(store: S3BlobStore, clock: Clock) -> None:
    store.put("doc-v1", b"no row names me")
    store.put("doc-v2", b"a row names me")
    assert not store.delete_unclaimed("doc-v1", lambda: True)  # younger than the grace
    clock.now += store.options.grace + timedelta(minutes=5)
    assert not store.delete_unclaimed("doc-v2", lambda: False)  # a row names it now
    assert store.delete_unclaimed("doc-v1", lambda: True)
    assert _objects(store) == ["doc-v2"]


# -- settings and errors -----------------------------------------------------------------


def _settings(tmp_path: Path, server: SeaweedS3, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "blob_store": f"s3://{BUCKET}/node-{secrets.token_hex(3)}",
        "s3_endpoint_url": server.endpoint,
        "s3_access_key_id": SecretStr(S3_ACCESS_KEY_ID),
        "s3_secret_access_key": SecretStr(S3_SECRET_ACCESS_KEY),
        "s3_max_attempts": 1,
        "s3_connect_timeout": 1.0,
    }
    return Settings(**{**base, **kw})


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"s3_secret_access_key": None}, "RELTO_S3_SECRET_ACCESS_KEY"),
        ({"s3_access_key_id": None}, "RELTO_S3_ACCESS_KEY_ID"),
        ({"s3_secret_access_key": SecretStr("minioadmin")}, "placeholder"),
        ({"blob_store": "s3://No_Such/x"}, "bucket of s3://"),
        ({"blob_store": "s3://relto-tests/../x"}, "prefix of s3://"),
        ({"blob_store": "s3://missing-bucket/x"}, "does not exist"),
        ({"s3_endpoint_url": "http://user:pw@127.0.0.1:1"}, "credentials go in"),
        ({"s3_endpoint_url": "http://127.0.0.1:9"}, "does not answer at start"),
        ({"blob_store": "gs://b/x"}, "is not a folder"),
    ],
)
def test_refuses_to_start_without_a_usable_store(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, change: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        open_blob_store(_settings(tmp_path, s3_server, **change))
    assert S3_SECRET_ACCESS_KEY not in str(caught.value)


def test_credentials_never_in_error_messages(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "wrong-secret-Zr4!kP9qLw"
    settings = _settings(tmp_path, s3_server, s3_secret_access_key=SecretStr(wrong))
    with pytest.raises(ConfigError, match="refused the credentials") as refused:
        open_blob_store(settings)
    store = S3BlobStore(_options(s3_server, "x/", secret_access_key=wrong), tmp_path / "s")
    errors: list[BaseException] = [refused.value]
    for attempt in (
        lambda: store.put("doc-v1", b"x"),
        lambda: store.open("doc-v1"),
        lambda: list(store.keys()),
        lambda: store.stage().publish("doc-v1"),
    ):
        with pytest.raises(StorageUnavailable, match="access denied") as caught:
            attempt()
        errors.append(caught.value)
    assert store.probe() == "down"
    seen = " ".join(
        [str(e) + repr(e) for e in errors]
        + [repr(settings), repr(store.options), str(settings.model_dump())]
        + list(capsys.readouterr())
    )
    for secret in (wrong, S3_SECRET_ACCESS_KEY, S3_ACCESS_KEY_ID):
        assert secret not in seen


# -- a node on S3 ------------------------------------------------------------------------


def _person(node: Any, person_id: str = "gbr-eng-harper") -> Any:
    found = node.directory.principal(person_id, via="session")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo data folder (local blobs), loaded once; tests copy it and move its
    blobs into the bucket."""
    folder = tmp_path_factory.mktemp("s3-demo")
    app = create_app(Settings(demo=True, data_dir=folder), sink=MemorySink())
    app.state.node.db.dispose()
    return folder


def _s3_node(
    tmp_path: Path, server: SeaweedS3, demo_data: Path, sink: MemorySink | None = None
) -> Any:
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    settings = _settings(tmp_path, server, demo=True)
    store = open_blob_store(settings)
    local = LocalBlobStore(data / "blobs")
    for key in local.keys():  # noqa: SIM118 -- keys() is a generator, not a dict
        with local.open(key) as f:
            store.put(key, f)
    shutil.rmtree(data / "blobs")
    return create_app(settings, sink=sink or MemorySink()).state.node


def test_document_round_trip_through_s3(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, demo_data: Path
) -> None:
    node = _s3_node(tmp_path, s3_server, demo_data)
    assert isinstance(node.blobs, S3BlobStore)
    docs: DocumentService = node.documents
    harper = _person(node)
    now = datetime.now(UTC)
    body = os.urandom(3 * MiB) + b"the flight 9 plan"
    doc = docs.upload(
        harper, title="Flight 9", project_id="hypersonic", classification="SECRET",
        rel_to=["USA"], filename="f9.bin", media_type="application/octet-stream",
        data=body, at=now,
    )  # fmt: skip
    assert node.blobs.exists(f"document-{doc.id}-v1.tdf")
    _, decision, plain = docs.open(harper, doc.id, now)
    assert decision.allowed and plain == body
    officer = _person(node, "gbr-so-whitfield")
    docs.relabel(officer, doc.id, ["USA", "AUS"], now, justification="share with AUS too")
    _, _, plain = docs.open(harper, doc.id, now)
    assert plain == body
    _, container = docs.container(harper, doc.id)
    with container:
        assert container.read(4) == b"PK\x03\x04"  # a ZTDF (zip) container, ranged
    assert not (tmp_path / "data" / "blobs").exists()
    assert list((tmp_path / "data" / "blob-staging").iterdir()) == []
    node.db.dispose()


def test_dead_writers_changes_recorded_late_or_swept_on_s3(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, demo_data: Path
) -> None:
    """A writer killed after its row committed: the entry is recorded at start-up and
    the document kept; one killed before: its object goes, nothing is recorded."""
    sink = MemorySink()
    node = _s3_node(tmp_path, s3_server, demo_data, sink)
    store: S3BlobStore = node.blobs
    docs: DocumentService = node.documents
    harper = _person(node)
    now = datetime.now(UTC)
    doc = docs.upload(
        harper, title="Committed", project_id="hypersonic", classification="SECRET",
        rel_to=["USA"], filename="c.txt", media_type="text/plain", data=b"committed", at=now,
    )  # fmt: skip
    committed = {"kind": "document.protected", "document": doc.id, "payload": {"document": doc.id}}
    assert store._put_claim(f"document-{doc.id}-v1.tdf", json.dumps(committed).encode())
    _writer_dies(store, f"document-{doc.id}-v1.tdf")
    cut = {"kind": "document.protected", "document": "cut-off", "payload": {"document": "cut"}}
    staged = store.stage()
    staged.file.write(b"ciphertext")
    staged.publish("document-cut-off-v1.tdf", json.dumps(cut).encode())
    _writer_dies(store, "document-cut-off-v1.tdf")
    sink.events.clear()
    assert docs.sweep(now) == ["document-cut-off-v1.tdf"]
    recorded = {e.kind: e.payload for e in sink.events}
    assert len(sink.events) == 2 and recorded.keys() == {
        "document.protected",
        "document.orphan_swept",
    }
    assert recorded["document.protected"]["document"] == doc.id
    assert "recovered_at_startup" in recorded["document.protected"]
    assert recorded["document.orphan_swept"]["document"] == "cut-off"
    assert not store.exists("document-cut-off-v1.tdf")
    assert docs.open(harper, doc.id, now)[2] == b"committed"
    assert [k for k in _objects(store) if k.startswith(".claims/")] == []
    node.db.dispose()


def test_node_sweeps_orphans_on_s3_only_after_grace(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, demo_data: Path
) -> None:
    node = _s3_node(tmp_path, s3_server, demo_data)
    store: S3BlobStore = node.blobs
    store.put("document-ghost-v1.tdf", b"ciphertext of a document that never was")
    assert node.documents.sweep(datetime.now(UTC)) == []
    later = Clock()
    later.now += store.options.grace + timedelta(minutes=5)
    aged = S3BlobStore(store.options, store.staging, clock=later)
    node.documents._blobs = aged
    assert node.documents.sweep(later.now) == ["document-ghost-v1.tdf"]
    assert not aged.exists("document-ghost-v1.tdf")
    kept = [k for k in aged.keys() if k.startswith("document-")]  # noqa: SIM118
    assert kept  # the demo's documents, named by their rows, stay
    node.db.dispose()


def test_throughput_is_reported(store: S3BlobStore, tmp_path: Path) -> None:
    """Not a gate: prints local vs S3 write/read rates for a 24 MiB blob (-s shows)."""
    import time

    data = os.urandom(24 * MiB)
    local = LocalBlobStore(tmp_path / "local")
    rates: dict[str, float] = {}
    for name, target in (("local", local), ("s3", store)):
        start = time.perf_counter()
        target.put("big", io.BytesIO(data))
        rates[f"{name} write"] = len(data) / MiB / (time.perf_counter() - start)
        start = time.perf_counter()
        with target.open("big") as f:
            assert f.read() == data
        rates[f"{name} read"] = len(data) / MiB / (time.perf_counter() - start)
    print({k: f"{v:.0f} MiB/s" for k, v in rates.items()})
