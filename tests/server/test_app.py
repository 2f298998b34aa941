"""The server skeleton: health, metrics, OpenAPI, request ids, and errors that
never leak a stack trace or a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.config import Settings
from relto.errors import ConfigError
from relto.server import create_app
from relto.store import create_database

SECRET = "s3cr3t-value-that-must-never-leak-0123456789"


@pytest.fixture
def app_client(tmp_path: Path) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        secret_key=SecretStr(SECRET),
        keystore_passphrase=SecretStr(SECRET + "-ks"),
    )
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"internal detail with {SECRET}")

    return TestClient(app, raise_server_exceptions=False)


def test_healthz_checks_database(app_client: TestClient) -> None:
    r = app_client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"


def test_healthz_reports_unavailable_database(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'x.db'}")
    app = create_app(Settings(demo=True, data_dir=tmp_path), db=db)
    client = TestClient(app)
    db.engine.dispose()
    db.ping = lambda: False  # type: ignore[method-assign]
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


def test_metrics_are_prometheus(app_client: TestClient) -> None:
    app_client.get("/healthz")
    # Only a loopback peer may scrape without RELTO_METRICS_TOKEN (test_metrics.py).
    r = TestClient(app_client.app, client=("127.0.0.1", 50000)).get("/metrics")
    assert r.status_code == 200
    assert 'relto_http_requests_total{method="GET",route="/healthz",status="200"}' in r.text


def test_openapi_and_docs_published(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    assert spec["info"]["title"] == "relto"
    assert "/healthz" in spec["paths"]
    assert app_client.get("/docs").status_code == 200


def test_unhandled_error_leaks_no_stack_trace_or_secret(app_client: TestClient) -> None:
    r = app_client.get("/boom")
    assert r.status_code == 500
    body = r.text
    assert SECRET not in body
    assert "Traceback" not in body and "RuntimeError" not in body
    assert r.json()["error"]["code"] == "internal_error"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_request_id_is_propagated_and_sanitised(app_client: TestClient) -> None:
    r = app_client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = app_client.get("/healthz", headers={"x-request-id": "bad id\n<script>"})
    assert r.headers["x-request-id"] != "bad id\n<script>"
    assert len(r.headers["x-request-id"]) == 32


def test_unknown_route_has_uniform_error_body(app_client: TestClient) -> None:
    r = app_client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "RELTO_SECRET_KEY"),
        ({"secret_key": SecretStr(SECRET)}, "RELTO_KEYSTORE_PASSPHRASE"),
        (
            {"secret_key": SecretStr("changeme"), "keystore_passphrase": SecretStr(SECRET)},
            "RELTO_SECRET_KEY",
        ),
        (
            {"secret_key": SecretStr(SECRET), "keystore_passphrase": SecretStr("short")},
            "RELTO_KEYSTORE_PASSPHRASE",
        ),
    ],
)
def test_server_refuses_missing_or_placeholder_secret(
    tmp_path: Path, env: dict[str, SecretStr], missing: str
) -> None:
    with pytest.raises(ConfigError, match=missing):
        create_app(Settings(data_dir=tmp_path, **env))  # type: ignore[arg-type]


def test_demo_mode_generates_and_keeps_secrets(tmp_path: Path) -> None:
    s1 = Settings(demo=True, data_dir=tmp_path).with_demo_secrets()
    s2 = Settings(demo=True, data_dir=tmp_path).with_demo_secrets()
    assert s1.secret_key is not None and s2.secret_key is not None
    assert s1.secret_key.get_secret_value() == s2.secret_key.get_secret_value()
    assert (tmp_path / "demo-secrets").stat().st_mode & 0o077 == 0


def test_logging_survives_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed stream that was stderr when logging was set up must not break logging."""
    import io
    import logging
    import sys

    from relto.server.logging import configure_logging

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("relto.test").warning("still-logging")
    out = second.getvalue()
    assert "still-logging" in out
    assert "Logging error" not in out and "Traceback" not in out


def test_workers_freeze_the_startup_heap_out_of_full_collections() -> None:
    """A full collection over the app's start-up heap paused a worker ~150-200 ms
    under load (p99 of every request in flight): workers freeze it once built."""
    import gc

    from relto.server.run import freeze_startup_heap

    before = gc.get_freeze_count()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # the test process keeps collecting as usual
