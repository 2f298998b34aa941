"""A node whose S3 object store goes down mid-run (a real SeaweedFS, killed): uploads
and downloads are a clear 503 with Retry-After, never the endpoint, a key id or a
secret; nothing is committed to the database; /healthz says the blobs are down."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE
from s3_testing import S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, SeaweedS3

pytestmark = pytest.mark.xdist_group("s3")


def _sign_in(client: TestClient, person_id: str) -> str:
    page = client.get("/login").text
    form = page.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/login", data={"person_id": person_id, "next": "/console", "csrf": form})
    assert r.status_code == 303, r.text
    signer = client.app.state.edge.auth.signer  # type: ignore[attr-defined]
    return str(signer.csrf(client.cookies.get(SESSION_COOKIE)))


def _upload(client: TestClient, csrf: str, body: bytes) -> object:
    return client.post(
        "/api/v1/objects",
        data={"title": "Flight 9", "project_id": "hypersonic", "classification": "SECRET",
              "rel_to": ["USA"]},
        files={"file": ("f9.txt", body, "text/plain")},
        headers={"x-csrf-token": csrf},
    )  # fmt: skip


def test_store_down_gives_clear_503_without_secrets(
    tmp_path: Path, own_s3_server: SeaweedS3
) -> None:
    bucket = own_s3_server.bucket("relto-down")
    settings = Settings(
        demo=True,
        data_dir=tmp_path / "data",
        blob_store=f"s3://{bucket}/node-gbr",
        s3_endpoint_url=own_s3_server.endpoint,
        s3_access_key_id=SecretStr(S3_ACCESS_KEY_ID),
        s3_secret_access_key=SecretStr(S3_SECRET_ACCESS_KEY),
        s3_max_attempts=2,
        s3_connect_timeout=1.0,
        s3_read_timeout=5.0,
    )
    app = create_app(settings, sink=MemorySink())
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    csrf = _sign_in(client, "gbr-eng-harper")
    up = _upload(client, csrf, b"flight 9 plan")
    assert up.status_code == 201, up.text  # type: ignore[attr-defined]
    doc_id = up.json()["id"]  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/objects/{doc_id}/content").status_code == 200
    listed = {o["id"] for o in client.get("/api/v1/objects?limit=200").json()["items"]}
    assert client.get("/healthz").json()["blobs"] == "ok"

    own_s3_server.stop()  # the object store goes down

    for r in (
        _upload(client, csrf, b"flight 10 plan"),
        client.get(f"/api/v1/objects/{doc_id}/content"),
    ):
        assert r.status_code == 503, r.text  # type: ignore[attr-defined]
        error = r.json()["error"]  # type: ignore[attr-defined]
        assert (error["code"], error["message"]) == ("unavailable", "storage unavailable")
        assert r.headers["retry-after"]  # type: ignore[attr-defined]
        for secret in (S3_SECRET_ACCESS_KEY, S3_ACCESS_KEY_ID, own_s3_server.endpoint, bucket):
            assert secret not in r.text  # type: ignore[attr-defined]
    # Nothing was committed for the refused upload, and nothing of it is left on disk.
    after = {o["id"] for o in client.get("/api/v1/objects?limit=200").json()["items"]}
    assert after == listed
    assert list((tmp_path / "data" / "blob-staging").iterdir()) == []
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["blobs"] == "down"
    app.state.node.db.dispose()
