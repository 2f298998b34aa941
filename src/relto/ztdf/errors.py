"""Errors raised by :mod:`relto.ztdf`.

One opaque error per failure class goes outward; the precise reason is logged
(``relto.ztdf`` logger, never with key material or plaintext)::

    ReltoError
    ├── InvalidInput
    │   └── InvalidContainer      the container is malformed, tampered, truncated, too
    │                             large, or does not verify -- one opaque error for all
    ├── AccessDenied
    │   └── KeyAccessDenied       no key access entry of some split could be unwrapped
    │                             (the KAS refused, or the offline key does not match)
    └── ZtdfError                 base of the errors below
        └── CryptoError           a hazmat primitive failed (bad tag, bad wrap, bad
                                  binding); recipes turn it into InvalidContainer

A caller's misuse (wrong types, a segment size out of range, no KAS target)
raises ``ValueError`` or ``TypeError``.
"""

from __future__ import annotations

from relto.errors import AccessDenied, InvalidInput, ReltoError

__all__ = ["CryptoError", "InvalidContainer", "KeyAccessDenied", "ZtdfError"]


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

    def __init__(self, message: str = "access to the container key was denied") -> None:
        super().__init__(message)


class CryptoError(ZtdfError):
    """A low-level cryptographic operation failed (hazmat layer)."""

    code = "crypto_error"
