"""The FastAPI app factory.

``create_app(settings)`` opens the database (migrating it), the blob store and the
audit sink, and mounts every route module listed in :mod:`relto.server.routes`.
Tests pass their own database and sink; nothing here reads global state.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette._utils import get_route_path
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relto import __version__
from relto.config import PLACEHOLDER_NAMESPACE, Settings
from relto.events import AuditSink, NullSink
from relto.server.errors import error_body, install_error_handlers
from relto.store import BlobStore, Database, LocalBlobStore, create_database

__all__ = ["AppContext", "FrontEndpoint", "ReltoApp", "create_app"]

log = structlog.stdlib.get_logger("relto.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class AppContext:
    """Everything a request handler may use; stored on ``app.state.ctx``."""

    settings: Settings
    db: Database
    blobs: BlobStore
    sink: AuditSink = field(default_factory=NullSink)
    extras: dict[str, Any] = field(default_factory=dict)


class _Metrics:
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
    metrics, log line, last-resort 500): no routing, no dependency layer, no other
    middleware. Such handlers parse, bound and check their own bodies and render
    their own errors. Every other request goes through the whole FastAPI stack.
    """

    def __init__(self, *args: Any, metrics: _Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self.front: dict[tuple[str, str], FrontEndpoint] = {}
        self._front_door = RequestContextMiddleware(self._serve_front, metrics)

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


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    blobs: BlobStore | None = None,
    sink: AuditSink | None = None,
) -> FastAPI:
    """Build the relto app. Raises ``ConfigError`` on unsafe settings.

    Without ``sink`` the node's transparency log records every event; pass
    :class:`~relto.events.NullSink` to record nothing (tools and some tests).
    """
    settings = settings.with_demo_secrets()
    settings.check_secrets()
    if not settings.demo and settings.attribute_namespace == PLACEHOLDER_NAMESPACE:
        log.warning(
            "attribute_namespace_placeholder",
            detail="RELTO_ATTRIBUTE_NAMESPACE is the placeholder "
            f"{PLACEHOLDER_NAMESPACE}: containers need an authority this deployment controls",
        )
    if db is None:
        db = create_database(settings.effective_database_url)
    if blobs is None:
        blobs = LocalBlobStore(settings.blob_dir)
    extras: dict[str, Any] = {}
    if sink is None:
        # By default every decision and change goes to the node's transparency log,
        # the one /api/v1/audit serves (ADR 0072).
        from relto.audit.config import open_log

        sink = extras["audit"] = open_log(settings)
    ctx = AppContext(settings=settings, db=db, blobs=blobs, sink=sink, extras=extras)
    metrics = _Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("relto_started", version=__version__, demo=settings.demo, nation=settings.nation)
        yield
        log.info("relto_stopping")

    app = ReltoApp(
        metrics=metrics,
        title="relto",
        version=__version__,
        description=(
            "Provably controlled sharing of sensitive technology between allied nations: "
            "labels, clearances, decisions, protected objects, key access and a "
            "transparency log."
        ),
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> JSONResponse:
        ok = ctx.db.ping()
        body = {
            "status": "ok" if ok else "unavailable",
            "database": "ok" if ok else "down",
            "version": __version__,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from relto.server.routes import mount_all

    mount_all(app, ctx)
    # Added last, so it is the outermost middleware: every response, even one that
    # another middleware answers early, carries the request id and is counted.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, metrics, one log line per request.

    Binds a request id (the caller's ``X-Request-Id`` when well-formed, else a fresh
    one) to ``request.state`` and the log context, echoes it in the response, and turns
    an exception that escaped everything else into the uniform 500 body.
    """

    def __init__(self, app: ASGIApp, metrics: _Metrics) -> None:
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
        except Exception:
            log.exception("unhandled_error")
            if started:
                raise
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
