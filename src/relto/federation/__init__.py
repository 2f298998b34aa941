"""Federation: every nation runs its own node (docs/federation.md, ADR 0098).

- :func:`make_descriptor` / :func:`verify_descriptor`: a node's signed statement
  about itself, trusted only through a fingerprint given out of band or an update
  signed by the pinned node key;
- :class:`TrustStore`: pins per nation, changed by security officers, recorded;
- :func:`make_attestation` / :func:`verify_attestation`: a home node vouches for
  one of its own people, for at most 5 minutes, bound to their DPoP key;
- :class:`StatusList`: the Token Status List ``lst`` codec.
"""

from relto.federation._keys import PublicJwk, SigningKey, jwk_thumbprint
from relto.federation.attestation import (
    ATTESTATION_TYP,
    MAX_ATTESTATION_LIFETIME,
    Attestation,
    AttestationSigner,
    AttestedClearance,
    AttestedPerson,
    StatusReference,
    make_attestation,
    verify_attestation,
)
from relto.federation.descriptor import (
    CLOCK_SKEW,
    DESCRIPTOR_TYP,
    AttestationKey,
    KasKey,
    NodeDescriptor,
    PinnedNode,
    make_descriptor,
    read_pinned_descriptor,
    verify_descriptor,
)
from relto.federation.status import StatusList, TokenStatus
from relto.federation.trust import MemoryPinRepository, PinRepository, PinSnapshot, TrustStore

__all__ = [
    "ATTESTATION_TYP",
    "CLOCK_SKEW",
    "DESCRIPTOR_TYP",
    "MAX_ATTESTATION_LIFETIME",
    "Attestation",
    "AttestationKey",
    "AttestationSigner",
    "AttestedClearance",
    "AttestedPerson",
    "KasKey",
    "MemoryPinRepository",
    "NodeDescriptor",
    "PinRepository",
    "PinSnapshot",
    "PinnedNode",
    "PublicJwk",
    "SigningKey",
    "StatusList",
    "StatusReference",
    "TokenStatus",
    "TrustStore",
    "jwk_thumbprint",
    "make_attestation",
    "make_descriptor",
    "read_pinned_descriptor",
    "verify_attestation",
    "verify_descriptor",
]
