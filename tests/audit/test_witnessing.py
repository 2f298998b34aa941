"""Mutual witnessing driven by the pins: a federated node witnesses the logs of the
partners it pins (and stops when it untrusts one)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.audit import NoteSigner, TransparencyLog
from relto.audit.note import open_note
from relto.audit.witnessing import Partner, known_logs
from relto.authz import Principal
from relto.config import Settings
from relto.federation import AttestationKey, SigningKey, make_descriptor
from relto.node import Node
from relto.server import create_app
from relto.store import create_database
from relto.vetting import Person, Role

from .conftest import T0, Clock, fill

URL = "/api/v1/audit/witness/add-checkpoint"
SECRET = SecretStr("witnessing-test-secret-0123456789")


def _body(old: int, proof: tuple[bytes, ...], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


def _settings(nation: str, data: Path, port: int) -> Settings:
    return Settings(
        nation=nation, data_dir=data, port=port, secret_key=SECRET, keystore_passphrase=SECRET
    )  # type: ignore[call-arg]


def _officer(node: Node) -> Principal:
    """A security officer of the node's nation (registered on first use)."""
    pid = f"{node.settings.nation.lower()}-so-witnessing"
    if node.directory.principal(pid, via="node") is None:
        node.vetting.register_person(
            Person(pid, "Officer", frozenset({node.settings.nation}), "MOD",
                   node.settings.nation, frozenset({Role.SECURITY_OFFICER})),
            at=datetime.now(UTC), actor="test-setup",
        )  # fmt: skip
    who = node.directory.principal(pid, via="node")
    assert who is not None
    return who


@dataclass
class Stranger:
    """A partner node that exists only as its keys: its log is a local one."""

    nation: str
    log_signer: NoteSigner
    node_key: SigningKey
    witness_signer: NoteSigner

    @classmethod
    def make(cls, nation: str, log_name: str | None = None) -> Stranger:
        return cls(
            nation,
            NoteSigner.generate(log_name or f"relto/{nation.lower()}/audit"),
            SigningKey.generate(),
            NoteSigner.generate(f"relto/{nation.lower()}/witness"),
        )

    def descriptor(self) -> str:
        now = datetime.now(UTC)
        return make_descriptor(
            nation=self.nation,
            base_url=f"https://relto.{self.nation.lower()}.example",
            node_key=self.node_key.public,
            kas_keys=[],
            log_key=self.log_signer.verifier().vkey,
            witness_key=self.witness_signer.cosignature_verifier().vkey,
            attestation_keys=[AttestationKey("att-1", SigningKey.generate("P-256").public)],
            issued_at=now - timedelta(minutes=1),
            not_after=now + timedelta(days=30),
            signing_key=self.node_key,
        )

    def pin_on(self, node: Node) -> None:
        node.trust.pin(
            self.descriptor(), fingerprint=self.node_key.fingerprint, actor=_officer(node),
            now=datetime.now(UTC),
        )  # fmt: skip


@pytest.fixture
def gbr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Node]]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    app = create_app(_settings("GBR", tmp_path / "gbr", 18999))
    node: Node = app.state.node
    assert node.federation is not None  # a loopback address: a federated node
    with TestClient(app) as client:
        yield client, node
    node.db.dispose()


def _partner(p: Stranger) -> Partner:
    return Partner(p.nation, "https://x.example", p.log_signer.verifier().vkey,
                   p.witness_signer.cosignature_verifier().vkey)  # fmt: skip


# -- 1. witness what the pins say ----------------------------------------------------------


def test_pinned_partners_log_is_witnessed_without_static_configuration(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, node = gbr
    usa = Stranger.make("USA")
    usa.pin_on(node)
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    fill(log, 4)
    note = log.sign_checkpoint(usa.log_signer, T0)
    r = client.post(URL, content=_body(0, (), note))
    assert r.status_code == 200, r.text
    assert node.witness is not None
    cosigner = node.witness.signer.cosignature_verifier()
    assert open_note(note + r.text, [cosigner]).timestamps  # cosigned by GBR's witness key


def test_unpinned_nations_log_is_not_witnessed(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, _ = gbr
    jpn = Stranger.make("JPN")  # never pinned
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'jpn.db'}"), clock=Clock())
    fill(log, 2)
    r = client.post(URL, content=_body(0, (), log.sign_checkpoint(jpn.log_signer, T0)))
    assert r.status_code == 404


def test_untrusted_partner_is_no_longer_witnessed(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, node = gbr
    usa = Stranger.make("USA")
    usa.pin_on(node)
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    fill(log, 3)
    first = log.sign_checkpoint(usa.log_signer, T0)
    assert client.post(URL, content=_body(0, (), first)).is_success
    node.trust.unpin("USA", actor=_officer(node), now=datetime.now(UTC))
    fill(log, 2, 3)
    proof = log.consistency_proof(3, 5).proof
    r = client.post(URL, content=_body(3, proof, log.sign_checkpoint(usa.log_signer, T0)))
    assert r.status_code == 404  # an untrust stops the witnessing at once


def test_partner_claiming_another_logs_origin_is_witnessed_for_neither() -> None:
    usa = Stranger.make("USA")
    impostor = Stranger.make("JPN", log_name="relto/usa/audit")  # claims USA's origin
    honest = known_logs({}, [_partner(usa)])
    assert set(honest) == {"relto/usa/audit"}
    assert known_logs({}, [_partner(usa), _partner(impostor)]) == {}
    # nor can a pin take over a log configured by hand
    static = {"relto/usa/audit": usa.log_signer.verifier()}
    assert known_logs(static, [_partner(impostor)]) == {}
