"""Errors of the federation capability: node descriptors, attestations, pins.

Every failure of external data is one of these, with a sentence a security
officer understands and nothing secret in it (no key material, no tokens)::

    ReltoError
    └── FederationError               anything federation refuses
        ├── InvalidDescriptor         a node descriptor that is malformed: not a
        │   │                         compact JWS, wrong typ or alg, unknown or
        │   │                         missing fields, bad keys or URL, too large
        │   ├── UntrustedDescriptor   not signed by the key pinned out of band, or by
        │   │                         the key of the descriptor pinned now
        │   ├── DescriptorNotCurrent  expired, not yet valid (beyond the 2 minutes of
        │   │                         clock skew tolerated), or not newer than the pin
        │   └── NationChanged         an update that names another nation
        ├── InvalidAttestation        an attestation that is malformed: typ, alg,
        │   │                         claims, lifetime over 5 minutes
        │   ├── UntrustedAttestation  no pinned node of the person's own nation signed
        │   │                         it (or a node vouches for another nation's people)
        │   ├── AttestationNotCurrent expired or issued in the future (clock skew)
        │   └── ProofKeyMismatch      cnf.jkt is not the caller's DPoP key
        ├── InvalidStatusList         a Token Status List that cannot be decoded
        │   └── StatusUnavailable     no verified Status List Token fresh enough
        │                             (unreachable, forged, stale): fail closed
        ├── ProofRequired             an attestation asked for without a DPoP proof
        ├── AlreadyPinned             the nation has a pinned node: update or untrust it
        └── NotPinned                 the nation has no pinned node

A caller's misuse (a private key where a public one is due, a TTL over the
bound) raises ``ValueError`` instead.
"""

from __future__ import annotations

from relto.errors import ReltoError

__all__ = [
    "AlreadyPinned",
    "AttestationNotCurrent",
    "DescriptorNotCurrent",
    "FederationError",
    "InvalidAttestation",
    "InvalidDescriptor",
    "InvalidStatusList",
    "NationChanged",
    "NotPinned",
    "ProofKeyMismatch",
    "ProofRequired",
    "StatusUnavailable",
    "UntrustedAttestation",
    "UntrustedDescriptor",
]


class FederationError(ReltoError):
    """Federation refused something: a descriptor, an attestation, a pin."""

    code = "federation_error"


class InvalidDescriptor(FederationError):
    """A node descriptor is malformed; nothing was trusted or changed."""

    code = "invalid_descriptor"


class UntrustedDescriptor(InvalidDescriptor):
    """A node descriptor is not signed by a key this node trusts for that nation."""

    code = "untrusted_descriptor"


class DescriptorNotCurrent(InvalidDescriptor):
    """A node descriptor is outside its validity, or older than the pinned one."""

    code = "descriptor_not_current"


class NationChanged(InvalidDescriptor):
    """An update names another nation than the descriptor it replaces."""

    code = "nation_changed"


class InvalidAttestation(FederationError):
    """An attestation is malformed; the person is not vouched for."""

    code = "invalid_attestation"


class UntrustedAttestation(InvalidAttestation):
    """No pinned node of the person's own nation signed the attestation."""

    code = "untrusted_attestation"


class AttestationNotCurrent(InvalidAttestation):
    """An attestation is expired or not yet valid."""

    code = "attestation_not_current"


class ProofKeyMismatch(InvalidAttestation):
    """An attestation is bound to another proof-of-possession key than the caller's."""

    code = "proof_key_mismatch"


class InvalidStatusList(FederationError):
    """A Token Status List is malformed."""

    code = "invalid_status_list"


class StatusUnavailable(InvalidStatusList):
    """No verified Status List Token newer than the stale limit: the status of the
    attestations it covers is unknown, so they are refused."""

    code = "status_unavailable"


class ProofRequired(FederationError):
    """An attestation binds the person's DPoP key: a request without a proof gets none."""

    code = "proof_required"


class AlreadyPinned(FederationError):
    """The nation already has a pinned node."""

    code = "already_pinned"


class NotPinned(FederationError):
    """The nation has no pinned node."""

    code = "not_pinned"
