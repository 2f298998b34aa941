"""Commands that must refuse to run, in one line, before they touch anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from relto.cli.main import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_on_a_network_address_refused(tmp_path: Path) -> None:
    """Demo mode signs anyone in without a password: `relto serve --demo` must not
    listen beyond loopback. Run as a process: if the check failed, the server would
    start (and the timeout would fail the test) rather than hang the test run."""
    data = tmp_path / "data"
    env = {**os.environ, "RELTO_DATA_DIR": str(data), "RELTO_PORT": str(_free_port())}
    env.pop("RELTO_BIND", None)
    proc = subprocess.run(
        [sys.executable, "-m", "relto.cli.main", "serve", "--demo", "--bind", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "relto: error: RELTO_BIND=0.0.0.0 is not a loopback address: demo mode signs "
        "anyone in without a password and only listens on loopback"
    ]
    assert "listening" not in proc.stdout
    assert not data.exists()  # nothing was started or written


def test_load_demo_outside_demo_mode_refused_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo people, their clearances and roles must never land in a real node."""
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RELTO_DEMO", raising=False)
    assert main(["partnership", "load-demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("relto: error: load-demo") and "RELTO_DEMO=true" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RELTO_DEMO", "false")
    assert main(["partnership", "load-demo"]) == 1
    assert list(tmp_path.iterdir()) == []
    # Checking the file only reads it, and is allowed anywhere.
    assert main(["partnership", "load-demo", "--check"]) == 0
