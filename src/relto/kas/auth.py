"""Who is calling: OIDC bearer tokens (JWKS) and DPoP proofs (RFC 9449).

A node trusts several OIDC issuers, each for the people of one nation
(:class:`TrustedIssuer`). :meth:`Authenticator.authenticate` checks, in order: the
``Authorization`` header's scheme; which trusted issuer the token claims to come
from (its unverified ``iss``: an issuer not trusted stops here); the token's
signature against *that* issuer's JWKS only (with an algorithm allow-list: no
``none``, no HMAC), ``iss``, ``aud`` (that issuer's audience), ``exp``, ``nbf``
and ``iat``; then the DPoP proof when one is sent, required by the
setting, or demanded by the token (``cnf.jkt`` or the ``DPoP`` scheme): its
``typ``, public-only ``jwk`` and signature, ``htm``, ``htu`` (without query or
fragment), ``iat`` within a window, ``jti`` never seen before in that window,
``ath`` (the access token's hash) and the key's thumbprint against ``cnf.jkt``.

The :class:`Caller` says who the token names (``subject``), which issuer vouched
for it and the nation that issuer is bound to: a node believes an issuer only
about its own nation's people. Its ``identities`` (what a policy's ``dissem`` may
name) are only what the issuer verified: the subject, and the e-mail address when
the token says ``email_verified: true``.

Every failure is one :class:`~relto.kas.errors.Unauthenticated` outward; the
precise reason is its ``reason`` attribute, for the log.
:func:`build_authenticator` builds the authenticator the settings describe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from relto.batching import call_without_blocking
from relto.federation.acceptance import AttestationAcceptor, AttestationRefused, Refusal
from relto.federation.attestation import ATTESTATION_TYP, Attestation
from relto.kas.errors import ReplayCacheUnavailable, Unauthenticated

if TYPE_CHECKING:
    from relto.config import Settings

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AttestationAuthenticator",
    "AuthConfig",
    "Authenticator",
    "Caller",
    "HttpJwks",
    "JwksSource",
    "MemoryReplayCache",
    "ReplayCache",
    "StaticJwks",
    "TrustedIssuer",
    "access_token_hash",
    "attested_id",
    "build_authenticator",
    "is_attestation",
]

#: Signature algorithms accepted for access tokens, DPoP proofs and request tokens.
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_TOKEN_BYTES = 16 * 1024
_CACHE_SECONDS = 60.0
_CACHE_ENTRIES = 10_000

log = structlog.stdlib.get_logger("relto.kas")

PublicJwk = RSAKey | ECKey | OKPKey


def _cache_failed(exc: Exception) -> ReplayCacheUnavailable:
    log.error("kas_replay_cache_failed", error=type(exc).__name__)
    return ReplayCacheUnavailable("the DPoP replay cache is unavailable")


def _fail(reason: str, public: str = "") -> Unauthenticated:
    """An :class:`Unauthenticated` with its ``reason`` (for the log) and, for
    failures the caller may be told about, a ``public`` sentence."""
    exc = Unauthenticated("unauthenticated")
    exc.reason = reason  # type: ignore[attr-defined]
    if public:
        exc.public = public  # type: ignore[attr-defined]
    return exc


def access_token_hash(token: str) -> str:
    """``ath``: base64url (no padding) of SHA-256 of the access token's ASCII bytes."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    subject: str
    claims: Mapping[str, Any]
    #: The DPoP proof key, when the request carried a verified proof.
    dpop_key: PublicJwk | None = None
    #: What the issuer verified this caller to be, for ``dissem``: the subject, and
    #: the e-mail address only when the token says ``email_verified: true``. Names
    #: a client picks for itself (``preferred_username``, ``client_id``, ``azp``,
    #: ``upn``) are not identities.
    identities: frozenset[str] = field(default_factory=frozenset)
    #: The issuer whose keys verified the token (empty for in-process callers).
    issuer: str = ""
    #: The nation that issuer is bound to: the only nation it may vouch for.
    nation: str | None = None
    #: For a person of another nation: their home node's verified attestation.
    #: The decision is then made on its facts, never on this node's directory.
    attested: Attestation | None = None
    #: Why the attestation's status refuses it (revoked, suspended, unknown), or
    #: ``None``: the person is authentic but nothing may be released to them.
    status_refusal: Refusal | None = None


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are checked.

    ``issuer``, ``audience`` and ``nation`` describe the one trusted issuer of the
    single-issuer form ``Authenticator(AuthConfig(issuer=...), jwks)``; with
    ``Authenticator(AuthConfig(...), issuers=[...])`` they stay empty. They are read
    once, when the :class:`Authenticator` is built.
    """

    issuer: str | None = None
    audience: str | None = None
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    leeway_seconds: int = 30
    #: The REST API accepts bearer tokens; the KAS passes its own setting
    #: (``RELTO_KAS_REQUIRE_DPOP``, true by default).
    require_dpop: bool = False
    #: How far a DPoP proof's ``iat`` may be from now, either way.
    dpop_window_seconds: int = 60
    #: The nation the single issuer vouches for.
    nation: str | None = None


@dataclass(frozen=True)
class TrustedIssuer:
    """One OIDC issuer this node believes, and only about the people of ``nation``."""

    issuer: str
    jwks: JwksSource
    #: The audience its tokens must name (``None``: any; refused outside demo mode
    #: by :meth:`relto.config.Settings.check_startup`).
    audience: str | None = None
    nation: str | None = None


# ------------------------------------------------------------------------ JWKS


class JwksSource(Protocol):
    def keys(self, *, refresh: bool = False) -> KeySet: ...


class StaticJwks:
    """A fixed key set (tests, air-gapped deployments with a pinned JWKS file)."""

    blocking = False

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]

    def keys(self, *, refresh: bool = False) -> KeySet:
        return self._keys


class HttpJwks:
    """The issuer's JWKS over HTTP, cached; refetched at most every ``min_refresh`` s."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        min_refresh: float = 10.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched = -1e18

    def keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            age = self._clock() - self._fetched
            stale = self._keys is None or age > self._ttl or (refresh and age > self._min_refresh)
            if stale:
                try:
                    resp = httpx.get(self.url, timeout=self._timeout, follow_redirects=False)
                    resp.raise_for_status()
                    if len(resp.content) > 1024 * 1024:
                        raise ValueError("JWKS too large")
                    self._keys = KeySet.import_key_set(resp.json())
                    self._fetched = self._clock()
                except (httpx.HTTPError, ValueError, JoseError) as exc:
                    if self._keys is None:
                        raise _fail(f"JWKS unavailable: {type(exc).__name__}") from None
            assert self._keys is not None
            return self._keys


# ---------------------------------------------------------------- replay cache


class ReplayCache(Protocol):
    def check_and_add(self, jti: str, expires_at: float) -> bool:
        """Record ``jti``; return ``False`` if it was already recorded and unexpired."""
        ...


class MemoryReplayCache:
    """DPoP ``jti`` values seen by this process, bounded in size.

    Only for a single process: server workers each have their own memory (see
    :class:`relto.kas.replay.SqliteReplayCache`).

    When full, the oldest entries are dropped; proofs older than the window are
    refused anyway, so only a flood larger than ``max_entries`` within one window
    could re-open a replay, and the window keeps that short.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    blocking = False

    def check_and_add(self, jti: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            while self._seen:
                oldest_jti, oldest_exp = next(iter(self._seen.items()))
                if oldest_exp >= now and len(self._seen) < self._max:
                    break
                del self._seen[oldest_jti]
            if jti in self._seen and self._seen[jti] >= now:
                return False
            self._seen[jti] = expires_at
            return True


# --------------------------------------------------------------- authenticator


def _normalise_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise _fail(f"malformed JWT: {type(exc).__name__}") from None
    return dict(obj.protected)


def _unverified_issuer(token: str) -> tuple[dict[str, Any], str]:
    """The header of a JWT, and the ``iss`` its (not yet verified) payload names, to
    choose whose keys may verify it; nothing else is read before the signature."""
    try:
        obj = jws.extract_compact(token.encode("ascii"))
        payload = json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise _fail(f"malformed JWT: {type(exc).__name__}") from None
    iss = payload.get("iss") if isinstance(payload, dict) else None
    if not isinstance(iss, str) or not iss:
        raise _fail("access token names no issuer")
    return dict(obj.protected), iss


def _identities(subject: str, claims: Mapping[str, Any]) -> frozenset[str]:
    """What ``dissem`` may match: the subject, and the e-mail address only when the
    issuer says it verified it (JSON ``true``, not a string)."""
    email = claims.get("email")
    if claims.get("email_verified") is True and isinstance(email, str) and email:
        return frozenset({subject, email})
    return frozenset({subject})


class Authenticator:
    """Validates bearer tokens (from any trusted issuer) and DPoP proofs.

    ``Authenticator(AuthConfig(issuer=..., audience=..., nation=...), jwks)`` trusts
    one issuer; ``Authenticator(AuthConfig(require_dpop=...), issuers=[...])`` trusts
    each :class:`TrustedIssuer` given (both may be combined). A token is verified
    with the keys of the issuer it names and no other: one issuer's keys never
    vouch for another's tokens.
    """

    def __init__(
        self,
        config: AuthConfig,
        jwks: JwksSource | None = None,
        replay: ReplayCache | None = None,
        *,
        issuers: Iterable[TrustedIssuer] = (),
    ) -> None:
        trusted = list(issuers)
        if jwks is not None:
            if not config.issuer:
                raise ValueError("AuthConfig.issuer is required with a JWKS")
            trusted.insert(0, TrustedIssuer(config.issuer, jwks, config.audience, config.nation))
        elif config.issuer:
            raise ValueError("AuthConfig.issuer is set but no JWKS was given for it")
        if not trusted:
            raise ValueError("an Authenticator needs at least one trusted issuer")
        by_url: dict[str, TrustedIssuer] = {}
        for item in trusted:
            if not item.issuer or item.issuer in by_url:
                raise ValueError(f"issuer {item.issuer!r} is empty or given twice")
            by_url[item.issuer] = item
        self.config = config
        self._issuers: Mapping[str, TrustedIssuer] = MappingProxyType(by_url)
        self._local_keys = not any(getattr(i.jwks, "blocking", True) for i in by_url.values())
        self._replay = replay or MemoryReplayCache()
        # Verified access tokens, by SHA-256 of the token: clients reuse a token for
        # many requests. Entries live at most _CACHE_SECONDS (a key dropped from the
        # JWKS stops counting within that time); time claims are re-checked each use.
        self._verified: OrderedDict[bytes, tuple[float, dict[str, Any], TrustedIssuer]] = (
            OrderedDict()
        )
        self._verified_lock = threading.Lock()

    @property
    def issuers(self) -> Mapping[str, TrustedIssuer]:
        """The trusted issuers, by issuer URL (read-only)."""
        return self._issuers

    def needs_io(self, authorization: str | None, dpop: str | None) -> bool:
        """Might :meth:`authenticate` with ``defer_replay`` wait on I/O for this
        request (a JWKS fetch)? ``False`` means it only computes, so an event loop may
        call it: the access token was verified moments ago (its claims are cached)
        or the key set is local. (The DPoP replay-cache write is deferred to
        :meth:`record_proofs`, which never blocks the loop.) Anything unsure answers
        ``True``."""
        if self._local_keys:
            return False
        _, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_BYTES:
            return False  # refused before any key is looked at
        digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
        with self._verified_lock:
            hit = self._verified.get(digest)
        # A margin, so the entry cannot expire between this answer and the call.
        return hit is None or time.monotonic() - hit[0] >= _CACHE_SECONDS - 5.0

    async def record_proofs(self, pending: list[tuple[str, float]]) -> None:
        """Write the replay-cache entries :meth:`authenticate` deferred; raises
        :class:`Unauthenticated` if a proof was seen before. Never blocks the loop:
        the cache's own ``check_and_add_async`` when it has one (the SQLite cache
        batches them), inline for an in-memory cache, else a worker thread."""
        await _record_proofs(self._replay, pending)

    def authenticate(
        self,
        *,
        authorization: str | None,
        dpop: str | None,
        method: str,
        urls: Collection[str],
        at: datetime,
        defer_replay: list[tuple[str, float]] | None = None,
    ) -> Caller:
        """The caller, or :class:`Unauthenticated`. ``urls``: what ``htu`` may be.

        With ``defer_replay``, a verified DPoP proof's replay-cache entry is appended
        to that list instead of written: the caller must then pass the list to
        :meth:`record_proofs` before it acts on the request.
        """
        if not authorization:
            raise _fail("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        scheme = scheme.lower()
        token = token.strip()
        if scheme not in ("bearer", "dpop") or not token:
            raise _fail("Authorization is not a Bearer or DPoP token")
        if len(token) > MAX_TOKEN_BYTES:
            raise _fail("access token too large")
        claims, trust = self._access_token_claims(token, at)
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        if cnf is not None and jkt is None:
            # Bound to something we cannot check (an mTLS certificate, say): refuse
            # rather than accept a sender-constrained token as a bearer token.
            raise _fail("access token is bound by an unsupported confirmation method")
        needs_proof = self.config.require_dpop or scheme == "dpop" or jkt is not None
        dpop_key: PublicJwk | None = None
        if dpop:
            dpop_key = self._verify_dpop(dpop, token, method, urls, at, jkt, defer_replay)
        elif needs_proof:
            raise _fail("a DPoP proof is required")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _fail("access token has no subject")
        return Caller(
            subject=subject,
            claims=claims,
            dpop_key=dpop_key,
            identities=_identities(subject, claims),
            issuer=trust.issuer,
            nation=trust.nation,
        )

    def _access_token_claims(
        self, token: str, at: datetime
    ) -> tuple[dict[str, Any], TrustedIssuer]:
        digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
        now = time.monotonic()
        with self._verified_lock:
            hit = self._verified.get(digest)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            _, claims, trust = hit
            self._validate_claims(claims, trust, at)
            return dict(claims), trust
        claims, trust = self._verify_access_token(token, at)
        with self._verified_lock:
            self._verified[digest] = (now, claims, trust)
            while len(self._verified) > _CACHE_ENTRIES:
                self._verified.popitem(last=False)
        return dict(claims), trust

    def _verify_access_token(
        self, token: str, at: datetime
    ) -> tuple[dict[str, Any], TrustedIssuer]:
        header, iss = _unverified_issuer(token)
        if header.get("alg") not in self.config.algorithms:
            raise _fail("access token algorithm not allowed")
        trust = self._issuers.get(iss)
        if trust is None:
            raise _fail(f"access token issuer is not trusted: {iss[:200]!r}")
        algorithms = list(self.config.algorithms)
        try:
            decoded = jwt.decode(token, trust.jwks.keys(), algorithms=algorithms)
        except (JoseError, ValueError) as first:
            # An unknown key id may mean the issuer rotated: refetch its JWKS once.
            try:
                decoded = jwt.decode(token, trust.jwks.keys(refresh=True), algorithms=algorithms)
            except (JoseError, ValueError):
                raise _fail(f"access token signature: {type(first).__name__}") from None
        claims: dict[str, Any] = dict(decoded.claims)
        self._validate_claims(claims, trust, at)
        return claims, trust

    def _validate_claims(self, claims: dict[str, Any], trust: TrustedIssuer, at: datetime) -> None:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": trust.issuer},
            "exp": {"essential": True},
        }
        if trust.audience:
            options["aud"] = {"essential": True, "value": trust.audience}
        registry = jwt.JWTClaimsRegistry(
            now=int(at.timestamp()), leeway=self.config.leeway_seconds, **options
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise _fail(f"access token claims: {type(exc).__name__}: {exc}") from None

    def _verify_dpop(
        self,
        proof: str,
        token: str,
        method: str,
        urls: Collection[str],
        at: datetime,
        jkt: Any,
        defer_replay: list[tuple[str, float]] | None = None,
    ) -> PublicJwk:
        key, _ = verify_dpop_proof(
            proof,
            token,
            method=method,
            urls=urls,
            at=at,
            jkt=jkt,
            window=self.config.dpop_window_seconds,
            replay=self._replay,
            defer_replay=defer_replay,
        )
        return key


async def _record_proofs(replay: ReplayCache, pending: list[tuple[str, float]]) -> None:
    for key, expires in pending:
        try:
            fresh = await call_without_blocking(replay, "check_and_add", key, expires)
        except Exception as exc:
            raise _cache_failed(exc) from None
        if not fresh:
            raise _fail("dpop_replayed: DPoP proof replayed")


def verify_dpop_proof(
    proof: str,
    token: str,
    *,
    method: str,
    urls: Collection[str],
    at: datetime,
    jkt: Any,
    window: int,
    replay: ReplayCache,
    defer_replay: list[tuple[str, float]] | None = None,
) -> tuple[PublicJwk, str]:
    """Check a DPoP proof (RFC 9449 section 4.3) for ``token``; its key and that
    key's RFC 7638 thumbprint. ``jkt``: the thumbprint the token is bound to, if
    any. With ``defer_replay`` the replay-cache entry is appended there instead
    of written (see :meth:`Authenticator.authenticate`)."""
    if len(proof) > MAX_TOKEN_BYTES or "," in proof:
        raise _fail("malformed DPoP header")
    header = _unverified_header(proof)
    if header.get("typ") != "dpop+jwt":
        raise _fail("DPoP proof typ is not dpop+jwt")
    alg = header.get("alg")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise _fail("DPoP proof algorithm not allowed")
    raw_jwk = header.get("jwk")
    if not isinstance(raw_jwk, Mapping) or _PRIVATE_JWK_MEMBERS & set(raw_jwk):
        raise _fail("DPoP proof jwk missing or not a public key")
    key, thumbprint = _public_jwk(raw_jwk)
    try:
        decoded = jwt.decode(proof, key, algorithms=[str(alg)])
    except (JoseError, ValueError) as exc:
        raise _fail(f"DPoP proof signature: {type(exc).__name__}") from None
    claims = decoded.claims
    if claims.get("htm") != method:
        raise _fail("DPoP htm does not match the request method")
    htu = claims.get("htu")
    allowed = {_normalise_url(u) for u in urls}
    if not isinstance(htu, str) or _normalise_url(htu) not in allowed:
        raise _fail("DPoP htu does not match the request URL")
    iat = claims.get("iat")
    now = at.timestamp()
    if not isinstance(iat, int | float) or isinstance(iat, bool) or abs(now - iat) > window:
        raise _fail("DPoP proof iat outside the accepted window")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise _fail("DPoP proof jti missing or malformed")
    if claims.get("ath") != access_token_hash(token):
        raise _fail("DPoP ath does not match the access token")
    if jkt is not None and not hmac.compare_digest(str(jkt), thumbprint):
        raise _fail("DPoP key does not match the token's cnf.jkt")
    replay_key = f"{thumbprint}:{jti}"
    expires = float(iat) + window + 1
    if defer_replay is not None:
        defer_replay.append((replay_key, expires))
        return key, thumbprint
    try:
        fresh = replay.check_and_add(replay_key, expires)
    except Exception as exc:  # a proof that cannot be recorded is refused
        raise _cache_failed(exc) from None
    if not fresh:
        raise _fail("dpop_replayed: DPoP proof replayed")
    return key, thumbprint


# ---------------------------------------------------------------- attestations


def is_attestation(authorization: str | None) -> bool:
    """Whether ``Authorization`` carries a partner node's attestation (scheme
    ``DPoP``, header ``typ`` ``relto-attestation+jwt``) rather than an OIDC token.
    Reads only the unverified header, to choose the verifier."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "dpop" or not token or len(token) > MAX_TOKEN_BYTES:
        return False
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and header.get("typ") == ATTESTATION_TYP


def attested_id(person_id: str, nation: str) -> str:
    """How this node names a person of another nation: ``<id at home>@<nation>``.
    Local person ids never hold ``@``, so an attested person can never be taken
    for one of this node's people (in the directory, the log, a decision)."""
    return f"{person_id}@{nation}"


class AttestationAuthenticator:
    """Authenticates a person of another nation by their home node's attestation
    (``Authorization: DPoP <attestation>``) and a DPoP proof (required, checked as
    for access tokens: ``htm``, ``htu``, ``iat`` window, ``jti`` replay, ``ath`` =
    the attestation's hash); the attestation must be bound (``cnf.jkt``) to the
    proof's key and signed by the pinned node of the person's home nation
    (:class:`~relto.federation.acceptance.AttestationAcceptor`). Its status is then
    read and carried as :attr:`Caller.status_refusal`.

    Every refusal is :class:`Unauthenticated` with a ``reason`` (code and the
    verifier's sentence, for the log) and a ``public`` sentence for the caller.
    """

    def __init__(
        self,
        acceptor: AttestationAcceptor,
        *,
        replay: ReplayCache | None = None,
        dpop_window_seconds: int = 60,
    ) -> None:
        self.acceptor = acceptor
        self._replay = replay or MemoryReplayCache()
        self._window = dpop_window_seconds

    async def record_proofs(self, pending: list[tuple[str, float]]) -> None:
        """As :meth:`Authenticator.record_proofs`, with the same ``public`` sentence
        for a replayed proof as :meth:`authenticate` gives."""
        try:
            await _record_proofs(self._replay, pending)
        except Unauthenticated as exc:
            _public_dpop_failure(exc)
            raise

    def authenticate(
        self,
        *,
        authorization: str | None,
        dpop: str | None,
        method: str,
        urls: Collection[str],
        at: datetime,
        check_status: bool = True,
        defer_replay: list[tuple[str, float]] | None = None,
        blocking: bool = True,
    ) -> Caller:
        """The attested caller, or :class:`Unauthenticated`. ``check_status=False``
        leaves :attr:`Caller.status_refusal` unset (the caller reads it later).

        For an event loop: ``defer_replay`` as for :meth:`Authenticator.authenticate`
        (the caller passes it to :meth:`record_proofs`, also when this raises
        :class:`Unauthenticated` after the proof was checked, so that a replayed proof
        is named first, as here); ``blocking=False`` computes only, and raises
        :class:`~relto.federation.acceptance.WouldBlock` when the pins or the status
        are not in memory (nothing is decided then: call again, blocking, off the
        loop)."""
        _, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if not is_attestation(authorization):
            raise _fail("not an attestation")
        if not dpop:
            raise _fail(
                "an attestation without a DPoP proof",
                "dpop_required: an attestation is accepted only with a DPoP proof of its key",
            )
        try:
            key, thumbprint = verify_dpop_proof(
                dpop,
                token,
                method=method,
                urls=urls,
                at=at,
                jkt=None,  # compared with the attestation's cnf.jkt once it is verified
                window=self._window,
                replay=self._replay,
                defer_replay=defer_replay,
            )
        except Unauthenticated as exc:
            _public_dpop_failure(exc)
            raise
        try:
            att = self.acceptor.accept(token, dpop_jkt=thumbprint, now=at, blocking=blocking)
        except AttestationRefused as exc:
            r = exc.refusal
            raise _fail(f"{r.code}: {exc.detail}", f"{r.code}: {r.message}") from None
        subject = attested_id(att.person.person_id, att.person.home_nation)
        return Caller(
            subject=subject,
            claims={"sub": subject, "iss": att.issuer, "jti": att.jti},
            dpop_key=key,
            # A policy's dissem names this node's identities: an attested person,
            # whose id is their home node's, is never one of them.
            identities=frozenset(),
            issuer=att.issuer,
            nation=att.person.home_nation,
            attested=att,
            status_refusal=(
                self.acceptor.status_refusal(att, at, blocking=blocking) if check_status else None
            ),
        )


def _public_dpop_failure(exc: Unauthenticated) -> None:
    """The caller's own proof: saying what is wrong with it reveals nothing."""
    reason = str(getattr(exc, "reason", ""))
    if reason.startswith("dpop_replayed"):
        exc.public = (  # type: ignore[attr-defined]
            "dpop_replayed: the DPoP proof was used before; make a fresh proof for each request"
        )
    else:
        exc.public = f"invalid_dpop_proof: {reason[:120]}"  # type: ignore[attr-defined]


def build_authenticator(
    settings: Settings,
    *,
    require_dpop: bool,
    leeway_seconds: int = 30,
    dpop_window_seconds: int = 60,
    replay: ReplayCache | None = None,
    jwks: Callable[[str], JwksSource] = HttpJwks,
) -> Authenticator | None:
    """The authenticator for every issuer the settings trust
    (:attr:`relto.config.Settings.trusted_issuers`), each bound to its nation;
    ``None`` when none is configured (every token is then refused).

    The KAS passes ``require_dpop`` from ``RELTO_KAS_REQUIRE_DPOP`` and its
    host-wide replay cache; the REST API passes ``require_dpop=False``. ``jwks``
    makes the key source of a JWKS URL (tests and air-gapped nodes pass pinned
    key sets). Raises ``ConfigError`` on inconsistent issuer settings.
    """
    trusted = settings.trusted_issuers
    if not trusted:
        return None
    config = AuthConfig(
        leeway_seconds=leeway_seconds,
        require_dpop=require_dpop,
        dpop_window_seconds=dpop_window_seconds,
    )
    issuers = [
        TrustedIssuer(url, jwks(item.jwks_url), item.audience, item.nation)
        for url, item in trusted.items()
    ]
    return Authenticator(config, replay=replay, issuers=issuers)


_JWK_CACHE: OrderedDict[str, tuple[PublicJwk, str]] = OrderedDict()
_JWK_CACHE_LOCK = threading.Lock()


def _public_jwk(raw: Mapping[str, Any]) -> tuple[PublicJwk, str]:
    """The proof key and its RFC 7638 thumbprint; clients reuse their DPoP key, so
    imported keys are kept (by their exact JSON; a bounded cache)."""
    try:
        ident = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise _fail("DPoP jwk is not JSON") from None
    with _JWK_CACHE_LOCK:
        hit = _JWK_CACHE.get(ident)
        if hit is not None:
            _JWK_CACHE.move_to_end(ident)
            return hit
    key = _import_public_jwk(raw)
    entry = (key, key.thumbprint())
    with _JWK_CACHE_LOCK:
        _JWK_CACHE[ident] = entry
        while len(_JWK_CACHE) > 4096:
            _JWK_CACHE.popitem(last=False)
    return entry


def _import_public_jwk(raw: Mapping[str, Any]) -> PublicJwk:
    kty = raw.get("kty")
    try:
        key: PublicJwk
        if kty == "RSA":
            key = RSAKey.import_key(dict(raw))
            if key.raw_value.key_size < 2048:
                raise _fail("DPoP RSA key shorter than 2048 bits")
        elif kty == "EC":
            key = ECKey.import_key(dict(raw))
        elif kty == "OKP":
            key = OKPKey.import_key(dict(raw))
        else:
            raise _fail("DPoP jwk has an unsupported key type")
    except (JoseError, ValueError, TypeError) as exc:
        raise _fail(f"DPoP jwk invalid: {type(exc).__name__}") from None
    return key


def verify_request_token(
    srt: str, caller: Caller, *, at: datetime, leeway_seconds: int = 30
) -> tuple[Mapping[str, Any], bool]:
    """Check the signed request token; return its claims and whether it was verified.

    With a DPoP key, the token must be signed by that key (as OpenTDF's KAS does).
    Without one there is no key to verify against (the SDK signs with a key it
    never shows): the claims are still checked for time, and the caller's proof of
    identity rests on the access token alone.
    """
    if len(srt) > 1024 * 1024:
        raise _fail("signed request token too large")
    header = _unverified_header(srt)
    if caller.dpop_key is not None:
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise _fail("request token algorithm not allowed")
        try:
            claims = dict(jwt.decode(srt, caller.dpop_key, algorithms=[str(alg)]).claims)
        except (JoseError, ValueError) as exc:
            raise _fail(f"request token signature: {type(exc).__name__}") from None
        verified = True
    else:
        try:
            obj = jws.extract_compact(srt.encode("ascii"))
            claims = json.loads(obj.payload)
        except (JoseError, ValueError, UnicodeEncodeError) as exc:
            raise _fail(f"request token malformed: {type(exc).__name__}") from None
        if not isinstance(claims, dict):
            raise _fail("request token payload is not an object")
        verified = False
    now = at.timestamp()
    exp = claims.get("exp")
    iat = claims.get("iat")
    if exp is not None and (not isinstance(exp, int | float) or exp + leeway_seconds < now):
        raise _fail("request token expired")
    if iat is not None and (not isinstance(iat, int | float) or iat - leeway_seconds > now):
        raise _fail("request token issued in the future")
    return claims, verified
