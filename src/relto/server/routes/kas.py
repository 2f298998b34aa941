"""The key access service over HTTP: ``kas.AccessService`` (Connect, JSON or protobuf)
and ``/.well-known/opentdf-configuration``.

Thin edge: parse the Connect envelope, authenticate, call :mod:`relto.kas`,
render. Connect errors are ``{"code", "message"}`` JSON with the HTTP status the
Connect protocol assigns; messages are opaque (the reason goes to the log).
"""

from __future__ import annotations

import asyncio
import zlib
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from relto.authz import Permission
from relto.errors import InvalidInput, NotFound, ReltoError
from relto.kas import wire
from relto.kas.errors import (
    AuditUnavailable,
    KeyStoreError,
    ReplayCacheUnavailable,
    RewrapDenied,
    Unauthenticated,
    UnknownKey,
)
from relto.server.edge import Edge, needs
from relto.server.front import ReltoApp

__all__ = ["mount"]

log = structlog.stdlib.get_logger("relto.kas")

_CONNECT_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "resource_exhausted": 429,
    "internal": 500,
    "unimplemented": 501,
    "unavailable": 503,
}


def _connect_error(code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=_CONNECT_STATUS[code])


def _codec(content_type: str | None) -> str | None:
    ct = (content_type or "").split(";")[0].strip().lower()
    return {"application/json": "json", "application/proto": "proto"}.get(ct)


async def _read(request: Request) -> bytes:
    limit = wire.MAX_MESSAGE_BYTES
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput("message too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise InvalidInput("unsupported content-encoding")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidInput("bad gzip body") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InvalidInput("message too large")
    return out


def _render(payload: bytes, codec: str) -> Response:
    return Response(payload, media_type=f"application/{codec}")


def _failure(exc: Exception) -> Response:
    reason = getattr(exc, "reason", str(exc))
    log.info("kas_request_failed", error=type(exc).__name__, reason=reason)
    if isinstance(exc, Unauthenticated):
        # An attestation's refusal says why (it is the caller's own credential);
        # everything else stays opaque.
        return _connect_error("unauthenticated", getattr(exc, "public", "unauthenticated"))
    if isinstance(exc, RewrapDenied):
        return _connect_error("permission_denied", "forbidden")
    if isinstance(exc, UnknownKey | NotFound):
        return _connect_error("not_found", "not found")
    if isinstance(exc, InvalidInput):
        return _connect_error("invalid_argument", "invalid request")
    if isinstance(exc, AuditUnavailable | ReplayCacheUnavailable):
        return _connect_error("unavailable", "unavailable")
    if isinstance(exc, KeyStoreError):
        return _connect_error("internal", "internal error")
    return _connect_error("internal", "internal error")


def mount(app: FastAPI, edge: Edge) -> None:
    """Serve the node's KAS (:attr:`relto.node.Node.kas`)."""
    rt = edge.node.kas

    @app.post(
        "/kas.AccessService/PublicKey",
        tags=["kas"],
        include_in_schema=True,
        summary="KAS public key (Connect unary, JSON or protobuf)",
        **needs(Permission.KAS_KEYS_READ),
    )
    async def public_key(request: Request) -> Response:
        codec = _codec(request.headers.get("content-type"))
        if codec is None:
            return Response(status_code=415)
        try:
            req = wire.decode_public_key_request(await _read(request), codec)
            service = rt.service
            if getattr(service.store, "blocking", True):  # an HSM: not on the event loop
                resp = await asyncio.to_thread(service.public_key, req)
            else:
                resp = service.public_key(req)
            return _render(wire.encode_public_key_response(resp, codec), codec)
        except ReltoError as exc:
            return _failure(exc)

    @app.post(
        "/kas.AccessService/Rewrap",
        tags=["kas"],
        summary="Rewrap key access objects for the caller (Connect unary)",
        **needs(Permission.KAS_REWRAP),
    )
    async def rewrap(request: Request) -> Response:
        codec = _codec(request.headers.get("content-type"))
        if codec is None:
            return Response(status_code=415)
        rid = getattr(request.state, "request_id", "")
        try:
            body = await _read(request)
            srt = wire.decode_rewrap_request(body, codec)
            headers = request.headers
            dpop = headers.get("dpop")
            # The URL is only compared with a DPoP proof's htu: built only for one.
            url = str(request.url.replace(query="", fragment="")) if dpop else ""
            args: dict[str, Any] = {
                "srt": srt,
                "authorization": headers.get("authorization"),
                "dpop": dpop,
                "method": request.method,
                "url": url,
                "at": datetime.now(UTC),
                "request_id": rid,
            }
            resp = await rt.handle_rewrap_async(**args)
            return _render(wire.encode_rewrap_response(resp, codec), codec)
        except ReltoError as exc:
            return _failure(exc)

    # The hot path: served at the app's front door, before routing and the
    # middleware stack (see ReltoApp); the routes above stay registered for the
    # OpenAPI document and for a plain FastAPI app.
    if isinstance(app, ReltoApp):
        routes = {getattr(r, "path", None): r for r in app.routes}
        for path, endpoint in (
            ("/kas.AccessService/PublicKey", public_key),
            ("/kas.AccessService/Rewrap", rewrap),
        ):
            app.front[("POST", path)] = (endpoint, routes[path])

    @app.get(
        "/.well-known/opentdf-configuration",
        tags=["kas"],
        summary="OpenTDF platform discovery document",
        **needs(Permission.KAS_KEYS_READ),
    )
    def well_known(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"configuration": rt.well_known(base)}
