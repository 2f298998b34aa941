"""The console's audit page says how far partners witnessed the log, against the
number of cosignatures the node requires (``RELTO_AUDIT_MIN_COSIGNATURES``; by
default one per pinned member partner), and ``relto audit verify
--pinned-witnesses`` requires the same number unless told otherwise.

The GBR demo node pins AUS and USA as partners that exist only as their keys;
each answers the node's pusher with a real C2SP witness (its own witness key,
verifying GBR's checkpoints and consistency proofs), called in-process.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from relto.audit import NoteSigner
from relto.audit.config import database_url, node_signer
from relto.audit.note import Signature
from relto.audit.witness import MemoryWitnessState, Witness, parse_add_checkpoint
from relto.audit.witnessing import (
    Answer,
    CheckpointPusher,
    Cosignature,
    CosignatureStore,
    MemoryAlarmStore,
    Pushed,
)
from relto.cli.main import main
from relto.config import Settings
from relto.errors import ConfigError
from relto.federation import AttestationKey, SigningKey, make_descriptor
from relto.node import Node
from relto.server import create_app

Login = Callable[[TestClient, str], str]


@dataclass
class PartnerKeys:
    """A partner node that exists only as its keys, with a real witness."""

    nation: str
    node_key: SigningKey = field(default_factory=SigningKey.generate)
    witness_signer: NoteSigner | None = None
    witness: Witness | None = None
    up: bool = True

    def __post_init__(self) -> None:
        self.witness_signer = NoteSigner.generate(f"relto/{self.nation.lower()}/witness")

    @property
    def base_url(self) -> str:
        return f"https://relto.{self.nation.lower()}.example"

    def pin_on(self, node: Node) -> None:
        assert self.witness_signer is not None
        now = datetime.now(UTC)
        descriptor = make_descriptor(
            nation=self.nation, base_url=self.base_url, node_key=self.node_key.public,
            kas_keys=[], log_key=NoteSigner.generate(f"relto/{self.nation.lower()}/audit")
            .verifier().vkey,
            witness_key=self.witness_signer.cosignature_verifier().vkey,
            attestation_keys=[AttestationKey("att-1", SigningKey.generate("P-256").public)],
            issued_at=now - timedelta(minutes=1), not_after=now + timedelta(days=30),
            signing_key=self.node_key,
        )  # fmt: skip
        officer = node.directory.principal("gbr-so-whitfield", via="node")
        node.trust.pin(descriptor, fingerprint=self.node_key.fingerprint, actor=officer, now=now)
        # the partner's witness knows GBR's log by its key, as a pinning node's would
        self.witness = Witness(self.witness_signer, [node_signer(node.settings).verifier()],
                               MemoryWitnessState())  # fmt: skip


@dataclass
class Federation:
    client: TestClient
    node: Node
    partners: dict[str, PartnerKeys]

    @property
    def store(self) -> CosignatureStore:
        assert self.node.witnessing is not None
        return self.node.witnessing.store

    def post(self, url: str, body: bytes) -> Answer:
        """The partner witness at ``url`` answering an add-checkpoint request."""
        p = next(p for p in self.partners.values() if url.startswith(p.base_url))
        if not p.up:
            raise httpx.ConnectError("down")
        assert p.witness is not None
        old, proof, note = parse_add_checkpoint(body)
        sig = p.witness.add_checkpoint(old, proof, note, at=datetime.now(UTC))
        return Answer(200, "text/plain; charset=utf-8", sig.line().encode())

    def push(self) -> list[Pushed]:
        """One round of the node's own pusher (its log, key, pins and store)."""
        real = self.node.witnessing
        assert real is not None
        pusher = CheckpointPusher(
            self.node.log, node_signer(self.node.settings), real.partners, real.store,
            nation="GBR", sink=self.node.sink, alarms=MemoryAlarmStore(), post=self.post,
        )  # fmt: skip
        return pusher.push(datetime.now(UTC))

    def page(self) -> str:
        r = self.client.get("/console/audit")
        assert r.status_code == 200, r.text
        return r.text


def _status(page: str) -> tuple[str, str]:
    """The witnessing panel's state and its sentence, tags stripped."""
    state = re.search(r'id="witnessing" data-state="([a-z]+)"', page)
    found = re.search(r'<p id="witnessing-status">(.*?)</p>', page, re.S)
    assert state and found, page
    return state.group(1), re.sub(r"<[^>]+>", "", found.group(1)).strip()


def _paragraph(page: str, pid: str) -> str:
    found = re.search(rf'<p id="{pid}">(.*?)</p>', page, re.S)
    assert found, pid
    return re.sub(r"<[^>]+>", "", found.group(1))


def _app(data: Path) -> TestClient:
    return TestClient(create_app(Settings(demo=True, data_dir=data)),
                      raise_server_exceptions=False, follow_redirects=False)  # fmt: skip


@pytest.fixture
def federation(
    tmp_path: Path, demo_template: Path, login: Login, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Federation]:
    """The GBR demo node pinning AUS and USA (both members of the demo partnership)."""
    monkeypatch.delenv("RELTO_AUDIT_MIN_COSIGNATURES", raising=False)
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    with _app(data) as client:
        node: Node = client.app.state.node  # type: ignore[attr-defined]
        assert node.witnessing is not None  # a loopback node takes part in federation
        partners = {n: PartnerKeys(n) for n in ("AUS", "USA")}
        for p in partners.values():
            p.pin_on(node)
        login(client, "gbr-aud-patel")
        yield Federation(client, node, partners)
    node.db.dispose()


def test_log_cosigned_by_every_pinned_member_is_shown_witnessed(federation: Federation) -> None:
    pushed = federation.push()
    assert [p.outcome for p in pushed] == ["cosigned", "cosigned"], pushed
    page = federation.page()
    assert _status(page) == ("ok", "witnessed verified: cosigned by AUS and USA, 2 of 2 required")
    assert "size " + str(pushed[0].size) in _paragraph(page, "witnessing-latest")
    assert "by default one per pinned member partner" in page


def test_partner_missing_leaves_latest_not_witnessed_and_names_newest_that_is(
    federation: Federation,
) -> None:
    (first, _) = federation.push()
    federation.node.log.record("test.growth", {"n": 1})
    federation.partners["USA"].up = False
    second = federation.push()
    assert [p.outcome for p in second] == ["cosigned", "unreachable"], second
    page = federation.page()
    state, sentence = _status(page)
    assert state == "failed"
    assert sentence.endswith(
        "only 1 of 2 required partner cosignatures — the log is not yet witnessed"
    )
    newest = _paragraph(page, "witnessing-newest")
    assert f"size {first.size}, cosigned by AUS and USA (2 of 2 required" in newest
    assert f"size {second[0].size}, cosigned by AUS" in _paragraph(page, "witnessing-latest")


def test_no_cosignature_yet_is_not_witnessed(federation: Federation) -> None:
    state, sentence = _status(federation.page())
    assert state == "failed"
    assert "no partner cosignature of 2 required — the log is not yet witnessed" in sentence


def test_cosignature_not_made_by_pinned_witness_key_not_counted(federation: Federation) -> None:
    """A stored cosignature proves nothing unless it verifies, now, under the witness
    key pinned for its nation: one by another key with the same name, and one
    under the pinned key id that does not verify, are named and not counted."""
    federation.partners["USA"].up = False
    (aus, usa) = federation.push()
    assert (aus.outcome, usa.outcome) == ("cosigned", "unreachable")
    note = federation.node.log.checkpoint(aus.size)
    assert note is not None
    body = note.split("\n\n")[0] + "\n"
    impostor = NoteSigner.generate("relto/usa/witness")  # same name, not the pinned key
    line = impostor.cosign(body, int(datetime.now(UTC).timestamp())).line()
    federation.store.add(Cosignature(aus.size, "USA", impostor.cosignature_verifier().vkey,
                                     line, int(datetime.now(UTC).timestamp()),
                                     datetime.now(UTC)))  # fmt: skip
    page = federation.page()
    assert _status(page)[0] == "failed"
    assert "USA's kept cosignature is not counted: not made by the witness key pinned" in page
    # a line under the pinned key's id whose signature is not USA's
    pinned = federation.partners["USA"].witness_signer
    assert pinned is not None
    good = pinned.cosign(body, int(datetime.now(UTC).timestamp()))
    forged = Signature(good.name, good.key_id, good.signature[:-8] + bytes(8))
    federation.node.log.record("test.growth", {"n": 2})
    (aus2, _) = federation.push()
    federation.store.add(Cosignature(aus2.size, "USA", pinned.cosignature_verifier().vkey,
                                     forged.line(), 0, datetime.now(UTC)))  # fmt: skip
    page = federation.page()
    assert _status(page)[0] == "failed"
    assert "USA's kept cosignature is not counted: does not verify" in page


def test_partner_untrusted_since_no_longer_counts(federation: Federation) -> None:
    federation.push()
    assert _status(federation.page())[0] == "ok"
    officer = federation.node.directory.principal("gbr-so-whitfield", via="node")
    federation.node.trust.unpin("USA", actor=officer, now=datetime.now(UTC))
    # one pinned member left: one required by default, and USA's cosignature is void
    page = federation.page()
    assert _status(page) == ("ok", "witnessed verified: cosigned by AUS, 1 of 1 required")
    assert "USA's kept cosignature is not counted: the nation is not pinned now" in page


def test_configured_number_overrides_the_default(
    federation: Federation, monkeypatch: pytest.MonkeyPatch, login: Login
) -> None:
    federation.push()
    federation.node.log.record("test.growth", {"n": 1})
    federation.partners["USA"].up = False
    federation.push()
    monkeypatch.setenv("RELTO_AUDIT_MIN_COSIGNATURES", "1")
    data = federation.node.settings.data_dir
    federation.node.db.dispose()
    with _app(data) as client:
        login(client, "gbr-aud-patel")
        page = client.get("/console/audit").text
        client.app.state.node.db.dispose()  # type: ignore[attr-defined]
    assert _status(page) == ("ok", "witnessed verified: cosigned by AUS, 1 of 1 required")
    assert "(RELTO_AUDIT_MIN_COSIGNATURES)" in page


def test_node_that_pins_nobody_requires_no_cosignature(
    tmp_path: Path, demo_template: Path, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELTO_AUDIT_MIN_COSIGNATURES", raising=False)
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    with _app(data) as client:
        login(client, "gbr-aud-patel")
        page = client.get("/console/audit").text
        client.app.state.node.db.dispose()  # type: ignore[attr-defined]
    assert _status(page) == ("none", "No partner cosignatures are required on this node.")
    assert "Pinned partners: none" in page


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "65"])
def test_nonsense_required_number_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RELTO_AUDIT_MIN_COSIGNATURES", value)
    with pytest.raises(ConfigError, match=r"RELTO_AUDIT_MIN_COSIGNATURES=.* whole number"):
        create_app(Settings(demo=True, data_dir=tmp_path / "data"))


def test_required_cosignatures_nobody_can_give_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_AUDIT_MIN_COSIGNATURES", "2")
    monkeypatch.setenv("RELTO_AUDIT_WITNESS_PUSH_SECONDS", "0")
    with pytest.raises(ConfigError, match="cannot be met"):
        create_app(Settings(demo=True, data_dir=tmp_path / "data"))


def test_audit_verify_requires_the_configured_number_unless_told_otherwise(
    federation: Federation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    federation.partners["USA"].up = False
    federation.push()  # AUS alone cosigned
    assert federation.node.witnessing is not None
    cosigned = federation.node.witnessing.cosigned()
    assert cosigned is not None
    checkpoint = tmp_path / "cosigned.txt"
    checkpoint.write_text(cosigned, encoding="utf-8")
    s = federation.node.settings
    for name, value in (("RELTO_DATA_DIR", str(s.data_dir)), ("RELTO_NATION", "GBR"),
                        ("RELTO_DEMO", "true")):  # fmt: skip
        monkeypatch.setenv(name, value)
    args = ["audit", "verify", "--log", database_url(s), "--checkpoint", str(checkpoint),
            "--pinned-witnesses"]  # fmt: skip
    assert main(args) == 1  # default: both pinned members
    assert "1 witness cosignature(s), need 2" in capsys.readouterr().err
    assert main([*args, "--min-cosignatures", "1"]) == 0  # an explicit flag wins
    monkeypatch.setenv("RELTO_AUDIT_MIN_COSIGNATURES", "1")
    assert main(args) == 0
    assert main([*args, "--min-cosignatures", "2"]) == 1
    monkeypatch.setenv("RELTO_AUDIT_MIN_COSIGNATURES", "2")
    assert main(args[:-1]) == 0  # without the node's pins: nothing required, as before
