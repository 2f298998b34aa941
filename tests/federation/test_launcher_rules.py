"""What the federation launcher loads where: demo people reach a node outside demo
mode only through the launcher, into its own loopback nodes, and each node holds
its own nation's people only."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from relto.cli.main import app
from relto.config import Settings
from relto.demo import read_demo
from relto.errors import ConfigError
from relto.launcher.federation import (
    MARKER,
    NATIONS,
    check_launcher_node,
    load_share,
    nation_share,
    node_secrets,
    plan,
    security_officer,
)


def _settings(data_dir: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "nation": "GBR",
        "data_dir": data_dir,
        "secret_key": SecretStr(secrets.token_urlsafe(32)),
        "keystore_passphrase": SecretStr(secrets.token_urlsafe(32)),
        "public_url": "http://127.0.0.1:8102",
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "fed"
    (root / "gbr").mkdir(parents=True)
    (root / MARKER).write_text("x")
    return root


def test_demo_people_refused_into_a_folder_the_launcher_did_not_make(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    (root / "gbr").mkdir(parents=True)  # no marker
    with pytest.raises(ConfigError, match="not a folder made by `relto federation demo`"):
        load_share(_settings(root / "gbr"), root)


def test_demo_people_refused_into_another_nodes_data_folder(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with pytest.raises(ConfigError, match="RELTO_DATA_DIR must be"):
        check_launcher_node(_settings(tmp_path / "real-node"), root)
    with pytest.raises(ConfigError, match="RELTO_DATA_DIR must be"):
        check_launcher_node(_settings(root / "gbr", nation="USA"), root)


def test_demo_people_refused_on_a_node_reachable_beyond_loopback(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with pytest.raises(ConfigError, match="loopback only"):
        check_launcher_node(_settings(root / "gbr", bind="0.0.0.0"), root)
    with pytest.raises(ConfigError, match="loopback only"):
        check_launcher_node(_settings(root / "gbr", public_url="https://relto.gbr.example"), root)


def test_load_demo_still_refused_outside_demo_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_DEMO", "false")
    result = CliRunner().invoke(app, ["partnership", "load-demo"])
    assert result.exit_code != 0
    assert "only in demo mode" in str(result.exception) + result.output


def test_launcher_node_holds_only_its_own_nations_people(tmp_path: Path) -> None:
    root = _root(tmp_path)
    settings = _settings(root / "gbr")
    report = load_share(settings, root)
    assert report.people == sum(1 for p in read_demo().people if p.nationality == "GBR")
    from relto.node import build_node

    node = build_node(settings)
    try:
        homes = {p.home_nation for p in node.directory.people()}
        assert homes == {"GBR"}
        assert node.directory.principal("usa-eng-ramirez", via="node") is None
    finally:
        node.db.dispose()


def test_every_nation_has_an_officer_to_pin_partners() -> None:
    data = read_demo()
    for nation in NATIONS:
        share = nation_share(data, nation)
        assert {p.nationality for p in share.people} == {nation}
        officer = security_officer(share)
        assert officer.startswith(nation.lower())
    assert security_officer(nation_share(data, "JPN")) == "jpn-so-federation"


def test_node_secrets_strong_private_and_kept_across_restarts(tmp_path: Path) -> None:
    node = plan(tmp_path)[1]
    node.folder.mkdir(parents=True)
    first = node_secrets(node)
    assert (node.folder / "secrets.env").stat().st_mode & 0o777 == 0o600
    assert node_secrets(node) == first  # the key store stays sealed with the same passphrase
    settings = _settings(
        node.folder,
        secret_key=SecretStr(first["RELTO_SECRET_KEY"]),
        keystore_passphrase=SecretStr(first["RELTO_KEYSTORE_PASSPHRASE"]),
    )
    settings.check_secrets()
