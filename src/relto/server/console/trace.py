"""Trace a leak: a leaked file traced to the recipients whose copies made it
(issue 17).

- ``GET /console/trace``: the form (the file, and the object's id if known), for
  whoever may trace (``tracing:trace``: security officers and auditors of this
  node's nation); listed in the navigation only for them. Anyone else gets
  "not found".
- ``POST /console/trace``: the multipart form (the file held in memory, bounded),
  handed to :meth:`relto.tracing.service.TracingService.trace`, which decides,
  traces and records the run; the page shows the verdict, each accused recipient
  with their score, the threshold and the false-accusation bound, and the
  ``trace.copy`` log entries with their inclusion proofs -- or that nobody is
  accused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.server.console._pages import NOT_ALLOWED, Pages
from relto.server.edge import needs
from relto.server.uploads import InMemoryFile, read_upload
from relto.tracing.service import MAX_LEAK_BYTES, TraceResult

__all__ = ["mount"]


def mount(app: FastAPI, pages: Pages) -> None:
    tracing = pages.node.tracing
    documents = pages.node.documents

    def page(
        request: Request,
        *,
        result: TraceResult | None = None,
        error: str = "",
        object_id: str = "",
        status_code: int = 200,
    ) -> HTMLResponse:
        shown = []
        if result is not None and result.object_id is not None:
            shown.append(documents.visible(pages.who(request), result.object_id))
        return pages.render(
            request,
            "trace.html",
            pages.who(request),
            "trace",
            status_code=status_code,
            title="Trace a leak",
            result=result,
            error=error,
            object_id=object_id,
            marked=shown,
            max_mib=MAX_LEAK_BYTES // (1024 * 1024),
        )

    @app.get("/console/trace", include_in_schema=False, **needs(Permission.TRACING_TRACE))
    def trace_form(request: Request) -> HTMLResponse:
        who = pages.who(request)
        if tracing is None or not tracing.may_trace(who):
            return pages.not_found(request, who, "trace", NOT_ALLOWED)
        return page(request)

    @app.post("/console/trace", include_in_schema=False, **needs(Permission.TRACING_TRACE))
    async def trace_leak(request: Request) -> HTMLResponse:
        leaked = InMemoryFile(MAX_LEAK_BYTES)
        form = await read_upload(request, leaked)
        who = pages.posted_by(request, form.one("csrf", max_length=200, default=""))
        object_id = form.one("object_id", max_length=64, default="").strip()
        if tracing is None:
            return pages.not_found(request, who, "trace", NOT_ALLOWED)
        try:
            result = await run_in_threadpool(
                tracing.trace, who, leaked.getvalue(), object_id or None, datetime.now(UTC)
            )
        except (AccessDenied, NotFound):
            return pages.not_found(request, who, "trace", NOT_ALLOWED)
        except InvalidInput as exc:
            return page(request, error=str(exc), object_id=object_id, status_code=422)
        return page(request, result=result, object_id=object_id)
