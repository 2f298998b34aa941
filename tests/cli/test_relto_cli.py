"""The relto command: help, version, config show with secrets masked, one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relto import __version__
from relto.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-real-looking-secret-0123456789"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "version", "config"):
        assert command in out


def test_config_show_masks_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELTO_SECRET_KEY", SECRET)
    monkeypatch.setenv("RELTO_DATABASE_URL", "postgresql://relto:dbpassword99@db.example/relto")
    monkeypatch.setenv("RELTO_PORT", "9999")
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    assert "dbpassword99" not in out
    assert "9999" in out
    assert "********" in out


def test_bad_setting_is_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_PORT", "not-a-port")
    assert main(["config", "show"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("relto: error: invalid configuration")
    assert "Traceback" not in err


def test_serve_refuses_without_secrets_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RELTO_SECRET_KEY", raising=False)
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    assert main(["serve", "--no-demo"]) == 1
    err = capsys.readouterr().err
    assert "RELTO_SECRET_KEY" in err
    assert "Traceback" not in err


def test_unknown_command_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_answers_healthz_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "RELTO_DATA_DIR": str(tmp_path / "data"), "RELTO_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "relto.cli.main", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not answer /healthz within 60 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert f"http://127.0.0.1:{port}" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
