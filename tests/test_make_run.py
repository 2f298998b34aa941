"""`make run` as a newcomer uses it: it starts the demo node on loopback, and Ctrl-C in
the terminal stops it cleanly, without a make error."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read(fd: int, until: float) -> bytes:
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_ctrl_c_stops_make_run_without_a_make_error(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env |= {"RELTO_DATA_DIR": str(tmp_path / "data"), "RELTO_PORT": str(port)}
    main, child = pty.openpty()
    # A terminal of its own, as in a shell: make and relto in one foreground group.
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdin=child,
        stdout=child,
        stderr=child,
        start_new_session=True,
    )
    os.close(child)
    output = b""
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            output += _read(main, time.monotonic() + 1)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code:
                    break
            except httpx.HTTPError:
                continue
        else:
            raise AssertionError(f"relto did not start:\n{output.decode(errors='replace')}")
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        output += _read(main, time.monotonic() + 2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(main)
    text = output.decode(errors="replace")
    assert "Uvicorn running on http://127.0.0.1:" in text
    assert not re.search(r"make(\[\d+\])?: \*\*\*", text), text[-2000:]
    assert proc.returncode in (0, -signal.SIGINT, 130), proc.returncode
