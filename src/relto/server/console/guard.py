"""Console pages: no scripts, no framing, no sniffing, nothing cached. Uploads:
refused before the form is parsed when larger than the limit or of unknown size."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relto.server.errors import error_body

__all__ = ["FORM_OVERHEAD", "ConsoleGuard"]

_CONSOLE_PREFIXES = ("/console", "/login", "/logout", "/static")
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_UPLOAD_PATHS = frozenset({"/console/documents/new", "/api/v1/objects"})
#: Room for the form fields around an uploaded file.
FORM_OVERHEAD = 64 * 1024
_CONSOLE_HEADERS = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class ConsoleGuard:
    """Pure ASGI middleware (no per-request task)."""

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if scope.get("method") == "POST" and path in _UPLOAD_PATHS:
            length = ""
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    length = value.decode("latin-1")
                    break
            if not length.isdigit() or int(length) > self.upload_limit:
                body = error_body(
                    "too_large",
                    f"uploads are limited to {self.upload_limit} bytes, with a length",
                    Request(scope),
                )
                await JSONResponse(body, status_code=413)(scope, receive, send)
                return
        if not (path == "/" or path.startswith(_CONSOLE_PREFIXES)):
            await self.app(scope, receive, send)
            return
        extra = list(_CONSOLE_HEADERS)
        if not path.startswith("/static"):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
