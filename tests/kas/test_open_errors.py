"""``relto open`` says why the container key was not recovered, against a real relto KAS.

Each failure class gets its own sentence instead of one "access to the container key
was denied": not authenticated (401, with what the KAS said), refused by the KAS's
policy, the KAS holding another key, the KAS unreachable, a KAS the caller has not
allowed, and (offline) a private key that does not fit. The library error stays
opaque in ``str()``; the reasons travel in ``KeyAccessDenied.failures``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kas_testing import AUDIENCE, ServerThread, TestIssuer, free_port, issuer_app

from relto.cli.main import main
from relto.config import Settings
from relto.kas import KasDecision, RewrapFacts
from relto.kas.client import KasClient
from relto.kas.runtime import KasRuntime
from relto.server import create_app
from relto.ztdf import hazmat
from relto.ztdf.container import KasTarget, open_container, protect
from relto.ztdf.errors import FailureKind, KeyAccessDenied


class Decider:
    def __init__(self) -> None:
        self.allowed = True

    def decide(self, facts: RewrapFacts) -> KasDecision:
        return KasDecision(self.allowed)


@dataclass
class Kas:
    kas_url: str
    rt: KasRuntime
    decider: Decider
    issuer: TestIssuer | None

    def rsa(self) -> tuple[str, str]:
        info = self.rt.service.store.active("rsa:2048")
        return info.kid, info.public_key_pem


def _kas(data: Path, issuer: TestIssuer | None) -> tuple[Kas, ServerThread]:
    oidc = (
        {
            "oidc_issuer": issuer.issuer,
            "oidc_jwks_url": f"{issuer.issuer}/jwks",
            "oidc_audience": AUDIENCE,
        }
        if issuer is not None
        else {}
    )
    settings = Settings(
        data_dir=data,
        secret_key="open-errors-secret-key-0123456789",
        keystore_passphrase="open-errors-keystore-passphrase",
        **oidc,
    )
    app = create_app(settings)
    rt: KasRuntime = app.state.node.kas
    decider = Decider()
    rt.decider = decider
    server = ServerThread(app)
    return Kas(f"{server.url}/kas", rt, decider, issuer), server


@pytest.fixture(scope="module")
def kas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kas]:
    """A relto KAS trusting a loopback test issuer."""
    logging.getLogger("relto").setLevel(logging.WARNING)
    port = free_port()
    issuer = TestIssuer(issuer=f"http://127.0.0.1:{port}")
    live, server = _kas(tmp_path_factory.mktemp("kas-issuer"), issuer)
    with ServerThread(issuer_app(issuer, {}), port=port), server:
        yield live


@pytest.fixture(scope="module")
def kas_without_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kas]:
    """A relto KAS with no OIDC issuer configured: it authenticates nobody."""
    live, server = _kas(tmp_path_factory.mktemp("kas-no-issuer"), None)
    with server:
        yield live


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_kas_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a KAS key no running KAS holds."""
    key = rsa.generate_private_key(65537, 2048)
    return _private_pem(key), hazmat.public_key_pem(key.public_key())


def _container(tmp_path: Path, kas_url: str, pem: str, kid: str) -> Path:
    src = tmp_path / "plain.txt"
    src.write_bytes(b"for the entitled only")
    dst = tmp_path / "c.tdf"
    protect(src, dst, kas=[KasTarget(kas_url, pem, kid)], at=datetime.now(UTC))
    return dst


def _open_cli(
    container: Path, out: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["open", str(container), "-o", str(out), *args])
    return code, capsys.readouterr().err


def test_kas_without_identity_provider_says_not_authenticated(
    kas_without_issuer: Kas, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kid, pem = kas_without_issuer.rsa()
    c = _container(tmp_path, kas_without_issuer.kas_url, pem, kid)
    code, err = _open_cli(
        c, tmp_path / "out", capsys, "--kas-url", kas_without_issuer.kas_url, "--token", "t"
    )
    assert code == 1
    assert "not authenticated by the KAS (HTTP 401 unauthenticated" in err
    assert "access to the container key was denied" not in err
    assert not (tmp_path / "out").exists()


def test_expired_token_says_not_authenticated(
    kas: Kas, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kas.issuer is not None
    kid, pem = kas.rsa()
    c = _container(tmp_path, kas.kas_url, pem, kid)
    stale = kas.issuer.token("relto-cli", now=datetime.now(UTC).timestamp() - 3600)
    code, err = _open_cli(c, tmp_path / "out", capsys, "--kas-url", kas.kas_url, "--token", stale)
    assert code == 1
    assert "not authenticated by the KAS" in err


def test_policy_refusal_says_refused_by_policy(
    kas: Kas, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert kas.issuer is not None
    kid, pem = kas.rsa()
    c = _container(tmp_path, kas.kas_url, pem, kid)
    kas.decider.allowed = False
    try:
        token = kas.issuer.token("relto-cli")
        code, err = _open_cli(
            c, tmp_path / "out", capsys, "--kas-url", kas.kas_url, "--token", token
        )
    finally:
        kas.decider.allowed = True
    assert code == 1
    assert "refused by the KAS's policy" in err
    assert "forbidden" in err
    assert not (tmp_path / "out").exists()


def test_container_for_a_key_the_kas_lacks_says_kas_could_not_unwrap(
    kas: Kas, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrapped to a key pair the KAS never held, under the KAS's own key id."""
    assert kas.issuer is not None
    kid, _pem = kas.rsa()
    other = hazmat.public_key_pem(rsa.generate_private_key(65537, 2048).public_key())
    c = _container(tmp_path, kas.kas_url, other, kid)
    token = kas.issuer.token("relto-cli")
    code, err = _open_cli(c, tmp_path / "out", capsys, "--kas-url", kas.kas_url, "--token", token)
    assert code == 1
    assert "the KAS did not release the key: the KAS could not unwrap the key share" in err


def test_unreachable_kas_says_unreachable(
    tmp_path: Path, rsa_kas_pair: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/kas"
    c = _container(tmp_path, dead, rsa_kas_pair[1], "r1")
    code, err = _open_cli(c, tmp_path / "out", capsys, "--kas-url", dead, "--token", "t")
    assert code == 1
    assert f"{dead}: KAS unreachable" in err


def test_kas_not_allowed_gets_no_token_and_says_so(
    kas: Kas, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kid, pem = kas.rsa()
    c = _container(tmp_path, kas.kas_url, pem, kid)
    elsewhere = f"http://127.0.0.1:{free_port()}/kas"
    code, err = _open_cli(c, tmp_path / "out", capsys, "--kas-url", elsewhere, "--token", "t")
    assert code == 1
    assert f"{kas.kas_url}: not asked" in err


def test_wrong_offline_private_key_says_wrong_key(
    tmp_path: Path, rsa_kas_pair: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    c = _container(tmp_path, "https://kas.example/kas", rsa_kas_pair[1], "r1")
    wrong = tmp_path / "wrong.pem"
    wrong.write_text(_private_pem(rsa.generate_private_key(65537, 2048)))
    code, err = _open_cli(c, tmp_path / "out", capsys, "--private-key", str(wrong))
    assert code == 1
    assert "wrong key: no RSA private key given unwraps this key share" in err
    assert "key id 'r1'" in err


def test_library_error_stays_opaque_and_carries_the_reasons(kas: Kas, tmp_path: Path) -> None:
    """What a server might render (``str``) says nothing; ``failures`` says what happened."""
    assert kas.issuer is not None
    kid, pem = kas.rsa()
    c = _container(tmp_path, kas.kas_url, pem, kid)
    kas.decider.allowed = False
    try:
        with (
            KasClient(allowed_urls=[kas.kas_url], token=kas.issuer.token("relto-cli")) as client,
            pytest.raises(KeyAccessDenied) as exc,
        ):
            open_container(c, tmp_path / "out", unwrap=client.rewrap)
    finally:
        kas.decider.allowed = True
    assert str(exc.value) == "access to the container key was denied"
    assert [f.kind for f in exc.value.failures] == [FailureKind.DENIED]
    assert exc.value.failures[0].kas_url == kas.kas_url
