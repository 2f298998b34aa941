"""What every HTTP adapter receives: the node's services and request authentication,
and how a route declares the permission it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.routing import BaseRoute, Mount

from relto.authz import Permission, Principal
from relto.documents import DocumentView, ReleasedCopy
from relto.node import Node
from relto.server.auth import RequestAuth

__all__ = [
    "PERMISSION_KEY",
    "Edge",
    "RouteEntry",
    "copy_response",
    "declared_permission",
    "download_response",
    "needs",
    "routes_of",
]

#: Where a route's permission is kept (also shown in the OpenAPI document).
PERMISSION_KEY = "x-relto-permission"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Edge:
    node: Node
    auth: RequestAuth
    #: The time of a change made through the API (replaceable in tests).
    clock: Callable[[], datetime] = field(default=_now)

    def who(self, request: Request) -> Principal:
        """The signed-in person (401 otherwise); use as a FastAPI dependency."""
        return self.auth.require(request)


def needs(permission: Permission) -> dict[str, Any]:
    """Route keyword arguments declaring ``permission`` (every route has one)."""
    return {"openapi_extra": {PERMISSION_KEY: permission.value}}


def declared_permission(route: BaseRoute) -> Permission | None:
    extra = getattr(route, "openapi_extra", None) or {}
    value = extra.get(PERMISSION_KEY)
    return Permission(value) if isinstance(value, str) else None


#: Routes the framework adds (the OpenAPI document and its viewers) and the
#: console's static files: public, like /healthz.
_FRAMEWORK: dict[str, Permission] = {
    "/openapi.json": Permission.NODE_OPERATE,
    "/docs": Permission.NODE_OPERATE,
    "/docs/oauth2-redirect": Permission.NODE_OPERATE,
    "/redoc": Permission.NODE_OPERATE,
    "/static": Permission.NODE_OPERATE,
}


@dataclass(frozen=True)
class RouteEntry:
    """One method and path the app answers, and the permission it declares."""

    method: str
    path: str
    permission: Permission | None


def _flatten(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI keeps included routers as a branch
            yield from _flatten(included.routes)
        else:
            yield route


def routes_of(app: FastAPI) -> list[RouteEntry]:
    """Every route of ``app`` (included routers flattened), with its permission."""
    out: list[RouteEntry] = []
    for route in _flatten(app.routes):
        path = str(getattr(route, "path", ""))
        permission = declared_permission(route) or _FRAMEWORK.get(path)
        methods = ["*"] if isinstance(route, Mount) else sorted(getattr(route, "methods", ()))
        out.extend(RouteEntry(m, path, permission) for m in methods if m != "HEAD")
    return out


def copy_response(doc: DocumentView, copy: ReleasedCopy) -> Response:
    """The recipient's own copy as a download (a fingerprinted PDF or image, or a
    re-protected container): its marking and copy number in headers, never cached."""
    return Response(
        copy.data,
        media_type=copy.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{copy.filename}"',
            "X-Relto-Marking": doc.banner,
            "X-Relto-Copy": str(copy.copy_number),
            "Cache-Control": "no-store",
        },
    )


def download_response(doc: DocumentView, plaintext: bytes) -> Response:
    """A released copy as a download: its marking in a header, never cached."""
    return Response(
        plaintext,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{doc.filename}"',
            "X-Relto-Marking": doc.banner,
            "Cache-Control": "no-store",
        },
    )
