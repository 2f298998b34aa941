"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served
entirely by the node: their scripts and styles come from the installed
``fastapi-offline`` package (MIT; it ships Swagger UI's and ReDoc's release files),
never from a CDN, so the pages work offline and under a strict CSP -- scripts
from this node only, no inline script (the Swagger UI start-up is a file here;
the OAuth2 redirect page's inline script is allowed by its hash)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from relto.authz import Permission
from relto.server.edge import Edge, needs

__all__ = ["ASSETS_URL", "mount"]

ASSETS_URL = "/docs/assets"
_HERE = Path(__file__).resolve().parent
_VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
#: Every file the pages may load, by name (nothing else is served).
_ASSETS = {
    "swagger-ui-bundle.js": _VENDOR / "swagger-ui-bundle.js",
    "swagger-ui.css": _VENDOR / "swagger-ui.css",
    "redoc.standalone.js": _VENDOR / "redoc.standalone.js",
    "favicon.png": _VENDOR / "favicon.png",
    "swagger-init.js": _HERE / "swagger-init.js",
}
#: Scripts from this node only. Styles: Swagger UI and ReDoc (styled-components)
#: set inline styles; images: their icons are data: URLs; ReDoc searches in a
#: blob: worker.
_CSP = (
    "default-src 'none'; script-src 'self'{extra}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def _page(body: str, title: str, script_hash: str = "") -> HTMLResponse:
    doc = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" href="{ASSETS_URL}/favicon.png">{body}</html>'
    )
    extra = f" '{script_hash}'" if script_hash else ""
    return HTMLResponse(
        doc, headers={"content-security-policy": _CSP.format(extra=extra), **_PAGE_HEADERS}
    )


def _sha256(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def mount(app: FastAPI, edge: Edge) -> None:
    """Serve /docs, /docs/oauth2-redirect, /redoc and their assets (the app is
    created with FastAPI's own documentation routes turned off)."""
    spec = app.openapi_url or "/openapi.json"
    title = html.escape(app.title)
    redirect = bytes(get_swagger_ui_oauth2_redirect_html().body).decode()
    inline = re.search(r"<script>(.*?)</script>", redirect, re.S)
    redirect_hash = _sha256(inline.group(1)) if inline else ""

    @app.get("/docs", include_in_schema=False, **needs(Permission.NODE_OPERATE))
    def swagger() -> HTMLResponse:
        return _page(
            f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css"></head><body>'
            f'<div id="swagger-ui" data-openapi-url="{html.escape(spec)}"></div>'
            f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>'
            f'<script src="{ASSETS_URL}/swagger-init.js"></script></body>',
            f"{title} - Swagger UI",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False, **needs(Permission.NODE_OPERATE))
    def oauth2_redirect() -> HTMLResponse:
        response = HTMLResponse(redirect)
        response.headers["content-security-policy"] = _CSP.format(extra=f" '{redirect_hash}'")
        return response

    @app.get("/redoc", include_in_schema=False, **needs(Permission.NODE_OPERATE))
    def redoc() -> HTMLResponse:
        return _page(
            f'</head><body><redoc spec-url="{html.escape(spec)}"></redoc>'
            f'<script src="{ASSETS_URL}/redoc.standalone.js"></script></body>',
            f"{title} - ReDoc",
        )

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False, **needs(Permission.NODE_OPERATE))
    def asset(name: str) -> FileResponse:
        path = _ASSETS.get(name)
        if path is None:
            raise HTTPException(404, "not found")
        return FileResponse(
            path,
            headers={"cache-control": "public, max-age=86400", "x-content-type-options": "nosniff"},
        )
