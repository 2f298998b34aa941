"""Storage that fails: a full disk or a read-only database is 503 with the uniform
body (no path, no driver message) on every route, /healthz says which part failed,
and the public checkpoint is not signed on every request."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from relto.audit.checkpoint import CheckpointPublisher
from relto.config import Settings
from relto.server import create_app

SECRET = SecretStr("storage-test-secret-Vq7#xP2m!Lr9")
HIDDEN = "/srv/relto/very-private-folder"


def _app(data: Path, **extra: Any) -> FastAPI:
    return create_app(
        Settings(data_dir=data, secret_key=SECRET, keystore_passphrase=SECRET, **extra)
    )


def _read_only(engine: Any) -> None:
    """From now on the database refuses every write, as a read-only file would."""

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    engine.dispose()


def _assert_uniform_503(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert r.json()["error"]["message"] == "storage unavailable"
    assert HIDDEN not in r.text and "sqlite" not in r.text.lower()


# -- the public checkpoint ---------------------------------------------------------------


def test_checkpoint_flood_does_not_sign_per_request() -> None:
    now = [100.0]
    size = [5]
    signed: list[int] = []

    def sign() -> str:
        signed.append(size[0])
        return f"origin\n{size[0]}\nroot\n\n- sig\n"

    pub = CheckpointPublisher(lambda: size[0], sign, interval=1.0, clock=lambda: now[0])
    for _ in range(1000):
        pub.current()
    assert signed == [5]
    size[0] = 9  # the log grew, but within the interval: the last one is served
    assert pub.current().startswith("origin\n5\n")
    now[0] += 1.5
    assert pub.current().startswith("origin\n9\n")
    now[0] += 10  # no growth: nothing new to sign
    pub.current()
    assert signed == [5, 9]


def test_checkpoint_route_serves_the_stored_checkpoint(tmp_path: Path) -> None:
    app = _app(tmp_path / "d")
    client = TestClient(app)
    first = client.get("/api/v1/audit/checkpoint")
    assert first.status_code == 200
    for _ in range(20):
        assert client.get("/api/v1/audit/checkpoint").text == first.text
    assert len(app.state.node.log.checkpoints()) <= 1


def test_checkpoint_on_failing_storage_is_503_not_500(tmp_path: Path) -> None:
    app = _app(tmp_path / "d", audit_checkpoint_interval=0.0)
    client = TestClient(app, raise_server_exceptions=False)
    log = app.state.node.log
    for i in range(200):
        log.append("test.filler", {"i": i, "pad": "x" * 2000})
    _read_only(log.db.engine)  # SQLite itself refuses the checkpoint's write
    _assert_uniform_503(client.get("/api/v1/audit/checkpoint"))


# -- /healthz ------------------------------------------------------------------------


def test_healthz_reports_an_unwritable_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "d"
    app = _app(data, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    client = TestClient(app)
    assert client.get("/healthz").json()["storage"] == "ok"
    shutil.rmtree(data)
    data.write_text("not a folder any more")  # every write below it now fails for real
    r = client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["storage"] == "unwritable"
    assert body["database"] == "ok"
    assert str(tmp_path) not in r.text


def test_healthz_reports_a_database_that_refuses_writes(tmp_path: Path) -> None:
    app = _app(tmp_path / "d")
    client = TestClient(app)
    assert client.get("/healthz").status_code == 200
    _read_only(app.state.node.db.engine)
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"] == "unwritable"
    assert r.json()["storage"] == "ok"


# -- every route ----------------------------------------------------------------------


STORAGE_ERRORS = [
    OSError(errno.ENOSPC, "No space left on device", f"{HIDDEN}/blob"),
    OSError(errno.EROFS, "Read-only file system", HIDDEN),
    sqlite3.OperationalError("database or disk is full"),
    OperationalError("INSERT INTO secrets", {}, sqlite3.OperationalError("disk I/O error")),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    app = _app(tmp_path_factory.mktemp("routes"))

    @app.get("/fail/{n}")
    def fail(n: int) -> None:
        raise STORAGE_ERRORS[n]

    @app.get("/wrapped")
    def wrapped() -> None:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", HIDDEN)
        except OSError as exc:
            raise RuntimeError("could not store the blob") from exc

    @app.get("/missing")
    def missing() -> None:
        raise FileNotFoundError(errno.ENOENT, "nope", HIDDEN)

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("n", range(len(STORAGE_ERRORS)))
def test_full_disk_on_any_route_is_503_without_detail(client: TestClient, n: int) -> None:
    _assert_uniform_503(client.get(f"/fail/{n}"))


def test_full_disk_under_another_error_is_503(client: TestClient) -> None:
    _assert_uniform_503(client.get("/wrapped"))


def test_a_bug_is_still_a_500_not_an_outage(client: TestClient) -> None:
    r = client.get("/missing")
    assert r.status_code == 500
    assert HIDDEN not in r.text


def test_full_disk_behind_the_kas_front_door_is_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full(**kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", HIDDEN)

    rt = client.app.state.node.kas  # type: ignore[attr-defined]
    monkeypatch.setattr(rt, "handle_rewrap_async", full)
    r = client.post(
        "/kas.AccessService/Rewrap",
        json={"signedRequestToken": "x.y.z"},
        headers={"authorization": "Bearer x"},
    )
    _assert_uniform_503(r)
