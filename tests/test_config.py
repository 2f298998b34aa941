"""Settings that decide whom a node believes, and what it refuses to start with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relto.config import Settings, is_loopback, load_settings
from relto.errors import ConfigError

SECRETS = {
    "secret_key": "config-test-secret-key-0123456789",
    "keystore_passphrase": "config-test-keystore-passphrase",
}
GBR = "https://idp.gbr.test"
USA = "https://idp.usa.test"


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, **{**SECRETS, **values})


def test_issuers_from_the_environment_are_bound_to_their_nation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "RELTO_OIDC_ISSUERS",
        json.dumps(
            {
                USA: {"nation": "USA", "jwks_url": f"{USA}/jwks", "audience": "relto"},
                GBR: {"nation": "GBR", "jwks_url": f"{GBR}/jwks", "audience": "relto"},
            }
        ),
    )
    trusted = load_settings().trusted_issuers
    assert {url: i.nation for url, i in trusted.items()} == {USA: "USA", GBR: "GBR"}
    assert trusted[USA].jwks_url == f"{USA}/jwks"


@pytest.mark.parametrize(
    "issuers",
    [
        {USA: {"nation": "usa", "jwks_url": f"{USA}/jwks"}},  # not upper-case
        {USA: {"nation": "US", "jwks_url": f"{USA}/jwks"}},
        {USA: {"nation": "USA", "jwks_url": "file:///etc/jwks.json"}},
        {"idp.usa.test": {"nation": "USA", "jwks_url": f"{USA}/jwks"}},  # not a URL
        {USA: {"nation": "USA", "jwks_url": f"{USA}/jwks", "nations": ["GBR"]}},  # unknown key
        {USA: {"jwks_url": f"{USA}/jwks"}},  # an issuer bound to no nation
    ],
)
def test_malformed_issuer_binding_refused(
    issuers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_OIDC_ISSUERS", json.dumps(issuers))
    with pytest.raises(ConfigError, match="invalid configuration"):
        load_settings()


def test_single_issuer_shorthand_is_bound_to_the_node_nation(tmp_path: Path) -> None:
    s = _settings(
        tmp_path,
        nation="AUS",
        oidc_issuer=GBR,
        oidc_jwks_url=f"{GBR}/jwks",
        oidc_audience="relto",
        oidc_issuers={USA: {"nation": "USA", "jwks_url": f"{USA}/jwks", "audience": "r"}},
    )
    assert {url: i.nation for url, i in s.trusted_issuers.items()} == {GBR: "AUS", USA: "USA"}
    assert _settings(tmp_path).trusted_issuers == {}


def test_issuer_configured_twice_differently_refused(tmp_path: Path) -> None:
    """The shorthand must not quietly rebind an issuer to the node's own nation."""
    s = _settings(
        tmp_path,
        nation="GBR",
        oidc_issuer=USA,
        oidc_jwks_url=f"{USA}/jwks",
        oidc_audience="relto",
        oidc_issuers={USA: {"nation": "USA", "jwks_url": f"{USA}/jwks", "audience": "relto"}},
    )
    with pytest.raises(ConfigError, match="configured twice"):
        _ = s.trusted_issuers
    same = s.model_copy(update={"nation": "USA"})
    assert same.trusted_issuers[USA].nation == "USA"  # the same values twice: one issuer


def test_half_configured_shorthand_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RELTO_OIDC_JWKS_URL"):
        _ = _settings(tmp_path, oidc_issuer=GBR).trusted_issuers


def test_issuer_without_audience_refused_outside_demo(tmp_path: Path) -> None:
    """Without an audience, a token the issuer minted for any other service would do."""
    short = _settings(tmp_path, oidc_issuer=GBR, oidc_jwks_url=f"{GBR}/jwks")
    with pytest.raises(ConfigError, match=f"{GBR} has no audience: set RELTO_OIDC_AUDIENCE"):
        short.check_startup()
    listed = _settings(tmp_path, oidc_issuers={USA: {"nation": "USA", "jwks_url": f"{USA}/j"}})
    with pytest.raises(ConfigError, match=f"{USA} has no audience.*RELTO_OIDC_ISSUERS"):
        listed.check_startup()
    short.model_copy(update={"oidc_audience": "relto"}).check_startup()
    Settings(
        data_dir=tmp_path, demo=True, oidc_issuer=GBR, oidc_jwks_url=f"{GBR}/j"
    ).check_startup()


def test_check_startup_still_refuses_placeholder_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RELTO_SECRET_KEY"):
        Settings(data_dir=tmp_path, secret_key="changeme").check_startup()


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.20", "relto.example", ""])
def test_demo_mode_on_a_network_address_refused(tmp_path: Path, bind: str) -> None:
    """Demo mode signs anyone in without a password: never off loopback."""
    with pytest.raises(ConfigError) as caught:
        Settings(data_dir=tmp_path, demo=True, bind=bind).check_startup()
    message = str(caught.value)
    assert message.startswith(f"RELTO_BIND={bind} is not a loopback address")
    assert "\n" not in message


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_demo_mode_on_loopback_starts(tmp_path: Path, bind: str) -> None:
    assert is_loopback(bind)
    Settings(data_dir=tmp_path, demo=True, bind=bind).check_startup()


def test_non_demo_node_may_listen_on_the_network(tmp_path: Path) -> None:
    _settings(tmp_path, bind="0.0.0.0").check_startup()


def test_config_show_renders_issuers_as_json(tmp_path: Path) -> None:
    s = _settings(tmp_path, oidc_issuers={USA: {"nation": "USA", "jwks_url": f"{USA}/j"}})
    shown = json.loads(s.masked()["oidc_issuers"])
    assert shown == {USA: {"nation": "USA", "jwks_url": f"{USA}/j", "audience": None}}


_DEMO_SECRETS_WORKER = """
import sys, time
from pathlib import Path
from relto.config import Settings
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
s = Settings(demo=True, data_dir=Path(sys.argv[2])).with_demo_secrets()
print(s.keystore_passphrase.get_secret_value(), s.secret_key.get_secret_value())
"""


def test_workers_starting_together_share_one_set_of_demo_secrets(tmp_path: Path) -> None:
    """Each worker used to generate and keep its own secrets when none existed yet,
    so the key store opened for one and refused the others (a flaky start)."""
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    data = tmp_path / "data"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _DEMO_SECRETS_WORKER, str(go), str(data)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(1.0)
    go.touch()
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(outputs) == 1 and all(p.returncode == 0 for p in procs)
    assert (data / "demo-secrets").stat().st_mode & 0o077 == 0
