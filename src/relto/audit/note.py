"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and Ed25519 cosignatures
(c2sp.org/tlog-cosignature, ``cosignature/v1``).

A note is text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID || signature)``. The key ID is
``SHA-256(name || 0x0A || type || public key)[:4]``: type 0x01 for a log's Ed25519
key, 0x04 for a witness's timestamped cosignature.

The text of a note means nothing until :func:`open_note` has verified a signature
from a trusted key; :func:`parse_note` returns the *unverified* parts only.
Signatures from unknown keys are ignored (as the spec requires); a signature from a
known key that fails to verify rejects the whole note.

Key strings follow golang.org/x/mod/sumdb/note: verifier keys
``<name>+<hex key ID>+base64(type || public key)`` and signer keys
``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from relto.audit.errors import InvalidNote, UnknownKey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "CosignatureVerifier",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "VerifiedNote",
    "Verifier",
    "add_signatures",
    "cosignature_message",
    "key_id",
    "open_note",
    "parse_note",
    "parse_verifier",
    "sign_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04

#: Bounds on what we parse (the spec asks verifiers to accept at least 16 signatures).
MAX_NOTE_SIZE = 1 << 16
MAX_SIGNATURES = 64

_EM_DASH = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || alg || public key)[:4]`` as a big-endian integer."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNote("key name must be non-empty, without spaces or '+'")
    return name


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidNote(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the raw signature bytes."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_EM_DASH} {self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Note:
    """An unverified note: its text and its signature lines."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def encode(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


@dataclass(frozen=True)
class VerifiedNote:
    """A note with at least one signature verified by a trusted key."""

    text: str
    verified: tuple[Signature, ...]
    #: Cosignature timestamps (POSIX seconds) by cosigner name, for type 0x04 keys.
    timestamps: dict[str, int] = field(default_factory=dict)
    note: Note | None = None


class Verifier:
    """A trusted public key for one signature type."""

    alg: int = 0

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = _check_name(name)
        if len(public_key) != 32:
            raise InvalidNote("Ed25519 public key must be 32 bytes")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(public_key)
        except ValueError:
            raise InvalidNote("not an Ed25519 public key") from None
        self.public_key = bytes(public_key)
        self.key_id = key_id(name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string: ``name+hexid+base64(alg || key)``."""
        blob = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    def verify(self, text: bytes, signature: bytes) -> int | None:
        """Return ``0`` (or the cosignature timestamp) if valid, ``None`` if not."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.vkey!r})"


class NoteVerifier(Verifier):
    """Verifies plain Ed25519 note signatures (type 0x01): a log's checkpoint key."""

    alg = ALG_ED25519

    def verify(self, text: bytes, signature: bytes) -> int | None:
        if len(signature) != 64:
            return None
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return None
        return 0


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The message a ``cosignature/v1`` signs: header, time line, then the note text."""
    if not 0 <= timestamp < 1 << 63:
        raise ValueError("timestamp out of range")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


class CosignatureVerifier(Verifier):
    """Verifies timestamped Ed25519 cosignatures (type 0x04): a witness's key."""

    alg = ALG_COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> int | None:
        if len(signature) != 8 + 64:
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp >= 1 << 63:
            return None
        message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text
        try:
            self._key.verify(signature[8:], message)
        except InvalidSignature:
            return None
        return timestamp


class NoteSigner:
    """An Ed25519 private key with a name; signs notes (0x01) or cosigns (0x04)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id(name, ALG_ED25519, self.public_key)
        self.cosigner_key_id = key_id(name, ALG_COSIGNATURE_V1, self.public_key)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+base64(0x01 || seed)``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise InvalidNote("not a signer key (PRIVATE+KEY+name+id+key)")
        name, hex_id, blob = parts[2], parts[3], _b64decode(parts[4], "signer key")
        _check_name(name)
        if len(blob) != 33 or blob[0] != ALG_ED25519:
            raise InvalidNote("signer key is not an Ed25519 key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(blob[1:]))
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or int(hex_id, 16) != signer.key_id:
            raise InvalidNote("signer key ID does not match the key")
        return signer

    @property
    def skey(self) -> str:
        """The signer key string. Secret: write it only to a 0600 file."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        blob = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{blob}"

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key)

    def cosignature_verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    def sign(self, text: str) -> Signature:
        """A plain Ed25519 note signature over ``text``."""
        _check_text(text)
        return Signature(self.name, self.key_id, self._key.sign(text.encode()))

    def cosign(self, text: str, timestamp: int) -> Signature:
        """A ``cosignature/v1`` over ``text`` at ``timestamp`` (POSIX seconds)."""
        _check_text(text)
        sig = self._key.sign(cosignature_message(text, timestamp))
        return Signature(self.name, self.cosigner_key_id, struct.pack(">Q", timestamp) + sig)

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, key_id={self.key_id:08x})"


def parse_verifier(vkey: str) -> Verifier:
    """Parse a verifier key of type 0x01 (log) or 0x04 (cosigner)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidNote("not a verifier key (name+id+key)")
    name, hex_id, blob_text = parts
    _check_name(name)
    if not re.fullmatch(r"[0-9a-fA-F]{8}", hex_id):
        raise InvalidNote("verifier key ID must be 8 hex digits")
    blob = _b64decode(blob_text, "verifier key")
    if len(blob) != 33:
        raise InvalidNote("verifier key is not an Ed25519 key")
    cls: type[Verifier]
    if blob[0] == ALG_ED25519:
        cls = NoteVerifier
    elif blob[0] == ALG_COSIGNATURE_V1:
        cls = CosignatureVerifier
    else:
        raise InvalidNote("unsupported verifier key type")
    verifier = cls(name, blob[1:])
    if int(hex_id, 16) != verifier.key_id:
        raise InvalidNote("verifier key ID does not match the key")
    return verifier


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise InvalidNote("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InvalidNote("note text must not contain control characters")


def parse_note(data: bytes | str) -> Note:
    """Split a note into text and signature lines. Nothing is verified here."""
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_SIZE:
            raise InvalidNote("note is too large")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNote("note is not valid UTF-8") from None
    if len(data.encode("utf-8", "surrogatepass")) > MAX_NOTE_SIZE:
        raise InvalidNote("note is too large")
    if any(ord(c) < 0x20 and c != "\n" for c in data):
        raise InvalidNote("note contains control characters")
    split = data.rfind("\n\n")
    if split < 0:
        raise InvalidNote("note has no signatures")
    text, sig_block = data[: split + 1], data[split + 2 :]
    if not sig_block.endswith("\n"):
        raise InvalidNote("note signatures must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidNote("note has too many signatures")
    sigs: list[Signature] = []
    for line in lines:
        if not line.startswith(_EM_DASH + " "):
            raise InvalidNote("malformed signature line")
        name, sep, blob_text = line[2:].partition(" ")
        if not sep or " " in blob_text:
            raise InvalidNote("malformed signature line")
        _check_name(name)
        blob = _b64decode(blob_text, "signature")
        if len(blob) < 5:
            raise InvalidNote("signature is too short")
        sigs.append(Signature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    return Note(text, tuple(sigs))


def open_note(
    data: bytes | str | Note, verifiers: list[Verifier] | tuple[Verifier, ...]
) -> VerifiedNote:
    """Verify a note against trusted keys.

    Raises :class:`InvalidNote` if a known key's signature fails, and
    :class:`UnknownKey` if no known key signed it.
    """
    note = data if isinstance(data, Note) else parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode()
    verified: list[Signature] = []
    timestamps: dict[str, int] = {}
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        result = v.verify(text, sig.signature)
        if result is None:
            raise InvalidNote(f"signature by {sig.name} does not verify")
        verified.append(sig)
        if isinstance(v, CosignatureVerifier):
            timestamps[sig.name] = result
    if not verified:
        raise UnknownKey("note is not signed by any trusted key")
    return VerifiedNote(note.text, tuple(verified), timestamps, note)


def sign_note(text: str, *signers: NoteSigner) -> str:
    """Sign ``text`` with each signer; returns the encoded note."""
    _check_text(text)
    if not signers:
        raise ValueError("at least one signer is needed")
    return Note(text, tuple(s.sign(text) for s in signers)).encode()


def add_signatures(data: bytes | str | Note, *signatures: Signature) -> str:
    """Append signature lines (e.g. cosignatures) to a note, dropping exact duplicates."""
    note = data if isinstance(data, Note) else parse_note(data)
    seen = {(s.name, s.key_id) for s in note.signatures}
    extra = tuple(s for s in signatures if (s.name, s.key_id) not in seen)
    return Note(note.text, note.signatures + extra).encode()
