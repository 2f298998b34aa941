"""Errors raised by :mod:`relto.ztdf`.

One opaque error per failure class goes outward; the precise reason is logged
(``relto.ztdf`` logger, never with key material or plaintext)::

    ReltoError
    ├── InvalidInput
    │   └── InvalidContainer      the container is malformed, tampered, truncated, too
    │                             large, or does not verify -- one opaque error for all
    ├── AccessDenied
    │   └── KeyAccessDenied       no key access entry of some split could be unwrapped
    │                             (the KAS refused, or the offline key does not match);
    │                             ``failures`` says, per entry tried, what happened
    └── ZtdfError                 base of the errors below
        └── CryptoError           a hazmat primitive failed (bad tag, bad wrap, bad
                                  binding); recipes turn it into InvalidContainer

``KeyAccessDenied`` stays opaque in ``str()`` ("access to the container key was
denied"), as anything rendered to an untrusted caller must; its ``failures`` (one
:class:`KeyAccessFailure` per key access entry tried, with a :class:`FailureKind`)
are for the person who is opening the container, e.g. the ``relto open`` command,
which says whether the KAS did not authenticate them, refused by policy, could not
be reached, or the key did not fit.

A caller's misuse (wrong types, a segment size out of range, no KAS target)
raises ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from relto.errors import AccessDenied, InvalidInput, ReltoError

__all__ = [
    "CryptoError",
    "FailureKind",
    "InvalidContainer",
    "KeyAccessDenied",
    "KeyAccessFailure",
    "ZtdfError",
]


class FailureKind(StrEnum):
    """Why one key access entry did not yield its key share."""

    #: The KAS did not accept the caller's credentials (HTTP 401).
    UNAUTHENTICATED = "unauthenticated"
    #: The KAS's policy decision refused the caller (HTTP 403, or a ``fail`` result
    #: with ``forbidden``).
    DENIED = "denied"
    #: The key does not fit: an offline private key that does not unwrap the share,
    #: or a rewrapped key this client's session key cannot decrypt.
    WRONG_KEY = "wrong_key"
    #: The KAS answered, but could not unwrap the entry (another key of its, a
    #: tampered entry) or answered something unusable.
    KAS_FAILED = "kas_failed"
    #: No answer: connection refused, DNS, timeout, TLS.
    UNREACHABLE = "unreachable"
    #: The container names a KAS this client will not send credentials to.
    KAS_NOT_ALLOWED = "kas_not_allowed"
    #: Anything else (a bug in an unwrap plug-in, ...).
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class KeyAccessFailure:
    """What happened when one key access entry was tried."""

    kas_url: str
    kind: FailureKind
    #: What the KAS or the key said, for the person opening (never key material).
    detail: str = ""


class ZtdfError(ReltoError):
    """Base of errors specific to the container format."""

    code = "ztdf_error"


class InvalidContainer(ZtdfError, InvalidInput):
    """The container is not a valid, untampered ZTDF container.

    Deliberately opaque: the precise reason is logged, never returned, so a
    tamperer learns nothing about which check stopped them.
    """

    code = "invalid_container"

    def __init__(self, reason: str = "") -> None:
        super().__init__("invalid container")
        #: The precise reason, for the log and the audit trail only: never render it
        #: to an untrusted caller.
        self.reason = reason or "unspecified"


class KeyAccessDenied(ZtdfError, AccessDenied):
    """No key access entry of a required split could be unwrapped."""

    code = "access_denied"

    def __init__(
        self,
        message: str = "access to the container key was denied",
        *,
        kind: FailureKind = FailureKind.DENIED,
        detail: str = "",
        failures: tuple[KeyAccessFailure, ...] = (),
    ) -> None:
        super().__init__(message)
        #: Raised by an unwrap plug-in: what kind of refusal this was, and what the
        #: KAS or key said (``detail``).
        self.kind = kind
        self.detail = detail or message
        #: Raised by :func:`relto.ztdf.open_container`: every entry tried for the
        #: split that could not be recovered, in order.
        self.failures = failures


class CryptoError(ZtdfError):
    """A low-level cryptographic operation failed (hazmat layer)."""

    code = "crypto_error"
