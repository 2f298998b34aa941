"""A witness: cosigns a log's checkpoints only if they extend what it saw before.

For each log (by origin) the witness remembers the last checkpoint it cosigned. A
new checkpoint must carry the log's valid signature and be consistent with that
one (a consistency proof from the old size to the new size); a smaller tree is a
rollback, a different tree is a fork, and both are refused. The cosignature is a
C2SP ``cosignature/v1`` (Ed25519, timestamped), so any tlog-cosignature verifier
can check it.

The logs it knows are a fixed set, or a function read at every call (a node
witnesses the logs of the partners it pins, so an untrust stops it at once:
:mod:`relto.audit.witnessing`). The state store is injectable:
:class:`MemoryWitnessState` in tests, :class:`FileWitnessState` (a 0600 JSON file,
replaced atomically) otherwise.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hmac
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from relto.audit import merkle
from relto.audit.checkpoint import Checkpoint, open_checkpoint
from relto.audit.errors import (
    ForkRefused,
    InvalidNote,
    InvalidProof,
    RollbackRefused,
    SizeConflict,
    UnknownKey,
)
from relto.audit.note import NoteSigner, NoteVerifier, Signature, add_signatures

__all__ = [
    "FileWitnessState",
    "MemoryWitnessState",
    "Witness",
    "WitnessState",
    "WitnessedHead",
    "parse_add_checkpoint",
]


@dataclass(frozen=True)
class WitnessedHead:
    size: int
    root: bytes


class WitnessState(Protocol):
    """Where a witness keeps the last tree head it cosigned, per log origin."""

    def get(self, origin: str) -> WitnessedHead | None: ...

    def put(self, origin: str, head: WitnessedHead) -> None: ...

    def locked(self) -> AbstractContextManager[object]:
        """Held around check-and-update, across processes where the store is shared."""
        ...


class MemoryWitnessState:
    def __init__(self) -> None:
        self._heads: dict[str, WitnessedHead] = {}

    def get(self, origin: str) -> WitnessedHead | None:
        return self._heads.get(origin)

    def put(self, origin: str, head: WitnessedHead) -> None:
        self._heads[origin] = head

    def locked(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()


class FileWitnessState:
    """A JSON file ``{origin: {"size": n, "root": base64}}``, written atomically, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, WitnessedHead]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                origin: WitnessedHead(int(v["size"]), base64.b64decode(v["root"], validate=True))
                for origin, v in raw.items()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidNote(f"witness state file {self.path} is corrupt") from None

    def get(self, origin: str) -> WitnessedHead | None:
        return self._load().get(origin)

    @contextlib.contextmanager
    def locked(self) -> Iterator[object]:
        """An exclusive ``flock`` on ``<state>.lock`` (several server workers)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def put(self, origin: str, head: WitnessedHead) -> None:
        heads = self._load()
        heads[origin] = head
        data = {
            o: {"size": h.size, "root": base64.b64encode(h.root).decode()}
            for o, h in sorted(heads.items())
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".witness-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class Witness:
    """Cosigns checkpoints of known logs after checking they are append-only."""

    def __init__(
        self,
        signer: NoteSigner,
        logs: (
            Mapping[str, NoteVerifier]
            | Sequence[NoteVerifier]
            | Callable[[], Mapping[str, NoteVerifier]]
        ),
        state: WitnessState | None = None,
    ) -> None:
        self.signer = signer
        self._logs: Callable[[], Mapping[str, NoteVerifier]]
        if callable(logs):
            self._logs = logs
        else:
            fixed = dict(logs) if isinstance(logs, Mapping) else {v.name: v for v in logs}
            self._logs = lambda: fixed
        self.state: WitnessState = state if state is not None else MemoryWitnessState()
        self._lock = threading.Lock()

    @property
    def logs(self) -> Mapping[str, NoteVerifier]:
        """The logs this witness knows now, by origin (read afresh at every call)."""
        return self._logs()

    @property
    def vkey(self) -> str:
        """The cosigner verifier key (type 0x04) clients configure to trust this witness."""
        return self.signer.cosignature_verifier().vkey

    def cosign(self, note: str | bytes, proof: Sequence[bytes], *, at: datetime) -> Signature:
        """Check ``note`` against the last cosigned checkpoint of its log and cosign it.

        ``proof`` is the consistency proof from the last size this witness cosigned
        for the log (ask :meth:`last_size`) to the checkpoint's size. Raises
        :class:`RollbackRefused` or :class:`ForkRefused`, or :class:`InvalidNote` for a
        checkpoint not signed by a known log.
        """
        cp = self.open(note)
        with self._lock, self.state.locked():
            last = self.state.get(cp.origin)
            old = 0 if last is None else last.size
            if cp.size < old:
                raise RollbackRefused(
                    f"checkpoint of size {cp.size} is older than the cosigned size {old}"
                )
            return self._add(cp, old, proof, last, at)

    def add_checkpoint(
        self, old_size: int, proof: Sequence[bytes], note: str | bytes, *, at: datetime
    ) -> Signature:
        """The C2SP tlog-witness ``add-checkpoint`` call (c2sp.org/tlog-witness).

        ``old_size`` must be the size this witness last cosigned for the log (else
        :class:`SizeConflict` with the witness's size); the rest as :meth:`cosign`.
        Check and update are atomic, so concurrent calls cannot roll the state back.
        """
        cp = self.open(note)
        if old_size > cp.size:
            raise RollbackRefused(f"old size {old_size} is larger than the checkpoint")
        with self._lock, self.state.locked():
            last = self.state.get(cp.origin)
            have = 0 if last is None else last.size
            if old_size != have:
                raise SizeConflict(f"this witness last cosigned size {have}", size=have)
            return self._add(cp, old_size, proof, last, at)

    def _add(
        self,
        cp: Checkpoint,
        old: int,
        proof: Sequence[bytes],
        last: WitnessedHead | None,
        at: datetime,
    ) -> Signature:
        if last is not None and old > 0:
            if cp.size == old:
                if not hmac.compare_digest(cp.root, last.root):
                    raise ForkRefused(
                        f"checkpoint of size {cp.size} has a different root (fork)", same_size=True
                    )
            else:
                try:
                    merkle.verify_consistency(old, cp.size, proof, last.root, cp.root)
                except InvalidProof as exc:
                    raise ForkRefused(
                        f"checkpoint of size {cp.size} is not consistent with the cosigned "
                        f"size {old} ({exc})"
                    ) from None
        elif proof:
            raise InvalidProof("the consistency proof must be empty when the old size is 0")
        self.state.put(cp.origin, WitnessedHead(cp.size, cp.root))
        return self.signer.cosign(cp.body(), int(at.timestamp()))

    def cosign_note(self, note: str, proof: Sequence[bytes], *, at: datetime) -> str:
        """:meth:`cosign`, returning the note with the cosignature appended."""
        return add_signatures(note, self.cosign(note, proof, at=at))

    def last_size(self, origin: str) -> int:
        head = self.state.get(origin)
        return 0 if head is None else head.size

    def open(self, note: str | bytes) -> Checkpoint:
        """The checkpoint in ``note``, once the signature of a log this witness knows
        verifies (:class:`UnknownKey` for another log, :class:`InvalidNote` else)."""
        from relto.audit.note import parse_note

        parsed = parse_note(note)
        origin = parsed.text.split("\n", 1)[0]
        log_key = self.logs.get(origin)
        if log_key is None:
            raise UnknownKey("checkpoint is from a log this witness does not know")
        return open_checkpoint(parsed, log_key).checkpoint


_MAX_PROOF_LINES = 63


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Split a tlog-witness ``add-checkpoint`` request body into old size, proof and
    checkpoint note. Raises :class:`InvalidProof` when malformed."""
    if len(body) > 1 << 16:
        raise InvalidProof("request body is too large")
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise InvalidProof("request body has no empty line before the checkpoint")
    lines = head.split(b"\n")
    first = lines[0]
    if not first.startswith(b"old ") or not re.fullmatch(rb"0|[1-9][0-9]{0,18}", first[4:]):
        raise InvalidProof("first line must be 'old <size>'")
    if len(lines) - 1 > _MAX_PROOF_LINES:
        raise InvalidProof("too many consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except (ValueError, binascii.Error):
            raise InvalidProof("consistency proof line is not base64") from None
    return int(first[4:]), proof, note
