"""Who is calling: OIDC bearer tokens (JWKS) and DPoP proofs (RFC 9449).

:meth:`Authenticator.authenticate` checks, in order: the ``Authorization``
header's scheme; the access token's signature against the issuer's JWKS (with
an algorithm allow-list: no ``none``, no HMAC), ``iss``, ``aud``, ``exp``,
``nbf`` and ``iat``; then the DPoP proof when one is sent, required by the
setting, or demanded by the token (``cnf.jkt`` or the ``DPoP`` scheme): its
``typ``, public-only ``jwk`` and signature, ``htm``, ``htu`` (without query or
fragment), ``iat`` within a window, ``jti`` never seen before in that window,
``ath`` (the access token's hash) and the key's thumbprint against ``cnf.jkt``.

Every failure is one :class:`~relto.kas.errors.Unauthenticated` outward; the
precise reason is its ``reason`` attribute, for the log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from relto.batching import call_without_blocking
from relto.kas.errors import ReplayCacheUnavailable, Unauthenticated

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AuthConfig",
    "Authenticator",
    "Caller",
    "HttpJwks",
    "JwksSource",
    "MemoryReplayCache",
    "ReplayCache",
    "StaticJwks",
    "access_token_hash",
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
_IDENTITY_CLAIMS = ("sub", "email", "preferred_username", "client_id", "azp", "upn")
MAX_TOKEN_BYTES = 16 * 1024
_CACHE_SECONDS = 60.0
_CACHE_ENTRIES = 10_000

log = structlog.stdlib.get_logger("relto.kas")

PublicJwk = RSAKey | ECKey | OKPKey


def _cache_failed(exc: Exception) -> ReplayCacheUnavailable:
    log.error("kas_replay_cache_failed", error=type(exc).__name__)
    return ReplayCacheUnavailable("the DPoP replay cache is unavailable")


def _fail(reason: str) -> Unauthenticated:
    exc = Unauthenticated("unauthenticated")
    exc.reason = reason  # type: ignore[attr-defined]
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
    #: Every identifier the token asserts (sub, email, username, client id...).
    identities: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str | None = None
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    leeway_seconds: int = 30
    require_dpop: bool = False
    #: How far a DPoP proof's ``iat`` may be from now, either way.
    dpop_window_seconds: int = 60


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


class Authenticator:
    """Validates bearer tokens and DPoP proofs."""

    def __init__(
        self,
        config: AuthConfig,
        jwks: JwksSource,
        replay: ReplayCache | None = None,
    ) -> None:
        self.config = config
        self._jwks = jwks
        self._replay = replay or MemoryReplayCache()
        # Verified access tokens, by SHA-256 of the token: clients reuse a token for
        # many requests. Entries live at most _CACHE_SECONDS (a key dropped from the
        # JWKS stops counting within that time); time claims are re-checked each use.
        self._verified: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def needs_io(self, authorization: str | None, dpop: str | None) -> bool:
        """Might :meth:`authenticate` with ``defer_replay`` wait on I/O for this
        request (a JWKS fetch)? ``False`` means it only computes, so an event loop may
        call it: the access token was verified moments ago (its claims are cached)
        or the key set is local. (The DPoP replay-cache write is deferred to
        :meth:`record_proofs`, which never blocks the loop.) Anything unsure answers
        ``True``."""
        if not getattr(self._jwks, "blocking", True):
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
        for key, expires in pending:
            try:
                fresh = await call_without_blocking(self._replay, "check_and_add", key, expires)
            except Exception as exc:
                raise _cache_failed(exc) from None
            if not fresh:
                raise _fail("DPoP proof replayed")

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
        claims = self._access_token_claims(token, at)
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
        identities = frozenset(
            str(claims[c]) for c in _IDENTITY_CLAIMS if isinstance(claims.get(c), str) and claims[c]
        )
        return Caller(subject=subject, claims=claims, dpop_key=dpop_key, identities=identities)

    def _access_token_claims(self, token: str, at: datetime) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
        now = time.monotonic()
        with self._verified_lock:
            hit = self._verified.get(digest)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            claims = hit[1]
            self._validate_claims(claims, at)
            return dict(claims)
        claims = self._verify_access_token(token, at)
        with self._verified_lock:
            self._verified[digest] = (now, claims)
            while len(self._verified) > _CACHE_ENTRIES:
                self._verified.popitem(last=False)
        return dict(claims)

    def _verify_access_token(self, token: str, at: datetime) -> dict[str, Any]:
        header = _unverified_header(token)
        if header.get("alg") not in self.config.algorithms:
            raise _fail("access token algorithm not allowed")
        try:
            decoded = jwt.decode(token, self._jwks.keys(), algorithms=list(self.config.algorithms))
        except (JoseError, ValueError) as first:
            # An unknown key id may mean the issuer rotated: refetch the JWKS once.
            try:
                keys = self._jwks.keys(refresh=True)
                decoded = jwt.decode(token, keys, algorithms=list(self.config.algorithms))
            except (JoseError, ValueError):
                raise _fail(f"access token signature: {type(first).__name__}") from None
        claims: dict[str, Any] = dict(decoded.claims)
        self._validate_claims(claims, at)
        return claims

    def _validate_claims(self, claims: dict[str, Any], at: datetime) -> None:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.config.issuer},
            "exp": {"essential": True},
        }
        if self.config.audience:
            options["aud"] = {"essential": True, "value": self.config.audience}
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
        window = self.config.dpop_window_seconds
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
            return key
        try:
            fresh = self._replay.check_and_add(replay_key, expires)
        except Exception as exc:  # a proof that cannot be recorded is refused
            raise _cache_failed(exc) from None
        if not fresh:
            raise _fail("DPoP proof replayed")
        return key


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
