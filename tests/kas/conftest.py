"""Fixtures for the key access service: key stores (file, SoftHSM2), an OIDC test
issuer, and a running relto KAS on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kas_testing import PASSPHRASE

from relto.kas.filestore import FileKeyStore
from relto.kas.pkcs11store import Pkcs11KeyStore

ROOT = Path(__file__).resolve().parents[2]
SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"


def _softhsm() -> str:
    if not (os.path.exists(SOFTHSM_LIB) and shutil.which("softhsm2-util")):
        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)
    if not (os.path.exists(SOFTHSM_LIB) and shutil.which("softhsm2-util")):
        pytest.fail("SoftHSM2 is missing and could not be installed (scripts/system-deps.sh)")
    return SOFTHSM_LIB


@pytest.fixture
def file_store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "kas-keys", PASSPHRASE, scrypt_n=2**10)


@pytest.fixture(scope="session")
def softhsm_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SoftHSM2 configuration with its token folder in a temporary directory."""
    _softhsm()
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield conf
    finally:
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old


@pytest.fixture(scope="session")
def softhsm_token(softhsm_conf: Path) -> tuple[str, str, str]:
    """A SoftHSM2 token for this test process: (library, label, pin).

    SoftHSM2 lists its tokens once per process (at C_Initialize), so one token
    serves the session and each test empties it first."""
    label = f"relto-{uuid.uuid4().hex[:8]}"
    pin = "1234-relto-user"
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "5678-relto-so",
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(softhsm_conf)},
    )
    return SOFTHSM_LIB, label, pin


@pytest.fixture
def pkcs11_store(softhsm_token: tuple[str, str, str]) -> Iterator[Pkcs11KeyStore]:
    store = Pkcs11KeyStore(*softhsm_token)
    for info in store.list_keys():
        store.destroy(info.kid, force=True)
    try:
        yield store
    finally:
        store.close()
