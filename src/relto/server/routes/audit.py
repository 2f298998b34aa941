"""Transparency log API under ``/api/v1/audit`` (read-only).

- ``GET /checkpoint``: the latest signed checkpoint (text, C2SP tlog-checkpoint),
  signing a new one first if the log grew.
- ``GET /entries?start=&end=``: entries (at most 1000), with leaf hashes and bodies.
- ``GET /proof/inclusion?index=[&size=]`` or ``?leaf_hash=`` (base64).
- ``GET /proof/consistency?first=[&second=]``.
- ``GET /tile/<L>/<N>[.p/<W>]``, ``GET /tile/entries/<N>[.p/<W>]``: C2SP tlog-tiles.
- ``POST /witness/add-checkpoint``: C2SP tlog-witness, when this node witnesses
  partner logs (``RELTO_AUDIT_WITNESS_LOGS``); status codes as the spec says.

Who may read what: everything a partner needs to check that the log only grows
and that an entry is in it -- checkpoints, inclusion and consistency proofs, hash
tiles -- is public. Entry bodies say who saw or changed what: ``/entries`` and
the entry-bundle tiles need an authenticated auditor or security officer (as the
console's audit page does); anyone else gets the uniform 401 or 404.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response

from relto.audit.access import may_read_entries
from relto.audit.config import node_signer, node_witness, open_log
from relto.audit.entries import decode_entry
from relto.audit.errors import (
    ForkRefused,
    InvalidNote,
    InvalidProof,
    RollbackRefused,
    SizeConflict,
)
from relto.audit.service import MAX_PAGE, TransparencyLog
from relto.audit.tiles import parse_tile_path
from relto.audit.witness import Witness, parse_add_checkpoint
from relto.errors import AccessDenied, InvalidInput
from relto.server.app import AppContext
from relto.server.auth import Principal, request_auth

__all__ = ["PREFIX", "mount"]

PREFIX = "/api/v1/audit"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def log_for(ctx: AppContext) -> TransparencyLog:
    """The app's log: the sink when it is one, else a log on the app's database."""
    log = ctx.extras.get("audit")
    if log is None:
        log = ctx.sink if isinstance(ctx.sink, TransparencyLog) else open_log(ctx.settings)
        ctx.extras["audit"] = log
    assert isinstance(log, TransparencyLog)
    return log


def mount(app: FastAPI, ctx: AppContext) -> None:
    log = log_for(ctx)
    auth = request_auth(ctx)

    def entry_reader(request: Request) -> Principal:
        """An auditor or security officer; else 401 (nobody) or the uniform 404."""
        who = auth.require(request)
        if not may_read_entries(who.roles):
            raise AccessDenied("audit entries are for auditors and security officers")
        return who

    @app.get(f"{PREFIX}/checkpoint", tags=["audit"], summary="Latest signed checkpoint")
    def checkpoint() -> Response:
        note = log.sign_checkpoint(node_signer(ctx.settings))
        return Response(
            note,
            media_type="text/plain; charset=utf-8",
            headers={"cache-control": "no-cache, max-age=5"},
        )

    @app.get(f"{PREFIX}/entries", tags=["audit"], summary="Entries by index range")
    def entries(
        start: Annotated[int, Query(ge=0, lt=1 << 62)],
        end: Annotated[int, Query(ge=0, lt=1 << 62)],
        request: Request,
    ) -> dict[str, Any]:
        entry_reader(request)
        if end < start:
            raise InvalidInput("end must not be before start")
        rows = log.entries(start, min(end, start + MAX_PAGE))
        out = []
        for e in rows:
            try:
                entry: Any = json.loads(e.body)
                decode_entry(e.body)
            except (ValueError, InvalidProof):
                entry = None
            out.append(
                {
                    "index": e.index,
                    "leaf_hash": _b64(e.leaf_hash),
                    "body": _b64(e.body),
                    "entry": entry,
                }
            )
        return {"entries": out}

    @app.get(f"{PREFIX}/proof/inclusion", tags=["audit"], summary="Inclusion proof")
    def inclusion(
        index: Annotated[int | None, Query(ge=0, lt=1 << 62)] = None,
        leaf_hash: Annotated[str | None, Query(max_length=64)] = None,
        size: Annotated[int | None, Query(ge=1, lt=1 << 62)] = None,
    ) -> dict[str, Any]:
        if (index is None) == (leaf_hash is None):
            raise InvalidInput("give exactly one of index or leaf_hash")
        if leaf_hash is not None:
            try:
                h = base64.b64decode(leaf_hash, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("leaf_hash must be base64") from None
            p = log.inclusion_proof_by_hash(h, size)
        else:
            assert index is not None
            p = log.inclusion_proof(index, size)
        return {
            "index": p.index,
            "tree_size": p.tree_size,
            "leaf_hash": _b64(p.leaf_hash),
            "proof": [_b64(x) for x in p.proof],
            "root": _b64(p.root),
        }

    @app.get(f"{PREFIX}/proof/consistency", tags=["audit"], summary="Consistency proof")
    def consistency(
        first: Annotated[int, Query(ge=1, lt=1 << 62)],
        second: Annotated[int | None, Query(ge=1, lt=1 << 62)] = None,
    ) -> dict[str, Any]:
        c = log.consistency_proof(first, second)
        return {
            "first": c.first,
            "second": c.second,
            "proof": [_b64(x) for x in c.proof],
            "first_root": _b64(c.first_root),
            "second_root": _b64(c.second_root),
        }

    witness = node_witness(ctx.settings)
    if witness is not None:
        _mount_witness(app, witness)

    @app.get(f"{PREFIX}/tile/{{path:path}}", tags=["audit"], summary="tlog-tiles")
    def tile(path: str, request: Request) -> Response:
        try:
            t = parse_tile_path(path)
        except InvalidProof:
            raise InvalidInput("not a tlog-tiles path") from None
        if t.level is None:  # an entry bundle: the bodies themselves
            entry_reader(request)
            cache = "private, max-age=31536000, immutable"
        else:
            cache = "public, max-age=31536000, immutable"
        return Response(
            log.tile(t), media_type="application/octet-stream", headers={"cache-control": cache}
        )


def _mount_witness(app: FastAPI, witness: Witness) -> None:
    @app.post(
        f"{PREFIX}/witness/add-checkpoint", tags=["audit"], summary="tlog-witness add-checkpoint"
    )
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        text = "text/plain; charset=utf-8"
        try:
            old, proof, note = parse_add_checkpoint(body)
            origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        except InvalidProof as exc:
            return Response(f"{exc}\n", status_code=400, media_type=text)
        if origin not in witness.logs:
            return Response("unknown log\n", status_code=404, media_type=text)
        try:
            sig = witness.add_checkpoint(old, proof, note, at=datetime.now(UTC))
        except SizeConflict as exc:
            return Response(f"{exc.size}\n", status_code=409, media_type="text/x.tlog.size")
        except ForkRefused as exc:
            return Response(f"{exc}\n", status_code=409 if exc.same_size else 422, media_type=text)
        except RollbackRefused as exc:
            return Response(f"{exc}\n", status_code=400, media_type=text)
        except InvalidProof as exc:
            return Response(f"{exc}\n", status_code=400, media_type=text)
        except InvalidNote:
            return Response("checkpoint signature not verified\n", status_code=403, media_type=text)
        return Response(sig.line(), media_type=text)
