"""Known answers and misuse resistance of the hazmat primitives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from relto.ztdf import hazmat
from relto.ztdf.errors import CryptoError
from relto.ztdf.manifest import parse_manifest

KEY = bytes(range(32))


def test_gcm_known_answer_nist_vector() -> None:
    # NIST GCM test case 13 (AES-256, zero key, zero IV, empty plaintext).
    out = hazmat.gcm_encrypt(bytes(32), b"", iv=bytes(12))
    assert out[12:].hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    # test case 14: one zero block.
    out = hazmat.gcm_encrypt(bytes(32), bytes(16), iv=bytes(12))
    assert out[12:].hex() == "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"


def test_segment_layout_is_iv_ciphertext_tag() -> None:
    blob = hazmat.encrypt_segment(KEY, b"hello")
    assert len(blob) == 12 + 5 + 16
    assert hazmat.decrypt_segment(KEY, blob) == b"hello"
    assert hazmat.SegmentCipher(KEY).decrypt(blob) == b"hello"


def test_tampered_segment_rejected() -> None:
    blob = bytearray(hazmat.encrypt_segment(KEY, b"hello world"))
    blob[14] ^= 1
    with pytest.raises(CryptoError):
        hazmat.decrypt_segment(KEY, bytes(blob))
    with pytest.raises(CryptoError):
        hazmat.SegmentCipher(KEY).decrypt(bytes(blob[:20]))


def test_short_key_is_misuse() -> None:
    with pytest.raises(ValueError):
        hazmat.encrypt_segment(b"short", b"x")


def test_rsa_wrap_round_trip_and_wrong_key_fails(rsa_kas, rsa_kas2) -> None:
    wrapped = hazmat.rsa_wrap(rsa_kas[1], KEY)
    assert len(wrapped) == 256
    assert hazmat.rsa_unwrap(rsa_kas[0], wrapped) == KEY
    with pytest.raises(CryptoError):
        hazmat.rsa_unwrap(rsa_kas2[0], wrapped)
    with pytest.raises(CryptoError):
        hazmat.rsa_unwrap(rsa_kas[0], b"garbage")


def test_rsa_oaep_sha1_unwraps_golden_key_share(golden_dir: Path, golden_private_pem: str) -> None:
    with zipfile.ZipFile(golden_dir / "xstext-java-v0.9.0-2de6a49-DSP2.0.5.1_and_2.0.6.tdf") as z:
        m = parse_manifest(z.read("0.manifest.json"))
    ka = m.encryption_information.key_access[0]
    share = hazmat.rsa_unwrap(golden_private_pem, ka.wrapped_key_bytes())
    assert len(share) == 32
    assert hazmat.verify_policy_binding(
        share, m.encryption_information.policy, ka.policy_binding.hash
    )
    # and we compute exactly the binding the Java SDK wrote
    assert hazmat.compute_policy_binding(share, m.encryption_information.policy) == (
        ka.policy_binding.hash
    )


def test_ec_wrap_matches_ecdh_hkdf_gcm_construction(ec_kas) -> None:
    eph_pem, wrapped = hazmat.ec_wrap(ec_kas[1], KEY)
    assert "BEGIN PUBLIC KEY" in eph_pem
    assert hazmat.ec_unwrap(ec_kas[0], eph_pem, wrapped) == KEY
    # independent recomputation: ECDH -> HKDF-SHA256(salt=SHA256("TDF"), info="") -> GCM
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    priv = hazmat.load_private_key(ec_kas[0])
    assert isinstance(priv, ec.EllipticCurvePrivateKey)
    peer = hazmat.load_public_key(eph_pem)
    assert isinstance(peer, ec.EllipticCurvePublicKey)
    shared = priv.exchange(ec.ECDH(), peer)
    k = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(b"TDF").digest(), info=b""
    ).derive(shared)
    assert hazmat.gcm_decrypt(k, wrapped) == KEY


def test_ec_unwrap_with_other_key_fails(ec_kas) -> None:
    eph_pem, wrapped = hazmat.ec_wrap(ec_kas[1], KEY)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CryptoError):
        hazmat.ec_unwrap(other, eph_pem, wrapped)
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(CryptoError):
        hazmat.ec_unwrap(p384, eph_pem, wrapped)


def test_policy_binding_is_base64_of_hex_hmac() -> None:
    policy = base64.b64encode(b'{"uuid":"x","body":{"dataAttributes":[],"dissem":[]}}').decode()
    mac = hmac.new(KEY, policy.encode(), hashlib.sha256).digest()
    expected = base64.b64encode(mac.hex().encode()).decode()
    assert hazmat.compute_policy_binding(KEY, policy) == expected
    assert hazmat.verify_policy_binding(KEY, policy, expected)
    # the raw form is accepted on read
    assert hazmat.verify_policy_binding(KEY, policy, base64.b64encode(mac).decode())


def test_tampered_policy_binding_rejected() -> None:
    policy = base64.b64encode(b'{"uuid":"x"}').decode()
    good = hazmat.compute_policy_binding(KEY, policy)
    other_policy = base64.b64encode(b'{"uuid":"y"}').decode()
    assert not hazmat.verify_policy_binding(KEY, other_policy, good)
    assert not hazmat.verify_policy_binding(bytes(32), policy, good)
    assert not hazmat.verify_policy_binding(KEY, policy, "not base64!!")
    assert not hazmat.verify_policy_binding(KEY, policy, "")


def test_key_split_xor_of_shares() -> None:
    dek, shares = hazmat.split_key(["a", "b", "a"])
    assert set(shares) == {"a", "b"}
    x = bytes(p ^ q for p, q in zip(shares["a"], shares["b"], strict=True))
    assert x == dek
    assert hazmat.join_key_shares([KEY]) == KEY
    with pytest.raises(ValueError):
        hazmat.join_key_shares([])


def test_root_signature_new_and_legacy_forms() -> None:
    tags = b"\x01" * 16 + b"\x02" * 16
    sig = hazmat.root_signature(KEY, tags, "HS256", legacy=False)
    assert base64.b64decode(sig) == hmac.new(KEY, tags, hashlib.sha256).digest()
    legacy = hazmat.root_signature(KEY, tags, "HS256", legacy=True)
    assert base64.b64decode(legacy) == hmac.new(KEY, tags, hashlib.sha256).hexdigest().encode()
    assert hazmat.verify_root_signature(KEY, tags, "HS256", sig, legacy=False)
    assert not hazmat.verify_root_signature(KEY, tags[:-1], "HS256", sig, legacy=False)


def _hkdf_sha256_by_hand(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 from HMAC alone: an implementation independent of ``cryptography``."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def test_hkdf_by_hand_matches_rfc5869_case_1() -> None:
    # guards the independent implementation the wrap-key test below relies on
    okm = _hkdf_sha256_by_hand(
        bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42,
    )  # fmt: skip
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_tdf_wrap_key_is_hkdf_sha256_salt_sha256_tdf_empty_info() -> None:
    shared = bytes(range(32))
    expected = _hkdf_sha256_by_hand(shared, hashlib.sha256(b"TDF").digest(), b"", 32)
    assert hazmat.tdf_wrap_key_from_shared(shared) == expected
    # also what `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:<shared>
    # -kdfopt hexsalt:<sha256("TDF")> HKDF` prints
    assert expected.hex() == "e632ece5d1a1c1f913f4c55261a3f214135d8356f6e0042f919f9ce725030c3e"


def test_ec_wrap_key_is_ecdh_then_tdf_wrap_key(ec_kas) -> None:
    priv = hazmat.load_private_key(ec_kas[0])
    assert isinstance(priv, ec.EllipticCurvePrivateKey)
    eph = ec.generate_private_key(ec.SECP256R1())
    shared = priv.exchange(ec.ECDH(), eph.public_key())
    assert hazmat.derive_ec_wrap_key(priv, eph.public_key()) == (
        hazmat.tdf_wrap_key_from_shared(shared)
    )


def test_empty_shared_secret_is_misuse() -> None:
    with pytest.raises(ValueError):
        hazmat.tdf_wrap_key_from_shared(b"")


def test_segment_cipher_in_place_interoperates_with_the_copying_calls() -> None:
    cipher = hazmat.SegmentCipher(KEY)
    plain = bytes(range(200))
    out = memoryview(bytearray(300))
    end = cipher.encrypt_into(memoryview(plain), out)
    assert end == len(plain) + hazmat.SEGMENT_OVERHEAD
    assert bytes(out[end:]) == bytes(300 - end)  # nothing written past the segment
    assert hazmat.decrypt_segment(KEY, bytes(out[:end])) == plain
    back = memoryview(bytearray(len(plain)))
    assert cipher.decrypt_into(hazmat.encrypt_segment(KEY, plain), back) == len(plain)
    assert bytes(back) == plain


def test_segment_cipher_in_place_draws_a_fresh_iv_each_time() -> None:
    cipher = hazmat.SegmentCipher(KEY)
    a, b = memoryview(bytearray(64)), memoryview(bytearray(64))
    cipher.encrypt_into(b"same", a)
    cipher.encrypt_into(b"same", b)
    assert bytes(a[: hazmat.GCM_IV_SIZE]) != bytes(b[: hazmat.GCM_IV_SIZE])


def test_tampered_segment_rejected_in_place() -> None:
    cipher = hazmat.SegmentCipher(KEY)
    blob = bytearray(hazmat.encrypt_segment(KEY, b"hello world"))
    blob[14] ^= 1
    out = memoryview(bytearray(64))
    with pytest.raises(CryptoError):
        cipher.decrypt_into(memoryview(blob), out)
    with pytest.raises(CryptoError):
        cipher.decrypt_into(bytes(20), out)


def test_segment_cipher_in_place_refuses_short_buffers() -> None:
    cipher = hazmat.SegmentCipher(KEY)
    with pytest.raises(ValueError):
        cipher.encrypt_into(b"hello", memoryview(bytearray(5 + hazmat.SEGMENT_OVERHEAD - 1)))
    blob = hazmat.encrypt_segment(KEY, b"hello")
    with pytest.raises(ValueError):
        cipher.decrypt_into(blob, memoryview(bytearray(4)))


def test_scrypt_key_rfc7914_vector() -> None:
    # RFC 7914 section 12, third vector (dkLen 64); scrypt's last step is PBKDF2, so
    # the 32-byte key is the vector's first half.
    key = hazmat.scrypt_key(b"password", b"NaCl", n=1024, r=8, p=16)
    assert key.hex() == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"


def test_scrypt_key_matches_hashlib_at_the_key_store_parameters() -> None:
    # the KAS key store's defaults: N = 2^15, r = 8, p = 1
    salt = bytes(range(16))
    expected = hashlib.scrypt(
        b"a passphrase of some length", salt=salt, n=2**15, r=8, p=1, dklen=32, maxmem=2**26
    )
    assert hazmat.scrypt_key(b"a passphrase of some length", salt, n=2**15, r=8, p=1) == expected


def test_scrypt_bad_parameters_are_misuse() -> None:
    with pytest.raises(ValueError):
        hazmat.scrypt_key(b"pw", b"salt", n=1000, r=8, p=1)
    with pytest.raises(ValueError):
        hazmat.scrypt_key(b"pw", b"", n=1024, r=8, p=1)


def test_sealed_blob_is_iv_ciphertext_tag_over_the_associated_data() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = hazmat.SealingCipher(KEY).seal(b"secret", b"kid-1")
    assert len(sealed) == 12 + 6 + 16
    assert AESGCM(KEY).decrypt(sealed[:12], sealed[12:], b"kid-1") == b"secret"
    assert hazmat.SealingCipher(KEY).unseal(sealed, b"kid-1") == b"secret"


def test_sealed_secret_moved_to_another_record_does_not_open() -> None:
    sealer = hazmat.SealingCipher(KEY)
    sealed = sealer.seal(b"secret", b"kid-1")
    with pytest.raises(CryptoError):
        sealer.unseal(sealed, b"kid-2")
    with pytest.raises(CryptoError):
        hazmat.SealingCipher(bytes(32)).unseal(sealed, b"kid-1")
    with pytest.raises(CryptoError):
        sealer.unseal(sealed[:20], b"kid-1")
    with pytest.raises(ValueError):
        hazmat.SealingCipher(b"short")
