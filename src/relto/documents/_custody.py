"""Joint custody: an object's key split across several nations' key access services.

Every nation holding joint custody of an object holds one share of its key in its
own KAS; opening it needs every share, so every custodian decides, on its own
rules, and records its decision (ADR 0132). Three pieces live here:

* :func:`read_custody_policy` reads what a jointly held object's policy says
  (originator, id, custodians, classification, Releasable To, project) from its
  attribute FQNs, failing on anything it does not understand;
* :class:`CustodyDecider` is the custodian side: this node's KAS asked to rewrap
  a share of an object it does not hold decides on that policy -- bound to the
  share by the policy binding, which the KAS checked before asking -- and on the
  caller's facts, only for an originator this node has pinned;
* :class:`PinnedCustodians` is the originator side: the KAS targets of partner
  custodians, taken only from their pinned descriptors, and, to open a jointly
  held object on this node, their shares asked of their KASes over HTTP with an
  attestation of the local person.

Every failure denies and releases nothing: a reason the KAS records, or an
exception the KAS turns into ``decider_error``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from relto.authz import Principal
from relto.decisions import Resource
from relto.decisions.adapters import resource_from_banner
from relto.documents._facts import DecisionFacts
from relto.documents._labels import compose_banner
from relto.errors import InvalidInput, ReltoError
from relto.federation.descriptor import PinnedNode
from relto.federation.issuer import IssuedAttestation
from relto.kas.client import KasClient
from relto.kas.decider import KasDecision, Reason, RewrapFacts
from relto.labels import builtin_policy
from relto.ztdf import KasTarget, KeyAccess, Unwrap, hazmat
from relto.ztdf.attributes import parse_attribute_fqn
from relto.ztdf.errors import CryptoError, KeyAccessDenied

__all__ = [
    "CUSTODY_REASONS",
    "CustodianKas",
    "CustodyDecider",
    "CustodyPolicy",
    "CustodyPolicyError",
    "CustodyUnavailable",
    "PinnedCustodians",
    "custodian_unwrap",
    "kas_path",
    "read_custody_policy",
]

#: Reason codes of the custodian side (bounded metric labels).
CUSTODY_REASONS = ("custody_originator_unpinned", "custody_policy_invalid", "not_custodian")

#: Attributes a jointly held object's policy names exactly once besides its marking.
_ONE = ("originator", "object")
_NATION = re.compile(r"^[a-z]{3}$")
_REL_TO = re.compile(r"^[a-z]{3,4}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_OBJECT = re.compile(r"^[a-z0-9._-]{1,64}$")
#: How long a partner custodian's KAS may take to answer a same-node open.
REMOTE_TIMEOUT = 10.0


class CustodyPolicyError(ValueError):
    """A policy that names custodians but is not one relto writes for joint custody."""


class CustodyUnavailable(InvalidInput):
    """A custodian's share cannot be wrapped or asked for on this node (the message
    names the nation and what to do): a partner not pinned, its descriptor expired
    or with no usable KAS key, or no way for this node to vouch for the person
    there. Nothing was changed."""

    code = "joint_custody"


@dataclass(frozen=True)
class CustodyPolicy:
    """What a jointly held object's policy says (as FQN values: lower case)."""

    object_id: str
    originator: str
    custody: tuple[str, ...]
    classification: str
    rel_to: tuple[str, ...]
    project: str


def read_custody_policy(attributes: Iterable[str], namespace: str) -> CustodyPolicy | None:
    """The joint custody facts of a policy's attributes; ``None`` when the policy
    names no custodian (not a jointly held object). Raises
    :class:`CustodyPolicyError` for any attribute outside ``namespace``, of an
    unknown name, malformed, or missing or repeated where exactly one is needed.
    """
    ns = namespace.rstrip("/")
    values: dict[str, list[str]] = {}
    for fqn in attributes:
        try:
            got_ns, name, value = parse_attribute_fqn(fqn)
        except ValueError:
            raise CustodyPolicyError("an attribute is not an attribute value FQN") from None
        if got_ns != ns:
            raise CustodyPolicyError("an attribute of another namespace")
        values.setdefault(name, []).append(value)
    if "custody" not in values:
        return None
    unknown = sorted(set(values) - {"classification", "relto", "project", *_ONE, "custody"})
    if unknown:
        raise CustodyPolicyError(f"unknown attribute {unknown[0][:40]!r}")
    one: dict[str, str] = {}
    for name in ("classification", "project", *_ONE):
        found = values.get(name, [])
        if len(found) != 1:
            raise CustodyPolicyError(f"the policy must name exactly one {name}")
        one[name] = found[0]
    custody = tuple(values["custody"])
    rel_to = tuple(values.get("relto", []))
    if (
        not _NATION.match(one["originator"])
        or not _OBJECT.match(one["object"])
        or not _SLUG.match(one["project"])
        or len(custody) < 2
        or len(set(custody)) != len(custody)
        or not all(_NATION.match(n) for n in custody)
        or not all(_REL_TO.match(n) for n in rel_to)
        or one["originator"] not in custody
    ):
        raise CustodyPolicyError("the joint custody attributes are malformed")
    return CustodyPolicy(
        object_id=one["object"],
        originator=one["originator"].upper(),
        custody=tuple(n.upper() for n in custody),
        classification=one["classification"],
        rel_to=tuple(n.upper() for n in rel_to),
        project=one["project"],
    )


@functools.lru_cache(maxsize=64)
def _classifications(nation: str) -> Mapping[str, str]:
    """Lower-cased classification name -> its name in ``nation``'s scheme."""
    return {c.name.lower(): c.name for c in builtin_policy(nation).classifications}


def _resource(policy: CustodyPolicy) -> Resource:
    """The object as decision facts, its label composed from the policy exactly as
    the originator composed it on upload."""
    try:
        classification = _classifications(policy.originator)[policy.classification]
        banner, _ = compose_banner(policy.originator, classification, policy.rel_to)
    except (KeyError, ValueError, LookupError, ReltoError):
        raise CustodyPolicyError(
            "the policy's marking is not valid in its originator's scheme"
        ) from None
    return resource_from_banner(
        policy.object_id, banner, originator=policy.originator, project=policy.project
    )


def _deny(code: str, sentence: str, policy: CustodyPolicy | None = None) -> KasDecision:
    """A denial; with ``policy``, recorded as a custodian's decision on its object."""
    if policy is None:
        return KasDecision(False, (Reason(code, sentence),))
    return KasDecision(
        False,
        (Reason(code, sentence),),
        object_id=policy.object_id,
        custody=True,
        originator=policy.originator,
    )


class CustodyDecider:
    """This node's KAS as a custodian of objects other nations' nodes hold.

    Asked about a policy this node did not protect, it decides only when the
    policy is one relto writes for joint custody (:func:`read_custody_policy`),
    names this node's nation among the custodians, and names as originator a
    nation whose node this node has pinned (its descriptor current). The object
    is the policy's label -- classification, Releasable To, project, composed in
    the originator's scheme -- and the world (admissions, recognition) is this
    node's; the caller is this node's person (vouched for by an issuer of their
    home nation) or a partner's person as their home node attested them. A
    policy naming this node as originator is never decided this way: this node
    decides its own objects from its records, and a version it no longer holds
    (relabelled since) must not open under its old label.
    """

    blocking = True

    def __init__(
        self,
        facts: DecisionFacts,
        *,
        nation: str,
        namespace: str,
        trusted: Callable[[], Mapping[str, PinnedNode]],
    ) -> None:
        self._facts = facts
        self._nation = nation
        self._namespace = namespace
        self._trusted = trusted

    def decide(self, facts: RewrapFacts) -> KasDecision:
        try:
            policy = read_custody_policy(facts.attributes, self._namespace)
        except CustodyPolicyError as exc:
            return _deny("custody_policy_invalid", f"not a joint custody policy relto reads: {exc}")
        if policy is None or policy.originator == self._nation:
            return _deny("unknown_object", "this node did not protect that object")
        pin = self._trusted().get(policy.originator)
        if pin is None or pin.descriptor.not_after <= facts.at:
            return _deny(
                "custody_originator_unpinned",
                f"this node has no current pin of the {policy.originator} node the policy "
                "names as originator",
                policy,
            )
        if self._nation not in policy.custody:
            return _deny(
                "not_custodian", f"the policy does not name {self._nation} a custodian", policy
            )
        try:
            resource = _resource(policy)
        except CustodyPolicyError as exc:
            return _deny("custody_policy_invalid", str(exc), policy)
        if facts.attested is not None:
            if facts.nation != facts.attested.home_nation:
                return _deny(
                    "not_vouched",
                    "the attestation is not from the node of the person's home nation",
                    policy,
                )
            decision = self._facts.decide_attested_resource(
                facts.attested, facts.action, resource, facts.at
            )
        else:
            subject = str(facts.subject.get("sub", ""))
            decision, person = self._facts.decide_resource(
                subject, facts.action, resource, facts.at
            )
            if person is not None and (facts.nation is None or person.home_nation != facts.nation):
                return _deny(
                    "not_vouched",
                    "the identity provider that signed the token does not vouch for this "
                    "person's home nation",
                    policy,
                )
        return KasDecision(
            bool(decision.allowed),
            tuple(Reason(r.code, r.sentence) for r in decision.reasons),
            tuple(o.kind for o in decision.obligations),
            object_id=policy.object_id,
            custody=True,
            originator=policy.originator,
        )


class CustodianKas(Protocol):
    """Partner custodians' key access services, as the sharing capability needs them."""

    def target(self, nation: str, *, kas_path: str, at: datetime) -> KasTarget:
        """Where ``nation``'s share of a new object is wrapped to (its ``sid`` the
        nation in lower case); :class:`CustodyUnavailable` when it cannot be."""
        ...

    def unwrap_for(self, who: Principal, nation: str, *, kas_path: str, at: datetime) -> Unwrap:
        """An :data:`~relto.ztdf.Unwrap` asking ``nation``'s KAS for ``who``'s share;
        :class:`CustodyUnavailable` when this node cannot ask for them."""
        ...


class Attester(Protocol):
    """This node vouching for one of its people (``relto.federation.home.HomeFederation``)."""

    def attest(
        self, who: Principal, *, dpop_jkt: str | None, now: datetime
    ) -> IssuedAttestation: ...


def _usable_key(pin: PinnedNode) -> tuple[str, str] | None:
    """(kid, PEM) of the pinned node's first KAS key that parses, RSA preferred."""
    keys = sorted(pin.descriptor.kas_keys, key=lambda k: k.algorithm != "rsa:2048")
    for k in keys:
        if k.algorithm not in ("rsa:2048", "ec:secp256r1"):
            continue
        try:
            hazmat.load_public_key(k.public_key_pem)
        except (CryptoError, ValueError):
            continue
        return k.kid, k.public_key_pem
    return None


class PinnedCustodians:
    """Partner custodians from this node's pins: a share is wrapped only for the KAS
    key of a partner's *pinned* descriptor, at its base URL plus this node's own
    KAS path; a same-node open asks that KAS with an attestation this node issues
    for the local person (``attester``; ``None``: this node has no federation
    address and cannot vouch for anyone)."""

    def __init__(
        self,
        trusted: Callable[[], Mapping[str, PinnedNode]],
        attester: Attester | None,
        *,
        timeout: float = REMOTE_TIMEOUT,
    ) -> None:
        self._trusted = trusted
        self._attester = attester
        self._timeout = timeout

    def _pin(self, nation: str, at: datetime) -> PinnedNode:
        pin = self._trusted().get(nation)
        if pin is None:
            raise CustodyUnavailable(
                f"{nation} cannot hold joint custody: this node has not pinned the {nation} "
                "node (a security officer pins it with `relto federation trust`)"
            )
        if pin.descriptor.not_after <= at:
            raise CustodyUnavailable(
                f"{nation} cannot hold joint custody: its pinned descriptor expired; "
                "update it with `relto federation update`"
            )
        return pin

    @staticmethod
    def _url(pin: PinnedNode, kas_path: str) -> str:
        return pin.descriptor.base_url.rstrip("/") + "/" + kas_path.strip("/")

    def target(self, nation: str, *, kas_path: str, at: datetime) -> KasTarget:
        pin = self._pin(nation, at)
        key = _usable_key(pin)
        if key is None:
            raise CustodyUnavailable(
                f"{nation} cannot hold joint custody: its pinned descriptor lists no usable "
                "KAS key (rsa:2048 or ec:secp256r1)"
            )
        kid, pem = key
        return KasTarget(
            url=self._url(pin, kas_path), public_key_pem=pem, kid=kid, sid=nation.lower()
        )

    def unwrap_for(self, who: Principal, nation: str, *, kas_path: str, at: datetime) -> Unwrap:
        name = nation.upper()
        if self._attester is None:
            raise CustodyUnavailable(
                f"this object needs the {name} key access service too, and this node has no "
                "federation address to vouch for you there: open it with the client SDK"
            )
        url = self._url(self._pin(name, at), kas_path)
        attester, timeout = self._attester, self._timeout

        def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
            key = ECKey.generate_key("P-256")  # a fresh DPoP key, bound into the attestation
            issued = attester.attest(who, dpop_jkt=key.thumbprint(), now=datetime.now(UTC))
            with KasClient(
                allowed_urls=[url], token=issued.token, dpop_key=key, timeout=timeout
            ) as client:
                return client.rewrap(ka, policy_b64)

        return unwrap


def kas_path(own_url: str) -> str:
    """The path this node's KAS URL has (``/kas``): partners serve theirs there too."""
    return urlsplit(own_url).path or "/kas"


def custodian_unwrap(
    own_nation: str,
    local: Unwrap,
    remote: Mapping[str, Unwrap],
) -> Unwrap:
    """One :data:`~relto.ztdf.Unwrap` for a jointly held container: each key access
    entry goes to the KAS of the nation its split id names (this node's in-process,
    a partner's over HTTP); an entry naming no custodian is refused."""

    def unwrap(ka: KeyAccess, policy_b64: str) -> bytes:
        nation = ka.sid.upper()
        if nation == own_nation:
            return local(ka, policy_b64)
        if nation in remote:
            return remote[nation](ka, policy_b64)
        raise KeyAccessDenied(f"no custodian for key split {ka.sid[:8]!r}")

    return unwrap
