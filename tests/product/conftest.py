"""Fixtures for the product tests: a demo-mode app on a temporary data folder."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.authz import Principal
from relto.config import Settings
from relto.events import MemorySink
from relto.node import Node
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the demo loaded once; tests start from copies of it."""
    folder = tmp_path_factory.mktemp("demo-template")
    app = create_app(Settings(demo=True, data_dir=folder), sink=MemorySink())
    app.state.node.db.dispose()
    return folder


@pytest.fixture
def demo_app(tmp_path: Path, sink: MemorySink, demo_template: Path) -> Iterator[TestClient]:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    app = create_app(Settings(demo=True, data_dir=data), sink=sink)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client
    app.state.node.db.dispose()


def node_of(client: TestClient) -> Node:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    return node


def principal(client: TestClient, person_id: str) -> Principal:
    """A demo person as the node's directory knows them."""
    found = node_of(client).directory.principal(person_id, via="session")
    assert found is not None, person_id
    return found


def login_form_token(client: TestClient) -> str:
    """Fetch the sign-in form (its cookie stays in ``client``); its form token."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "the sign-in form carries no token"
    return found.group(1)


def sign_in(client: TestClient, person_id: str) -> str:
    """Sign in as a demo person; return the CSRF token for forms and API calls."""
    client.cookies.clear()
    token = login_form_token(client)
    r = client.post("/login", data={"person_id": person_id, "next": "/console", "csrf": token})
    assert r.status_code == 303, r.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    signer = client.app.state.edge.auth.signer  # type: ignore[attr-defined]
    return str(signer.csrf(cookie))


@pytest.fixture
def login() -> Callable[[TestClient, str], str]:
    return sign_in


# -- a real server and a real browser ----------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "product"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``relto serve --demo`` on 127.0.0.1, a free port and a fresh data folder."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    data = tmp_path_factory.mktemp("relto-live")
    port = _free_port()
    env = {
        **os.environ,
        "RELTO_DATA_DIR": str(data),
        "RELTO_LOG_LEVEL": "WARNING",
    }
    env.pop("RELTO_DATABASE_URL", None)
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relto.cli.main",
            "serve",
            "--demo",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(data),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    "relto serve exited early:\n" + (data / "server.log").read_text()[-3000:]
                )
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("relto serve did not become healthy within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        import subprocess

        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
