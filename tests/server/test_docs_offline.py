"""/docs and /redoc work offline: no script or style from another host, every
asset served by the node itself, and no inline script under the pages' CSP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.config import Settings
from relto.server import create_app

_REF = re.compile(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(create_app(Settings(demo=True, data_dir=tmp_path_factory.mktemp("d"))))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_a_cdn(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    assert (
        "http://" not in r.text
        and "https://" not in r.text
        and "//" not in r.text.replace("<!doctype", "")
    )
    refs = _REF.findall(r.text)
    scripts = [u for u in refs if u.endswith(".js")]
    assert scripts, "the page loads its scripts from the node"
    for url in refs:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"]
            assert len(asset.content) > 100
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp  # no inline script, no other host
    assert "<script>" not in r.text  # every script is a file


def test_oauth2_redirect_inline_script_is_allowed_only_by_its_hash(client: TestClient) -> None:
    r = client.get("/docs/oauth2-redirect")
    assert r.status_code == 200
    assert "'sha256-" in r.headers["content-security-policy"]
    assert "'unsafe-inline'" not in r.headers["content-security-policy"].split("style-src")[0]


def test_unknown_asset_is_not_found(client: TestClient) -> None:
    assert client.get("/docs/assets/..%2Fapp.py").status_code == 404
    assert client.get("/docs/assets/secrets.txt").status_code == 404


def test_vendored_assets_come_from_the_installed_package() -> None:
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    assert (static / "redoc.standalone.js").is_file()
    assert (static / "swagger-ui-bundle.js").is_file()
