"""What every HTTP adapter receives: the node's services and request authentication,
and how a route declares the permission it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from starlette.routing import BaseRoute

from relto.authz import Permission, Principal
from relto.node import Node
from relto.server.auth import RequestAuth

__all__ = ["PERMISSION_KEY", "Edge", "declared_permission", "needs"]

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
