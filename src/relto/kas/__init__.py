"""The key access service (KAS), OpenTDF-compatible.

It holds a nation's KAS key pairs (:class:`FileKeyStore` sealed at rest, or an
HSM through :class:`Pkcs11KeyStore`), hands out public keys, and rewraps key
shares for callers: authenticated by OIDC bearer token from a trusted issuer
bound to one nation (and DPoP, required by default), policy binding
verified first, the :class:`Decider` asked, the outcome audited, and only then
the share released, encrypted to the caller's key.
"""

from __future__ import annotations

from relto.kas.auth import (
    AuthConfig,
    Authenticator,
    Caller,
    HttpJwks,
    StaticJwks,
    TrustedIssuer,
    build_authenticator,
)
from relto.kas.decider import (
    Decider,
    DenyAllDecider,
    KasDecision,
    Reason,
    RewrapFacts,
    UnsafeAllowAllDecider,
)
from relto.kas.errors import (
    AuditUnavailable,
    KasError,
    KasInvalidRequest,
    KeyRetired,
    KeyStoreError,
    RewrapDenied,
    Unauthenticated,
    UnknownKey,
    UnwrapFailed,
)
from relto.kas.filestore import FileKeyStore
from relto.kas.keys import ALGORITHMS, Algorithm, KeyInfo, KeyState, KeyStore
from relto.kas.service import AUDIT_KIND, KasService

__all__ = [
    "ALGORITHMS",
    "AUDIT_KIND",
    "Algorithm",
    "AuditUnavailable",
    "AuthConfig",
    "Authenticator",
    "Caller",
    "Decider",
    "DenyAllDecider",
    "FileKeyStore",
    "HttpJwks",
    "KasDecision",
    "KasError",
    "KasInvalidRequest",
    "KasService",
    "KeyInfo",
    "KeyRetired",
    "KeyState",
    "KeyStore",
    "KeyStoreError",
    "Reason",
    "RewrapDenied",
    "RewrapFacts",
    "StaticJwks",
    "TrustedIssuer",
    "Unauthenticated",
    "UnknownKey",
    "UnsafeAllowAllDecider",
    "UnwrapFailed",
    "build_authenticator",
]


def __getattr__(name: str) -> object:
    if name == "Pkcs11KeyStore":  # imports python-pkcs11 only when asked for
        from relto.kas.pkcs11store import Pkcs11KeyStore

        return Pkcs11KeyStore
    raise AttributeError(name)
