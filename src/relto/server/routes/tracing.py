"""REST API for tracing a leaked file (``POST /api/v1/trace``, issue 17).

Thin edge: read the multipart upload (the leaked file, bounded, held in memory
only), call :meth:`relto.tracing.service.TracingService.trace`, render. Who may
trace is decided at the one authorisation point (``tracing:trace``); a refusal
looks like "not found", whatever the file or object.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from relto.authz import Permission, Principal
from relto.errors import NotFound
from relto.server.edge import Edge, needs
from relto.server.uploads import InMemoryFile, read_upload
from relto.tracing.service import MAX_LEAK_BYTES, Accused, CopyEvidence, TraceResult

__all__ = ["TRACE_BODY", "mount", "result_out"]

#: The OpenAPI description of the trace body (the route reads the stream itself).
TRACE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "object_id": {"type": "string", "maxLength": 64},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        }
    },
}


class CopyOut(BaseModel):
    copy_number: int
    at: datetime
    media_type: str
    codeword_sha256: str
    log_index: int | None
    entry: dict[str, Any] = Field(description="The trace.copy entry's payload, as logged")
    tree_size: int | None = Field(description="The signed checkpoint the proof leads to")
    leaf_hash: str
    inclusion_proof: list[str] = Field(description="RFC 9162 audit path, hex, verified")
    checkpoint: str = Field(description="The checkpoint note signed by this node")
    unproven: str = Field(description="Why there is no proof, when there is none")


class AccusedOut(BaseModel):
    person_id: str
    nation: str
    recipient_index: int
    score: float
    copies: list[CopyOut]


class UnassignedOut(BaseModel):
    recipient_index: int
    score: float


class TraceOut(BaseModel):
    verdict: str
    conclusive: bool
    file_sha256: str
    object_id: str | None
    located: float = Field(description="How well the file matched the object (0..1)")
    accused: list[AccusedOut]
    unassigned_accused: list[UnassignedOut] = Field(
        description="Indices never given to anybody that reached the threshold: something is "
        "wrong (a forgery, or a copy made outside the ledger)"
    )
    threshold: float | None = Field(description="Z for the bits read (null: nothing read)")
    false_accusation_bound: float
    bits_read: int
    bits_erased: int
    code_length: int
    recipients: int = Field(description="Recipients the object's copies were released to")
    notes: list[str]
    log_index: int | None = Field(description="The trace.run entry recording this run")


def _copy(c: CopyEvidence) -> CopyOut:
    return CopyOut(
        copy_number=c.copy_number,
        at=c.at,
        media_type=c.media_type,
        codeword_sha256=c.codeword_sha256,
        log_index=c.log_index,
        entry=dict(c.entry),
        tree_size=c.tree_size,
        leaf_hash=c.leaf_hash,
        inclusion_proof=list(c.proof),
        checkpoint=c.checkpoint,
        unproven=c.unproven,
    )


def _accused(a: Accused) -> AccusedOut:
    return AccusedOut(
        person_id=a.person_id,
        nation=a.nation,
        recipient_index=a.recipient_index,
        score=a.score,
        copies=[_copy(c) for c in a.copies],
    )


def result_out(r: TraceResult) -> TraceOut:
    return TraceOut(
        verdict=r.verdict,
        conclusive=r.conclusive,
        file_sha256=r.file_sha256,
        object_id=r.object_id,
        located=r.located,
        accused=[_accused(a) for a in r.accused],
        unassigned_accused=[
            UnassignedOut(recipient_index=i, score=s) for i, s in r.unassigned_accused
        ],
        threshold=r.threshold if r.threshold != float("inf") else None,
        false_accusation_bound=r.false_accusation_bound,
        bits_read=r.bits_read,
        bits_erased=r.bits_erased,
        code_length=r.length,
        recipients=r.recipients,
        notes=list(r.notes),
        log_index=r.log_index,
    )


def mount(app: FastAPI, edge: Edge) -> None:
    Who = Annotated[Principal, Depends(edge.who)]
    router = APIRouter(prefix="/api/v1", tags=["tracing"])
    declared = needs(Permission.TRACING_TRACE)
    declared["openapi_extra"]["requestBody"] = TRACE_BODY

    @router.post(
        "/trace",
        summary="Trace a leaked file to the recipients whose copies made it",
        description=(
            "A multipart form: the leaked file and, optionally, the object's id. "
            "Answers the accused recipients (score, threshold, false-accusation bound, "
            "bits read and erased) with the `trace.copy` log entries showing each "
            "received a copy, each with an inclusion proof against a checkpoint signed "
            "by this node; when the evidence is too weak, nobody. Every run is recorded "
            "(`trace.run`). Security officers and auditors of this node's nation only."
        ),
        **declared,
    )
    async def post_trace(request: Request, who: Who) -> TraceOut:
        tracing = edge.node.tracing
        if tracing is None:
            raise NotFound("tracing is not set up on this node")
        leaked = InMemoryFile(MAX_LEAK_BYTES)
        form = await read_upload(request, leaked)
        object_id = form.one("object_id", max_length=64, default="") or None
        result = await run_in_threadpool(
            tracing.trace, who, leaked.getvalue(), object_id, datetime.now(UTC)
        )
        return result_out(result)

    app.include_router(router)
