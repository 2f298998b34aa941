"""Interop with the OpenTDF JavaScript client (``@opentdf/client``, pinned in
``tests/interop/js/package-lock.json``): containers it writes offline, with a relto
KAS's public key, open through that relto KAS byte for byte.

The client is installed with ``npm ci`` into ``tests/interop/js/node_modules`` the
first time (a file lock keeps parallel workers from installing twice). No npm, or an
install that fails, fails the test: it is never skipped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kas_testing import AUDIENCE, ServerThread, TestIssuer, free_port, issuer_app

from relto.config import Settings
from relto.kas import KasDecision, RewrapFacts
from relto.kas.client import KasClient
from relto.kas.runtime import KasRuntime
from relto.server import create_app
from relto.ztdf import open_container

JS = Path(__file__).resolve().parent / "js"
SEGMENT = 64 * 1024
SIZES = {"empty": 0, "one-byte": 1, "one-segment": SEGMENT, "several-segments": 3 * SEGMENT + 7}


def plaintext(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def _locked_version() -> str:
    lock = json.loads((JS / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/@opentdf/client"]["version"])


def _installed_version() -> str | None:
    manifest = JS / "node_modules" / "@opentdf" / "client" / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text())["version"])


@pytest.fixture(scope="session")
def js_client() -> str:
    """The pinned JavaScript client, installed with ``npm ci`` if it is not yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the JavaScript client interop test")
    with (JS / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() != _locked_version():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=JS,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci failed in {JS}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    assert _installed_version() == _locked_version()
    return node


class AllowDecider:
    def decide(self, facts: RewrapFacts) -> KasDecision:
        return KasDecision(True)


@dataclass
class Live:
    kas_url: str
    rt: KasRuntime
    issuer: TestIssuer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A relto KAS on loopback trusting a loopback test issuer."""
    logging.getLogger("relto").setLevel(logging.WARNING)
    port = free_port()
    issuer = TestIssuer(issuer=f"http://127.0.0.1:{port}")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("js-interop-kas"),
        secret_key="js-interop-secret-key-0123456789",
        keystore_passphrase="js-interop-keystore-passphrase",
        oidc_issuer=issuer.issuer,
        oidc_jwks_url=f"{issuer.issuer}/jwks",
        oidc_audience=AUDIENCE,
    )
    app = create_app(settings)
    rt: KasRuntime = app.state.node.kas
    rt.decider = AllowDecider()
    with ServerThread(issuer_app(issuer, {}), port=port), ServerThread(app) as server:
        yield Live(f"{server.url}/kas", rt, issuer)


def test_js_client_containers_open_through_relto_kas_byte_for_byte(
    js_client: str, live: Live, tmp_path: Path
) -> None:
    pem = tmp_path / "kas.pub"
    pem.write_text(live.rt.service.store.active("rsa:2048").public_key_pem)
    args: list[str] = []
    for name, size in SIZES.items():
        (tmp_path / name).write_bytes(plaintext(size))
        args += [str(tmp_path / name), str(tmp_path / f"{name}.tdf")]
    script = [js_client, str(JS / "encrypt.js"), "--segment-size", str(SEGMENT)]
    done = subprocess.run(
        [*script, live.kas_url, str(pem), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["client"] == f"@opentdf/client@{_locked_version()}"

    token = live.issuer.token("relto-cli")
    with KasClient(allowed_urls=[live.kas_url], token=token) as client:
        for name, size in SIZES.items():
            out = tmp_path / f"{name}.out"
            result = open_container(tmp_path / f"{name}.tdf", out, unwrap=client.rewrap)
            assert out.read_bytes() == plaintext(size), name
            assert result.plaintext_size == size
            segments = result.manifest.encryption_information.integrity_information.segments
            assert len(segments) == -(-size // SEGMENT), name  # 0 segments for 0 bytes
