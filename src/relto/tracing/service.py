"""Tracing a leaked file to the recipients whose copies made it (issue 17).

:meth:`TracingService.trace` is asked by a security officer or an auditor of this
node's nation (``tracing:trace``, decided at the one authorisation point; a refusal
is recorded and looks like "not found"). It

1. turns the leaked file into page images (``load_pages``);
2. finds the object it is a copy of: the one named, or the best ``locate`` score
   above :data:`LOCATE_THRESHOLD` among the objects that issued copies;
3. opens that object's original on this node (for comparison only: never shown)
   and its sealed tracing secret through the KAS key store, and reads the codeword
   (``extract``);
4. accuses over the object's assigned recipient indices *and* every unassigned
   index up to n: an unassigned index reaching the threshold means something is
   wrong (a copy made outside the ledger, or a forged file) and is reported;
5. answers with each accused recipient (score, threshold, false-accusation bound,
   bits read and erased) and the ``trace.copy`` entries showing they received a
   copy, each with an inclusion proof against the latest signed checkpoint
   (verified here before it is shown);
6. records the run as a ``trace.run`` entry (who, the file's SHA-256, the object,
   the result) before answering.

When nobody reaches the threshold the answer says the evidence is too weak and
accuses nobody. See ``docs/tracing.md`` ("Fingerprinted copies in the product").
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from relto.audit.checkpoint import open_checkpoint
from relto.audit.entries import decode_entry
from relto.audit.errors import InvalidNote, InvalidProof
from relto.audit.merkle import leaf_hash, verify_inclusion
from relto.audit.note import NoteSigner
from relto.audit.service import TransparencyLog
from relto.authz import Authorizer, Permission, Principal, Scope
from relto.documents import DocumentService, DocumentView
from relto.errors import InvalidInput, NotFound
from relto.events import AuditSink
from relto.kas.keys import KeyStore
from relto.tracing.code import TracingCode
from relto.tracing.copies import COPY_KIND, CopyIssuer, embedding_key
from relto.tracing.docmark import DocumentEmbedder, load_pages
from relto.tracing.embedding import Embedder, Page, Reading
from relto.tracing.imagemark import ImageEmbedder
from relto.tracing.params import CodeParameters
from relto.tracing.sealing import reference_unwrap
from relto.ztdf import KeyAccessDenied, ZtdfError

__all__ = [
    "LOCATE_THRESHOLD",
    "MAX_CANDIDATES",
    "MAX_LEAK_BYTES",
    "RUN_KIND",
    "Accused",
    "CopyEvidence",
    "TraceResult",
    "TracingService",
    "default_embedders",
    "default_page_loader",
]

log = structlog.stdlib.get_logger("relto.tracing")

#: The log entry recorded for every trace run.
RUN_KIND = "trace.run"
#: The least ``locate`` score that names an object when none was given.
LOCATE_THRESHOLD = 0.5
#: How many objects (those that issued copies most recently) a trace without an
#: object id compares the leak with.
MAX_CANDIDATES = 50
#: The largest leaked file a trace takes.
MAX_LEAK_BYTES = 50 * 1024 * 1024

PageLoader = Callable[[bytes], Sequence[Page]]


def default_embedders() -> tuple[Embedder, ...]:
    """The embedders a node uses, in order: documents (text, Markdown, PDF, docx ->
    a per-recipient PDF), then images (PNG, JPEG, TIFF)."""
    return (DocumentEmbedder(), ImageEmbedder())


def default_page_loader() -> PageLoader | None:
    """How a leaked file becomes page images: a PDF rasterised, an image as it is."""
    return load_pages


@dataclass(frozen=True)
class CopyEvidence:
    """One ``trace.copy`` entry that shows a recipient received a copy, with its
    inclusion proof against a checkpoint signed by this node (verified)."""

    copy_number: int
    at: datetime
    media_type: str
    codeword_sha256: str
    log_index: int | None
    entry: dict[str, object] = field(default_factory=dict)
    tree_size: int | None = None
    leaf_hash: str = ""
    proof: tuple[str, ...] = ()
    checkpoint: str = ""
    #: Why there is no proof (for example: the node records to no log).
    unproven: str = ""


@dataclass(frozen=True)
class Accused:
    person_id: str
    nation: str
    recipient_index: int
    score: float
    copies: tuple[CopyEvidence, ...]


@dataclass(frozen=True)
class TraceResult:
    """What a trace found: data, never an exception for weak evidence."""

    file_sha256: str
    object_id: str | None
    located: float
    accused: tuple[Accused, ...]
    #: Indices nobody was given that reached the threshold: something is wrong.
    unassigned_accused: tuple[tuple[int, float], ...]
    threshold: float
    false_accusation_bound: float
    bits_read: int
    bits_erased: int
    length: int
    recipients: int
    notes: tuple[str, ...]
    log_index: int | None = None

    @property
    def conclusive(self) -> bool:
        return bool(self.accused or self.unassigned_accused)

    @property
    def verdict(self) -> str:
        if self.object_id is None:
            return "No object on this node matches the file: nobody is accused."
        if self.unassigned_accused:
            return (
                "An index that was never given to anybody reached the threshold: the file "
                "was not made from a copy this node recorded. Treat it as a forgery or a "
                "release outside the ledger."
            )
        if not self.accused:
            return "The evidence is too weak to accuse anybody: nobody is accused."
        names = ", ".join(a.person_id for a in self.accused)
        return f"Accused: {names}."


class TracingService:
    """Traces leaked files to recipients; only security officers and auditors."""

    def __init__(
        self,
        *,
        copies: CopyIssuer,
        documents: DocumentService,
        authorizer: Authorizer,
        sink: AuditSink,
        keys: Callable[[], KeyStore],
        own_kas: Callable[[str], bool],
        nation: str,
        load_pages: PageLoader | None,
        log: TransparencyLog | None = None,
        signer: Callable[[], NoteSigner] | None = None,
    ) -> None:
        self._copies = copies
        self._documents = documents
        self._authz = authorizer
        self._sink = sink
        self._keys = keys
        self._own_kas = own_kas
        self._nation = nation
        #: How a leaked file becomes page images (``None``: this node cannot trace).
        self.load_pages = load_pages
        self._log = log
        self._signer = signer

    @property
    def params(self) -> CodeParameters:
        return self._copies.params

    def may_trace(self, who: Principal) -> bool:
        """For showing the page and its navigation entry; never for acting."""
        return self._authz.allows(who, Permission.TRACING_TRACE, Scope.of({self._nation}))

    def trace(
        self, actor: Principal, leaked: bytes, object_id: str | None, at: datetime
    ) -> TraceResult:
        digest = hashlib.sha256(leaked).hexdigest()
        self._authz.require(
            actor,
            Permission.TRACING_TRACE,
            Scope.of({self._nation}),
            target=f"trace {digest[:16]}" + (f" {object_id[:64]}" if object_id else ""),
        )
        if len(leaked) > MAX_LEAK_BYTES:
            raise InvalidInput(f"the file is larger than {MAX_LEAK_BYTES // (1024 * 1024)} MiB")
        if not leaked:
            raise InvalidInput("the file is empty")
        if self.load_pages is None or not self._copies.embedders:
            raise InvalidInput("this node has no embedders: it cannot read a leaked file")
        try:
            pages = list(self.load_pages(leaked))
        except (ValueError, OSError) as exc:
            raise InvalidInput(f"the file could not be read as pages: {exc}") from None
        if object_id is not None:
            # the tracer must be allowed to know the object (a refusal is "not found")
            self._documents.visible(actor, object_id)
            if self._copies.secret(object_id) is None:
                raise NotFound("no copy of that object was ever released")
        result = self._trace(actor, pages, digest, object_id)
        index = self._record(actor, result, at)
        log.info("trace_run", object=result.object_id, accused=len(result.accused))
        return replace(result, log_index=index)

    # -- the steps ------------------------------------------------------------------

    def _original(self, doc_id: str) -> tuple[DocumentView, bytes] | None:
        unwrap = reference_unwrap(self._keys(), self._own_kas)
        try:
            return self._documents.reference(doc_id, unwrap)
        except (KeyAccessDenied, ZtdfError, NotFound):
            return None

    def _locate(
        self, actor: Principal, pages: Sequence[Page], object_id: str | None
    ) -> tuple[DocumentView, bytes, Embedder, float] | None:
        candidates = (
            [object_id] if object_id is not None else self._copies.traced_objects(MAX_CANDIDATES)
        )
        best: tuple[DocumentView, bytes, Embedder, float] | None = None
        for doc_id in candidates:
            opened = self._original(doc_id)
            if opened is None:
                continue
            doc, content = opened
            if not self._documents.may_know(actor, doc):
                continue  # a tracer compares only with objects they may know of
            embedder = self._copies.embedder_for(doc.media_type, doc.filename)
            if embedder is None:
                continue
            score = float(embedder.locate(pages, content, doc.media_type, doc.filename))
            if best is None or score > best[3]:
                best = (doc, content, embedder, score)
        if best is None:
            return None
        if object_id is None and best[3] < LOCATE_THRESHOLD:
            return None
        return best

    def _trace(
        self, actor: Principal, pages: Sequence[Page], digest: str, object_id: str | None
    ) -> TraceResult:
        params = self._copies.params
        found = self._locate(actor, pages, object_id)
        if found is None:
            return TraceResult(
                digest, None, 0.0, (), (), float("inf"), params.epsilon, 0, params.length,
                params.length, 0, ("no object on this node matches the file",),
            )  # fmt: skip
        doc, content, embedder, located = found
        secret = self._copies.secret(doc.id)
        if secret is None:
            raise NotFound("no copy of that object was ever released")
        reading: Reading = embedder.extract(
            pages, content, doc.media_type, doc.filename, embedding_key(secret, params),
            params.length,
        )  # fmt: skip
        bits = list(reading.bits)
        if len(bits) != params.length:
            raise InvalidInput("the embedder read a codeword of the wrong length")
        accusation = TracingCode(secret, params).accuse(bits)  # every index 0..n-1
        recipients = {r.index: r for r in self._copies.recipients(doc.id)}
        evidence = self._evidence(doc.id, [i for i, _ in accusation.accused if i in recipients])
        accused = tuple(
            Accused(
                recipients[i].person_id,
                recipients[i].nation,
                i,
                score,
                evidence.get(i, ()),
            )
            for i, score in accusation.accused
            if i in recipients
        )
        unassigned = tuple((i, s) for i, s in accusation.accused if i not in recipients)
        return TraceResult(
            file_sha256=digest,
            object_id=doc.id,
            located=located,
            accused=accused,
            unassigned_accused=unassigned,
            threshold=accusation.threshold,
            false_accusation_bound=accusation.false_accusation_bound,
            bits_read=accusation.bits_used,
            bits_erased=params.length - accusation.bits_used,
            length=params.length,
            recipients=len(recipients),
            notes=tuple(reading.notes),
        )

    def _evidence(self, doc_id: str, indices: Sequence[int]) -> dict[int, tuple[CopyEvidence, ...]]:
        if not indices:
            return {}
        rows = self._copies.copies(doc_id, indices)
        checkpoint = self._checkpoint(max((r.log_index or -1) for r in rows))
        out: dict[int, list[CopyEvidence]] = {}
        for row in rows:
            out.setdefault(int(row.recipient_index), []).append(
                self._proof(row.copy_number, row.at, row.media_type, row.commitment,
                            row.log_index, doc_id, checkpoint)
            )  # fmt: skip
        return {i: tuple(v) for i, v in out.items()}

    def _checkpoint(self, last_index: int) -> tuple[str, int, bytes] | None:
        """The latest checkpoint signed by this node that covers ``last_index``
        (signed now if the latest does not), verified: (note, size, root)."""
        if self._log is None or self._signer is None or last_index < 0:
            return None
        signer = self._signer()
        note = self._log.latest_checkpoint()
        for _ in range(2):
            if note is not None:
                try:
                    cp = open_checkpoint(note, signer.verifier()).checkpoint
                except InvalidNote:
                    cp = None
                if cp is not None and cp.size > last_index:
                    return note, cp.size, cp.root
            note = self._log.sign_checkpoint(signer)
        return None

    def _proof(
        self,
        number: int,
        at: datetime,
        media_type: str,
        commitment: str,
        index: int | None,
        doc_id: str,
        checkpoint: tuple[str, int, bytes] | None,
    ) -> CopyEvidence:
        base = CopyEvidence(number, at, media_type, commitment, index)
        if self._log is None or index is None:
            return replace(base, unproven="this node records copies to no transparency log")
        if checkpoint is None:
            return replace(base, unproven="no signed checkpoint covers the entry")
        note, size, root = checkpoint
        stored = self._log.entries(index, index + 1)
        if not stored:
            return replace(base, unproven="the entry is missing from the log")
        body = stored[0].body
        try:
            entry = decode_entry(body)
            proof = self._log.inclusion_proof(index, size)
            if proof.leaf_hash != leaf_hash(body):
                raise InvalidProof("the stored leaf hash does not match the entry")
            verify_inclusion(index, size, proof.leaf_hash, proof.proof, root)
        except (InvalidProof, NotFound) as exc:
            return replace(base, unproven=f"the entry does not verify: {exc}")
        payload = dict(entry.payload)
        if (
            entry.kind != COPY_KIND
            or payload.get("object") != doc_id
            or payload.get("copy") != number
            or payload.get("codeword_sha256") != commitment
        ):
            return replace(base, unproven="the log entry at that index is not this copy's")
        return CopyEvidence(
            number, at, media_type, commitment, index, payload, size,
            proof.leaf_hash.hex(), tuple(h.hex() for h in proof.proof), note,
        )  # fmt: skip

    def _record(self, actor: Principal, result: TraceResult, at: datetime) -> int | None:
        entry = {
            "by": actor.person_id,
            "nation": actor.home_nation,
            "file_sha256": result.file_sha256,
            "object": result.object_id,
            "located": round(result.located, 4),
            "bits_read": result.bits_read,
            "bits_erased": result.bits_erased,
            "threshold": round(result.threshold, 4) if math.isfinite(result.threshold) else None,
            "false_accusation_bound": result.false_accusation_bound,
            "accused": [
                {
                    "person_id": a.person_id,
                    "nation": a.nation,
                    "recipient_index": a.recipient_index,
                    "score": round(a.score, 4),
                }
                for a in result.accused
            ],
            "unassigned_accused": [
                {"recipient_index": i, "score": round(s, 4)} for i, s in result.unassigned_accused
            ],
            "conclusive": result.conclusive,
            "at": at.isoformat(),
        }
        if self._log is not None and self._sink is self._log:
            return self._log.submit(RUN_KIND, entry)
        self._sink.record(RUN_KIND, entry)
        return None
