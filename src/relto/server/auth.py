"""Who is calling the API and the console.

A credential proves only *who* is calling; everything else comes from the node's
directory (:class:`relto.vetting.directory.Directory`): name, home nation,
nationalities and roles. Two ways in:

* **OIDC bearer tokens** (every mode): verified by :class:`relto.kas.auth.Authenticator`
  against the JWKS of the issuer that signed them; each trusted issuer is bound to
  one nation (``RELTO_OIDC_ISSUERS``). The token's ``sub`` is the person id, and the
  token is accepted only when the directory knows that person with the issuer's
  nation as home nation. Claims such as ``relto_roles`` or ``relto_nation`` are
  never read: a token cannot grant a role or change a nation.
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
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from fastapi import HTTPException, Request

from relto.authz import Principal
from relto.config import Settings
from relto.kas.auth import Authenticator
from relto.kas.errors import ReplayCacheUnavailable, Unauthenticated
from relto.vetting.directory import Directory

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "RequestAuth", "SessionSigner"]

log = structlog.stdlib.get_logger("relto.auth")

SESSION_COOKIE = "relto_session"
SESSION_SECONDS = 8 * 3600
_MAX_COOKIE = 2048


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
        authenticator: Authenticator | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.demo = settings.demo
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.signer = SessionSigner(secret)
        self.authenticator = authenticator
        self._clock = clock

    def principal(self, request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if authorization:
            return self._bearer(request, authorization)
        if self.demo:
            person_id = self.signer.verify(request.cookies.get(SESSION_COOKIE))
            if person_id is not None:
                return self.directory.principal(person_id, via="session")
        return None

    def _bearer(self, request: Request, authorization: str) -> Principal:
        if self.authenticator is None:
            raise _unauthenticated()
        try:
            caller = self.authenticator.authenticate(
                authorization=authorization,
                dpop=request.headers.get("dpop"),
                method=request.method,
                urls=[str(request.url.replace(query="", fragment=""))],
                at=self._clock(),
            )
        except Unauthenticated as exc:
            log.info("bearer_rejected", reason=getattr(exc, "reason", "unauthenticated"))
            raise _unauthenticated() from None
        except ReplayCacheUnavailable:
            raise HTTPException(503, "authentication is unavailable") from None
        principal = self.directory.principal(caller.subject, via="bearer")
        if principal is None:
            log.info("bearer_rejected", reason="subject not in the directory")
            raise _unauthenticated()
        if caller.nation is None or principal.home_nation != caller.nation:
            log.info(
                "bearer_rejected",
                reason="the token's issuer does not vouch for the person's home nation",
                issuer_nation=caller.nation,
                home_nation=principal.home_nation,
            )
            raise _unauthenticated()
        return principal

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
