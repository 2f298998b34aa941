"""Known answers: OpenTDF's golden containers (Java and Go SDKs) open through relto's KAS.

The KAS key ``golden-r1`` from the conformance data is imported into a file key
store; each container's key access object is rewrapped by the KAS service and
the container then opens (its policy binding and integrity verified by relto.ztdf).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kas_testing import NOW, client_keys, request_body

from relto.events import MemorySink
from relto.kas import Caller, KasDecision, KasService, KeyState, RewrapFacts
from relto.kas.errors import KeyStoreError
from relto.kas.filestore import FileKeyStore
from relto.kas.wire import parse_request_body
from relto.ztdf import hazmat
from relto.ztdf.container import open_container
from relto.ztdf.errors import KeyAccessDenied
from relto.ztdf.manifest import KeyAccess, key_access_to_dict

GOLDEN = [
    "no-splitids-java.tdf",
    "small-java-4.3.0-e0f8caf.tdf",
    "with-json-object-assertions-java.tdf",
    "xstext-java-v0.7.5-94b161d53-DSP2.0.2_and_2.0.3.tdf",
    "xstext-java-v0.7.8-7f487c2-DSP2.0.4.tdf",
    "xstext-java-v0.9.0-2de6a49-DSP2.0.5.1_and_2.0.6.tdf",
]


class Allow:
    def decide(self, facts: RewrapFacts) -> KasDecision:
        return KasDecision(True)


def _golden_key(conformance_dir: Path) -> bytes:
    keys = json.loads((conformance_dir / "opentdf" / "extra-keys.json").read_text())
    (entry,) = [k for k in keys if k["kid"] == "golden-r1"]
    pem: str = entry["privateKey"]
    return pem.encode()


def _unwrapper(service: KasService, *, drop_kid: bool = False) -> Callable[[KeyAccess, str], bytes]:
    caller = Caller(subject="alice", claims={"sub": "alice"}, identities=frozenset({"alice"}))

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        priv, pem = client_keys("ec")
        kao = key_access_to_dict(replace(ka, kid="") if drop_kid else ka)
        body = parse_request_body(request_body(pem, policy_b64, [kao]))
        resp = service.rewrap(body, caller, at=datetime.now(UTC), request_verified=True)
        result = resp.responses[0].results[0]
        if result.status != "permit":
            raise KeyAccessDenied()
        return hazmat.ec_unwrap(priv, resp.session_public_key, result.kas_wrapped_key)

    return unwrap


@pytest.fixture
def service(tmp_path: Path, conformance_dir: Path) -> KasService:
    store = FileKeyStore(tmp_path / "keys", "golden test passphrase!!", scrypt_n=2**10)
    store.rotate("rsa:2048", at=NOW)  # a newer key: golden-r1 is an old, rotated one
    info = store.import_key(_golden_key(conformance_dir), kid="golden-r1", at=NOW)
    assert info.state is KeyState.ROTATED
    return KasService(store=store, sink=MemorySink(), decider=Allow())


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_container_opens_through_relto_kas(
    service: KasService, conformance_dir: Path, tmp_path: Path, name: str
) -> None:
    src = conformance_dir / "opentdf" / "golden" / name
    result = open_container(src, tmp_path / "out", unwrap=_unwrapper(service))
    assert (tmp_path / "out").stat().st_size == result.plaintext_size > 0


def test_golden_key_access_without_kid_finds_the_legacy_key(
    service: KasService, conformance_dir: Path, tmp_path: Path
) -> None:
    src = conformance_dir / "opentdf" / "golden" / "small-java-4.3.0-e0f8caf.tdf"
    open_container(src, tmp_path / "out", unwrap=_unwrapper(service, drop_kid=True))
    assert (tmp_path / "out").exists()


def test_retired_golden_key_cannot_unwrap(
    service: KasService, conformance_dir: Path, tmp_path: Path
) -> None:
    service.store.retire("golden-r1", at=NOW)
    src = conformance_dir / "opentdf" / "golden" / "small-java-4.3.0-e0f8caf.tdf"
    with pytest.raises(KeyAccessDenied):
        open_container(src, tmp_path / "out", unwrap=_unwrapper(service))
    assert not (tmp_path / "out").exists()


def test_import_refuses_duplicates_and_weak_keys(service: KasService) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    store = service.store
    assert isinstance(store, FileKeyStore)
    weak = rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyStoreError):
        store.import_key(weak, kid="weak", at=NOW)
    with pytest.raises(KeyStoreError):
        store.import_key(b"not a key", kid="x", at=NOW)
    info = store.get("golden-r1")
    with pytest.raises(KeyStoreError):
        store.import_key(info.public_key_pem.encode(), kid="golden-r1", at=NOW)
