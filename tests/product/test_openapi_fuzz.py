"""Schemathesis against the app's published OpenAPI document, in-process (ASGI):
whatever a caller sends, the server never answers with a 5xx.

Calls are made as a signed-in demo security officer (session cookie plus CSRF
header), so the generated requests reach the handlers instead of stopping at
authentication. Examples per operation are bounded to keep the run short.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE

_DATA = Path(tempfile.mkdtemp(prefix="relto-fuzz-"))
APP = create_app(Settings(demo=True, data_dir=_DATA), sink=MemorySink())


def _headers() -> dict[str, str]:
    with TestClient(APP, follow_redirects=False) as client:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/login").text)
        assert found
        r = client.post("/login", data={"person_id": "gbr-so-whitfield", "csrf": found.group(1)})
        assert r.status_code == 303
        cookie = client.cookies.get(SESSION_COOKIE)
        assert cookie
        return {
            "Cookie": f"{SESSION_COOKIE}={cookie}",
            "X-CSRF-Token": APP.state.edge.auth.signer.csrf(cookie),
        }


HEADERS = _headers()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def teardown_module() -> None:
    APP.state.node.db.dispose()
    shutil.rmtree(_DATA, ignore_errors=True)


OPERATIONS = {op.ok().label: op.ok() for op in schema.get_all_operations()}


# The schemathesis pytest plugin does not support this pytest yet, so each
# operation's Hypothesis strategy is driven directly.
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(label: str) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        response = case.call(headers=dict(HEADERS))
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
        content_type = " ".join(response.headers.get("content-type", []))
        if response.status_code >= 400 and content_type.startswith("application/json"):
            body = response.json()
            assert "error" in body and "code" in body["error"], body

    check()
