"""Who is calling the API and the console, and what roles they hold.

Two ways in:

* **OIDC bearer tokens** (every mode): validated against the configured issuer's
  JWKS by :class:`relto.kas.auth.Authenticator` (signature with an asymmetric
  algorithm allow-list, ``iss``, ``aud``, ``exp``, ``nbf``, DPoP when bound). The
  token's ``sub`` is the person id; ``relto_nation`` (or the person's nationality
  in the directory) is their nation; ``relto_roles`` lists ``"role:NAT"`` grants
  (a bare ``"role"`` is held for the person's own nation).
* **Demo sessions** (demo mode only): ``/login`` lets a visitor pick a demo
  person; the choice is kept in a cookie signed (HMAC-SHA256) with
  ``settings.secret_key``. Outside demo mode the login routes are not mounted and
  session cookies are ignored.

State-changing console forms carry a CSRF token derived from the session; API
calls authenticated by cookie must send it in ``X-CSRF-Token``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from fastapi import HTTPException, Request

from relto.config import Settings
from relto.partnership import ROLES, Actor

__all__ = [
    "SESSION_COOKIE",
    "Directory",
    "DirectoryEntry",
    "Principal",
    "RequestAuth",
    "SessionSigner",
    "request_auth",
    "roles_from_claims",
]

log = structlog.stdlib.get_logger("relto.auth")

SESSION_COOKIE = "relto_session"
SESSION_SECONDS = 8 * 3600
_MAX_COOKIE = 2048


@dataclass(frozen=True)
class DirectoryEntry:
    person_id: str
    name: str
    nationality: str
    organisation: str = ""
    roles: frozenset[tuple[str, str]] = frozenset()


class Directory(Protocol):
    """Looks people up by id (the demo file in demo mode; relto.vetting otherwise)."""

    def lookup(self, person_id: str) -> DirectoryEntry | None: ...


@dataclass(frozen=True)
class Principal:
    """An authenticated person, their nation and their roles (each for one nation)."""

    person_id: str
    name: str
    nation: str
    roles: frozenset[tuple[str, str]]
    via: str  # "bearer" or "session"

    def holds(self, role: str, nation: str | None = None) -> bool:
        return any(r == role and (nation is None or n == nation) for r, n in self.roles)

    def actor(self) -> Actor:
        return Actor(self.person_id, self.nation, self.roles)

    @property
    def role_names(self) -> list[str]:
        return sorted({r for r, _ in self.roles})


def roles_from_claims(claims: Mapping[str, Any], nation: str) -> frozenset[tuple[str, str]]:
    """``relto_roles``: ``["security_officer:GBR", "engineer"]``; unknown roles are dropped."""
    raw = claims.get("relto_roles", [])
    if isinstance(raw, str):
        raw = raw.split()
    grants: set[tuple[str, str]] = set()
    if not isinstance(raw, list):
        return frozenset()
    for item in raw[:50]:
        if not isinstance(item, str):
            continue
        role, _, where = item.partition(":")
        where = where or nation
        if role in ROLES and len(where) == 3 and where.isalpha() and where.isupper():
            grants.add((role, where))
    return frozenset(grants)


class SessionSigner:
    """Signs and checks demo session cookies and CSRF tokens with the secret key."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"relto-console-session\0" + secret.encode()).digest()
        self._clock = clock

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def sign(self, person_id: str) -> str:
        body = json.dumps(
            {"sub": person_id, "exp": int(self._clock()) + SESSION_SECONDS},
            separators=(",", ":"),
        ).encode()
        enc = base64.urlsafe_b64encode(body).rstrip(b"=")
        return f"{enc.decode()}.{self._mac(enc)}"

    def verify(self, cookie: str | None) -> str | None:
        """The person id in a valid, unexpired cookie, else ``None``."""
        if not cookie or len(cookie) > _MAX_COOKIE or "." not in cookie:
            return None
        enc, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(self._mac(enc.encode()), mac):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)))
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        sub, exp = body.get("sub"), body.get("exp")
        if not isinstance(sub, str) or not isinstance(exp, int) or exp < self._clock():
            return None
        return sub

    def csrf(self, cookie: str) -> str:
        return self._mac(b"csrf\0" + cookie.encode())

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.csrf(cookie), token)


class RequestAuth:
    """Resolves a request to a :class:`Principal` (or ``None``)."""

    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        *,
        authenticator: Any | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.demo = settings.demo
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.signer = SessionSigner(secret)
        self._clock = clock
        self.authenticator = authenticator
        if authenticator is None and settings.oidc_issuer and settings.oidc_jwks_url:
            from relto.kas.auth import AuthConfig, Authenticator, HttpJwks

            self.authenticator = Authenticator(
                AuthConfig(issuer=settings.oidc_issuer, audience=settings.oidc_audience),
                HttpJwks(settings.oidc_jwks_url),
            )

    def principal(self, request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if authorization:
            return self._bearer(request, authorization)
        if self.demo:
            person_id = self.signer.verify(request.cookies.get(SESSION_COOKIE))
            if person_id is not None:
                entry = self.directory.lookup(person_id)
                if entry is not None:
                    return Principal(
                        entry.person_id, entry.name, entry.nationality, entry.roles, "session"
                    )
        return None

    def _bearer(self, request: Request, authorization: str) -> Principal:
        if self.authenticator is None:
            raise _unauthenticated()
        from relto.errors import AccessDenied

        try:
            caller = self.authenticator.authenticate(
                authorization=authorization,
                dpop=request.headers.get("dpop"),
                method=request.method,
                urls=[str(request.url)],
                at=self._clock(),
            )
        except AccessDenied as exc:
            log.info("bearer_rejected", reason=getattr(exc, "reason", "unauthenticated"))
            raise _unauthenticated() from None
        claims = caller.claims
        entry = self.directory.lookup(caller.subject)
        nation = claims.get("relto_nation") or (entry.nationality if entry else None)
        if not isinstance(nation, str) or len(nation) != 3 or not nation.isalpha():
            log.info("bearer_rejected", reason="no nation for subject")
            raise _unauthenticated()
        nation = nation.upper()
        name = claims.get("name") if isinstance(claims.get("name"), str) else None
        return Principal(
            caller.subject,
            name or (entry.name if entry else caller.subject),
            nation,
            roles_from_claims(claims, nation),
            "bearer",
        )

    def require(self, request: Request) -> Principal:
        """The principal, or a 401 with ``WWW-Authenticate: Bearer``.

        Cookie-authenticated requests that change state must carry the CSRF token.
        """
        principal = self.principal(request)
        if principal is None:
            raise _unauthenticated()
        if principal.via == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
            cookie = request.cookies.get(SESSION_COOKIE)
            if not self.signer.check_csrf(cookie, request.headers.get("x-csrf-token")):
                raise HTTPException(403, "missing or invalid CSRF token")
        return principal


def _unauthenticated() -> HTTPException:
    return HTTPException(
        401, "authentication required", headers={"WWW-Authenticate": 'Bearer realm="relto"'}
    )


class _VettingDirectory:
    """People as :mod:`relto.vetting` records them; roles held for the home nation."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def _service(self) -> Any:
        from relto.server.routes.console import vetting_service

        return vetting_service(self._ctx)

    @staticmethod
    def _entry(p: Any) -> DirectoryEntry:
        return DirectoryEntry(
            p.id,
            p.name,
            p.home_nation,
            p.organisation,
            frozenset((str(getattr(r, "value", r)), p.home_nation) for r in p.roles),
        )

    def lookup(self, person_id: str) -> DirectoryEntry | None:
        from relto.errors import ReltoError

        try:
            return self._entry(self._service().get_person(person_id[:64]))
        except ReltoError:
            return None

    def entries(self, limit: int = 1000) -> list[DirectoryEntry]:
        out: list[DirectoryEntry] = []
        after: str | None = None
        service = self._service()
        while len(out) < limit:
            page = service.list_people(limit=200, after=after)
            out.extend(self._entry(p) for p in page.items)
            if page.next_after is None:
                break
            after = page.next_after
        return out[:limit]


def request_auth(ctx: Any) -> RequestAuth:
    """The app's :class:`RequestAuth`, built once and kept in ``ctx.extras["auth"]``."""
    existing = ctx.extras.get("auth")
    if isinstance(existing, RequestAuth):
        return existing
    made = RequestAuth(ctx.settings, _VettingDirectory(ctx))
    ctx.extras["auth"] = made
    return made
