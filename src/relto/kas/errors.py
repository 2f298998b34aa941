"""Errors of the key access service.

Outward, a rewrap fails with one opaque error per failure class; the precise
reason goes to the log and the audit record. The tree::

    ReltoError
    ├── InvalidInput
    │   └── KasInvalidRequest       malformed Connect message, signed request token or KAO
    ├── AccessDenied
    │   ├── Unauthenticated         no, bad, expired or wrong-issuer bearer token; bad DPoP proof
    │   └── RewrapDenied            the decision (or dissem) said no
    ├── StorageError
    │   ├── AuditUnavailable        the audit sink failed: nothing is released
    │   └── ReplayCacheUnavailable  the DPoP replay cache failed: the proof is not accepted
    └── KasError
        └── KeyStoreError           the key store cannot do what was asked
            ├── UnknownKey          no key with that id (or none active for an algorithm)
            ├── KeyRetired          the key is retired and no longer unwraps
            └── UnwrapFailed        the private-key operation failed (wrong key, tampered data)

Messages never carry key material, tokens or plaintext.
"""

from __future__ import annotations

from relto.errors import AccessDenied, InvalidInput, ReltoError, StorageError

__all__ = [
    "AuditUnavailable",
    "KasError",
    "KasInvalidRequest",
    "KeyRetired",
    "KeyStoreError",
    "ReplayCacheUnavailable",
    "RewrapDenied",
    "Unauthenticated",
    "UnknownKey",
    "UnwrapFailed",
]


class KasError(ReltoError):
    """Base of the key access service's own failures."""

    code = "kas_error"


class KeyStoreError(KasError):
    """The key store cannot do what was asked (sealed file unreadable, token missing...)."""

    code = "key_store_error"


class UnknownKey(KeyStoreError):
    """No key with that id, or no active key for an algorithm."""

    code = "unknown_key"


class KeyRetired(KeyStoreError):
    """The key is retired: it no longer unwraps anything."""

    code = "key_retired"


class UnwrapFailed(KeyStoreError):
    """The private-key operation failed: wrong key or tampered wrapped key."""

    code = "unwrap_failed"


class KasInvalidRequest(InvalidInput):
    """A malformed request: Connect message, signed request token or key access object."""

    code = "invalid_argument"


class Unauthenticated(AccessDenied):
    """The caller did not prove who it is (bearer token or DPoP proof rejected)."""

    code = "unauthenticated"


class RewrapDenied(AccessDenied):
    """The decision engine (or the policy's dissem list) denied the rewrap."""

    code = "permission_denied"


class AuditUnavailable(StorageError):
    """The audit sink failed to record a rewrap; no key was released."""

    code = "audit_unavailable"


class ReplayCacheUnavailable(StorageError):
    """The DPoP replay cache could not be written: a proof that cannot be recorded
    as used is not accepted (answered ``unavailable``, like a failed audit)."""

    code = "replay_cache_unavailable"
