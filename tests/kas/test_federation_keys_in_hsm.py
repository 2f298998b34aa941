"""The node key and the attestation key in the HSM (SoftHSM2 through PKCS#11):
made on the token, never exportable, found again after a restart, and what they
sign verifies like any other descriptor and attestation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass
from pydantic import SecretStr

from relto.audit.note import NoteSigner
from relto.config import Settings
from relto.errors import ConfigError
from relto.federation import (
    AttestationKey,
    AttestationSigner,
    AttestedClearance,
    AttestedPerson,
    make_attestation,
    make_descriptor,
    verify_attestation,
    verify_descriptor,
)
from relto.federation.descriptor import PinnedNode
from relto.federation.homekeys import load_home_keys
from relto.federation.hsmkeys import ATTESTATION_LABEL, NODE_LABEL, Pkcs11SigningKey

NOW = datetime.now(UTC)
BOB = AttestedPerson(
    "usa-eng-bob", "USA", frozenset({"USA"}), frozenset({"engineer"}), frozenset(),
    (AttestedClearance("USA", "SECRET", "granted"),),
)  # fmt: skip


def _session(library: str, label: str, pin: str) -> Any:
    """A session on the token (this process may be logged in already: login is per
    process in PKCS#11)."""
    token = pkcs11.lib(library).get_token(token_label=label)
    try:
        return token.open(user_pin=pin, rw=True)
    except pkcs11.exceptions.UserAlreadyLoggedIn:
        return token.open(rw=True)


@pytest.fixture
def token(softhsm_token: tuple[str, str, str]) -> tuple[str, str, str]:
    with _session(*softhsm_token) as s:
        for name in (NODE_LABEL, ATTESTATION_LABEL):
            for obj in list(s.get_objects({Attribute.LABEL: name})):
                obj.destroy()
    return softhsm_token


def _descriptor(node_key: Pkcs11SigningKey, attestation: Pkcs11SigningKey) -> str:
    return make_descriptor(
        nation="USA",
        base_url="https://relto.usa.example",
        node_key=node_key.public,
        kas_keys=[],
        log_key=NoteSigner.generate("relto/usa/audit").verifier().vkey,
        witness_key=NoteSigner.generate("relto/usa/witness").cosignature_verifier().vkey,
        attestation_keys=[AttestationKey("att-hsm", attestation.public)],
        issued_at=NOW,
        not_after=NOW + timedelta(days=30),
        signing_key=node_key,
    )


def test_descriptor_and_attestation_signed_in_the_hsm_verify(token: tuple[str, str, str]) -> None:
    node_key = Pkcs11SigningKey(*token, NODE_LABEL)
    attestation = Pkcs11SigningKey(*token, ATTESTATION_LABEL)
    assert node_key.fingerprint != attestation.fingerprint
    descriptor = _descriptor(node_key, attestation)
    d = verify_descriptor(descriptor, None, NOW, fingerprint=node_key.fingerprint)
    pinned = {"USA": PinnedNode(d, descriptor, NOW, "test")}
    dpop = "A" * 43
    att = make_attestation(
        BOB, cnf_jkt=dpop, signer=AttestationSigner("att-hsm", attestation),
        issuer="https://relto.usa.example", now=NOW,
    )  # fmt: skip
    assert verify_attestation(att, pinned, dpop_jkt=dpop, now=NOW).person.person_id == BOB.person_id


def test_hsm_keys_are_not_exportable_and_survive_a_restart(token: tuple[str, str, str]) -> None:
    first = Pkcs11SigningKey(*token, NODE_LABEL)
    again = Pkcs11SigningKey(*token, NODE_LABEL)  # another process, or a restart
    assert again.fingerprint == first.fingerprint
    with pytest.raises(ConfigError, match="cannot be exported"):
        first.private_jwk()
    with _session(*token) as s:
        [priv] = list(
            s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: NODE_LABEL})
        )
        assert priv[Attribute.SENSITIVE] is True and priv[Attribute.EXTRACTABLE] is False


def test_node_configured_for_the_hsm_writes_no_key_files(
    token: tuple[str, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library, label, pin = token
    monkeypatch.setenv("RELTO_FEDERATION_KEYSTORE", "pkcs11")
    monkeypatch.setenv("RELTO_KAS_PKCS11_LIBRARY", library)
    monkeypatch.setenv("RELTO_KAS_PKCS11_TOKEN", label)
    monkeypatch.setenv("RELTO_KAS_PKCS11_PIN", pin)
    settings = Settings(
        nation="USA", data_dir=tmp_path, secret_key=SecretStr("x" * 8 + "hsm-test-secret-01"),
        keystore_passphrase=SecretStr("hsm test passphrase 0123"),
    )  # type: ignore[call-arg]  # fmt: skip
    keys = load_home_keys(settings)
    assert isinstance(keys.node_key, Pkcs11SigningKey)
    assert keys.node_key.fingerprint == Pkcs11SigningKey(*token, NODE_LABEL).fingerprint
    assert not (tmp_path / "federation" / "node.jwk").exists()
    assert not (tmp_path / "federation" / "attestation.jwk").exists()


def test_hsm_keystore_without_a_token_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_FEDERATION_KEYSTORE", "pkcs11")
    monkeypatch.delenv("RELTO_KAS_PKCS11_TOKEN", raising=False)
    settings = Settings(nation="USA", data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="RELTO_KAS_PKCS11_TOKEN"):
        load_home_keys(settings)
