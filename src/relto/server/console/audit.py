"""The audit log page: the latest signed checkpoint, verified on the spot, and the
latest entries that concern the reader's nation (:mod:`relto.audit.access`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from relto.audit.checkpoint import open_checkpoint
from relto.audit.config import node_signer
from relto.audit.sources import DatabaseSource
from relto.audit.verify import verify_log
from relto.authz import Permission
from relto.server.console._pages import Pages
from relto.server.edge import needs

__all__ = ["mount"]

#: Entries the page shows, and how far back it looks for them.
PAGE_ENTRIES = 30
_LOOK_BACK = 1000
_MAX_VERIFY = 500_000
_WHAT_KEYS = (
    "object_title",
    "title",
    "document",
    "object",
    "project",
    "nation",
    "ceiling",
    "banner",
    "to",
    "clearance_id",
    "person_id",
    "to_status",
    "permission",
    "policy_uuid",
)


def summarise(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    who = payload.get("by") or payload.get("subject") or payload.get("actor") or ""
    parts: list[str] = []
    for key in _WHAT_KEYS:
        value = payload.get(key)
        if isinstance(value, str | int) and value != "" and len(parts) < 4:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    allowed = payload.get("allowed")
    if kind == "kas.rewrap" and "released" in payload:
        allowed = bool(payload.get("released"))
    reasons = payload.get("reasons")
    codes = (
        [str(r.get("code")) for r in reasons if isinstance(r, Mapping)]
        if isinstance(reasons, list)
        else []
    )
    return {
        "who": str(who)[:80],
        "what": "; ".join(parts)[:300],
        "allowed": allowed,
        "codes": codes,
    }


def mount(app: FastAPI, pages: Pages) -> None:
    reader = pages.node.audit
    log = pages.node.log
    settings = pages.node.settings

    @app.get(
        "/console/audit",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.AUDIT_ENTRIES_READ),
    )
    def audit(request: Request) -> HTMLResponse:
        who = pages.who(request)
        if not reader.check(who, "console audit page"):
            return pages.render(
                request, "audit.html", who, "audit", title="Audit log", allowed=False
            )
        signer = node_signer(settings)
        note = log.sign_checkpoint(signer)
        signed = open_checkpoint(note, signer.verifier())
        size = signed.checkpoint.size
        verified = False
        if size <= _MAX_VERIFY:
            report = verify_log(DatabaseSource(log), [signed.checkpoint])
            verified, report_text = report.ok, report.describe()
        else:  # pragma: no cover - very large logs are verified offline
            report_text = "the log is too large to verify here; run relto audit verify"
        rows: list[dict[str, Any]] = []
        for e in reversed(reader.page(who, max(0, size - _LOOK_BACK), size)):
            if len(rows) >= PAGE_ENTRIES:
                break
            if not e.readable:
                continue
            if e.entry is None:
                rows.append(
                    {"index": e.stored.index, "time": "", "kind": "(undecodable)",
                     "who": "", "what": "", "allowed": None, "codes": []}
                )  # fmt: skip
                continue
            rows.append(
                {
                    "index": e.entry.index,
                    "time": e.entry.time.replace("T", " ")[:19],
                    "kind": e.entry.kind,
                    **summarise(e.entry.kind, e.entry.payload),
                }
            )
        return pages.render(
            request,
            "audit.html",
            who,
            "audit",
            title="Audit log",
            allowed=True,
            checkpoint=note,
            verified=verified,
            report_text=report_text,
            vkey=signer.verifier().vkey,
            entries=rows,
            size=size,
            # entries may name any document the reader may know of: marked as the highest
            marked=pages.node.documents.all_visible(who),
        )
