"""The key access service: public keys and rewrap, transport-free.

:meth:`KasService.rewrap` runs, for each policy of a request, in this order:

1. unwrap each key access object's share with the KAS key it names (a retired
   key never unwraps);
2. verify the policy binding with that share -- before the policy is even
   parsed; a mismatch stops that object;
3. parse the policy, enforce ``dissem`` and ask the :class:`Decider` (told the
   nation the caller's issuer vouches for and the action: ``"read"`` over HTTP,
   named by in-process callers such as a relabel);
4. record the outcome through the audit sink -- permitted or not;
5. only when every record is durable, encrypt the permitted shares to the
   client's public key (RSA-OAEP, or ECDH with a fresh session key + HKDF +
   AES-GCM for an EC client key) and return them.

:meth:`~KasService.prepare` does steps 1-3, :meth:`~KasService.record` (or
:meth:`~KasService.record_async` on an event loop) step 4 and
:meth:`~KasService.release` step 5, which refuses to run for a request that is
not recorded. If recording fails, nothing is released (:class:`AuditUnavailable`). Failures
of single key access objects go back as ``fail`` results with an opaque error
(``bad request`` or ``forbidden``); the precise reason is in the audit record
and the log.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relto.events import AuditSink, record_async
from relto.export_control.errors import TransferRefused
from relto.kas.auth import Caller
from relto.kas.decider import (
    Decider,
    DenyAllDecider,
    KasDecision,
    Reason,
    RewrapFacts,
    TransferRecorder,
    dissem_reason,
)
from relto.kas.errors import (
    AuditUnavailable,
    KasInvalidRequest,
    KeyStoreError,
    RewrapDenied,
    UnknownKey,
)
from relto.kas.keys import Algorithm, KeyState, KeyStore, parse_algorithm
from relto.kas.wire import (
    KaoRequest,
    KaoResult,
    PolicyRequest,
    PolicyResult,
    PublicKeyRequest,
    PublicKeyResponse,
    RewrapResponse,
    UnsignedRewrap,
)
from relto.metrics import DomainMetrics
from relto.ztdf import hazmat
from relto.ztdf.errors import CryptoError, InvalidContainer
from relto.ztdf.manifest import Policy, parse_policy

__all__ = ["AUDIT_KIND", "KasService", "PreparedRewrap"]

log = structlog.stdlib.get_logger("relto.kas")
# structlog's stdlib loggers run their processors before the level check: ask first.
_stdlog = logging.getLogger("relto.kas")

#: The audit event kind of every rewrap decision.
AUDIT_KIND = "kas.rewrap"
_BAD = "bad request"
_FORBIDDEN = "forbidden"


def _invalid(reason: str) -> KasInvalidRequest:
    exc = KasInvalidRequest("invalid request")
    exc.reason = reason  # type: ignore[attr-defined]
    return exc


@dataclass
class _KaoOutcome:
    kao_id: str
    kid: str = ""
    key_type: str = ""
    share: bytes | None = None
    reason: str = ""


@dataclass
class _PolicyOutcome:
    request: PolicyRequest
    kaos: list[_KaoOutcome]
    policy: Policy | None = None
    decision: KasDecision | None = None


@dataclass
class PreparedRewrap:
    """A rewrap request unwrapped and decided (:meth:`KasService.prepare`); its keys
    leave only through :meth:`KasService.release`, once it is recorded."""

    body: UnsignedRewrap
    caller: Caller
    at: datetime
    request_verified: bool
    request_id: str
    client_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    outcomes: list[_PolicyOutcome]
    recorded: bool = False
    #: What the key is for (``"read"`` over HTTP); the decider decides it.
    action: str = "read"


def _client_key(pem: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    if not pem or len(pem) > 16 * 1024:
        raise _invalid("clientPublicKey missing")
    return _load_client_key(pem)


@functools.lru_cache(maxsize=1024)
def _load_client_key(pem: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """Parse and check a client's public key. A client keeps its key pair for a
    session of many rewraps, so the parsed keys are cached (public values only;
    a key that does not parse raises, and exceptions are not cached)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError):
        raise _invalid("clientPublicKey does not parse") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise _invalid("clientPublicKey RSA key too short")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1
    ):
        return key
    raise _invalid("clientPublicKey has an unsupported type")


@functools.lru_cache(maxsize=1024)
def _parse_policy_small(body: str) -> Policy:
    return parse_policy(body)


def _parse_policy(body: str) -> Policy:
    """Parse a policy; the same small policies come back with every rewrap of an
    object, and parsing is deterministic, so those are cached (bounded memory)."""
    if len(body) <= 8192:
        return _parse_policy_small(body)
    return parse_policy(body)


def _status_refusal(caller: Caller) -> KasDecision | None:
    """A denial when the caller's attestation is not in force (revoked, suspended,
    its status unknown): decided before the decider is asked, and recorded."""
    if caller.attested is None:
        return None
    refusal = caller.status_refusal
    if refusal is None:
        return None
    return KasDecision(False, (Reason(refusal.code, refusal.message),))


def _attestation_fields(caller: Caller) -> dict[str, Any]:
    """What the audit record says of an attested caller: the issuing node's nation,
    the attestation's id, the person's id at home."""
    att = caller.attested
    if att is None:
        return {}
    return {
        "via": "attestation",
        "attestation": {
            "jti": att.jti,
            "issuer": att.issuer,
            "issuer_nation": att.person.home_nation,
            "person_id": att.person.person_id,
            "status": caller.status_refusal.code if caller.status_refusal else "valid",
        },
    }


def _object_fields(decision: KasDecision | None) -> dict[str, Any]:
    """What the audit record says of the object decided on, when the decider named
    it: its id and originating nation (so a partner auditor can tell, from the
    entry alone, that it concerns that nation), and for a share held in joint
    custody ``custody: true``."""
    if decision is None:
        return {}
    out: dict[str, Any] = {}
    if decision.object_id:
        out["object"] = decision.object_id
    if decision.custody:
        out["custody"] = True
    if decision.originator:
        out["originator"] = decision.originator
    if decision.allowed and decision.legal_basis:
        out["legal_basis"] = decision.legal_basis
    if decision.allowed and decision.transfer is not None:
        out["export_transfer"] = decision.transfer.decision_id
    return out


@dataclass
class KasService:
    """Serves one nation's key access: its keys, its decider, its audit sink."""

    store: KeyStore
    sink: AuditSink
    decider: Decider = field(default_factory=DenyAllDecider)
    #: The KAS URL written into key access objects (``https://host/kas``).
    kas_url: str = ""
    #: Where each recorded outcome is counted (``None``: not counted).
    metrics: DomainMetrics | None = None
    #: Where allowed transfers of controlled items are recorded before their keys
    #: are released (``None``: a decision naming a transfer is denied).
    transfers: TransferRecorder | None = None

    # -- PublicKey ------------------------------------------------------------

    def public_key(self, req: PublicKeyRequest) -> PublicKeyResponse:
        try:
            algorithm: Algorithm = parse_algorithm(req.algorithm or "rsa:2048")
        except ValueError:
            raise _invalid("unsupported algorithm") from None
        if req.kid:
            info = self.store.get(req.kid)
            if info.algorithm != algorithm or info.state is KeyState.RETIRED:
                raise UnknownKey("no such key")
        else:
            info = self.store.active(algorithm)
        public = info.public_key_pem
        if req.fmt == "jwk":
            import json

            from joserfc.jwk import JWKRegistry

            kty = "RSA" if algorithm == "rsa:2048" else "EC"
            jwk = JWKRegistry.import_key(public, kty).as_dict(private=False)
            jwk["kid"] = info.kid
            public = json.dumps(jwk, separators=(",", ":"))
        elif req.fmt not in ("", "pkcs8"):
            raise _invalid("unsupported public key format")
        return PublicKeyResponse(public_key=public, kid="" if req.v == "1" else info.kid)

    # -- Rewrap ---------------------------------------------------------------

    def rewrap(
        self,
        body: UnsignedRewrap,
        caller: Caller,
        *,
        at: datetime,
        request_verified: bool,
        request_id: str = "",
        action: str = "read",
    ) -> RewrapResponse:
        """The whole rewrap on this thread: :meth:`prepare`, :meth:`record`,
        :meth:`release`. ``action``: what the key is for, told to the decider and
        recorded (over HTTP always ``"read"``; in-process callers name theirs)."""
        prepared = self.prepare(
            body,
            caller,
            at=at,
            request_verified=request_verified,
            request_id=request_id,
            action=action,
        )
        self.record(prepared)
        return self.release(prepared)

    async def rewrap_async(
        self,
        body: UnsignedRewrap,
        caller: Caller,
        *,
        at: datetime,
        request_verified: bool,
        request_id: str = "",
        action: str = "read",
    ) -> RewrapResponse:
        """:meth:`rewrap` on an event loop: the checks and the decision run on a
        worker thread when the key store or the decider may block (an HSM, a
        database), inline otherwise -- a decider with ``decide_async`` is awaited
        instead; the audit record is awaited without blocking the loop; the keys
        are released only after it is durable."""
        args: dict[str, Any] = {
            "at": at,
            "request_verified": request_verified,
            "request_id": request_id,
            "action": action,
        }
        decide_async = getattr(self.decider, "decide_async", None)
        if getattr(self.store, "blocking", True) or (
            decide_async is None and getattr(self.decider, "blocking", True)
        ):
            prepared = await asyncio.to_thread(self.prepare, body, caller, **args)
        elif decide_async is None:
            prepared = self.prepare(body, caller, **args)
        else:
            prepared = self._verified(body, caller, **args)
            for outcome in prepared.outcomes:
                facts = self._facts(outcome, caller, at, action)
                if facts is None:
                    continue
                answer: object = _status_refusal(caller)
                if answer is None:
                    try:
                        answer = await decide_async(facts)
                    except Exception as exc:  # fail closed on any decider failure
                        answer = exc
                self._settle(outcome, caller, answer)
        await self.record_async(prepared)
        return self.release(prepared)

    def prepare(
        self,
        body: UnsignedRewrap,
        caller: Caller,
        *,
        at: datetime,
        request_verified: bool,
        request_id: str = "",
        action: str = "read",
    ) -> PreparedRewrap:
        """Steps 1-3 for every policy of the request: unwrap, verify the binding,
        decide (``action``, as for :meth:`rewrap`). Nothing is released and nothing
        is recorded yet."""
        prepared = self._verified(
            body,
            caller,
            at=at,
            request_verified=request_verified,
            request_id=request_id,
            action=action,
        )
        for outcome in prepared.outcomes:
            self._decide(outcome, caller, at, action)
        return prepared

    def _verified(
        self,
        body: UnsignedRewrap,
        caller: Caller,
        *,
        at: datetime,
        request_verified: bool,
        request_id: str = "",
        action: str = "read",
    ) -> PreparedRewrap:
        """Steps 1-2: the client key, every share unwrapped and its binding checked."""
        if not isinstance(action, str) or not action:
            raise ValueError("action must be a non-empty string, e.g. 'read'")
        client_key = _client_key(body.client_public_key)
        outcomes = [self._verify_policy(req) for req in body.requests]
        return PreparedRewrap(
            body=body,
            caller=caller,
            at=at,
            request_verified=request_verified,
            request_id=request_id,
            client_key=client_key,
            outcomes=outcomes,
            action=action,
        )

    def _record_transfers(self, prepared: PreparedRewrap) -> None:
        """Before anything is released: each allowed outcome that names a transfer
        of a controlled item is recorded (with its licence's consumption). One the
        recorder refuses (a licence used up meanwhile), or one with no recorder,
        becomes a denial; any other failure fails the whole request."""
        for outcome in prepared.outcomes:
            d = outcome.decision
            if d is None or not d.allowed or d.transfer is None:
                continue
            ident = outcome.policy.uuid if outcome.policy else outcome.request.policy_id
            rec = replace(d.transfer, decision_id=f"{prepared.request_id}:{ident}")
            reason: Reason | None = None
            if self.transfers is None:
                reason = Reason("export_records_unavailable", "transfers cannot be recorded here")
            else:
                try:
                    self.transfers.record_transfers([(rec, d.originator)])
                except TransferRefused as exc:
                    reason = Reason("export_licence_exhausted", str(exc)[:200])
                except Exception as exc:
                    raise self._audit_failed(prepared, exc) from None
            if reason is not None:
                outcome.decision = replace(
                    d, allowed=False, reasons=(reason, *d.reasons), transfer=None, legal_basis=""
                )
            else:
                outcome.decision = replace(d, transfer=rec)

    def record(self, prepared: PreparedRewrap) -> None:
        """Step 4: record every policy's outcome, permitted or not; returns once all
        are durable. Raises :class:`AuditUnavailable` if any is not."""
        self._record_transfers(prepared)
        for payload in self._payloads(prepared):
            try:
                self.sink.record(AUDIT_KIND, payload)
            except Exception as exc:
                raise self._audit_failed(prepared, exc) from None
        self._recorded(prepared)
        self._count(prepared)

    async def record_async(self, prepared: PreparedRewrap) -> None:
        """:meth:`record` without blocking the event loop."""
        if any(o.decision is not None and o.decision.transfer for o in prepared.outcomes):
            await asyncio.to_thread(self._record_transfers, prepared)
        for payload in self._payloads(prepared):
            try:
                await record_async(self.sink, AUDIT_KIND, payload)
            except Exception as exc:
                raise self._audit_failed(prepared, exc) from None
        self._recorded(prepared)
        self._count(prepared)

    def release(self, prepared: PreparedRewrap) -> RewrapResponse:
        """Step 5: encrypt the permitted shares to the client's key. Refuses to run
        before :meth:`record` (or :meth:`record_async`) has returned."""
        if not prepared.recorded:
            raise AuditUnavailable("the rewrap was not recorded; nothing was released")
        client_key = prepared.client_key
        session_pem = ""
        wrap: Any
        if isinstance(client_key, ec.EllipticCurvePublicKey):
            session = ec.generate_private_key(client_key.curve)
            wrap_key = hazmat.derive_ec_wrap_key(session, client_key)
            session_pem = hazmat.public_key_pem(session)

            def wrap(share: bytes) -> bytes:
                return hazmat.gcm_encrypt(wrap_key, share)
        else:

            def wrap(share: bytes) -> bytes:
                return hazmat.rsa_wrap(client_key, share)

        responses = []
        for outcome in prepared.outcomes:
            allowed = outcome.decision is not None and outcome.decision.allowed
            results = []
            for k in outcome.kaos:
                if k.share is None:
                    results.append(KaoResult(k.kao_id, "fail", error=_BAD))
                elif not allowed:
                    results.append(KaoResult(k.kao_id, "fail", error=_FORBIDDEN))
                else:
                    results.append(KaoResult(k.kao_id, "permit", kas_wrapped_key=wrap(k.share)))
            responses.append(PolicyResult(outcome.request.policy_id, tuple(results)))

        entity_wrapped = b""
        if prepared.body.legacy:
            only = responses[0].results[0]
            if only.status != "permit":
                if only.error == _FORBIDDEN:
                    raise RewrapDenied("forbidden")
                raise _invalid("the key access object did not verify")
            entity_wrapped = only.kas_wrapped_key
        return RewrapResponse(
            responses=tuple(responses),
            session_public_key=session_pem,
            entity_wrapped_key=entity_wrapped,
        )

    def _verify_policy(self, req: PolicyRequest) -> _PolicyOutcome:
        outcome = _PolicyOutcome(req, [self._unwrap(req, kao) for kao in req.kaos])
        if any(k.share is not None for k in outcome.kaos):
            # Only now, with at least one binding verified, is the policy parsed.
            try:
                outcome.policy = _parse_policy(req.policy_body)
            except InvalidContainer as exc:
                for k in outcome.kaos:
                    if k.share is not None:
                        k.share = None
                        k.reason = f"policy does not parse: {exc.reason}"
        return outcome

    def _unwrap(self, req: PolicyRequest, item: KaoRequest) -> _KaoOutcome:
        out = _KaoOutcome(kao_id=item.kao_id)
        kao = item.kao
        if kao is None or not kao.wrapped_key:
            out.reason = "key access object or wrapped key missing"
            return out
        out.kid, out.key_type = kao.kid, kao.key_type
        if not kao.has_binding or not kao.binding_hash:
            out.reason = "policy binding missing"
            return out
        if not req.policy_body:
            out.reason = "policy body missing"
            return out
        try:
            if kao.key_type == "wrapped":
                share = self._unwrap_rsa(kao.kid, kao.wrapped_key, out)
            elif kao.key_type == "ec-wrapped":
                share = self._unwrap_ec(kao.kid, kao.ephemeral_public_key, kao.wrapped_key)
            else:
                out.reason = f"unsupported key access type {kao.key_type[:32]!r}"
                return out
        except (KeyStoreError, CryptoError, ValueError) as exc:
            out.reason = f"unwrap failed: {type(exc).__name__}: {exc}"
            return out
        if not hazmat.verify_policy_binding(share, req.policy_body, kao.binding_hash):
            out.reason = "policy binding does not match"
            return out
        out.share = share
        return out

    def _unwrap_rsa(self, kid: str, wrapped: bytes, out: _KaoOutcome) -> bytes:
        if kid:
            return self.store.rsa_decrypt(kid, wrapped)
        # No kid (older writers): try the usable RSA keys, newest first.
        last: Exception = UnknownKey("no usable RSA key")
        keys = [k for k in self.store.list_keys() if k.algorithm == "rsa:2048" and k.unwraps]
        for info in sorted(keys, key=lambda k: k.created_at, reverse=True):
            try:
                share = self.store.rsa_decrypt(info.kid, wrapped)
                out.kid = info.kid
                return share
            except KeyStoreError as exc:
                last = exc
        raise last

    def _unwrap_ec(self, kid: str, ephemeral_pem: str, wrapped: bytes) -> bytes:
        if not kid:
            kid = self.store.active("ec:secp256r1").kid
        try:
            peer = serialization.load_pem_public_key(ephemeral_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError, TypeError):
            raise CryptoError("ephemeral public key does not parse") from None
        if not isinstance(peer, ec.EllipticCurvePublicKey):
            raise CryptoError("ephemeral public key is not an EC key")
        wrap_key = hazmat.tdf_wrap_key_from_shared(self.store.ecdh(kid, peer))
        return hazmat.gcm_decrypt(wrap_key, wrapped)

    def _decide(self, outcome: _PolicyOutcome, caller: Caller, at: datetime, action: str) -> None:
        facts = self._facts(outcome, caller, at, action)
        if facts is None:
            return
        answer: object = _status_refusal(caller)
        if answer is None:
            try:
                answer = self.decider.decide(facts)
            except Exception as exc:  # fail closed on any decider failure
                answer = exc
        self._settle(outcome, caller, answer)

    @staticmethod
    def _facts(
        outcome: _PolicyOutcome, caller: Caller, at: datetime, action: str
    ) -> RewrapFacts | None:
        """What the decider is told about one verified policy (``None``: nothing
        verified, nothing to decide)."""
        policy = outcome.policy
        if policy is None:
            return None
        return RewrapFacts(
            subject=caller.claims,
            policy_uuid=policy.uuid,
            attributes=policy.attributes,
            dissem=policy.dissem,
            at=at,
            key_ids=tuple(k.kid for k in outcome.kaos if k.share is not None),
            nation=caller.nation,
            action=action,
            attested=caller.attested.person if caller.attested is not None else None,
        )

    @staticmethod
    def _settle(outcome: _PolicyOutcome, caller: Caller, answer: object) -> None:
        """The decider's answer, failing closed on an error or a malformed answer,
        with ``dissem`` enforced whatever the decider said."""
        if isinstance(answer, KasDecision):
            decision = answer
        else:
            error = type(answer).__name__ if isinstance(answer, Exception) else "bad answer"
            log.warning("kas_decider_failed", error=error)
            decision = KasDecision(False, (Reason("decider_error", "the decision failed"),))
        assert outcome.policy is not None
        reason = dissem_reason(outcome.policy.dissem, caller.identities)
        if reason is not None:
            decision = replace(decision, allowed=False, reasons=(reason, *decision.reasons))
        outcome.decision = decision

    @staticmethod
    def _payloads(prepared: PreparedRewrap) -> list[dict[str, Any]]:
        """The audit record of each policy of the request."""
        caller = prepared.caller
        client_key = "ec" if isinstance(prepared.client_key, ec.EllipticCurvePublicKey) else "rsa"
        client_id = caller.claims.get("client_id") or caller.claims.get("azp") or ""
        payloads = []
        for outcome in prepared.outcomes:
            decision = outcome.decision
            allowed = decision is not None and decision.allowed
            released = [k for k in outcome.kaos if k.share is not None and allowed]
            payloads.append(
                {
                    "at": prepared.at.isoformat(),
                    "request_id": prepared.request_id,
                    "subject": caller.subject,
                    "issuer": caller.issuer,
                    "nation": caller.nation,
                    "action": prepared.action,
                    "client_id": client_id,
                    "dpop": caller.dpop_key is not None,
                    "request_token_verified": prepared.request_verified,
                    "client_key": client_key,
                    "policy_id": outcome.request.policy_id,
                    "policy_uuid": outcome.policy.uuid if outcome.policy else "",
                    "policy_sha256": hashlib.sha256(
                        outcome.request.policy_body.encode()
                    ).hexdigest(),
                    "attributes": list(outcome.policy.attributes) if outcome.policy else [],
                    "dissem": list(outcome.policy.dissem) if outcome.policy else [],
                    "allowed": bool(released),
                    "reasons": [
                        {"code": r.code, "message": r.message}
                        for r in (decision.reasons if decision else ())
                    ],
                    **_attestation_fields(caller),
                    **_object_fields(decision),
                    "key_access": [
                        {
                            "id": k.kao_id,
                            "kid": k.kid,
                            "type": k.key_type,
                            "result": "permit" if k in released else "fail",
                            "reason": k.reason
                            if k.share is None
                            else ("" if allowed else "denied"),
                        }
                        for k in outcome.kaos
                    ],
                }
            )
        return payloads

    def _count(self, prepared: PreparedRewrap) -> None:
        """Count each recorded policy outcome (action, outcome and reason codes
        only: no subject, policy or key id)."""
        metrics = self.metrics
        if metrics is None:
            return
        for outcome in prepared.outcomes:
            decision = outcome.decision
            if decision is None:
                metrics.rewrapped(prepared.action, "fail")
            elif decision.allowed and any(k.share is not None for k in outcome.kaos):
                metrics.rewrapped(prepared.action, "permit")
            else:
                metrics.rewrapped(prepared.action, "deny", [r.code for r in decision.reasons])

    @staticmethod
    def _audit_failed(prepared: PreparedRewrap, exc: Exception) -> AuditUnavailable:
        log.error("kas_audit_failed", error=type(exc).__name__, request_id=prepared.request_id)
        return AuditUnavailable("the rewrap could not be recorded; nothing was released")

    @staticmethod
    def _recorded(prepared: PreparedRewrap) -> None:
        prepared.recorded = True
        if not _stdlog.isEnabledFor(logging.INFO):
            return
        for outcome in prepared.outcomes:
            decision = outcome.decision
            allowed = decision is not None and decision.allowed
            log.info(
                "kas_rewrap",
                request_id=prepared.request_id,
                subject=prepared.caller.subject,
                policy_uuid=outcome.policy.uuid if outcome.policy else "",
                allowed=allowed and any(k.share is not None for k in outcome.kaos),
                failures=[k.reason for k in outcome.kaos if k.reason],
            )
