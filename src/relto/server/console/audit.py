"""The audit log page: the latest signed checkpoint, verified on the spot, and the
entries that concern the reader's nation (:mod:`relto.audit.access`), in pages,
filtered, with people and documents named.

Verification is incremental: the page keeps the last tree head this process
verified (:class:`relto.audit.verify.IncrementalVerifier`) and checks only a
consistency proof to the new checkpoint and the entries added since; the whole
log is re-derived on the first view, when the reader asks for it
(``?verify=full``) and by ``relto audit verify``.

The page also says how far partners witnessed the log: the latest checkpoint
pinned partners' witnesses cosigned, which of them (each cosignature verified
again against the witness key pinned for that partner now,
:mod:`relto.audit.witnessed`), and whether that meets the number this node
requires (``RELTO_AUDIT_MIN_COSIGNATURES``, by default one per pinned member
partner); when it does not, the newest checkpoint that does.

Names follow the rules of docs/authz.md: a person is named when the reader may
read that person (``people:read``), otherwise shown by id; a document's title is
shown only when the reader may know the document exists
(``objects:metadata:read``), otherwise its id with the title withheld -- also
when the entry itself carries the title.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from relto.audit.access import MAX_SEARCH_PAGE, EntryFilter, ReadableEntry, entry_refs
from relto.audit.checkpoint import open_checkpoint
from relto.audit.config import (
    AuditSettings,
    check_min_cosignatures,
    node_signer,
    required_cosignatures,
)
from relto.audit.errors import InvalidNote
from relto.audit.note import NoteVerifier
from relto.audit.sources import DatabaseSource
from relto.audit.verify import IncrementalVerifier
from relto.audit.witnessed import MAX_SCAN, Witnessed, newest_witnessed, witnessed
from relto.authz import Permission, Principal, Scope, decide
from relto.node import Node
from relto.server.console._pages import Pages
from relto.server.edge import needs

__all__ = ["PAGE_ENTRIES", "mount", "summarise", "witnessing"]

#: Entries a page shows unless asked for another size (at most MAX_SEARCH_PAGE).
PAGE_ENTRIES = 30
#: The largest log the page re-derives in full on request (beyond: the CLI).
_MAX_FULL_VERIFY = 500_000
_TITLE_KEYS = frozenset({"object_title", "title"})
_WHAT_KEYS = (
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
_MARKING_KEYS = frozenset({"banner", "to", "from"})
_WITHHELD = "title withheld"


class Names:
    """People and documents as ``who`` may see them, looked up once per page."""

    def __init__(self, pages: Pages, who: Principal) -> None:
        self._pages = pages
        self._who = who
        self._people: dict[str, str] = {}
        self._titles: dict[str, str] | None = None

    def person(self, person_id: str) -> str:
        if person_id not in self._people:
            p = self._pages.node.directory.principal(person_id, via="node")
            label = person_id
            if p is not None:
                scope = Scope.of({p.home_nation, *p.nationalities}, p.person_id)
                if decide(self._who, Permission.PEOPLE_READ, scope).allowed:
                    label = f"{p.name} ({person_id})"
            self._people[person_id] = label
        return self._people[person_id]

    def _known(self) -> dict[str, str]:
        if self._titles is None:
            docs = self._pages.node.documents.all_visible(self._who)
            self._titles = {d.id: d.title for d in docs}
        return self._titles

    def document(self, doc_id: str) -> str:
        title = self._known().get(doc_id)
        return f"{title} ({doc_id})" if title is not None else f"{doc_id} ({_WITHHELD})"

    def knows(self, doc_ids: Iterable[str]) -> bool:
        known = self._known()
        return all(d in known for d in doc_ids)


def summarise(kind: str, payload: Mapping[str, Any], names: Names) -> dict[str, Any]:
    """One row of the table: who, what (titles only of documents the reader may
    know), the outcome and the recorded justification."""
    who_id = payload.get("by") or payload.get("subject") or payload.get("actor") or ""
    refs = entry_refs(payload)
    show_titles = names.knows(refs.documents)
    parts: list[str] = []
    for key in _WHAT_KEYS:
        value = payload.get(key)
        if not isinstance(value, str | int) or value == "" or len(parts) >= 4:
            continue
        if key in _MARKING_KEYS and not show_titles:
            continue  # a banner is the document's metadata too
        if key in ("document", "object") and isinstance(value, str):
            parts.append(f"document: {names.document(value)}")
        elif key == "person_id" and isinstance(value, str):
            parts.append(f"person: {names.person(value)}")
        else:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    if show_titles and not any(k in payload for k in ("document", "object")):
        for key in _TITLE_KEYS:
            value = payload.get(key)
            if isinstance(value, str) and value:
                parts.insert(0, f"title: {value}")
                break
    allowed = payload.get("allowed")
    if kind == "kas.rewrap" and "released" in payload:
        allowed = bool(payload.get("released"))
    reasons = payload.get("reasons")
    codes = (
        [str(r.get("code")) for r in reasons if isinstance(r, Mapping)]
        if isinstance(reasons, list)
        else []
    )
    justification = payload.get("justification")
    return {
        "who": names.person(str(who_id)[:64])[:160] if who_id else "",
        "what": "; ".join(parts)[:400],
        "allowed": allowed,
        "codes": codes,
        "justification": justification[:500] if isinstance(justification, str) else "",
    }


def _row(e: ReadableEntry, names: Names) -> dict[str, Any]:
    if e.entry is None:
        empty: dict[str, Any] = {
            "who": "", "what": "", "allowed": None, "codes": [], "justification": ""
        }  # fmt: skip
        return {"index": e.stored.index, "time": "", "kind": "(undecodable)", **empty}
    return {
        "index": e.entry.index,
        "time": e.entry.time.replace("T", " ")[:19],
        "kind": e.entry.kind,
        **summarise(e.entry.kind, e.entry.payload, names),
    }


def _nations(names: Iterable[str]) -> str:
    """``AUS``, ``AUS and USA``, ``AUS, JPN and USA``."""
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _tally(w: Witnessed) -> str:
    if w.count == w.required:
        return f"{w.count} of {w.required} required"
    return f"{w.count} cosignatures, {w.required} required"


def witnessing(
    node: Node, audit: AuditSettings, log_key: NoteVerifier, head_size: int
) -> dict[str, Any]:
    """What the page says about partners witnessing the log (see the module
    docstring): ``state`` (``ok``, ``failed``, ``none``: nothing required, ``off``:
    no federation), one ``sentence``, and the details shown under it."""
    pusher = node.witnessing
    if pusher is None:
        return {
            "state": "off",
            "sentence": "This node takes part in no federation: no partner witnesses its log.",
        }
    partners = sorted(pusher.partners(), key=lambda p: p.nation)
    served = node.partnerships.served()
    pinned = [p.nation for p in partners]
    required = required_cosignatures(
        audit, pinned=pinned, members=None if served is None else served.members
    )
    store = pusher.store
    out: dict[str, Any] = {
        "required": required,
        "configured": audit.min_cosignatures is not None,
        "pinned": pinned,
        "push_seconds": audit.witness_push_seconds,
        "unreachable": required > len(partners),
        "latest": None,
        "newest": None,
    }
    size = store.latest_size()
    latest: Witnessed | None = None
    note = None if size is None else node.log.checkpoint(size)
    if size is not None and note is None:
        out |= {"state": "failed", "sentence": f"Cosignatures are kept for a checkpoint of "
                f"size {size} that this node's log does not hold."}  # fmt: skip
        return out
    if note is not None:
        try:
            latest = witnessed(note, log_key, store.at(size or 0), partners, required)
        except InvalidNote:
            out |= {"state": "failed", "sentence": f"The stored checkpoint of size {size} is "
                    "not signed by this node's log key."}  # fmt: skip
            return out
        out["latest"] = {
            "size": latest.size,
            "note": note,
            "cosigned_by": _nations(latest.cosigned_by) if latest.cosigned_by else "",
            "not_counted": latest.not_counted,
            "cosigned_at": _when(latest.cosigned_at),
            "behind": max(0, head_size - latest.size),
        }
    if required == 0:
        who = (
            f" The latest cosigned checkpoint (size {latest.size}) is cosigned by "
            f"{_nations(latest.cosigned_by)}."
            if latest is not None and latest.cosigned_by
            else ""
        )
        out |= {"state": "none", "sentence": "No partner cosignatures are required on this "
                f"node.{who}"}  # fmt: skip
        return out
    if latest is not None and latest.met:
        out |= {"state": "ok", "sentence": f"verified: cosigned by "
                f"{_nations(latest.cosigned_by)}, {_tally(latest)}"}  # fmt: skip
        return out
    if latest is None or latest.count == 0:
        sentence = f"no partner cosignature of {required} required — the log is not yet witnessed"
    else:
        sentence = (
            f"only {latest.count} of {required} required partner cosignature"
            f"{'s' if required != 1 else ''} — the log is not yet witnessed"
        )
    out |= {"state": "failed", "sentence": sentence}
    if latest is not None:
        found = newest_witnessed(
            below=latest.size, required=required, log_key=log_key, partners=partners,
            last_size=store.last_size,
            sizes=lambda at_most, limit: node.log.checkpoint_sizes(at_most=at_most, limit=limit),
            checkpoint=node.log.checkpoint, cosignatures=store.at,
        )  # fmt: skip
        out["newest"] = (
            None
            if found is None
            else {
                "size": found.size,
                "cosigned_by": _nations(found.cosigned_by),
                "tally": _tally(found),
                "cosigned_at": _when(found.cosigned_at),
            }
        )
    out["scan"] = MAX_SCAN
    return out


def _int(value: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value)))
    except ValueError:
        return default


def mount(app: FastAPI, pages: Pages) -> None:
    reader = pages.node.audit
    log = pages.node.log
    settings = pages.node.settings
    verifier = IncrementalVerifier()
    source = DatabaseSource(log)
    # Read once: a required number of cosignatures nobody can give stops the start.
    audit_settings = AuditSettings()
    check_min_cosignatures(
        audit_settings,
        witnessed=pages.node.witnessing is not None and audit_settings.witness_push_seconds > 0,
    )

    @app.get(
        "/console/audit",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.AUDIT_ENTRIES_READ),
    )
    def audit(
        request: Request,
        kind: str = "",
        person: str = "",
        document: str = "",
        since: str = "",
        until: str = "",
        before: str = "",
        size: str = "",
        verify: str = "",
    ) -> HTMLResponse:
        who = pages.who(request)
        if not reader.check(who, "console audit page"):
            return pages.render(
                request, "audit.html", who, "audit", title="Audit log", allowed=False
            )
        form = {
            "kind": kind.strip()[:100],
            "person": person.strip()[:100],
            "document": document.strip()[:100],
            "since": since.strip()[:19],
            "until": until.strip()[:19],
        }
        error = None
        try:
            where = EntryFilter(**form)
        except ValueError as exc:
            error, where = str(exc), EntryFilter()
        signer = node_signer(settings)
        note = log.sign_checkpoint(signer)
        signed = open_checkpoint(note, signer.verifier())
        checkpoint = signed.checkpoint
        full = verify == "full"
        if full and checkpoint.size > _MAX_FULL_VERIFY:  # pragma: no cover - very large logs
            full = False
            error = "the log is too large to re-verify here in full; run relto audit verify"
        report = verifier.verify(source, checkpoint, full=full, now=datetime.now(UTC))
        witnesses = witnessing(pages.node, audit_settings, signer.verifier(), checkpoint.size)
        head = verifier.head
        page_size = _int(size, PAGE_ENTRIES, 1, MAX_SEARCH_PAGE) if size else PAGE_ENTRIES
        start = _int(before, checkpoint.size, 0, checkpoint.size) if before else checkpoint.size
        found = reader.search(who, where, before=start, limit=page_size)
        names = Names(pages, who)
        rows = [_row(e, names) for e in found.entries]
        query = {k: v for k, v in form.items() if v}
        if page_size != PAGE_ENTRIES:
            query["size"] = str(page_size)
        older = (
            "/console/audit?" + urlencode({**query, "before": found.next_before})
            if found.next_before is not None
            else None
        )
        newest = "/console/audit?" + urlencode(query) if before else None
        return pages.render(
            request,
            "audit.html",
            who,
            "audit",
            title="Audit log",
            allowed=True,
            checkpoint=note,
            verified=report.ok,
            incremental=report.since is not None,
            report_text=report.describe(),
            full_at=head.full_at.strftime("%Y-%m-%d %H:%M:%S UTC") if head else None,
            full_size=head.full_size if head else None,
            vkey=signer.verifier().vkey,
            witnessing=witnesses,
            entries=rows,
            size=checkpoint.size,
            form=form,
            error=error,
            filtered=not where.empty,
            older=older,
            newest=newest,
            scanned_from=found.scanned_from,
            scan_limited=found.scan_limited,
            first_index=start,
            page_size=page_size,
            # entries may name any document the reader may know of: marked as the highest
            marked=pages.node.documents.all_visible(who),
        )
