"""Tracing a leaked file to the recipients whose copies made it (issue 17): who may
trace, what a trace answers and proves, and that every run is recorded. The
embedder is the tests' fake (its copies carry the codeword in clear); the
accusation, the ledger, the sealed secret and the log are the product's."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.audit.checkpoint import open_checkpoint
from relto.audit.config import node_signer
from relto.audit.entries import decode_entry
from relto.audit.merkle import leaf_hash, verify_inclusion
from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app
from relto.tracing import TracingCode
from relto.tracing.copies import COPY_KIND, embedding_key
from relto.tracing.service import RUN_KIND

from .conftest import node_of, sign_in
from .test_fingerprinted_copies import upload
from .tracing_fakes import MAGIC, FakeEmbedder, leak, load_pages, page_of

Login = Callable[[TestClient, str], str]


def fake(client: TestClient) -> None:
    node = node_of(client)
    assert node.copies is not None and node.tracing is not None
    node.copies.embedders = (FakeEmbedder(),)
    node.tracing.load_pages = load_pages


def download(client: TestClient, person: str, doc: str) -> dict[str, Any]:
    sign_in(client, person)
    r = client.get(f"/api/v1/objects/{doc}/content")
    assert r.status_code == 200, r.text
    return page_of(r.content)


def trace(client: TestClient, person: str, leaked: bytes, object_id: str | None = None) -> Any:
    csrf = sign_in(client, person)
    data = {} if object_id is None else {"object_id": object_id}
    return client.post(
        "/api/v1/trace",
        data=data,
        files={"file": ("leak.pdf", leaked, "application/pdf")},
        headers={"x-csrf-token": csrf},
    )


def runs(sink: MemorySink) -> list[Mapping[str, Any]]:
    return [e.payload for e in sink.events if e.kind == RUN_KIND]


@pytest.fixture
def app(demo_app: TestClient) -> TestClient:
    fake(demo_app)
    return demo_app


def test_leaked_copy_traced_to_its_recipient(app: TestClient, login: Login) -> None:
    doc = upload(app, login)
    pages = {p: download(app, p, doc) for p in ("usa-eng-ramirez", "gbr-so-whitfield")}
    r = trace(app, "gbr-aud-patel", leak([pages["usa-eng-ramirez"]]))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["object_id"] == doc and got["conclusive"]
    (accused,) = got["accused"]
    assert accused["person_id"] == "usa-eng-ramirez" and accused["nation"] == "USA"
    assert accused["score"] >= got["threshold"] > 100
    assert got["false_accusation_bound"] == 1e-3
    assert got["bits_read"] == got["code_length"] == 840 and got["bits_erased"] == 0
    assert got["unassigned_accused"] == [] and got["recipients"] == 2
    (copy,) = accused["copies"]
    assert copy["copy_number"] == 1 and copy["media_type"] == "application/pdf"


def test_colluders_mixing_their_copies_are_traced_and_no_innocent(
    app: TestClient, login: Login
) -> None:
    doc = upload(app, login)
    people = ("usa-eng-ramirez", "gbr-so-whitfield", "gbr-eng-harper")
    pages = [download(app, p, doc) for p in people]
    got = trace(app, "gbr-so-whitfield", leak(pages[:2]), doc).json()
    accused = {a["person_id"] for a in got["accused"]}
    assert "usa-eng-ramirez" in accused and "gbr-eng-harper" not in accused


def test_trace_of_unrelated_file_accuses_nobody(
    app: TestClient, login: Login, sink: MemorySink
) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    unrelated = trace(app, "gbr-so-whitfield", b"%PDF-1.7 a memo about lunch").json()
    assert unrelated["object_id"] is None and unrelated["accused"] == []
    assert not unrelated["conclusive"] and "nobody" in unrelated["verdict"]
    # a file that looks like the object but carries no copy's codeword
    forged = MAGIC + json.dumps({**page, "bits": "01" * 420}).encode()
    got = trace(app, "gbr-so-whitfield", forged, doc).json()
    assert got["object_id"] == doc and got["accused"] == [] and got["unassigned_accused"] == []
    assert "too weak" in got["verdict"]


def test_too_little_read_accuses_nobody(app: TestClient, login: Login) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    got = trace(app, "gbr-so-whitfield", leak([page], keep=0.019), doc).json()
    assert got["bits_read"] == 15 and got["bits_erased"] == 825
    assert got["accused"] == [] and not got["conclusive"] and "too weak" in got["verdict"]


def test_unassigned_index_accused_is_reported_as_something_wrong(
    app: TestClient, login: Login
) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    issuer = node_of(app).copies
    assert issuer is not None
    secret = issuer.secret(doc)
    assert secret is not None
    word = TracingCode(secret, issuer.params).codeword(4321)  # given to nobody
    bits = "".join(str((word[i // 8] >> (i % 8)) & 1) for i in range(issuer.params.length))
    key = hashlib.sha256(embedding_key(secret, issuer.params)).hexdigest()[:16]
    assert key == page["key"]
    got = trace(app, "gbr-so-whitfield", MAGIC + json.dumps({**page, "bits": bits}).encode())
    body = got.json()
    assert body["accused"] == [] and [u["recipient_index"] for u in body["unassigned_accused"]] == [
        4321
    ]
    assert body["conclusive"] and "forgery" in body["verdict"]


@pytest.mark.parametrize("person", ["gbr-eng-harper", "usa-so-bennett", "gbr-vo-okafor"])
def test_trace_by_unauthorised_person_refused_and_not_revealing(
    app: TestClient, login: Login, sink: MemorySink, person: str
) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    answers = []
    for leaked, object_id in (
        (leak([page]), doc),
        (leak([page]), None),
        (b"nothing", "no-such-object"),
    ):
        r = trace(app, person, leaked, object_id)
        assert r.status_code == 404
        answers.append(r.json()["error"]["message"])
    assert len(set(answers)) == 1 and "Ramirez" not in "".join(answers)
    assert runs(sink) == []  # nothing traced ...
    refused = [
        e.payload
        for e in sink.events
        if e.kind == "authz.decision" and e.payload["permission"] == "tracing:trace"
    ]
    assert len(refused) == 3 and not any(p["allowed"] for p in refused)  # ... every try seen


def test_every_trace_run_is_audited(app: TestClient, login: Login, sink: MemorySink) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    leaked = leak([page])
    trace(app, "gbr-aud-patel", leaked)
    trace(app, "gbr-so-whitfield", b"%PDF unrelated")
    first, second = runs(sink)
    assert first["by"] == "gbr-aud-patel" and first["nation"] == "GBR"
    assert first["file_sha256"] == hashlib.sha256(leaked).hexdigest()
    assert first["object"] == doc and first["conclusive"]
    assert [a["person_id"] for a in first["accused"]] == ["usa-eng-ramirez"]
    assert first["bits_read"] == 840 and first["false_accusation_bound"] == 1e-3
    assert second["by"] == "gbr-so-whitfield" and second["object"] is None
    assert second["accused"] == [] and not second["conclusive"]


@pytest.fixture
def logged_app(tmp_path: Path, demo_template: Path) -> Iterator[TestClient]:
    """A demo node recording to its own transparency log (the product's sink)."""
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    app = create_app(Settings(demo=True, data_dir=data))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        fake(client)
        yield client
    app.state.node.db.dispose()


def test_copy_entry_has_inclusion_proof(logged_app: TestClient, login: Login) -> None:
    app = logged_app
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    got = trace(app, "gbr-so-whitfield", leak([page]), doc).json()
    (accused,) = got["accused"]
    (copy,) = accused["copies"]
    assert copy["unproven"] == "" and copy["inclusion_proof"]
    node = node_of(app)
    # checked here from what the answer says, with the node's public log key only
    signed = open_checkpoint(copy["checkpoint"], node_signer(node.settings).verifier())
    assert signed.checkpoint.size == copy["tree_size"] > copy["log_index"]
    (stored,) = node.log.entries(copy["log_index"], copy["log_index"] + 1)
    entry = decode_entry(stored.body)
    assert entry.kind == COPY_KIND and dict(entry.payload) == copy["entry"]
    assert entry.payload["recipient"] == "usa-eng-ramirez" and entry.payload["copy"] == 1
    assert leaf_hash(stored.body).hex() == copy["leaf_hash"]
    verify_inclusion(
        copy["log_index"],
        copy["tree_size"],
        bytes.fromhex(copy["leaf_hash"]),
        [bytes.fromhex(h) for h in copy["inclusion_proof"]],
        signed.checkpoint.root,
    )
    # and the run itself is in the log
    (run,) = node.log.entries(got["log_index"], got["log_index"] + 1)
    assert decode_entry(run.body).kind == RUN_KIND


def test_console_trace_page_shown_only_to_tracers_and_names_the_recipient(
    app: TestClient, login: Login, sink: MemorySink
) -> None:
    doc = upload(app, login)
    page = download(app, "usa-eng-ramirez", doc)
    sign_in(app, "gbr-eng-harper")
    assert 'href="/console/trace"' not in app.get("/console").text
    assert app.get("/console/trace").status_code == 404
    csrf = sign_in(app, "gbr-aud-patel")
    assert 'href="/console/trace"' in app.get("/console").text
    form = app.get("/console/trace")
    assert form.status_code == 200 and 'id="trace-form"' in form.text
    r = app.post(
        "/console/trace",
        data={"csrf": csrf, "object_id": ""},
        files={"file": ("leak.pdf", leak([page]), "application/pdf")},
    )
    assert r.status_code == 200, r.text
    assert 'id="trace-verdict"' in r.text and "Accused: usa-eng-ramirez." in r.text
    assert 'data-person="usa-eng-ramirez"' in r.text and "SECRET" in r.text  # page marked
    assert [e["by"] for e in runs(sink)] == ["gbr-aud-patel"]
    # a form without its CSRF token changes nothing and traces nothing
    r = app.post(
        "/console/trace", data={}, files={"file": ("leak.pdf", leak([page]), "application/pdf")}
    )
    assert r.status_code == 403 and len(runs(sink)) == 1


# -- end to end with the product's own embedders (no fakes) ---------------------------

_VOCABULARY = (
    "the of and to in a is that for it as was with be by on not this are or from at which "
    "but have an they were there been one all their has would when if so no will can more "
    "other its into time only could new them some these then report sector liaison bridge"
)
_WORDS = _VOCABULARY.split()


def _plan(paragraphs: int = 60) -> bytes:
    rng = random.Random(17)
    body = "\n\n".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(40, 90))) + "."
        for _ in range(paragraphs)
    )
    return ("# Flight 8 test plan\n\n" + body).encode()


@pytest.mark.slow
def test_leaked_pdf_copy_traced_with_the_products_embedders(
    tmp_path: Path, demo_template: Path, sink: MemorySink
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    app = create_app(Settings(demo=True, data_dir=data), sink=sink)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        csrf = sign_in(client, "gbr-eng-harper")
        r = client.post(
            "/api/v1/objects",
            data={"title": "Flight 8 plan", "project_id": "hypersonic",
                  "classification": "SECRET", "rel_to": ["USA"]},
            files={"file": ("plan.md", _plan(), "text/markdown")},
            headers={"x-csrf-token": csrf},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        doc = r.json()["id"]
        copies = {}
        for person in ("usa-eng-ramirez", "gbr-so-whitfield"):
            sign_in(client, person)
            got = client.get(f"/api/v1/objects/{doc}/content")
            assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
            assert got.content.startswith(b"%PDF") and b"flight 8" not in got.content.lower()
            copies[person] = got.content
        assert copies["usa-eng-ramirez"] != copies["gbr-so-whitfield"]
        found = trace(client, "gbr-aud-patel", copies["usa-eng-ramirez"]).json()
        assert found["object_id"] == doc, found
        assert [a["person_id"] for a in found["accused"]] == ["usa-eng-ramirez"], found
        assert found["bits_read"] > 600 and found["unassigned_accused"] == []
    app.state.node.db.dispose()
