"""Fingerprinted copies: every copy that leaves the node is the recipient's own,
and recorded before it leaves (issue 17).

:class:`CopyIssuer` is the node's :class:`relto.documents.CopyMaker`. For one
release it

1. takes the object's tracing secret -- 32 random bytes drawn at the object's first
   copy and stored only *sealed* for this node's KAS key (:mod:`relto.tracing.sealing`),
   so it is used only through the key store (PKCS#11 when the KAS is);
2. gives the recipient their index in the object's code (0..n-1), once, in order
   of first copy; the (n+1)-th recipient is refused and nothing is released;
3. numbers the copy (per object, from 1), derives the recipient's codeword and
   the embedding key from the secret, and makes the copy: with the first embedder
   that accepts the content (documents: a per-recipient PDF; images: a watermarked
   image), else a per-recipient ZTDF container (same policy, disseminated to the
   recipient alone) whose ``relto-fingerprint`` assertion names the copy;
4. in one database transaction writes the ledger row and records the
   ``trace.copy`` entry (object, recipient and nation, copy number, recipient
   index, SHA-256 of the codeword, media type, time); if recording fails the row
   is rolled back and nothing is released.

The ledger row keeps the log index of its entry, so that a trace can prove, with an
inclusion proof against a signed checkpoint, that the accused received the copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.exc import IntegrityError

from relto.audit.service import TransparencyLog
from relto.authz import Principal
from relto.documents import Release, ReleasedCopy
from relto.errors import InvalidInput, StorageError
from relto.events import AuditSink
from relto.kas.keys import KeyStore
from relto.store import Database
from relto.store.tracing import (
    SqlTracingRepository,
    TracingCopyRow,
    TracingRecipientRow,
    TracingSecretRow,
)
from relto.tracing.code import TracingCode, unpack
from relto.tracing.embedding import Embedder, Marking
from relto.tracing.params import CodeParameters, code_parameters
from relto.tracing.sealing import SECRET_BYTES, SealedSecret, seal, unseal
from relto.ztdf import ContainerWriter, KasTarget
from relto.ztdf.manifest import Assertion, Statement

__all__ = [
    "COPY_KIND",
    "FINGERPRINT_ASSERTION_ID",
    "FINGERPRINT_SCHEMA",
    "CopyIssuer",
    "RecipientLimitReached",
    "TracedRecipient",
    "embedding_key",
    "product_parameters",
]

log = structlog.stdlib.get_logger("relto.tracing")

#: The log entry recorded for every copy, before it leaves.
COPY_KIND = "trace.copy"
#: The assertion of a re-protected copy that names it.
FINGERPRINT_ASSERTION_ID = "relto-fingerprint"
FINGERPRINT_SCHEMA = "urn:relto:tracing:copy:1"
_EMBED_SALT = b"relto.tracing.embedding.v1"
_ATTEMPTS = 4


def product_parameters() -> CodeParameters:
    """The code every object uses: up to 3 colluders among 10,000 recipients,
    false accusation ≤ 10⁻³ (840 bits, docs/tracing.md)."""
    return code_parameters(c=3, n=10_000, epsilon=1e-3)


def embedding_key(secret: bytes, params: CodeParameters) -> bytes:
    """The 32-byte key the embedders place the code with: HKDF-SHA256 of the object's
    secret (salt ``relto.tracing.embedding.v1``, info ``embedding;`` + the code's
    descriptor), independent of the code's own keys."""
    info = f"embedding;c={params.c};m={params.length};dist={params.distribution_id}"
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_EMBED_SALT, info=info.encode())
    return hkdf.derive(secret)


class RecipientLimitReached(InvalidInput):
    """The object's code has no index left for another recipient: nothing released."""


@dataclass(frozen=True)
class TracedRecipient:
    """A recipient of an object's copies, as the ledger knows them."""

    person_id: str
    nation: str
    index: int


class CopyIssuer:
    """Makes, records and returns each recipient's copy (the node's copy maker)."""

    def __init__(
        self,
        *,
        db: Database,
        sink: AuditSink,
        keys: Callable[[], KeyStore],
        target: Callable[[], KasTarget],
        embedders: Sequence[Embedder] = (),
        params: CodeParameters | None = None,
        log_index: TransparencyLog | None = None,
    ) -> None:
        """``keys``: this node's KAS key store (sealing); ``target``: where a
        re-protected copy's key is wrapped (this node's KAS); ``embedders``: tried
        in order, the first that accepts the content makes the copy; ``log_index``:
        the transparency log when it is the sink, so each ledger row keeps its
        entry's index."""
        self._db = db
        self._sink = sink
        self._keys = keys
        self._target = target
        self.embedders = tuple(embedders)
        self.params = params or product_parameters()
        self._log = log_index

    # -- the secret and the recipients --------------------------------------------------

    def _secret(self, document_id: str, at: datetime) -> bytes:
        """The object's secret, drawn and sealed at its first copy."""
        for _ in range(_ATTEMPTS):
            with self._db.session() as s:
                repo = SqlTracingRepository(s)
                row = repo.secret(document_id)
                if row is not None:
                    return unseal(self._keys(), _sealed(row))
            secret = os.urandom(SECRET_BYTES)
            sealed = seal(self._keys(), secret)
            try:
                with self._db.session() as s:
                    SqlTracingRepository(s).add_secret(
                        TracingSecretRow(
                            document_id=document_id,
                            kid=sealed.kid,
                            method=sealed.method,
                            wrapped=sealed.wrapped,
                            ephemeral=sealed.ephemeral,
                            created_at=at,
                        )
                    )
                return secret
            except IntegrityError:
                continue  # another copy drew it first: use theirs
        raise StorageError("the object's tracing secret could not be stored")

    def secret(self, document_id: str) -> bytes | None:
        """The object's unsealed secret, or ``None`` when it never issued a copy."""
        with self._db.session() as s:
            row = SqlTracingRepository(s).secret(document_id)
            return None if row is None else unseal(self._keys(), _sealed(row))

    def _index(self, document_id: str, who: Principal, at: datetime) -> int:
        """The recipient's index, assigned once (0..n-1); refused past n."""
        for _ in range(_ATTEMPTS):
            try:
                with self._db.session() as s:
                    repo = SqlTracingRepository(s)
                    row = repo.recipient(document_id, who.person_id)
                    if row is not None:
                        return int(row.recipient_index)
                    index = repo.recipient_count(document_id)
                    if index >= self.params.n:
                        raise RecipientLimitReached(
                            f"this object has reached its {self.params.n:,} recipients: no "
                            "copy can be fingerprinted for another one, so none is released"
                        )
                    repo.add_recipient(
                        TracingRecipientRow(
                            document_id=document_id,
                            person_id=who.person_id,
                            nation=who.home_nation,
                            recipient_index=index,
                            assigned_at=at,
                        )
                    )
                    return index
            except IntegrityError:
                continue  # another recipient took that index at the same moment
        raise StorageError("no recipient index could be assigned")

    def recipients(self, document_id: str) -> list[TracedRecipient]:
        with self._db.session() as s:
            return [
                TracedRecipient(r.person_id, r.nation, int(r.recipient_index))
                for r in SqlTracingRepository(s).recipients(document_id)
            ]

    def copies(self, document_id: str, indices: Sequence[int]) -> list[TracingCopyRow]:
        with self._db.session() as s:
            return SqlTracingRepository(s).copies(document_id, indices)

    def traced_objects(self, limit: int) -> list[str]:
        with self._db.session() as s:
            return SqlTracingRepository(s).traced_objects(limit)

    # -- a copy -------------------------------------------------------------------------

    def embedder_for(self, media_type: str, filename: str) -> Embedder | None:
        return next((e for e in self.embedders if e.accepts(media_type, filename)), None)

    def copy_for(self, who: Principal, release: Release, at: datetime) -> ReleasedCopy:
        doc = release.doc
        secret = self._secret(doc.id, at)
        index = self._index(doc.id, who, at)
        code = TracingCode(secret, self.params)
        word = code.codeword(index)
        commitment = hashlib.sha256(word).hexdigest()
        embedder = self.embedder_for(doc.media_type, doc.filename)
        for _ in range(_ATTEMPTS):
            with self._db.session() as s:
                number = SqlTracingRepository(s).next_copy_number(doc.id)
            if embedder is not None:
                made = embedder.embed(
                    release.content,
                    doc.media_type,
                    doc.filename,
                    unpack(word, self.params.length),
                    embedding_key(secret, self.params),
                    Marking(doc.banner, who.name, who.home_nation, number, doc.id),
                )
                copy = ReleasedCopy(
                    made.data,
                    made.media_type,
                    _filename(doc.filename, made.suffix),
                    number,
                    "embedded",
                )
            else:
                copy = self._container(who, release, number, index, commitment, at)
            try:
                self._record(who, doc.id, number, index, commitment, copy, at)
            except IntegrityError:
                continue  # another copy of this object took that number: make ours again
            return copy
        raise StorageError("the copy could not be numbered; nothing was released")

    def _container(
        self,
        who: Principal,
        release: Release,
        number: int,
        index: int,
        commitment: str,
        at: datetime,
    ) -> ReleasedCopy:
        """A per-recipient container: the same policy (the KAS decides it as the
        object), disseminated to the recipient alone, naming the copy."""
        doc = release.doc
        if doc.custody:
            raise InvalidInput(
                "an object held in joint custody has no per-recipient container here: "
                "open it with the client SDK"
            )
        statement = {
            "object": doc.id,
            "copy": number,
            "recipient_index": index,
            "codeword_sha256": commitment,
            "code": f"c={self.params.c};n={self.params.n};m={self.params.length}",
        }
        assertion = Assertion(
            id=FINGERPRINT_ASSERTION_ID,
            type="other",
            scope="tdo",
            applies_to_state="unencrypted",
            statement=Statement(
                format="json",
                schema=FINGERPRINT_SCHEMA,
                value=json.dumps(statement, sort_keys=True, separators=(",", ":")),
            ),
        )
        out = io.BytesIO()
        writer = ContainerWriter(
            out, kas=[self._target()], at=at, max_size=max(1, len(release.content))
        )
        try:
            writer.write(release.content)
            writer.finish(
                attributes=release.attributes,
                dissem=[who.person_id],
                label_xml=release.label_xml,
                mime_type=doc.media_type,
                assertions=[assertion],
                policy_uuid=doc.policy_uuid,
            )
        finally:
            writer.close()
        return ReleasedCopy(
            out.getvalue(),
            "application/zip",
            _filename(doc.filename, ".tdf", keep=True),
            number,
            "container",
        )

    def _record(
        self,
        who: Principal,
        document_id: str,
        number: int,
        index: int,
        commitment: str,
        copy: ReleasedCopy,
        at: datetime,
    ) -> None:
        """The ledger row and its ``trace.copy`` entry, together: the entry is
        recorded inside the row's transaction, so a failure to record rolls the
        row back (and the copy is not released)."""
        entry = {
            "object": document_id,
            "recipient": who.person_id,
            "nation": who.home_nation,
            "copy": number,
            "recipient_index": index,
            "codeword_sha256": commitment,
            "media_type": copy.media_type,
            "method": copy.method,
            "at": at.isoformat(),
        }
        with self._db.session() as s:
            repo = SqlTracingRepository(s)
            row = TracingCopyRow(
                document_id=document_id,
                copy_number=number,
                person_id=who.person_id,
                nation=who.home_nation,
                recipient_index=index,
                media_type=copy.media_type[:200],
                commitment=commitment,
                at=at,
                log_index=None,
            )
            repo.add_copy(row)  # IntegrityError when the number was taken meanwhile
            if self._log is not None and self._sink is self._log:
                row.log_index = self._log.submit(COPY_KIND, entry)
            else:
                self._sink.record(COPY_KIND, entry)
        log.info("copy_released", object=document_id, copy=number, method=copy.method)


def _sealed(row: TracingSecretRow) -> SealedSecret:
    return SealedSecret(row.kid, row.method, bytes(row.wrapped), row.ephemeral)


def _filename(original: str, suffix: str, *, keep: bool = False) -> str:
    """The copy's file name: the original's stem with the copy's suffix (or the
    original's name with ``suffix`` added, ``keep``)."""
    name = PurePath(original or "document").name or "document"
    if keep:
        return name + suffix
    if not suffix:
        return name
    return PurePath(name).stem + suffix
