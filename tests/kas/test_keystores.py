"""Key stores: the file store and PKCS#11 (SoftHSM2) behave the same."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from kas_testing import NOW, PASSPHRASE

from relto.kas.errors import KeyRetired, KeyStoreError, UnknownKey, UnwrapFailed
from relto.kas.filestore import FileKeyStore
from relto.kas.keys import KeyState, KeyStore

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@pytest.fixture(params=["file", "pkcs11"])
def store(request: pytest.FixtureRequest) -> KeyStore:
    name = "file_store" if request.param == "file" else "pkcs11_store"
    s: KeyStore = request.getfixturevalue(name)
    return s


def _rsa_wrap(pem: str, data: bytes) -> bytes:
    pub = serialization.load_pem_public_key(pem.encode())
    assert isinstance(pub, rsa.RSAPublicKey)
    return pub.encrypt(data, OAEP)


def test_rsa_key_unwraps_what_its_public_key_wraps(store: KeyStore) -> None:
    info = store.rotate("rsa:2048", at=NOW)
    assert info.state is KeyState.ACTIVE and info.algorithm == "rsa:2048"
    share = os.urandom(32)
    assert store.rsa_decrypt(info.kid, _rsa_wrap(info.public_key_pem, share)) == share
    assert store.active("rsa:2048").kid == info.kid


def test_ec_key_derives_the_same_secret_as_the_writer(store: KeyStore) -> None:
    info = store.rotate("ec:secp256r1", at=NOW)
    kas_pub = serialization.load_pem_public_key(info.public_key_pem.encode())
    assert isinstance(kas_pub, ec.EllipticCurvePublicKey)
    eph = ec.generate_private_key(ec.SECP256R1())
    expected = eph.exchange(ec.ECDH(), kas_pub)
    assert store.ecdh(info.kid, eph.public_key()) == expected


def test_rotation_keeps_old_containers_open(store: KeyStore) -> None:
    old = store.rotate("rsa:2048", at=NOW)
    wrapped = _rsa_wrap(old.public_key_pem, b"k" * 32)
    new = store.rotate("rsa:2048", at=NOW + timedelta(days=1))
    assert store.active("rsa:2048").kid == new.kid
    assert store.get(old.kid).state is KeyState.ROTATED
    assert store.rsa_decrypt(old.kid, wrapped) == b"k" * 32


def test_retired_key_cannot_unwrap(store: KeyStore) -> None:
    old = store.rotate("rsa:2048", at=NOW)
    wrapped = _rsa_wrap(old.public_key_pem, b"k" * 32)
    store.rotate("rsa:2048", at=NOW + timedelta(days=1))
    retired = store.retire(old.kid, at=NOW + timedelta(days=2))
    assert retired.state is KeyState.RETIRED and retired.retired_at is not None
    with pytest.raises(KeyRetired):
        store.rsa_decrypt(old.kid, wrapped)


def test_active_key_cannot_be_retired(store: KeyStore) -> None:
    info = store.rotate("ec:secp256r1", at=NOW)
    with pytest.raises(KeyStoreError):
        store.retire(info.kid, at=NOW)
    assert store.get(info.kid).state is KeyState.ACTIVE


def test_unknown_key_and_wrong_algorithm_refused(store: KeyStore) -> None:
    info = store.rotate("ec:secp256r1", at=NOW)
    with pytest.raises(UnknownKey):
        store.rsa_decrypt("nope", b"x" * 256)
    with pytest.raises(UnwrapFailed):
        store.rsa_decrypt(info.kid, b"x" * 256)
    with pytest.raises(UnknownKey):
        store.active("rsa:2048")


def test_tampered_wrapped_key_fails_to_unwrap(store: KeyStore) -> None:
    info = store.rotate("rsa:2048", at=NOW)
    wrapped = bytearray(_rsa_wrap(info.public_key_pem, b"k" * 32))
    wrapped[10] ^= 1
    with pytest.raises(UnwrapFailed):
        store.rsa_decrypt(info.kid, bytes(wrapped))


def test_file_store_seals_private_keys_at_rest(file_store: FileKeyStore) -> None:
    info = file_store.rotate("rsa:2048", at=NOW)
    path = file_store.folder / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(file_store.folder.stat().st_mode) == 0o700
    text = path.read_text()
    assert "PRIVATE KEY" not in text
    doc = json.loads(text)
    assert doc["keys"][0]["kid"] == info.kid and "sealed_private_key" in doc["keys"][0]


def test_key_store_file_opens_with_scrypt_and_aes_gcm_alone(tmp_path: Path) -> None:
    # The on-disk format, recomputed without relto: scrypt with the recorded
    # parameters (the defaults N = 2^15, r = 8, p = 1), then AES-256-GCM over
    # IV || ciphertext || tag with the check's and each key's associated data.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    store = FileKeyStore(tmp_path / "keys", PASSPHRASE)
    info = store.rotate("ec:secp256r1", at=NOW)
    doc = json.loads((tmp_path / "keys" / "keys.json").read_text())
    kdf = doc["kdf"]
    assert (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) == ("scrypt", 2**15, 8, 1)
    salt = base64.b64decode(kdf["salt"])
    assert len(salt) == 16
    key = hashlib.scrypt(PASSPHRASE.encode(), salt=salt, n=2**15, r=8, p=1, dklen=32, maxmem=2**26)
    check = base64.b64decode(doc["check"])
    assert AESGCM(key).decrypt(check[:12], check[12:], b"check") == b"relto-kas-keystore-check-v1"
    sealed = base64.b64decode(doc["keys"][0]["sealed_private_key"])
    aad = b"relto-kas-key-v1\x00" + info.kid.encode() + b"\x00ec:secp256r1"
    der = AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        == info.public_key_pem
    )


def test_wrong_passphrase_refused(file_store: FileKeyStore) -> None:
    file_store.rotate("rsa:2048", at=NOW)
    with pytest.raises(KeyStoreError, match="passphrase"):
        FileKeyStore(file_store.folder, "a different passphrase!!", scrypt_n=2**10)


def test_sealed_key_moved_to_another_id_does_not_open(file_store: FileKeyStore) -> None:
    a = file_store.rotate("rsa:2048", at=NOW)
    b = file_store.rotate("rsa:2048", at=NOW)
    path = file_store.folder / "keys.json"
    doc = json.loads(path.read_text())
    sealed = {k["kid"]: k["sealed_private_key"] for k in doc["keys"]}
    for k in doc["keys"]:
        k["sealed_private_key"] = sealed[b.kid if k["kid"] == a.kid else a.kid]
    path.write_text(json.dumps(doc))
    fresh = FileKeyStore(file_store.folder, PASSPHRASE, scrypt_n=2**10)
    with pytest.raises(KeyStoreError):
        fresh.rsa_decrypt(a.kid, _rsa_wrap(a.public_key_pem, b"k" * 32))


def test_retirement_by_another_process_is_seen(file_store: FileKeyStore, tmp_path: Path) -> None:
    old = file_store.rotate("rsa:2048", at=NOW)
    wrapped = _rsa_wrap(old.public_key_pem, b"k" * 32)
    assert file_store.rsa_decrypt(old.kid, wrapped) == b"k" * 32  # now cached
    other = FileKeyStore(file_store.folder, PASSPHRASE, scrypt_n=2**10)
    other.rotate("rsa:2048", at=NOW)
    other.retire(old.kid, at=NOW)
    with pytest.raises(KeyRetired):
        file_store.rsa_decrypt(old.kid, wrapped)


def test_pkcs11_private_keys_are_not_extractable(pkcs11_store: object) -> None:
    from pkcs11 import Attribute, ObjectClass

    from relto.kas.pkcs11store import Pkcs11KeyStore

    assert isinstance(pkcs11_store, Pkcs11KeyStore)
    info = pkcs11_store.rotate("rsa:2048", at=NOW)
    (priv,) = pkcs11_store._find(ObjectClass.PRIVATE_KEY, info.kid)
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
