"""The FastAPI app factory.

``create_app(settings)`` builds the node (:func:`relto.node.build_node`: the one
composition root), loads the demo partnership in demo mode, and hands the node to
every HTTP adapter: the REST API, the KAS endpoints, the audit log and the
console. Adapters only parse, call one service, and render; none depends on
another having been mounted first. Tests pass their own database and sink;
nothing here reads global state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from relto import __version__
from relto.authz import Permission
from relto.config import PLACEHOLDER_NAMESPACE, Settings
from relto.demo import LoadReport, load_demo, load_demo_documents, read_demo
from relto.events import AuditSink
from relto.kas.auth import build_authenticator
from relto.metrics import ScrapeRefused
from relto.node import Node, build_node
from relto.server import apidocs, console, integrity
from relto.server.auth import RequestAuth
from relto.server.edge import Edge, needs
from relto.server.errors import install_error_handlers
from relto.server.front import Metrics, ReltoApp, RequestContextMiddleware
from relto.server.health import probe_node
from relto.server.integrity import start_self_check
from relto.server.limits import FORM_OVERHEAD, Guard, RequestGuard
from relto.server.refresh import start_descriptor_refresh
from relto.server.replication import start_change_push
from relto.server.routes import (
    audit,
    changes,
    export,
    federation,
    kas,
    objects,
    partnership,
    tracing,
    vetting,
)
from relto.server.witnessing import start_witness_push
from relto.store import BlobStore, Database

__all__ = ["create_app"]

log = structlog.stdlib.get_logger("relto.server")

#: The HTTP adapters; each mounts its own routes, in any order.
_ADAPTERS = (
    partnership.mount,
    objects.mount,
    vetting.mount,
    export.mount,
    tracing.mount,
    audit.mount,
    kas.mount,
    federation.mount,
    integrity.mount,
    console.mount,
    apidocs.mount,
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
    node = build_node(settings, db=db, blobs=blobs, sink=sink)
    settings = node.settings
    if not settings.demo and settings.attribute_namespace == PLACEHOLDER_NAMESPACE:
        log.warning(
            "attribute_namespace_placeholder",
            detail="RELTO_ATTRIBUTE_NAMESPACE is the placeholder "
            f"{PLACEHOLDER_NAMESPACE}: containers need an authority this deployment controls",
        )
    demo_report = _load_demo(node) if settings.demo else None
    auth = RequestAuth(
        settings,
        node.directory,
        build_authenticator(settings, require_dpop=False),
        node.sessions,
        attestations=node.kas.attestations,
    )
    edge = Edge(node=node, auth=auth)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("relto_started", version=__version__, demo=settings.demo, nation=settings.nation)
        refreshing = start_descriptor_refresh(node)
        pushing = start_witness_push(node)
        replicating = start_change_push(node, app.state.changes)
        checking = start_self_check(node)
        yield
        for task in (refreshing, pushing, replicating, checking):
            if task is not None:
                task.cancel()
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
        # /docs and /redoc are served from this node's own assets (relto.server.apidocs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.edge = edge
    app.state.demo_report = demo_report
    install_error_handlers(app)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness and database check",
        **needs(Permission.NODE_OPERATE),
    )
    def healthz() -> JSONResponse:
        """Each part probed with a real write (:mod:`relto.server.health`)."""
        parts = probe_node(node)
        ok = all(v == "ok" for v in parts.values())
        body = {"status": "ok" if ok else "unavailable", **parts, "version": __version__}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        **needs(Permission.NODE_OPERATE),
    )
    def prometheus(request: Request) -> Response:
        """HTTP and domain metrics, for a loopback peer or a scraper with
        ``RELTO_METRICS_TOKEN`` (:class:`relto.metrics.ScrapeAccess`)."""
        peer = request.client.host if request.client else None
        try:
            body = node.metrics.scrape(peer, request.headers.get("authorization"), metrics.registry)
        except ScrapeRefused as exc:
            log.info("metrics_refused", reason=str(exc))
            raise HTTPException(
                401, "authentication required", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    for mount in _ADAPTERS:
        mount(app, edge)
    app.state.changes = changes.mount(app, edge)  # the node's ledger, shared with replication
    # Bounds on every request (rate, body size, sign-in before the body is read),
    # from the routes as mounted; in front of the whole stack and of the front door.
    guard = Guard(settings, app.routes, max_upload=node.documents.max_upload_bytes + FORM_OVERHEAD)
    app.add_middleware(RequestGuard, guard=guard)
    app.guard_front_door(lambda inner: RequestGuard(inner, guard=guard))
    # Added last, so it is the outermost middleware: every response, even one that
    # another middleware answers early, carries the request id and is counted.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def _load_demo(node: Node) -> LoadReport:
    """The demo partnership, people and documents, through the services (ADR 0077).
    Server workers start together: one loads, the others find it loaded."""
    data = read_demo()
    at = datetime.now(UTC)
    with node.db.exclusive("demo-load"):
        report = load_demo(node.db, node.sink, data, at=at)
        load_demo_documents(node.documents, node.directory, data, report, at=at)
    log.info(
        "demo_loaded",
        partnerships=report.partnerships,
        projects=report.projects,
        admissions=report.admissions,
        people=report.people,
        documents=report.documents,
        skipped=len(report.skipped),
    )
    return report
