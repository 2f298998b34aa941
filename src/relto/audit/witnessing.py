"""Mutual witnessing: every node witnesses the logs of the partners it pins.

A node's witness (:class:`~relto.audit.witness.Witness`, C2SP tlog-witness)
knows the logs listed in ``RELTO_AUDIT_WITNESS_LOGS`` plus the log of every
partner node pinned now: the ``log_key`` of its pinned descriptor, whose key name
is the log's origin. The pins are read at every ``add-checkpoint``, so an
untrust stops the witnessing at once and a descriptor update with a new log key
is taken with it. An origin that two keys claim (two pins, or a pin and a static
log) is witnessed for neither: the witness cannot tell whose checkpoint it is.

The other way round, :class:`CheckpointPusher` sends this node's latest signed
checkpoint to every pinned partner's witness (``POST <base_url>/api/v1/audit/
witness/add-checkpoint``, a C2SP tlog-witness body), from the size that partner
last cosigned (kept per partner with its cosignatures), answering a ``409
text/x.tlog.size`` once with the size the witness names. A cosignature is kept
only when it verifies against the witness key of that partner's pinned
descriptor, keyed by (checkpoint size, witness nation). A partner that cannot be
reached is asked again at the next push: nothing is lost, since the next
checkpoint extends this one and its proof starts where the witness stopped.

Nothing here knows how pins are stored: the composition root hands over a
function answering the partners (:class:`Partner`) as pinned now.
"""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx
import structlog

from relto.audit.checkpoint import Checkpoint, open_checkpoint
from relto.audit.errors import InvalidNote
from relto.audit.note import (
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    Signature,
    open_note,
    parse_note,
    parse_verifier,
)
from relto.audit.service import TransparencyLog

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "Answer",
    "CheckpointPusher",
    "Cosignature",
    "CosignatureStore",
    "MemoryCosignatureStore",
    "Partner",
    "Pushed",
    "known_logs",
    "partner_logs",
    "post_add_checkpoint",
]

#: Where a node's witness listens, under the partner's base URL.
ADD_CHECKPOINT_PATH = "/api/v1/audit/witness/add-checkpoint"
#: Largest answer read from a partner's witness (a few signature lines).
MAX_ANSWER_BYTES = 16 * 1024
#: How far a cosignature's time may be from this node's clock.
COSIGNATURE_SKEW = timedelta(minutes=10)
_TIMEOUT = 5.0

log = structlog.stdlib.get_logger("relto.audit")


@dataclass(frozen=True)
class Partner:
    """A pinned partner node, as far as witnessing needs it: its nation, its base
    URL, its log's verifier key and its witness's cosignature verifier key (from
    its pinned descriptor)."""

    nation: str
    base_url: str
    log_key: str
    witness_key: str

    @property
    def log_verifier(self) -> NoteVerifier:
        v = _verifier(self.log_key)
        if not isinstance(v, NoteVerifier):
            raise InvalidNote(f"the log key pinned for {self.nation} is not a log key")
        return v

    @property
    def witness_verifier(self) -> CosignatureVerifier:
        v = _verifier(self.witness_key)
        if not isinstance(v, CosignatureVerifier):
            raise InvalidNote(f"the witness key pinned for {self.nation} is not a cosigner key")
        return v


@functools.lru_cache(maxsize=256)
def _verifier(vkey: str) -> NoteVerifier | CosignatureVerifier:
    v = parse_verifier(vkey)
    assert isinstance(v, NoteVerifier | CosignatureVerifier)
    return v


def known_logs(
    static: Mapping[str, NoteVerifier], partners: Iterable[Partner]
) -> dict[str, NoteVerifier]:
    """The logs to witness by origin: ``static`` ones and each partner's; an origin
    claimed by two different keys is left out (and logged)."""
    claims: dict[str, set[str]] = {o: {v.vkey} for o, v in static.items()}
    keys = dict(static)
    for p in partners:
        try:
            v = p.log_verifier
        except InvalidNote as exc:
            log.warning("witness_partner_log_key_refused", nation=p.nation, reason=str(exc))
            continue
        claims.setdefault(v.name, set()).add(v.vkey)
        keys.setdefault(v.name, v)
    clashing = sorted(o for o, vkeys in claims.items() if len(vkeys) > 1)
    if clashing:
        log.warning("witness_origin_claimed_twice", origins=clashing)
    return {o: v for o, v in keys.items() if o not in clashing}


def partner_logs(
    static: Mapping[str, NoteVerifier], partners: Callable[[], Iterable[Partner]]
) -> Callable[[], dict[str, NoteVerifier]]:
    """A source of logs for :class:`~relto.audit.witness.Witness`: ``static`` plus
    the partners' as ``partners()`` answers them at each call."""
    return lambda: known_logs(static, partners())


# -- pushing this node's checkpoints to the partners' witnesses ---------------------------


@dataclass(frozen=True)
class Cosignature:
    """A partner witness's cosignature of this node's checkpoint of ``size``."""

    size: int
    nation: str
    #: The witness key (type 0x04 verifier key) it verified against.
    witness_key: str
    #: The ``cosignature/v1`` signature line, as the witness sent it.
    line: str
    #: The time in the cosignature (POSIX seconds).
    cosigned_at: int
    received_at: datetime

    def signature(self) -> Signature:
        (sig,) = parse_note("x\n\n" + self.line).signatures
        return sig


class CosignatureStore(Protocol):
    """Where the partners' cosignatures of this node's checkpoints are kept."""

    def add(self, cosignature: Cosignature) -> None:
        """Keep it; a second one for the same (size, nation) is dropped."""

    def get(self, size: int, nation: str) -> Cosignature | None: ...

    def last_size(self, nation: str) -> int:
        """The largest size ``nation``'s witness cosigned (0: none yet)."""
        ...

    def at(self, size: int) -> list[Cosignature]:
        """Every cosignature of the checkpoint of ``size``, by nation."""
        ...

    def latest_size(self) -> int | None:
        """The largest checkpoint size any partner cosigned."""
        ...


class MemoryCosignatureStore:
    """Cosignatures in memory (tests, tools)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, str], Cosignature] = {}
        self._lock = threading.Lock()

    def add(self, cosignature: Cosignature) -> None:
        with self._lock:
            self._rows.setdefault((cosignature.size, cosignature.nation), cosignature)

    def get(self, size: int, nation: str) -> Cosignature | None:
        return self._rows.get((size, nation))

    def last_size(self, nation: str) -> int:
        return max((s for s, n in self._rows if n == nation), default=0)

    def at(self, size: int) -> list[Cosignature]:
        return [c for (s, n), c in sorted(self._rows.items()) if s == size]

    def latest_size(self) -> int | None:
        return max((s for s, _ in self._rows), default=None)


@dataclass(frozen=True)
class Answer:
    """A witness's HTTP answer: status, content type, body."""

    status: int
    content_type: str
    body: bytes


def post_add_checkpoint(url: str, body: bytes) -> Answer:
    """POST a tlog-witness request (5 s, no redirects, at most 16 KiB read back)."""
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    with (
        httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as http,
        http.stream("POST", url, content=body, headers=headers) as resp,
    ):
        data = b""
        for chunk in resp.iter_bytes():
            data += chunk
            if len(data) > MAX_ANSWER_BYTES:
                raise ValueError("the witness's answer is larger than 16 KiB")
        return Answer(resp.status_code, resp.headers.get("content-type", ""), data)


@dataclass(frozen=True)
class Pushed:
    """What became of one push to one partner's witness.

    ``outcome``: ``cosigned`` (verified and kept), ``current`` (its cosignature of
    this size is already kept), ``unreachable`` (asked again next time),
    ``refused`` (a fork or rollback: ``reason``), ``bad_cosignature`` (an answer
    that does not verify against the pinned witness key: not kept) or ``failed``
    (any other answer; ``detail`` says which).
    """

    nation: str
    outcome: str
    size: int
    old: int = 0
    reason: str = ""
    detail: str = ""


def _request(old: int, proof: Iterable[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


def _witness_size(answer: Answer) -> int | None:
    """The size in a ``409 text/x.tlog.size`` answer, else ``None``."""
    if answer.status != 409 or not answer.content_type.startswith("text/x.tlog.size"):
        return None
    text = answer.body.decode("ascii", "replace").strip()
    if not text.isdigit() or len(text) > 19 or (len(text) > 1 and text[0] == "0"):
        return None
    return int(text)


def refusal_reason(answer: Answer, old: int, size: int) -> str | None:
    """``fork`` or ``rollback`` when a witness refuses a checkpoint as one (C2SP
    tlog-witness: 409 for a different root at the size it cosigned, 422 for a
    consistency proof that does not verify, 400 for an old size beyond the
    checkpoint); ``None`` for any other answer."""
    if answer.status == 409 and _witness_size(answer) is None:
        return "fork"
    if answer.status == 422:
        return "fork"
    if answer.status == 400 and old > size:
        return "rollback"
    return None


class CheckpointPusher:
    """Sends this node's latest checkpoint to every pinned partner's witness and
    keeps the cosignatures that verify against the pinned witness keys.

    ``log`` and ``signer``: this node's log and checkpoint key; ``partners``: the
    partners as pinned now; ``post``: the HTTP call (injectable).
    """

    def __init__(
        self,
        log: TransparencyLog,
        signer: NoteSigner,
        partners: Callable[[], Iterable[Partner]],
        store: CosignatureStore,
        *,
        nation: str,
        post: Callable[[str, bytes], Answer] = post_add_checkpoint,
    ) -> None:
        self._log = log
        self._signer = signer
        self.partners = partners
        self.store = store
        self._nation = nation
        self._post = post

    def push(self, now: datetime) -> list[Pushed]:
        """One round: sign the current tree head (a new checkpoint only if the log
        grew) and offer it to each partner's witness."""
        partners = sorted(
            (p for p in self.partners() if p.nation != self._nation), key=lambda p: p.nation
        )
        if not partners:
            return []
        note = self._log.sign_checkpoint(self._signer, now)
        cp = open_checkpoint(note, self._signer.verifier()).checkpoint
        return [self._push_one(p, note, cp, now) for p in partners]

    def _push_one(self, p: Partner, note: str, cp: Checkpoint, now: datetime) -> Pushed:
        if self.store.get(cp.size, p.nation) is not None:
            return Pushed(p.nation, "current", cp.size)
        url = p.base_url.rstrip("/") + ADD_CHECKPOINT_PATH
        old = self.store.last_size(p.nation)
        for attempt in range(2):
            proof = self._log.consistency_path(old, cp.size) if 0 < old < cp.size else ()
            try:
                answer = self._post(url, _request(old, proof, note))
            except (httpx.HTTPError, OSError, ValueError) as exc:
                return Pushed(p.nation, "unreachable", cp.size, old, detail=type(exc).__name__)
            told = _witness_size(answer)
            if told is None or attempt:
                break
            old = told  # the witness says which size it last cosigned: once, from there
        if answer.status == 200:
            return self._keep(p, cp, answer, old, now)
        reason = refusal_reason(answer, old, cp.size)
        detail = answer.body[:300].decode("utf-8", "replace").strip()
        if reason is not None:
            log.warning(
                "witness_refused_checkpoint", witness=p.nation, size=cp.size, old=old,
                reason=reason, status=answer.status,
            )  # fmt: skip
            return Pushed(p.nation, "refused", cp.size, old, reason, detail)
        return Pushed(p.nation, "failed", cp.size, old, detail=f"HTTP {answer.status}: {detail}")

    def _keep(self, p: Partner, cp: Checkpoint, answer: Answer, old: int, now: datetime) -> Pushed:
        try:
            cosignature = verify_cosignature(p, cp, answer.body, now)
        except InvalidNote as exc:
            log.warning("witness_cosignature_rejected", witness=p.nation, reason=str(exc)[:300])
            return Pushed(p.nation, "bad_cosignature", cp.size, old, detail=str(exc)[:300])
        self.store.add(cosignature)
        return Pushed(p.nation, "cosigned", cp.size, old)


def verify_cosignature(p: Partner, cp: Checkpoint, answer: bytes, now: datetime) -> Cosignature:
    """The cosignature of ``cp`` in a witness's answer, made by the witness key
    pinned for ``p`` and timed within 10 minutes of ``now``; :class:`InvalidNote`
    otherwise (any other key's lines are ignored, a bad one by that key refused)."""
    try:
        text = answer.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNote("the witness's answer is not UTF-8") from None
    key = p.witness_verifier
    opened = open_note(cp.body() + "\n" + text, [key])  # UnknownKey: not by the pinned key
    sig = next(s for s in opened.verified if (s.name, s.key_id) == (key.name, key.key_id))
    at = opened.timestamps[key.name]
    if abs(at - now.timestamp()) > COSIGNATURE_SKEW.total_seconds():
        raise InvalidNote("the cosignature's time is more than 10 minutes from this node's clock")
    return Cosignature(cp.size, p.nation, key.vkey, sig.line(), at, now)
