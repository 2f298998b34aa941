"""`relto federation demo` for real: four nodes and four OpenID providers on
loopback, pinned to each other, stopped by Ctrl-C with nothing left behind.

Needs Node.js and npm (the launcher runs ``npm ci`` of the pinned provider): the
test fails loudly without them, it is never skipped.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from relto.launcher.federation import NATIONS
from relto.launcher.idp import demo_sign_in

RELTO = str(Path(sys.executable).with_name("relto"))


def _free_run(count: int) -> int:
    """A first port of ``count`` consecutive free loopback ports."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free ports")


def _env_of(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    for name in ("node.env", "secrets.env"):
        for line in (folder / name).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                env[key] = value.strip("'")
    return env


def test_four_nodes_start_pin_each_other_and_stop_on_ctrl_c_without_orphans(
    tmp_path: Path,
) -> None:
    root = tmp_path / "federation"
    node_base, idp_base = _free_run(4), _free_run(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env["RELTO_DATA_DIR"] = str(tmp_path / "not-used")  # as `make` exports it: ignored
    launcher = subprocess.Popen(
        [
            RELTO,
            "federation",
            "demo",
            "--root",
            str(root),
            "--node-port",
            str(node_base),
            "--idp-port",
            str(idp_base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    output: list[str] = []
    started = time.monotonic()
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            output.append(line)
            if line.startswith("Ctrl-C stops"):
                break
        else:
            raise AssertionError("".join(output))
        elapsed = time.monotonic() - started
        assert elapsed < 90, elapsed
        text = "".join(output)
        print(text)  # the start-up time and the fingerprints, for the record

        urls = {n: f"http://127.0.0.1:{node_base + i}" for i, n in enumerate(NATIONS)}
        for nation, url in urls.items():
            health = httpx.get(url + "/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok", nation
            assert f"{nation}  console {url}/" in text
        assert "accepts ANY password" in text

        # every node's security officer pinned the other three, fingerprints shown
        for nation in NATIONS:
            listed = subprocess.run(
                [RELTO, "federation", "list"],
                env=_env_of(root / nation.lower()),
                capture_output=True,
                text=True,
                check=True,
            )
            pins = {row["nation"]: row for row in json.loads(listed.stdout)}
            assert set(pins) == set(NATIONS) - {nation}, (nation, pins)
            for other, row in pins.items():
                assert row["fingerprint"] in text
                assert row["base_url"] == urls[other]

        # nodes are not in demo mode: secrets written 0600, the demo picker absent
        for nation in NATIONS:
            secrets_file = root / nation.lower() / "secrets.env"
            assert secrets_file.stat().st_mode & 0o077 == 0
        gbr = urls["GBR"]
        assert httpx.get(gbr + "/login").status_code == 200
        assert "data-person" not in httpx.get(gbr + "/login").text

        # a GBR engineer signs in at the GBR console through the GBR provider
        with httpx.Client(base_url=gbr, follow_redirects=False) as node_browser:
            start = node_browser.get("/login/oidc", params={"next": "/console"})
            assert start.status_code == 303
            with httpx.Client(follow_redirects=False, timeout=10) as idp_browser:
                callback = demo_sign_in(idp_browser, start.headers["location"], "gbr-eng-harper")
            done = node_browser.get(callback)
            assert done.status_code == 303, done.text[:300]
            assert "Olivia Harper" in node_browser.get("/console").text

        family = psutil.Process(launcher.pid).children(recursive=True)
        assert len(family) >= 8  # four nodes, four providers

        # one node stopped: the others carry on, and it comes back by hand on its folder
        def read_until(prefix: str) -> str:
            assert launcher.stdout is not None
            for line in launcher.stdout:
                output.append(line)
                if line.startswith(prefix):
                    return line
            raise AssertionError("".join(output))

        jpn_pid = int(read_until("JPN node pid").split()[-1])
        os.killpg(jpn_pid, signal.SIGTERM)
        assert "Bring it back in another terminal" in read_until("JPN node stopped")
        for nation in ("AUS", "GBR", "USA"):
            assert httpx.get(urls[nation] + "/healthz", timeout=10).status_code == 200, nation
        back = subprocess.Popen(
            [RELTO, "serve"], env=_env_of(root / "jpn"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(urls["JPN"] + "/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "JPN did not come back"
                time.sleep(0.5)
        finally:
            os.killpg(back.pid, signal.SIGTERM)
            back.wait(timeout=30)
        assert launcher.poll() is None  # the launcher kept the other three running
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C in the launcher's terminal
        try:
            code = launcher.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            raise
    rest = launcher.stdout.read() if launcher.stdout else ""
    assert code == 0, rest
    assert "stopped: every node and provider" in rest
    left = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [p.cmdline() for p in left]
    for port in [*range(node_base, node_base + 4), *range(idp_base, idp_base + 4)]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            s.bind(("127.0.0.1", port))  # nobody listens any more
