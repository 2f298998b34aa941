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

from relto import __version__
from relto.config import Settings
from relto.events import AuditSink, NullSink
from relto.server.errors import install_error_handlers
from relto.store import BlobStore, Database, LocalBlobStore, create_database

__all__ = ["AppContext", "create_app"]

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

    app = FastAPI(
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

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = rid
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:
            log.exception("unhandled_error")
            from relto.server.errors import error_body

            response = JSONResponse(
                error_body("internal_error", "internal error", request), status_code=500
            )
        elapsed = time.perf_counter() - start
        route = request.scope.get("route")
        route_path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, route_path, str(status)).inc()
        metrics.latency.labels(request.method, route_path).observe(elapsed)
        response.headers["x-request-id"] = rid
        log.info(
            "request",
            method=request.method,
            path=request.url.path,
            status=status,
            ms=round(elapsed * 1000, 2),
        )
        return response

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
    return app
