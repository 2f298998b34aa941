"""Fixtures for the ZTDF tests: golden containers, their key, fresh KAS key pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@pytest.fixture(scope="session")
def golden_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "opentdf" / "golden"


@pytest.fixture(scope="session")
def golden_private_pem(conformance_dir: Path) -> str:
    keys = json.loads((conformance_dir / "opentdf" / "extra-keys.json").read_text())
    return next(k["privateKey"] for k in keys if k["kid"] == "golden-r1")


def _pems(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    pub = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return priv, pub


@pytest.fixture(scope="session")
def rsa_kas() -> tuple[str, str]:
    """(private PEM, public PEM) of an RSA-2048 KAS key."""
    return _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def rsa_kas2() -> tuple[str, str]:
    return _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_kas() -> tuple[str, str]:
    """(private PEM, public PEM) of an EC P-256 KAS key."""
    return _pems(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture()
def make_file(tmp_path: Path):
    """Write ``data`` to a fresh file and return its path."""
    counter = iter(range(10_000))

    def make(data: bytes) -> Path:
        p = tmp_path / f"plain-{next(counter)}.bin"
        p.write_bytes(data)
        return p

    return make
