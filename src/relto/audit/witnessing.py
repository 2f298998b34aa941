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

**Alarms.** When a partner's witness refuses this node's checkpoint as a fork or
a rollback, the pusher records ``audit.witness.refused`` in this node's log. When
this node's witness refuses a partner's checkpoint (:class:`PartnerWitness`), it
records ``audit.witness.alarm`` (partner, sizes, reason) in this node's log and
keeps the alarm (:class:`AlarmStore`) -- but only what the partner cannot deny:

- a checkpoint signed by the partner's key at the size this witness cosigned, with
  another root (a fork: two signed tree heads of one size);
- a checkpoint that does not extend the one cosigned, or is smaller, *and* the
  partner's own log, asked at its pinned address for the consistency proof
  between the two sizes, cannot prove it does: a proof that does not verify is a
  fork, a log that no longer holds the larger size a rollback.

The add-checkpoint route is public and checkpoints are public, so anyone can
replay an old checkpoint (smaller than the cosigned one) or send a real one with
a junk proof; both are refused, and neither raises an alarm, because the
partner's log proves them consistent. A refusal that cannot be checked (the
partner is unreachable) is logged (``witness_refusal_unconfirmed``) and raises
no alarm; an honest partner whose log forked pushes again next interval.

**Reachability.** Both sides tell a :class:`Contacts` (the node's
:class:`~relto.federation.reachability.Reachability`) what they hear: a
cosignature kept is the partner heard from (``cosigned``), a round that did not
get one a miss; a partner's checkpoint cosigned here that extends the tree head
cosigned before is the partner heard from (``checkpoint``; a replayed one is
not news). So that a quiet partnership still hears from every partner each
round, a partner whose cosignature of the current tree head is kept is asked
again when the contacts say it is due (a witness cosigns the same tree head again,
with a fresh time).

Nothing here knows how pins are stored: the composition root hands over a
function answering the partners (:class:`Partner`) as pinned now.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint, open_checkpoint
from relto.audit.errors import ForkRefused, InvalidNote, InvalidProof, RollbackRefused
from relto.audit.note import (
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    Signature,
    add_signatures,
    open_note,
    parse_note,
    parse_verifier,
)
from relto.audit.service import TransparencyLog
from relto.audit.witness import Witness
from relto.authz import Authorizer, Grantee, Permission, Scope
from relto.events import AuditSink

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "ALARM_KIND",
    "REFUSED_KIND",
    "Alarm",
    "AlarmStore",
    "Answer",
    "CheckpointPusher",
    "Contacts",
    "Cosignature",
    "CosignatureStore",
    "MemoryAlarmStore",
    "MemoryCosignatureStore",
    "Partner",
    "PartnerWitness",
    "Pushed",
    "get_consistency",
    "known_logs",
    "partner_logs",
    "post_add_checkpoint",
    "verify_cosignature",
]

#: Recorded by a node whose witness refused a partner's checkpoint (fork, rollback).
ALARM_KIND = "audit.witness.alarm"
#: Recorded by a node whose checkpoint a partner's witness refused.
REFUSED_KIND = "audit.witness.refused"

#: Where a node's witness listens, under the partner's base URL.
ADD_CHECKPOINT_PATH = "/api/v1/audit/witness/add-checkpoint"
#: Where a node serves consistency proofs, under its base URL.
CONSISTENCY_PATH = "/api/v1/audit/proof/consistency"
#: Largest answer read from a partner (a few signature lines, or a proof).
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


# -- talking to partners ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A witness's HTTP answer: status, content type, body."""

    status: int
    content_type: str
    body: bytes


def _call(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Answer:
    with (
        httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as http,
        http.stream(method, url, content=body, headers=headers) as resp,
    ):
        data = b""
        for chunk in resp.iter_bytes():
            data += chunk
            if len(data) > MAX_ANSWER_BYTES:
                raise ValueError("the partner's answer is larger than 16 KiB")
        return Answer(resp.status_code, resp.headers.get("content-type", ""), data)


def post_add_checkpoint(url: str, body: bytes) -> Answer:
    """POST a tlog-witness request (5 s, no redirects, at most 16 KiB read back)."""
    return _call("POST", url, body, {"Content-Type": "text/plain; charset=utf-8"})


def get_consistency(url: str) -> Answer:
    """GET a partner's consistency proof (5 s, no redirects, at most 16 KiB)."""
    return _call("GET", url, None, {"Accept": "application/json"})


class Contacts(Protocol):
    """Who was heard from, and who was missed (:mod:`relto.federation.reachability`)."""

    def heard(self, nation: str, how: str) -> None: ...

    def missed(self, nation: str, reason: str) -> None: ...

    def due(self, nation: str) -> bool:
        """Whether ``nation`` should be asked even with nothing new to send."""
        ...


# -- alarms ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    """A fork or rollback seen by witnessing.

    ``kind`` is :data:`ALARM_KIND` (this node's witness refused ``nation``'s
    checkpoint) or :data:`REFUSED_KIND` (``nation``'s witness refused this node's);
    ``witnessed_size`` is the size the witness had cosigned, ``size`` and ``root``
    the refused checkpoint's.
    """

    kind: str
    nation: str
    origin: str
    reason: str
    witnessed_size: int
    size: int
    root: bytes
    detail: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1

    def payload(self) -> dict[str, Any]:
        """What the log records."""
        who = "nation" if self.kind == ALARM_KIND else "witness"
        return {
            who: self.nation,
            "origin": self.origin,
            "reason": self.reason,
            "witnessed_size": self.witnessed_size,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "detail": self.detail,
            "at": self.first_seen.astimezone(UTC).isoformat(),
        }


class AlarmStore(Protocol):
    """Where alarms are kept."""

    def raise_alarm(self, alarm: Alarm) -> bool:
        """Keep ``alarm``; ``True`` when new, ``False`` when the same one (kind,
        nation, size, root) was kept before (then only seen again)."""
        ...

    def alarms(self) -> list[Alarm]:
        """Every alarm kept, oldest first."""
        ...


class MemoryAlarmStore:
    """Alarms in memory (tests, tools)."""

    def __init__(self) -> None:
        self._alarms: dict[tuple[str, str, int, bytes], Alarm] = {}
        self._lock = threading.Lock()

    def raise_alarm(self, alarm: Alarm) -> bool:
        key = (alarm.kind, alarm.nation, alarm.size, alarm.root)
        with self._lock:
            seen = self._alarms.get(key)
            if seen is None:
                self._alarms[key] = alarm
                return True
            self._alarms[key] = replace(seen, last_seen=alarm.last_seen, count=seen.count + 1)
            return False

    def alarms(self) -> list[Alarm]:
        with self._lock:
            return sorted(self._alarms.values(), key=lambda a: a.first_seen)


class PartnerWitness:
    """This node's witness of its partners' logs: :class:`Witness`, plus alarms.

    :meth:`add_checkpoint` answers exactly as :meth:`Witness.add_checkpoint` (and
    raises the same refusals); before raising a fork or rollback of a pinned
    partner's log it checks, against that partner's own log, that the partner
    cannot prove the refused checkpoint consistent with the one cosigned, then
    records :data:`ALARM_KIND` and keeps the alarm. ``ask`` fetches a URL
    (injectable); ``authorizer`` decides who reads the alarms.
    """

    def __init__(
        self,
        witness: Witness,
        partners: Callable[[], Iterable[Partner]],
        *,
        sink: AuditSink,
        alarms: AlarmStore,
        authorizer: Authorizer,
        nation: str,
        ask: Callable[[str], Answer] = get_consistency,
        contacts: Contacts | None = None,
    ) -> None:
        self.witness = witness
        self._partners = partners
        self._sink = sink
        self.alarms = alarms
        self._authz = authorizer
        self._nation = nation
        self._ask = ask
        self.contacts = contacts

    def knows(self, origin: str) -> bool:
        return origin in self.witness.logs

    def last_size(self, origin: str) -> int:
        return self.witness.last_size(origin)

    def add_checkpoint(
        self, old_size: int, proof: Sequence[bytes], note: str | bytes, *, at: datetime
    ) -> Signature:
        """C2SP tlog-witness ``add-checkpoint`` (see :class:`Witness`), recording
        the forks and rollbacks of partners' logs it can prove."""
        try:
            sig = self.witness.add_checkpoint(old_size, proof, note, at=at)
        except (ForkRefused, RollbackRefused) as exc:
            try:
                self._alarm(note, exc, at)
            except Exception as failure:  # the refusal stands; the alarm is logged
                log.error("witness_alarm_failed", error=type(failure).__name__)
            raise
        if self.contacts is not None:
            try:
                self._heard(note, old_size)
            except Exception as failure:  # the cosignature stands; the failure is logged
                log.error("witness_contact_failed", error=type(failure).__name__)
        return sig

    def _heard(self, note: str | bytes, old_size: int) -> None:
        """A checkpoint that extends what was cosigned is news from its log's node
        (only it could sign it); the same tree head again may be anyone's replay."""
        cp = self.witness.open(note)
        if cp.size <= old_size and old_size > 0:
            return
        for p in self._partners():
            if _origin_of(p) == cp.origin and p.nation != self._nation:
                assert self.contacts is not None
                self.contacts.heard(p.nation, "checkpoint")
                return

    def read_alarms(self, who: Grantee) -> list[Alarm]:
        """The alarms, for a person of this node's nation (``AccessDenied`` else)."""
        self._authz.require(
            who, Permission.FEDERATION_ATTEST, Scope.of([self._nation]), target="witness alarms"
        )
        return self.alarms.alarms()

    def _alarm(self, note: str | bytes, exc: Exception, at: datetime) -> None:
        cp = self.witness.open(note)
        head = self.witness.state.get(cp.origin)
        if head is None:
            return  # nothing cosigned yet: nothing it contradicts
        partner = next(
            (
                p
                for p in self._partners()
                if _origin_of(p) == cp.origin and p.nation != self._nation
            ),
            None,
        )
        if isinstance(exc, ForkRefused) and exc.same_size:
            reason, detail = (
                "fork",
                (
                    f"a checkpoint of size {cp.size} signed by the log's key with another root "
                    "than the one this witness cosigned"
                ),
            )
        elif cp.size == head.size or partner is None:
            return  # nothing to hold against the log (or no address to ask it)
        else:
            found = self._confirm(partner, head.size, head.root, cp)
            if found is None:
                return
            reason, detail = found
        alarm = Alarm(ALARM_KIND, partner.nation if partner else "", cp.origin, reason,
                      head.size, cp.size, cp.root, detail, at, at)  # fmt: skip
        if self.alarms.raise_alarm(alarm):
            self._sink.record(ALARM_KIND, alarm.payload())
        log.warning("witness_alarm", nation=alarm.nation, origin=cp.origin, reason=reason,
                    witnessed_size=head.size, size=cp.size)  # fmt: skip

    def _confirm(
        self, p: Partner, cosigned: int, cosigned_root: bytes, cp: Checkpoint
    ) -> tuple[str, str] | None:
        """Ask ``p``'s log for the proof between the cosigned tree head and the
        refused checkpoint: ``(reason, detail)`` when it cannot prove them
        consistent, ``None`` when it can (a replay or a junk proof) or cannot be
        asked."""
        (a, root_a), (b, root_b) = sorted([(cosigned, cosigned_root), (cp.size, cp.root)])
        base = p.base_url.rstrip("/") + CONSISTENCY_PATH
        url = f"{base}?first={b}" if a == 0 else f"{base}?first={a}&second={b}"
        try:
            answer = self._ask(url)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning("witness_refusal_unconfirmed", nation=p.nation, reason=type(exc).__name__)
            return None
        if answer.status == 404:
            return "rollback" if cp.size < cosigned else "fork", (
                f"the log no longer holds a tree of size {b}, which it signed"
                + (" and this witness cosigned" if b == cosigned else "")
            )
        if answer.status != 200:
            log.warning("witness_refusal_unconfirmed", nation=p.nation, status=answer.status)
            return None
        try:
            got = json.loads(answer.body)
            proof = [base64.b64decode(h, validate=True) for h in got["proof"]]
            if a == 0:  # from the empty tree: the log's tree at b must be the known one
                if base64.b64decode(got["first_root"], validate=True) != root_b:
                    raise InvalidProof("the tree at the larger size has another root")
            else:
                merkle.verify_consistency(a, b, proof, root_a, root_b)
        except InvalidProof as exc:
            return "fork", (
                f"the log cannot prove the tree of size {b} extends the one of size {a}: {exc}"
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            log.warning("witness_refusal_unconfirmed", nation=p.nation, reason="bad proof answer")
            return None
        log.info("witness_refusal_disproved", nation=p.nation, size=cp.size, cosigned=cosigned)
        return None


def _origin_of(p: Partner) -> str | None:
    try:
        return p.log_verifier.name
    except InvalidNote:
        return None


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

    def covers(self, cp: Checkpoint) -> bool:
        """Whether this cosignature is of ``cp`` (and not of another tree of its size)."""
        try:
            return (
                cp.size == self.size
                and _verifier(self.witness_key).verify(
                    cp.body().encode(), self.signature().signature
                )
                is not None
            )
        except InvalidNote:
            return False


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
    partners as pinned now; ``sink``: where a refusal is recorded
    (``audit.witness.refused``, once per witness and refused checkpoint; ``alarms``
    keeps it); ``post``: the HTTP call (injectable).
    """

    def __init__(
        self,
        log: TransparencyLog,
        signer: NoteSigner,
        partners: Callable[[], Iterable[Partner]],
        store: CosignatureStore,
        *,
        nation: str,
        sink: AuditSink,
        alarms: AlarmStore,
        post: Callable[[str, bytes], Answer] = post_add_checkpoint,
        contacts: Contacts | None = None,
    ) -> None:
        self._log = log
        self._signer = signer
        self.partners = partners
        self.store = store
        self._nation = nation
        self._sink = sink
        self.alarms = alarms
        self._post = post
        self.contacts = contacts

    def cosigned(self) -> str | None:
        """The latest checkpoint partners cosigned, as this node signed it with every
        partner's cosignature appended (a C2SP note: one more signature line per
        witness), or ``None`` before the first cosignature."""
        size = self.store.latest_size()
        if size is None:
            return None
        note = self._log.checkpoint(size)
        if note is None:
            return None
        return add_signatures(note, *(c.signature() for c in self.store.at(size)))

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
        return [self._told(self._push_one(p, note, cp, now)) for p in partners]

    def _told(self, pushed: Pushed) -> Pushed:
        """Tell the contacts what this push heard (or missed)."""
        if self.contacts is None or pushed.outcome == "current":
            return pushed
        try:
            if pushed.outcome == "cosigned":
                self.contacts.heard(pushed.nation, "cosigned")
            else:
                why = pushed.reason or pushed.detail
                self.contacts.missed(pushed.nation, f"{pushed.outcome}: {why}"[:300])
        except Exception as failure:  # the push stands; the failure is logged
            log.error("witness_contact_failed", error=type(failure).__name__)
        return pushed

    def _push_one(self, p: Partner, note: str, cp: Checkpoint, now: datetime) -> Pushed:
        kept = self.store.get(cp.size, p.nation)
        # nothing new for it; but a partner not heard from lately is offered the same
        # tree head again, from the size it cosigned (its witness cosigns it afresh)
        due = self.contacts is not None and self.contacts.due(p.nation)
        if kept is not None and kept.covers(cp) and not due:
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
            self._refused(p, cp, old, reason, answer.status, detail, now)
            return Pushed(p.nation, "refused", cp.size, old, reason, detail)
        return Pushed(p.nation, "failed", cp.size, old, detail=f"HTTP {answer.status}: {detail}")

    def _refused(
        self, p: Partner, cp: Checkpoint, old: int, reason: str, status: int, detail: str,
        now: datetime,
    ) -> None:  # fmt: skip
        alarm = Alarm(REFUSED_KIND, p.nation, cp.origin, reason, old, cp.size, cp.root, detail,
                      now, now)  # fmt: skip
        if self.alarms.raise_alarm(alarm):
            self._sink.record(REFUSED_KIND, {**alarm.payload(), "status": status})

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
