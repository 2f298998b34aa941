"""Console pages: no scripts, no framing, no sniffing, nothing cached. (Body sizes,
uploads included, are bounded for every route by :mod:`relto.server.limits`.)"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ConsoleGuard"]

_CONSOLE_PREFIXES = ("/console", "/login", "/logout", "/static")
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_CONSOLE_HEADERS = (
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class ConsoleGuard:
    """Pure ASGI middleware (no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
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
