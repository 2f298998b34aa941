"""Transparency log API under ``/api/v1/audit`` (read-only).

- ``GET /checkpoint``: the latest signed checkpoint (text, C2SP tlog-checkpoint);
  a new one is signed at most once per ``RELTO_AUDIT_CHECKPOINT_INTERVAL`` seconds,
  and only if the log grew (:class:`~relto.audit.checkpoint.CheckpointPublisher`);
  503 when storage fails.
- ``GET /checkpoint/cosigned``: the latest checkpoint pinned partners' witnesses
  cosigned, with their cosignatures appended (on a federated node).
- ``GET /entries?start=&end=``: entries (at most 1000), with leaf hashes and bodies.
- ``GET /partner/entries?nation=&from=&limit=``: for an auditor or security officer
  of a partner nation, attested by their home node (``audit:partner-entries:read``):
  the entries that name their nation (at most 100 a page, at most 20 000 read),
  each with its bytes and an inclusion proof in the latest checkpoint that
  nation's witness cosigned (409 ``not_cosigned`` before the first; on a
  federated node; :mod:`relto.audit.partner_view`, ADR 0142).
- ``GET /proof/inclusion?index=[&size=]`` or ``?leaf_hash=`` (base64).
- ``GET /proof/consistency?first=[&second=]``.
- ``GET /tile/<L>/<N>[.p/<W>]``, ``GET /tile/entries/<N>[.p/<W>]``: C2SP tlog-tiles.
- ``POST /witness/add-checkpoint``: C2SP tlog-witness, on every federated node
  (the pinned partners' logs) and wherever ``RELTO_AUDIT_WITNESS_LOGS`` is set;
  status codes as the spec says. A fork or rollback of a partner's log that the
  partner cannot deny is recorded (``audit.witness.alarm``).
- ``GET /witness/alarms``: forks and rollbacks witnessing saw, either way
  (``federation:attest``: people of this node's nation).

Who may read what: everything a partner needs to check that the log only grows
and that an entry is in it -- checkpoints, inclusion and consistency proofs, hash
tiles -- is public (``audit:log:read``). Entry bodies say who saw or changed what
(``audit:entries:read``, :mod:`relto.audit.access`): ``/entries`` gives a nation's
auditors and security officers the bodies of the entries that concern their
nation, and every other entry as its index and leaf hash only; an entry bundle is
served only when every entry in it concerns the reader. Anyone else gets the
uniform 401 or 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from relto.audit.checkpoint import CheckpointPublisher
from relto.audit.config import node_signer
from relto.audit.errors import (
    ForkRefused,
    InvalidNote,
    InvalidProof,
    NotCosigned,
    RollbackRefused,
    SizeConflict,
)
from relto.audit.partner_access import PartnerAuditView
from relto.audit.partner_view import MAX_PARTNER_PAGE, page_to_json
from relto.audit.service import MAX_PAGE
from relto.audit.tiles import TILE_WIDTH, parse_tile_path
from relto.audit.witness import parse_add_checkpoint
from relto.audit.witnessing import ALARM_KIND, Alarm, PartnerWitness
from relto.authz import Permission
from relto.errors import InvalidInput, NotFound
from relto.server.edge import Edge, needs
from relto.server.errors import error_body

__all__ = ["PREFIX", "mount"]

PREFIX = "/api/v1/audit"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _error(description: str) -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                },
            }
        },
    }
    return {"description": description, "content": {"application/json": {"schema": body}}}


#: What the partner auditor's route answers besides 200 (the standard error body).
_PARTNER_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("No credential, or an attestation or DPoP proof that does not verify"),
    403: _error("The attestation is revoked, suspended or its status unconfirmed"),
    404: _error("Refused: not an attested auditor or security officer of that nation"),
    409: _error("No checkpoint of this log is cosigned by that nation's witness yet"),
    422: _error("A query parameter is missing or malformed"),
}


def mount(app: FastAPI, edge: Edge) -> None:
    log = edge.node.log
    reader = edge.node.audit
    settings = edge.node.settings

    publisher = CheckpointPublisher(
        log.size,
        lambda: log.sign_checkpoint(node_signer(settings)),
        interval=settings.audit_checkpoint_interval,
    )

    @app.get(
        f"{PREFIX}/checkpoint",
        tags=["audit"],
        summary="Latest signed checkpoint",
        **needs(Permission.AUDIT_LOG_READ),
    )
    def checkpoint() -> Response:
        note = publisher.current()
        return Response(
            note,
            media_type="text/plain; charset=utf-8",
            headers={"cache-control": "no-cache, max-age=5"},
        )

    pusher = edge.node.witnessing
    if pusher is not None:

        @app.get(
            f"{PREFIX}/checkpoint/cosigned",
            tags=["audit"],
            summary="Latest checkpoint cosigned by partner witnesses, with their cosignatures",
            **needs(Permission.AUDIT_LOG_READ),
        )
        def cosigned() -> Response:
            note = pusher.cosigned()
            if note is None:
                raise NotFound("no checkpoint has been cosigned yet")
            return Response(
                note,
                media_type="text/plain; charset=utf-8",
                headers={"cache-control": "no-cache"},
            )

        partner_view = PartnerAuditView(
            log,
            pusher.store,
            lambda: {p.nation: p.witness_key for p in pusher.partners()},
            edge.node.authorizer,
        )

        @app.get(
            f"{PREFIX}/partner/entries",
            tags=["audit"],
            summary="Entries concerning the caller's nation, proved in a checkpoint its "
            "witness cosigned (a partner auditor's view)",
            responses=_PARTNER_RESPONSES,
            **needs(Permission.AUDIT_PARTNER_ENTRIES_READ),
        )
        def partner_entries(
            request: Request,
            nation: Annotated[str, Query(pattern=r"^[A-Z]{3}$")],
            start: Annotated[int, Query(alias="from", ge=0, lt=1 << 62)] = 0,
            limit: Annotated[int, Query(ge=1, le=MAX_PARTNER_PAGE)] = 50,
        ) -> JSONResponse:
            who = edge.who(request)
            try:
                page = partner_view.page(who, nation, start=start, limit=limit)
            except NotCosigned as exc:
                return JSONResponse(error_body(exc.code, str(exc), request), status_code=409)
            return JSONResponse(page_to_json(page), headers={"cache-control": "no-store"})

    @app.get(
        f"{PREFIX}/entries",
        tags=["audit"],
        summary="Entries by index range (bodies of those concerning the caller's nation)",
        **needs(Permission.AUDIT_ENTRIES_READ),
    )
    def entries(
        start: Annotated[int, Query(ge=0, lt=1 << 62)],
        end: Annotated[int, Query(ge=0, lt=1 << 62)],
        request: Request,
    ) -> dict[str, Any]:
        who = edge.who(request)
        if end < start:
            raise InvalidInput("end must not be before start")
        end = min(end, start + MAX_PAGE)
        reader.require(who, f"entries {start}-{end}")
        out = []
        for e in reader.page(who, start, end):
            shown = e.readable
            out.append(
                {
                    "index": e.stored.index,
                    "leaf_hash": _b64(e.stored.leaf_hash),
                    "body": _b64(e.stored.body) if shown else None,
                    "entry": json.loads(e.stored.body) if e.entry is not None else None,
                }
            )
        return {"entries": out}

    @app.get(
        f"{PREFIX}/proof/inclusion",
        tags=["audit"],
        summary="Inclusion proof",
        **needs(Permission.AUDIT_LOG_READ),
    )
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

    @app.get(
        f"{PREFIX}/proof/consistency",
        tags=["audit"],
        summary="Consistency proof",
        **needs(Permission.AUDIT_LOG_READ),
    )
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

    if edge.node.witness is not None:
        _mount_witness(app, edge, edge.node.witness)

    @app.get(
        f"{PREFIX}/tile/entries/{{path:path}}",
        tags=["audit"],
        summary="tlog-tiles entry bundle (every entry must concern the caller's nation)",
        **needs(Permission.AUDIT_ENTRIES_READ),
    )
    def entry_bundle(path: str, request: Request) -> Response:
        who = edge.who(request)
        try:
            t = parse_tile_path(f"entries/{path}")
        except InvalidProof:
            raise InvalidInput("not a tlog-tiles path") from None
        reader.require(who, f"entry bundle {path[:40]}")
        start = t.index * TILE_WIDTH
        bodies = [e.body for e in log.entries(start, start + t.width)]
        if not reader.may_read_all(who, bodies):
            raise NotFound("no such tile")
        return Response(
            log.tile(t),
            media_type="application/octet-stream",
            headers={"cache-control": "private, max-age=31536000, immutable"},
        )

    @app.get(
        f"{PREFIX}/tile/{{path:path}}",
        tags=["audit"],
        summary="tlog-tiles hash tile",
        **needs(Permission.AUDIT_LOG_READ),
    )
    def tile(path: str) -> Response:
        try:
            t = parse_tile_path(path)
        except InvalidProof:
            raise InvalidInput("not a tlog-tiles path") from None
        if t.level is None:
            raise NotFound("no such tile")
        return Response(
            log.tile(t),
            media_type="application/octet-stream",
            headers={"cache-control": "public, max-age=31536000, immutable"},
        )


def _alarm_json(a: Alarm) -> dict[str, Any]:
    return {
        "nation": a.nation or None,
        "origin": a.origin,
        "reason": a.reason,
        "witnessed_size": a.witnessed_size,
        "size": a.size,
        "root": _b64(a.root),
        "detail": a.detail,
        "first_seen": a.first_seen.isoformat(),
        "last_seen": a.last_seen.isoformat(),
        "count": a.count,
    }


def _mount_witness(app: FastAPI, edge: Edge, witness: PartnerWitness) -> None:
    @app.get(
        f"{PREFIX}/witness/alarms",
        tags=["audit"],
        summary="Forks and rollbacks seen by witnessing, either way",
        **needs(Permission.FEDERATION_ATTEST),
    )
    def alarms(request: Request) -> JSONResponse:
        found = witness.read_alarms(edge.who(request))
        return JSONResponse(
            {
                "nation": edge.node.settings.nation,
                "alarms": [_alarm_json(a) for a in found if a.kind == ALARM_KIND],
                "refused": [_alarm_json(a) for a in found if a.kind != ALARM_KIND],
            },
            headers={"cache-control": "no-store"},
        )

    @app.post(
        f"{PREFIX}/witness/add-checkpoint",
        tags=["audit"],
        summary="tlog-witness add-checkpoint",
        **needs(Permission.AUDIT_WITNESS_WRITE),
    )
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        text = "text/plain; charset=utf-8"
        try:
            old, proof, note = parse_add_checkpoint(body)
            origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
        except InvalidProof as exc:
            return Response(f"{exc}\n", status_code=400, media_type=text)
        if not witness.knows(origin):
            return Response("unknown log\n", status_code=404, media_type=text)
        try:
            # a refusal may ask the partner's log for a proof: off the event loop
            sig = await asyncio.to_thread(
                witness.add_checkpoint, old, proof, note, at=datetime.now(UTC)
            )
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
