"""Attestations: a home node vouches for one of its own people, for 5 minutes.

An attestation is a compact JWT (``typ`` ``relto-attestation+jwt``) signed by an
attestation key the node's pinned descriptor names. Its claims::

    iss            the home node's base URL (its descriptor's iss)
    sub            the person's id at home
    home_nation    the person's home nation: the issuing node's nation
    nationalities  every nationality, home nation included
    roles          roles the person holds for their home nation
    projects       projects the person works on
    clearances     [{issuer, level, status, valid_until, caveats}]
    iat, exp       lifetime at most 5 minutes
    jti            unique id (for the audit trail; replay is harmless, see cnf)
    cnf            {"jkt": RFC 7638 thumbprint of the person's DPoP key} (RFC 7800, 9449)
    status         {"status_list": {"idx", "uri"}} (draft-ietf-oauth-status-list), optional

:func:`verify_attestation` accepts one only when the pinned node of the person's
*own* home nation signed it with one of its attestation keys: a node never
vouches for another nation's nationals. Unknown claims are refused.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from relto.federation._keys import (
    CompactParts,
    SigningKey,
    sign_compact,
    split_compact,
    verify_compact,
)
from relto.federation.descriptor import CLOCK_SKEW, PinnedNode, check_base_url
from relto.federation.errors import (
    AttestationNotCurrent,
    InvalidAttestation,
    ProofKeyMismatch,
    UntrustedAttestation,
)

__all__ = [
    "ATTESTATION_TYP",
    "MAX_ATTESTATION_LIFETIME",
    "Attestation",
    "AttestationSigner",
    "AttestedClearance",
    "AttestedPerson",
    "StatusReference",
    "make_attestation",
    "verify_attestation",
]

ATTESTATION_TYP = "relto-attestation+jwt"
#: The longest an attestation lives: it is re-issued, not refreshed.
MAX_ATTESTATION_LIFETIME = timedelta(minutes=5)
_HEADER = frozenset({"alg", "typ", "kid"})
_REQUIRED = frozenset(
    {"iss", "sub", "home_nation", "nationalities", "roles", "projects", "clearances",
     "iat", "exp", "jti", "cnf"}
)  # fmt: skip
_OPTIONAL = frozenset({"status"})
_NATION = re.compile(r"[A-Z]{3}")
_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")
_WORD = re.compile(r"[A-Za-z0-9 ._:/-]{1,64}")
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
_MAX_ITEMS = 64


@dataclass(frozen=True)
class AttestedClearance:
    """One clearance as the home node records it."""

    issuer: str
    level: str
    status: str
    valid_until: date | None = None
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttestedPerson:
    """The facts a home node vouches for about one of its people."""

    person_id: str
    home_nation: str
    nationalities: frozenset[str]
    roles: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    clearances: tuple[AttestedClearance, ...] = ()


@dataclass(frozen=True)
class StatusReference:
    """Where the attestation's revocation status is published (Token Status List)."""

    idx: int
    uri: str


@dataclass(frozen=True)
class AttestationSigner:
    """An attestation key of this node, with the key id its descriptor names."""

    kid: str
    key: SigningKey


@dataclass(frozen=True)
class Attestation:
    """A verified attestation."""

    person: AttestedPerson
    issuer: str
    issued_at: datetime
    expires_at: datetime
    jti: str
    cnf_jkt: str
    status: StatusReference | None = None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _check_person(p: AttestedPerson) -> AttestedPerson:
    if not _ID.fullmatch(p.person_id):
        raise ValueError("a person id is 1 to 64 letters, digits or . _ : @ -")
    if not _NATION.fullmatch(p.home_nation):
        raise ValueError("the home nation is an ISO 3166 alpha-3 code")
    if p.home_nation not in p.nationalities:
        raise ValueError("the home nation is one of the person's nationalities")
    for n in p.nationalities:
        if not _NATION.fullmatch(n):
            raise ValueError("nationalities are ISO 3166 alpha-3 codes")
    for group in (p.nationalities, p.roles, p.projects, p.clearances):
        if len(group) > _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS} nationalities, roles, projects, clearances")
    for word in (*p.roles, *p.projects):
        if not _WORD.fullmatch(word):
            raise ValueError("roles and projects are short words")
    for c in p.clearances:
        if not _NATION.fullmatch(c.issuer):
            raise ValueError("a clearance's issuer is a nation (ISO 3166 alpha-3)")
        if len(c.caveats) > _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS} caveats")
        for word in (c.level, c.status, *c.caveats):
            if not _WORD.fullmatch(word):
                raise ValueError("clearance levels, statuses and caveats are short words")
    return p


def _check_status(s: StatusReference) -> StatusReference:
    if not isinstance(s.idx, int) or isinstance(s.idx, bool) or not 0 <= s.idx < 2**32:
        raise ValueError("a status list index is a whole number from 0")
    if not isinstance(s.uri, str) or len(s.uri) > 512:
        raise ValueError("a status list URI is an https URL")
    try:
        check_base_url(s.uri)  # https, or http on a loopback address (like a node's iss)
    except ValueError:
        raise ValueError("a status list URI is an https URL (http only on loopback)") from None
    return s


def make_attestation(
    person: AttestedPerson,
    *,
    cnf_jkt: str,
    signer: AttestationSigner,
    issuer: str,
    now: datetime,
    ttl: int = 300,
    status: StatusReference | None = None,
    jti: str | None = None,
) -> str:
    """Sign an attestation of ``person``, bound to the DPoP key ``cnf_jkt``, valid
    ``ttl`` seconds (at most 300). ``ValueError`` on misuse."""
    now = _aware(now)
    if not 0 < ttl <= MAX_ATTESTATION_LIFETIME.total_seconds():
        raise ValueError("an attestation lives 1 to 300 seconds")
    if not _JKT.fullmatch(cnf_jkt):
        raise ValueError("cnf_jkt is an RFC 7638 SHA-256 thumbprint (43 base64url characters)")
    _check_person(person)
    if status is not None:
        _check_status(status)
    check_base_url(issuer)
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": person.person_id,
        "home_nation": person.home_nation,
        "nationalities": sorted(person.nationalities),
        "roles": sorted(person.roles),
        "projects": sorted(person.projects),
        "clearances": [
            {
                "issuer": c.issuer,
                "level": c.level,
                "status": c.status,
                "valid_until": c.valid_until.isoformat() if c.valid_until else None,
                "caveats": list(c.caveats),
            }
            for c in person.clearances
        ],
        "iat": iat,
        "exp": iat + ttl,
        "jti": jti or secrets.token_urlsafe(16),
        "cnf": {"jkt": cnf_jkt},
    }
    if status is not None:
        claims["status"] = {"status_list": {"idx": status.idx, "uri": status.uri}}
    header = {"typ": ATTESTATION_TYP, "kid": signer.kid}
    return sign_compact(signer.key, header, claims)


def _strings(value: object, what: str) -> frozenset[str]:
    if not isinstance(value, list) or len(value) > _MAX_ITEMS:
        raise ValueError(f"{what} is a list")
    if not all(isinstance(v, str) for v in value) or len(set(value)) != len(value):
        raise ValueError(f"{what} is a list of distinct strings")
    return frozenset(value)


def _clearance(value: object) -> AttestedClearance:
    members = {"issuer", "level", "status", "valid_until", "caveats"}
    if not isinstance(value, dict) or set(value) != members:
        raise ValueError(f"a clearance has exactly the members {sorted(members)}")
    until = value["valid_until"]
    if until is not None and not isinstance(until, str):
        raise ValueError("valid_until is a date or null")
    caveats = value["caveats"]
    if not isinstance(caveats, list) or not all(isinstance(c, str) for c in caveats):
        raise ValueError("caveats is a list of strings")
    for name in ("issuer", "level", "status"):
        if not isinstance(value[name], str):
            raise ValueError(f"a clearance's {name} is a string")
    return AttestedClearance(
        value["issuer"],
        value["level"],
        value["status"],
        date.fromisoformat(until) if until is not None else None,
        tuple(caveats),
    )


def _time(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**40:
        raise ValueError(f"{name} is a time in seconds")
    return value


def _from_claims(c: Mapping[str, Any]) -> Attestation:
    unknown = set(c) - _REQUIRED - _OPTIONAL
    if unknown:
        raise InvalidAttestation(
            f"the attestation has claims this node does not know: "
            f"{[u[:40] for u in sorted(unknown)[:5]]}"
        )
    missing = _REQUIRED - set(c)
    if missing:
        raise InvalidAttestation(f"the attestation lacks the claims {sorted(missing)}")
    try:
        clearances = c["clearances"]
        if not isinstance(clearances, list) or len(clearances) > _MAX_ITEMS:
            raise ValueError("clearances is a list")
        for name in ("sub", "home_nation", "jti"):
            if not isinstance(c[name], str):
                raise ValueError(f"{name} is a string")
        if not 1 <= len(c["jti"]) <= 128:
            raise ValueError("jti is 1 to 128 characters")
        person = _check_person(
            AttestedPerson(
                person_id=c["sub"],
                home_nation=c["home_nation"],
                nationalities=_strings(c["nationalities"], "nationalities"),
                roles=_strings(c["roles"], "roles"),
                projects=_strings(c["projects"], "projects"),
                clearances=tuple(_clearance(x) for x in clearances),
            )
        )
        cnf = c["cnf"]
        if not isinstance(cnf, dict) or set(cnf) != {"jkt"} or not isinstance(cnf["jkt"], str):
            raise ValueError("cnf holds exactly one member, jkt")
        status = None
        if "status" in c:
            s = c["status"]
            if not isinstance(s, dict) or set(s) != {"status_list"}:
                raise ValueError("status holds exactly status_list")
            ref = s["status_list"]
            if not isinstance(ref, dict) or set(ref) != {"idx", "uri"}:
                raise ValueError("status_list holds exactly idx and uri")
            status = _check_status(StatusReference(ref["idx"], ref["uri"]))
        iat, exp = _time(c["iat"], "iat"), _time(c["exp"], "exp")
        if not isinstance(c["iss"], str):
            raise ValueError("iss is a URL")
    except ValueError as exc:
        raise InvalidAttestation(f"the attestation is malformed: {exc}") from None
    return Attestation(
        person=person,
        issuer=c["iss"],
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        jti=c["jti"],
        cnf_jkt=cnf["jkt"],
        status=status,
    )


def _split(token: object) -> CompactParts:
    try:
        return split_compact(token, typ=ATTESTATION_TYP, header_members=_HEADER)
    except ValueError as exc:
        raise InvalidAttestation(f"not an attestation: {exc}") from None


def verify_attestation(
    token: object,
    trusted: Mapping[str, PinnedNode],
    *,
    dpop_jkt: str,
    now: datetime,
) -> Attestation:
    """Verify an attestation against the pinned nodes (by nation) for a caller
    whose DPoP proof was made with the key of thumbprint ``dpop_jkt``.

    Raises :class:`~relto.federation.errors.InvalidAttestation` (or a subclass).
    """
    now = _aware(now)
    parts = _split(token)
    unverified = parts.unverified_claims
    iss, home = unverified.get("iss"), unverified.get("home_nation")
    node = next((p for p in trusted.values() if p.descriptor.base_url == iss), None)
    if node is None:
        raise UntrustedAttestation("the attestation's issuer is not a pinned node")
    if home != node.nation:
        raise UntrustedAttestation(
            f"the node of {node.nation} vouches for a person of {str(home)[:3]!r}: a node "
            "vouches only for its own nation's people"
        )
    if trusted.get(node.nation) is not node:
        raise UntrustedAttestation(f"the issuer is not the pinned node of {node.nation}")
    if node.descriptor.not_after < now - CLOCK_SKEW:
        raise UntrustedAttestation(
            f"the pinned descriptor of {node.nation} expired at "
            f"{node.descriptor.not_after.isoformat()}: its node must publish an update"
        )
    key = node.descriptor.attestation_key(str(parts.header.get("kid")))
    if key is None or not verify_compact(parts, key.key):
        raise UntrustedAttestation(
            f"the attestation is not signed by an attestation key of the pinned {node.nation} node"
        )
    att = _from_claims(unverified)
    if att.expires_at - att.issued_at > MAX_ATTESTATION_LIFETIME:
        raise InvalidAttestation(
            "the attestation lives longer than 5 minutes; its node must issue shorter ones"
        )
    if att.expires_at <= att.issued_at:
        raise InvalidAttestation("the attestation expires before it is issued")
    return check_current(att, dpop_jkt=dpop_jkt, now=now)


def check_current(att: Attestation, *, dpop_jkt: str, now: datetime) -> Attestation:
    """The checks of :func:`verify_attestation` that depend on the request: current
    at ``now`` (2 minutes of skew either way) and bound to the caller's DPoP key.
    A node that has verified the signature of ``att`` before repeats only these."""
    now = _aware(now)
    if att.issued_at > now + CLOCK_SKEW:
        raise AttestationNotCurrent(
            f"the attestation is issued at {att.issued_at.isoformat()}, more than 2 minutes "
            f"ahead of this node's clock ({now.isoformat()}): check the clocks (clock skew)"
        )
    if att.expires_at < now - CLOCK_SKEW:
        raise AttestationNotCurrent(
            f"the attestation expired at {att.expires_at.isoformat()}, beyond the 2 minutes "
            "of clock skew tolerated: ask the home node for a fresh one"
        )
    if not hmac.compare_digest(att.cnf_jkt.encode(), dpop_jkt.encode()):
        raise ProofKeyMismatch("the attestation is bound to another key than the caller's DPoP key")
    return att
