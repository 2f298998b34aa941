"""C2SP tlog-witness ``add-checkpoint`` on /api/v1/audit/witness: a partner node
cosigns only what extends what it cosigned before."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.audit import NoteSigner, TransparencyLog
from relto.audit.note import open_note, parse_verifier
from relto.config import Settings
from relto.server import create_app
from relto.store import create_database

from .conftest import T0, Clock, fill

URL = "/api/v1/audit/witness/add-checkpoint"


@pytest.fixture
def partner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_signer: NoteSigner
) -> Iterator[tuple[TestClient, Path]]:
    monkeypatch.setenv("RELTO_AUDIT_WITNESS_LOGS", log_signer.verifier().vkey)
    data = tmp_path / "aus"
    db = create_database(f"sqlite:///{data / 'relto.db'}")
    settings = Settings(
        demo=False,
        data_dir=data,
        nation="AUS",
        secret_key="witness-http-secret-key-8c41",
        keystore_passphrase="witness-http-keystore-passphrase",
    )
    app = create_app(settings, db=db)
    with TestClient(app) as c:
        yield c, data


def _body(old: int, proof: tuple[bytes, ...], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


def test_partner_node_witnesses_over_http(
    tmp_path: Path, partner: tuple[TestClient, Path], log_signer: NoteSigner
) -> None:
    c, data = partner
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'gbr.db'}"), clock=Clock())
    fill(log, 5)
    first = log.sign_checkpoint(log_signer, T0)
    r = c.post(URL, content=_body(0, (), first))
    assert r.status_code == 200, r.text
    cosigner = parse_verifier(
        NoteSigner.from_skey((data / "audit" / "witness.key").read_text().strip())
        .cosignature_verifier()
        .vkey
    )
    opened = open_note(first + r.text, [cosigner])
    assert opened.timestamps  # a cosignature/v1 from the partner's witness key

    fill(log, 6, 5)
    second = log.sign_checkpoint(log_signer, T0)
    # Wrong old size: 409 and the witness's size.
    r = c.post(URL, content=_body(0, (), second))
    assert r.status_code == 409 and r.text == "5\n"
    assert r.headers["content-type"].startswith("text/x.tlog.size")
    # A proof that does not lead from 5 to 11: 422.
    bad = log.consistency_proof(4, 11).proof
    assert c.post(URL, content=_body(5, bad, second)).status_code == 422
    good = log.consistency_proof(5, 11).proof
    assert c.post(URL, content=_body(5, good, second)).status_code == 200
    # Rollback: old size beyond the checkpoint.
    assert c.post(URL, content=_body(11, (), first)).status_code == 400


def test_partner_refuses_fork_unknown_log_and_forgery(
    tmp_path: Path, partner: tuple[TestClient, Path], log_signer: NoteSigner
) -> None:
    c, _ = partner
    honest = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'h.db'}"), clock=Clock())
    forked = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'f.db'}"), clock=Clock())
    fill(honest, 4)
    forked.append("decision", {"rewritten": True}, T0)
    fill(forked, 3, 1)
    assert (
        c.post(URL, content=_body(0, (), honest.sign_checkpoint(log_signer, T0))).status_code == 200
    )
    split = forked.sign_checkpoint(log_signer, T0)  # same size 4, other root
    assert c.post(URL, content=_body(4, (), split)).status_code == 409
    stranger = NoteSigner.generate("other.example/log")
    assert (
        c.post(URL, content=_body(0, (), honest.sign_checkpoint(stranger, T0))).status_code == 404
    )
    impostor = NoteSigner.generate(log_signer.name)
    fill(honest, 1, 4)
    assert (
        c.post(URL, content=_body(4, (), honest.sign_checkpoint(impostor, T0))).status_code == 403
    )
    assert c.post(URL, content=b"garbage").status_code == 400
    assert c.post(URL, content=b"old 01\n\nx\n").status_code == 400
