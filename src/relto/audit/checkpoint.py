"""C2SP tlog-checkpoint bodies (c2sp.org/tlog-checkpoint): origin, size, root hash.

:func:`open_checkpoint` verifies the log's signature before it parses the body;
a :class:`Checkpoint` obtained any other way is unverified and named so.
:class:`CheckpointPublisher` is what a node serves: the latest signed checkpoint,
re-signed at most once per interval.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from relto.audit.errors import InvalidNote
from relto.audit.merkle import HASH_SIZE
from relto.audit.note import Note, NoteVerifier, VerifiedNote, Verifier, open_note, parse_note

__all__ = [
    "Checkpoint",
    "CheckpointPublisher",
    "SignedCheckpoint",
    "open_checkpoint",
    "parse_checkpoint_body",
]

_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin``, ``size`` and ``root`` (plus opaque extension lines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        if not self.origin or "\n" in self.origin:
            raise ValueError("origin must be one non-empty line")
        if not 0 <= self.size < 1 << 63 or len(self.root) != HASH_SIZE:
            raise ValueError("bad size or root")
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise ValueError("extension lines must be non-empty single lines")
            lines.append(ext)
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature was verified, with the whole note."""

    checkpoint: Checkpoint
    note: Note
    verified: VerifiedNote

    def encode(self) -> str:
        return self.note.encode()


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint body. The caller must already have verified its signature."""
    if not text.endswith("\n"):
        raise InvalidNote("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidNote("checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise InvalidNote("checkpoint origin is empty")
    if not _SIZE.match(size_text) or int(size_text) >= 1 << 63:
        raise InvalidNote("checkpoint tree size is not a decimal without leading zeros")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidNote("checkpoint root is not base64") from None
    if len(root) != HASH_SIZE:
        raise InvalidNote("checkpoint root is not a SHA-256 hash")
    if any(not e for e in extensions):
        raise InvalidNote("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def open_checkpoint(
    data: bytes | str | Note,
    log_key: NoteVerifier,
    *,
    origin: str | None = None,
    extra: list[Verifier] | tuple[Verifier, ...] = (),
) -> SignedCheckpoint:
    """Verify the log's signature (and any ``extra`` keys present), then parse the body.

    The log's key must have signed; ``extra`` verifiers (witnesses) are checked when
    their signatures are present. ``origin`` defaults to the log key's name.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    verified = open_note(note, [log_key, *extra])
    if not any(s.name == log_key.name and s.key_id == log_key.key_id for s in verified.verified):
        raise InvalidNote("checkpoint is not signed by the log's key")
    cp = parse_checkpoint_body(verified.text)
    want = log_key.name if origin is None else origin
    if cp.origin != want:
        raise InvalidNote("checkpoint origin does not match the log")
    return SignedCheckpoint(cp, note, verified)


def _note_size(note: str) -> int:
    """The tree size of a checkpoint note this node signed (its body's second line)."""
    return int(note.split("\n", 2)[1])


class CheckpointPublisher:
    """The checkpoint a node serves to anyone: the latest one it signed.

    Signing takes the log's write lock and a database write, so a public route
    must not do it per request. A new checkpoint is signed at most once per
    ``interval`` seconds, and only when the log has grown since the last one;
    otherwise the last note is served as it is. A failure to sign (a full disk,
    say) propagates: the caller answers "unavailable" and the next request tries
    again. ``size`` and ``sign`` are the log's (:meth:`TransparencyLog.size`, and
    ``sign_checkpoint`` with the node's signer); ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        size: Callable[[], int],
        sign: Callable[[], str],
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self._size = size
        self._sign = sign
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._note: str | None = None
        self._signed_size = -1
        self._checked = 0.0

    def current(self) -> str:
        """The checkpoint to serve now."""
        with self._lock:
            now = self._clock()
            if self._note is not None:
                if now - self._checked < self._interval:
                    return self._note
                if self._size() == self._signed_size:
                    self._checked = now
                    return self._note
            note = self._sign()
            self._note, self._signed_size, self._checked = note, _note_size(note), now
            return note
