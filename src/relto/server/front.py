"""The app's front door: request ids, metrics, one log line per request, and a
fast path for a few hot endpoints (the KAS's Connect methods)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette._utils import get_route_path
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relto.server.errors import error_body, storage_failure, storage_unavailable

__all__ = ["FrontEndpoint", "Metrics", "ReltoApp", "RequestContextMiddleware"]

log = structlog.stdlib.get_logger("relto.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "relto_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "relto_http_request_seconds",
            "HTTP request latency by method and route.",
            ["method", "route"],
            registry=self.registry,
        )


#: A hot endpoint served at the front door: the handler and the FastAPI route of
#: its path (for metrics labels and the OpenAPI document).
FrontEndpoint = tuple[Callable[[Request], Awaitable[Response]], BaseRoute]


class ReltoApp(FastAPI):
    """FastAPI with a front door for a few hot endpoints (the KAS's Connect methods).

    A request whose method and path are in :attr:`front` is handed to its handler
    directly, wrapped only in :class:`RequestContextMiddleware` (request id,
    metrics, log line, last-resort 500) and the request bounds
    (:meth:`guard_front_door`): no routing, no dependency layer, no other
    middleware. Such handlers parse, bound and check their own bodies and render
    their own errors. Every other request goes through the whole FastAPI stack.
    """

    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self.front: dict[tuple[str, str], FrontEndpoint] = {}
        self._front_door = RequestContextMiddleware(self._serve_front, metrics)

    def guard_front_door(self, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
        """Put ``middleware`` (the request bounds, :mod:`relto.server.limits`) in
        front of the hot endpoints too, inside their request context."""
        self._front_door = RequestContextMiddleware(middleware(self._serve_front), self.metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front:
            hit = self.front.get((scope["method"], get_route_path(scope)))
            if hit is not None:
                scope["app"] = self
                scope["relto.front"], scope["route"] = hit
                await self._front_door(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    @staticmethod
    async def _serve_front(scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = scope["relto.front"]
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, metrics, one log line per request.

    Binds a request id (the caller's ``X-Request-Id`` when well-formed, else a fresh
    one) to ``request.state`` and the log context, echoes it in the response, and turns
    an exception that escaped everything else into the uniform 500 body.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                log.exception("unhandled_error")
                raise
            if storage_failure(exc):
                await storage_unavailable(Request(scope), exc)(scope, receive, send_with_id)
                return
            log.exception("unhandled_error")
            body = error_body("internal_error", "internal error", Request(scope))
            await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route_path = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route_path, str(status)).inc()
            self.metrics.latency.labels(method, route_path).observe(elapsed)
            log.info(
                "request",
                method=method,
                path=scope.get("path", ""),
                status=status,
                ms=round(elapsed * 1000, 2),
            )
