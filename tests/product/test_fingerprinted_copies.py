"""Every copy that leaves the node is the recipient's own, recorded before it leaves
(issue 17): the copy ledger, the sealed tracing secret, the ``trace.copy`` entry,
and the download paths (REST, console) that now release copies only."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.events import MemorySink
from relto.tracing import code_parameters
from relto.tracing.copies import COPY_KIND, FINGERPRINT_ASSERTION_ID, CopyIssuer
from relto.ztdf import parse_manifest

from .conftest import node_of
from .tracing_fakes import FakeEmbedder, load_pages, page_of

Login = Callable[[TestClient, str], str]
PLAIN = b"flight 8 plan: apogee 41 km, dwell 210 s"


def upload(
    client: TestClient, login: Login, media: str = "text/plain", name: str = "plan.txt"
) -> str:
    csrf = login(client, "gbr-eng-harper")
    r = client.post(
        "/api/v1/objects",
        data={
            "title": "Flight 8 plan",
            "project_id": "hypersonic",
            "classification": "SECRET",
            "rel_to": ["USA", "AUS"],
        },
        files={"file": (name, PLAIN, media)},
        headers={"x-csrf-token": csrf},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def copies(client: TestClient) -> CopyIssuer:
    issuer = node_of(client).copies
    assert issuer is not None
    return issuer


@pytest.fixture
def faked(demo_app: TestClient) -> Iterator[FakeEmbedder]:
    fake = FakeEmbedder()
    node = node_of(demo_app)
    assert node.copies is not None and node.tracing is not None
    node.copies.embedders = (fake,)
    node.tracing.load_pages = load_pages
    yield fake


def copy_entries(sink: MemorySink) -> list[Mapping[str, Any]]:
    return [e.payload for e in sink.events if e.kind == COPY_KIND]


def test_download_is_the_recipients_own_copy_never_the_plaintext(
    demo_app: TestClient, login: Login, sink: MemorySink, faked: FakeEmbedder
) -> None:
    doc = upload(demo_app, login)
    login(demo_app, "usa-eng-ramirez")
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code == 200, r.text
    assert r.content != PLAIN and PLAIN not in r.content
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-relto-copy"] == "1" and r.headers["cache-control"] == "no-store"
    assert 'filename="plan.pdf"' in r.headers["content-disposition"]
    page = page_of(r.content)
    assert page["recipient"] == "Carlos Ramirez" and page["copy"] == 1
    assert page["banner"] == "SECRET//REL TO GBR, AUS, USA"
    (entry,) = copy_entries(sink)
    assert entry["object"] == doc and entry["recipient"] == "usa-eng-ramirez"
    assert entry["nation"] == "USA" and entry["copy"] == 1 and entry["recipient_index"] == 0
    assert entry["media_type"] == "application/pdf" and len(entry["codeword_sha256"]) == 64


def test_no_request_option_returns_the_raw_plaintext(
    demo_app: TestClient, login: Login, faked: FakeEmbedder
) -> None:
    doc = upload(demo_app, login)
    login(demo_app, "usa-eng-ramirez")
    for params, headers in (
        ({"raw": "1"}, {}),
        ({"format": "original"}, {"accept": "text/plain"}),
        ({}, {"accept": "application/octet-stream"}),
    ):
        r = demo_app.get(f"/api/v1/objects/{doc}/content", params=params, headers=headers)
        assert r.status_code == 200 and PLAIN not in r.content


def test_console_download_is_a_copy_too(
    demo_app: TestClient, login: Login, sink: MemorySink, faked: FakeEmbedder
) -> None:
    doc = upload(demo_app, login)
    csrf = login(demo_app, "gbr-so-whitfield")
    r = demo_app.post(f"/console/documents/{doc}/download", data={"csrf": csrf})
    assert r.status_code == 200 and PLAIN not in r.content, r.text[-3000:]
    assert page_of(r.content)["recipient"] == "James Whitfield"
    assert [e["recipient"] for e in copy_entries(sink)] == ["gbr-so-whitfield"]


def test_recipient_index_given_once_and_copies_numbered_per_object(
    demo_app: TestClient, login: Login, sink: MemorySink, faked: FakeEmbedder
) -> None:
    doc = upload(demo_app, login)
    for person in ("usa-eng-ramirez", "gbr-so-whitfield", "usa-eng-ramirez"):
        login(demo_app, person)
        assert demo_app.get(f"/api/v1/objects/{doc}/content").status_code == 200
    got = [(e["recipient"], e["recipient_index"], e["copy"]) for e in copy_entries(sink)]
    assert got == [
        ("usa-eng-ramirez", 0, 1),
        ("gbr-so-whitfield", 1, 2),
        ("usa-eng-ramirez", 0, 3),
    ]
    # the same recipient's copies carry the same codeword; another's differs
    words = [e["codeword_sha256"] for e in copy_entries(sink)]
    assert words[0] == words[2] != words[1]


def test_binary_without_embedder_is_a_container_reprotected_for_the_recipient(
    demo_app: TestClient, login: Login, sink: MemorySink
) -> None:
    doc = upload(demo_app, login, media="application/octet-stream", name="plan.bin")
    login(demo_app, "usa-eng-ramirez")
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert PLAIN not in r.content
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        manifest = parse_manifest(z.read("0.manifest.json"))
    (mark,) = [a for a in manifest.assertions if a.id == FINGERPRINT_ASSERTION_ID]
    statement = json.loads(mark.statement.value)
    (entry,) = copy_entries(sink)
    assert statement["copy"] == entry["copy"] == 1
    assert statement["codeword_sha256"] == entry["codeword_sha256"]
    assert statement["object"] == doc and entry["method"] == "container"
    policy = json.loads(base64.b64decode(manifest.encryption_information.policy))
    assert policy["body"]["dissem"] == ["usa-eng-ramirez"]  # the recipient alone
    original = node_of(demo_app).documents.visible(
        node_of(demo_app).directory.principal("usa-eng-ramirez", via="session"),  # type: ignore[arg-type]
        doc,
    )
    assert policy["uuid"] == original.policy_uuid  # decided by the KAS as the object


def test_download_without_copy_record_is_impossible(
    demo_app: TestClient, login: Login, sink: MemorySink, faked: FakeEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    doc = upload(demo_app, login)
    original = sink.record

    def refuse_copies(kind: str, payload: Mapping[str, Any]) -> None:
        if kind == COPY_KIND:
            raise OSError("log disk full")
        original(kind, payload)

    monkeypatch.setattr(sink, "record", refuse_copies)
    login(demo_app, "usa-eng-ramirez")
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code >= 500 and PLAIN not in r.content
    assert faked.embedded  # the copy was made ...
    assert page_of(r.content) == {}  # ... and not released
    assert copies(demo_app).copies(doc, [0]) == []  # nor its ledger row kept
    monkeypatch.setattr(sink, "record", original)
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code == 200 and r.headers["x-relto-copy"] == "1"  # the number was not used


def test_node_without_copy_maker_refuses_every_download(demo_app: TestClient, login: Login) -> None:
    doc = upload(demo_app, login)
    service = node_of(demo_app).documents
    service._copies = None  # a node wired without one
    login(demo_app, "usa-eng-ramirez")
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code >= 500 and PLAIN not in r.content


def test_recipient_past_the_code_size_refused_and_nothing_released(
    demo_app: TestClient, login: Login, sink: MemorySink, faked: FakeEmbedder
) -> None:
    doc = upload(demo_app, login)
    copies(demo_app).params = code_parameters(c=2, n=2, epsilon=1e-3)
    for person in ("usa-eng-ramirez", "gbr-so-whitfield"):
        login(demo_app, person)
        assert demo_app.get(f"/api/v1/objects/{doc}/content").status_code == 200
    login(demo_app, "gbr-eng-harper")
    r = demo_app.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code == 422 and "2 recipients" in r.json()["error"]["message"]
    assert [e["recipient"] for e in copy_entries(sink)] == ["usa-eng-ramirez", "gbr-so-whitfield"]
    login(demo_app, "usa-eng-ramirez")  # those already given an index still get copies
    assert demo_app.get(f"/api/v1/objects/{doc}/content").status_code == 200


def test_tracing_secret_never_stored_in_clear(
    demo_app: TestClient, login: Login, faked: FakeEmbedder, tmp_path: Path
) -> None:
    doc = upload(demo_app, login)
    login(demo_app, "usa-eng-ramirez")
    assert demo_app.get(f"/api/v1/objects/{doc}/content").status_code == 200
    secret = copies(demo_app).secret(doc)
    assert secret is not None and len(secret) == 32
    node = node_of(demo_app)
    db_file = Path(str(node.db.engine.url.database))
    with sqlite3.connect(db_file) as conn:
        kid, method, wrapped = conn.execute(
            "SELECT kid, method, wrapped FROM tracing_secret WHERE document_id = ?", (doc,)
        ).fetchone()
    assert method == "wrapped" and kid == node.kas.service.store.active("rsa:2048").kid
    assert secret not in bytes(wrapped) and len(bytes(wrapped)) == 256  # RSA-2048 OAEP
    node.db.engine.dispose()
    for path in db_file.parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret not in data and secret.hex().encode() not in data, path
