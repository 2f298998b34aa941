"""Fixtures for the product tests: a demo-mode app on a temporary data folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def demo_app(tmp_path: Path, sink: MemorySink) -> Iterator[TestClient]:
    app = create_app(Settings(demo=True, data_dir=tmp_path), sink=sink)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, person_id: str) -> str:
    """Sign in as a demo person; return the CSRF token for forms and API calls."""
    client.cookies.clear()
    r = client.post("/login", data={"person_id": person_id, "next": "/console"})
    assert r.status_code == 303, r.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    signer = client.app.state.ctx.extras["auth"].signer  # type: ignore[attr-defined]
    return str(signer.csrf(cookie))


@pytest.fixture
def login() -> Callable[[TestClient, str], str]:
    return sign_in
