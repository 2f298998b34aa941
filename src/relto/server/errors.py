"""Uniform error bodies; never a stack trace or a secret to the caller.

Every error response is ``{"error": {"code": ..., "message": ..., "request_id": ...}}``.
Unknown failures become a 500 with a generic message; the detail goes to the log
under the same request id. Storage that fails -- a full disk (``ENOSPC``), a
read-only or broken file system, "database or disk is full", a database that does
not answer -- is 503 ``unavailable`` "storage unavailable" on every route
(:func:`storage_failure`), never a path, a statement or a driver message.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from relto.errors import AccessDenied, ConfigError, InvalidInput, NotFound, ReltoError, StorageError
from relto.health import STORAGE_EXCEPTIONS, is_storage_failure

__all__ = ["error_body", "install_error_handlers", "storage_failure", "storage_unavailable"]

log = structlog.stdlib.get_logger("relto.server")

# Outward, "forbidden" and "not found" look the same: a caller who may not know an
# object exists learns nothing from the answer.
_STATUS: list[tuple[type[ReltoError], int, str, str]] = [
    (NotFound, 404, "not_found", "not found"),
    (AccessDenied, 404, "not_found", "not found"),
    (InvalidInput, 422, "invalid_input", ""),
    (ConfigError, 500, "internal_error", "internal error"),
    (StorageError, 503, "unavailable", "storage unavailable"),
]


def storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is storage failing (:mod:`relto.health`)."""
    return is_storage_failure(exc)


def storage_unavailable(request: Request, exc: BaseException) -> JSONResponse:
    """The 503 for a storage failure; the detail goes to the log only."""
    log.warning("storage_unavailable", error=type(exc).__name__, reason=str(exc)[:300])
    return JSONResponse(
        error_body("unavailable", "storage unavailable", request),
        status_code=503,
        headers={"retry-after": "30"},
    )


def error_body(code: str, message: str, request: Request, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    rid = getattr(request.state, "request_id", None)
    if rid:
        body["request_id"] = rid
    body.update(extra)
    return {"error": body}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReltoError)
    async def _relto(request: Request, exc: ReltoError) -> JSONResponse:
        if isinstance(exc, StorageError) and not isinstance(exc, NotFound):
            return storage_unavailable(request, exc)  # with Retry-After
        for cls, status, code, message in _STATUS:
            if isinstance(exc, cls):
                log.info("request_failed", error=type(exc).__name__, reason=str(exc), status=status)
                return JSONResponse(
                    error_body(code, message or str(exc), request), status_code=status
                )
        log.info("request_failed", error=type(exc).__name__, reason=str(exc), status=400)
        return JSONResponse(error_body(exc.code, str(exc), request), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()[:20]
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is not valid", request, problems=problems),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}.get(
            exc.status_code, "http_error"
        )
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = getattr(exc, "headers", None)
        return JSONResponse(
            error_body(code, message, request), status_code=exc.status_code, headers=headers
        )

    async def _storage(request: Request, exc: Exception) -> JSONResponse:
        if storage_failure(exc):
            return storage_unavailable(request, exc)
        log.exception("unhandled_error", error=type(exc).__name__)
        return JSONResponse(
            error_body("internal_error", "internal error", request), status_code=500
        )

    for cls in STORAGE_EXCEPTIONS:
        app.add_exception_handler(cls, _storage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if storage_failure(exc):
            return storage_unavailable(request, exc)
        log.exception("unhandled_error", error=type(exc).__name__)
        return JSONResponse(
            error_body("internal_error", "internal error", request), status_code=500
        )
