"""The key store interface: KAS key pairs with ids, algorithms and a lifecycle.

A key is ``active`` (new containers are wrapped to it; at most one per
algorithm), ``rotated`` (no longer handed out, still unwraps old containers) or
``retired`` (never unwraps again). :meth:`KeyStore.rotate` adds a key and makes it
the active one; the previous active key becomes ``rotated``.

Private keys never leave a store: callers ask it to do the private-key operation
(:meth:`KeyStore.rsa_decrypt`, :meth:`KeyStore.ecdh`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "KeyInfo",
    "KeyState",
    "KeyStore",
    "new_kid",
    "parse_algorithm",
]

Algorithm = Literal["rsa:2048", "ec:secp256r1"]
ALGORITHMS: tuple[Algorithm, ...] = ("rsa:2048", "ec:secp256r1")


class KeyState(StrEnum):
    ACTIVE = "active"
    ROTATED = "rotated"
    RETIRED = "retired"


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one key; no secret material."""

    kid: str
    algorithm: Algorithm
    state: KeyState
    created_at: datetime
    public_key_pem: str
    retired_at: datetime | None = None

    @property
    def unwraps(self) -> bool:
        return self.state is not KeyState.RETIRED


def parse_algorithm(value: str) -> Algorithm:
    """``rsa:2048`` or ``ec:secp256r1`` (also accepts ``rsa``, ``ec``, ``ec:p-256``)."""
    v = value.strip().lower()
    if v in ("rsa", "rsa:2048"):
        return "rsa:2048"
    if v in ("ec", "ec:secp256r1", "ec:p-256", "ec:p256"):
        return "ec:secp256r1"
    raise ValueError(f"unsupported key algorithm {value[:32]!r}; use rsa:2048 or ec:secp256r1")


def new_kid(algorithm: Algorithm) -> str:
    """A fresh key id: ``r`` or ``e`` plus 10 random hex digits (short: it goes in every KAO)."""
    return ("r" if algorithm.startswith("rsa") else "e") + secrets.token_hex(5)


@runtime_checkable
class KeyStore(Protocol):
    """Where the KAS key pairs live (a sealed file, an HSM through PKCS#11...).

    A store whose unwrap operations only compute in memory says so with a class
    attribute ``blocking = False`` (the KAS may then call it on the event loop);
    a store that does not say so is called on a worker thread.
    """

    def list_keys(self) -> list[KeyInfo]: ...

    def get(self, kid: str) -> KeyInfo:
        """The key with that id; :class:`~relto.kas.errors.UnknownKey` if none."""
        ...

    def active(self, algorithm: Algorithm) -> KeyInfo:
        """The key new containers are wrapped to; ``UnknownKey`` if there is none."""
        ...

    def rotate(self, algorithm: Algorithm, *, at: datetime) -> KeyInfo:
        """Add a key and make it active; the previous active key becomes ``rotated``."""
        ...

    def retire(self, kid: str, *, at: datetime) -> KeyInfo:
        """Retire a key: it never unwraps again. The active key cannot be retired."""
        ...

    def rsa_decrypt(self, kid: str, ciphertext: bytes) -> bytes:
        """RSA-OAEP (SHA-1, MGF1-SHA-1) decrypt with the key ``kid`` (not retired)."""
        ...

    def ecdh(self, kid: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        """The raw ECDH shared secret (x coordinate) of key ``kid`` and ``peer``."""
        ...
