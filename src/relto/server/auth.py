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
* **Attestations** (``Authorization: DPoP <attestation>`` with a DPoP proof): a
  person of another nation, vouched for by the pinned node of their home nation
  (:class:`relto.kas.auth.AttestationAuthenticator`), for reading only (GET and
  HEAD). The principal is ``via="attestation"``, named ``<id>@<nation>`` (never
  one of this node's people), with the attested home nation and nationalities
  and **no roles**: a foreign attestation grants nothing administrative here. A
  revoked, suspended or unconfirmed attestation is refused (403).
* **Demo sessions** (demo mode only): ``/login`` lets a visitor pick a demo
  person. The node records a session (:mod:`relto.sessions`) and the browser gets
  its id in a cookie signed (HMAC-SHA256) with ``settings.secret_key``. The record
  decides: signing out deletes it, so a copied cookie signs nobody in afterwards.
  Outside demo mode the demo login is not mounted; sessions then come only from the
  sign-in at the node's own OIDC issuer (``RELTO_OIDC_CLIENT_ID``,
  :mod:`relto.server.console.oidc_login`), and without it session cookies are ignored.

Forgery protection: the sign-in form carries a token bound to a short-lived signed
cookie set with the form (double submit); state-changing console forms carry a
token derived from the session; API calls authenticated by cookie must send it in
``X-CSRF-Token``. Flash messages ("JPN admitted ...") travel in a signed cookie
bound to the session they were made for, never in the URL.

Cookies are HttpOnly and SameSite=Lax everywhere, and ``Secure`` with the
``__Host-`` prefix when the browser reaches the node over https: ``RELTO_PUBLIC_URL``
is https, the request came over TLS, or ``RELTO_TRUST_FORWARDED_PROTO`` is set and
the proxy said ``X-Forwarded-Proto: https``. A request that is secure reads only
the prefixed cookies, so a cookie planted over plain http is never believed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import structlog
from fastapi import HTTPException, Request, Response

from relto.authz import Principal
from relto.config import Settings
from relto.kas.auth import AttestationAuthenticator, Authenticator, is_attestation
from relto.kas.errors import ReplayCacheUnavailable, Unauthenticated
from relto.sessions import SessionStore
from relto.vetting.directory import Directory

__all__ = [
    "FLASH_COOKIE",
    "FLASH_SECONDS",
    "LOGIN_COOKIE",
    "LOGIN_SECONDS",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Flash",
    "RequestAuth",
    "SessionSigner",
    "cookie_name",
    "proof_key",
]

log = structlog.stdlib.get_logger("relto.auth")

#: Cookie names over plain http; over https each carries the ``__Host-`` prefix.
SESSION_COOKIE = "relto_session"
LOGIN_COOKIE = "relto_login"
FLASH_COOKIE = "relto_flash"
SESSION_SECONDS = 8 * 3600
#: How long a sign-in form stays usable, and a flash message waits to be shown.
LOGIN_SECONDS = 1800
FLASH_SECONDS = 120
_MAX_COOKIE = 2048
_MAX_FLASH = 300
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

Flash = tuple[str, Literal["ok", "bad"]]


def cookie_name(name: str, secure: bool) -> str:
    """``name`` as sent to a browser on an http (plain) or https (``__Host-``) node."""
    return f"__Host-{name}" if secure else name


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and checks what the console hands browsers: session ids, CSRF tokens,
    sign-in form tokens and flash messages. Each use has its own MAC domain, so a
    value signed for one is worthless as another."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"relto-console-session\0" + secret.encode()).digest()
        self._clock = clock

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def _check(self, domain: bytes, data: str, mac: str) -> bool:
        return hmac.compare_digest(self._mac(domain + data.encode()), mac)

    # -- session ids ----------------------------------------------------------

    def sign(self, session_id: str) -> str:
        """The cookie value carrying ``session_id``."""
        mac = self._mac(b"session\0" + session_id.encode())
        return f"{session_id}.{mac}"

    def verify(self, cookie: str | None) -> str | None:
        """The session id of a well-signed cookie, else ``None``. Whether the session
        is still live is the session store's to say."""
        if not cookie or len(cookie) > _MAX_COOKIE or "." not in cookie:
            return None
        session_id, _, mac = cookie.rpartition(".")
        if not session_id or not self._check(b"session\0", session_id, mac):
            return None
        return session_id

    def csrf(self, cookie: str) -> str:
        """The CSRF token of the session in ``cookie`` (forms and ``X-CSRF-Token``)."""
        return self._mac(b"csrf\0" + cookie.encode())

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.csrf(cookie), token)

    # -- the sign-in form (before any session) ----------------------------------

    def login_form(self) -> tuple[str, str]:
        """(cookie, form token) for one sign-in form: a random nonce with an expiry,
        signed, in the cookie; a MAC of that cookie in the form."""
        body = f"{secrets.token_urlsafe(18)}:{int(self._clock()) + LOGIN_SECONDS}"
        mac = self._mac(b"login\0" + body.encode())
        cookie = f"{body}.{mac}"
        return cookie, self._mac(b"login-form\0" + cookie.encode())

    def check_login_form(self, cookie: str | None, token: str | None) -> bool:
        """Whether ``token`` belongs to the unexpired sign-in cookie ``cookie``."""
        if not cookie or not token or len(cookie) > _MAX_COOKIE or "." not in cookie:
            return False
        body, _, mac = cookie.rpartition(".")
        if not self._check(b"login\0", body, mac):
            return False
        _, _, exp = body.rpartition(":")
        if not exp.isdigit() or int(exp) < self._clock():
            return False
        return hmac.compare_digest(self._mac(b"login-form\0" + cookie.encode()), token)

    # -- flash messages -----------------------------------------------------------

    def seal_flash(self, binding: str, message: str, kind: Literal["ok", "bad"]) -> str:
        """A cookie value carrying ``message`` for the session or person ``binding``."""
        body = _b64(
            json.dumps(
                {"b": binding, "m": message[:_MAX_FLASH], "k": kind,
                 "e": int(self._clock()) + FLASH_SECONDS},
                separators=(",", ":"),
            ).encode()
        )  # fmt: skip
        mac = self._mac(b"flash\0" + body.encode())
        return f"{body}.{mac}"

    def open_flash(self, value: str | None, binding: str | None) -> Flash | None:
        """The message in a well-signed, unexpired flash cookie made for ``binding``."""
        if not value or not binding or len(value) > _MAX_COOKIE or "." not in value:
            return None
        body, _, mac = value.rpartition(".")
        if not self._check(b"flash\0", body, mac):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        message, kind, exp = data.get("m"), data.get("k"), data.get("e")
        if (
            data.get("b") != binding
            or not isinstance(message, str)
            or kind not in ("ok", "bad")
            or not isinstance(exp, int)
            or exp < self._clock()
        ):
            return None
        return message, ("bad" if kind == "bad" else "ok")


class RequestAuth:
    """Resolves a request to a :class:`Principal` (or ``None``); starts and ends
    console sessions and sets the console's cookies."""

    def __init__(
        self,
        settings: Settings,
        directory: Directory,
        authenticator: Authenticator | None,
        sessions: SessionStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attestations: AttestationAuthenticator | None = None,
    ) -> None:
        self.directory = directory
        self.demo = settings.demo
        #: Console sessions are believed in demo mode and on a node that signs people
        #: in at its own OIDC issuer (relto.server.console.oidc_login); never otherwise.
        self.sessions_enabled = settings.demo or bool(settings.oidc_client_id)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.signer = SessionSigner(secret, clock=lambda: clock().timestamp())
        self.authenticator = authenticator
        self.attestations = attestations
        self.sessions = sessions
        self._clock = clock
        self._https_always = bool(settings.public_url) and str(settings.public_url).startswith(
            "https://"
        )
        self._trust_forwarded = settings.trust_forwarded_proto

    # -- cookies ---------------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        """Whether the browser reached this node over https (cookies then Secure)."""
        if self._https_always or request.url.scheme == "https":
            return True
        if self._trust_forwarded:
            proto = request.headers.get("x-forwarded-proto", "")
            return proto.split(",")[0].strip().lower() == "https"
        return False

    def cookie(self, request: Request, name: str) -> str | None:
        """The console cookie ``name`` as this request's scheme names it."""
        return request.cookies.get(cookie_name(name, self.secure(request)))

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        secure = self.secure(request)
        response.set_cookie(
            cookie_name(name, secure),
            value,
            max_age=max_age,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, request: Request, response: Response, name: str) -> None:
        secure = self.secure(request)
        response.delete_cookie(
            cookie_name(name, secure), path="/", secure=secure, httponly=True, samesite="lax"
        )

    # -- sessions ----------------------------------------------------------------------

    def session_id(self, request: Request) -> str | None:
        """The id in this request's well-signed session cookie (live or not)."""
        return self.signer.verify(self.cookie(request, SESSION_COOKIE))

    def start_session(self, request: Request, response: Response, person_id: str) -> None:
        """Sign ``person_id`` in: a new session on the node, its id in the cookie.
        A session the browser already had is ended first."""
        self.end_session(request)
        session_id = self.sessions.create(
            person_id, now=self._clock().timestamp(), lifetime=SESSION_SECONDS
        )
        self.set_cookie(
            request, response, SESSION_COOKIE, self.signer.sign(session_id), SESSION_SECONDS
        )

    def end_session(self, request: Request) -> str | None:
        """End this request's session on the node; whose it was (``None``: none live)."""
        session_id = self.session_id(request)
        if session_id is None:
            return None
        person_id = self.sessions.person(session_id, now=self._clock().timestamp())
        self.sessions.revoke(session_id)
        return person_id

    def end_all_sessions(self, person_id: str) -> int:
        """End every session of ``person_id`` on the node ("sign out everywhere")."""
        return self.sessions.revoke_person(person_id)

    def session_csrf(self, request: Request) -> str:
        """The CSRF token for forms on this request's page ("" without a session)."""
        cookie = self.cookie(request, SESSION_COOKIE)
        return self.signer.csrf(cookie) if cookie else ""

    def check_session_csrf(self, request: Request, token: str | None) -> bool:
        return self.signer.check_csrf(self.cookie(request, SESSION_COOKIE), token)

    def flash_binding(self, request: Request, principal: Principal) -> str:
        """What a flash message for this request is bound to: the session, or the
        person for a bearer token."""
        if principal.via == "session":
            session_id = self.session_id(request)
            if session_id is not None:
                return "session:" + hashlib.sha256(session_id.encode()).hexdigest()
        return "person:" + principal.person_id

    # -- who is calling --------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        authorization = request.headers.get("authorization")
        if authorization and is_attestation(authorization):
            return self._attested(request, authorization)
        if authorization:
            return self._bearer(request, authorization)
        if self.sessions_enabled:
            session_id = self.session_id(request)
            if session_id is None:
                return None
            person_id = self.sessions.person(session_id, now=self._clock().timestamp())
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
        # The key of a verified DPoP proof, for what binds to it (attestations).
        request.state.dpop_jkt = caller.dpop_key.thumbprint() if caller.dpop_key else None
        return principal

    def _attested(self, request: Request, authorization: str) -> Principal:
        """A person of another nation, by their home node's attestation (reading only)."""
        if self.attestations is None:
            raise _unauthenticated("this node accepts no attestations")
        if request.method not in ("GET", "HEAD"):
            raise _unauthenticated("an attestation is accepted for reading only (GET)")
        try:
            caller = self.attestations.authenticate(
                authorization=authorization,
                dpop=request.headers.get("dpop"),
                method=request.method,
                urls=[str(request.url.replace(query="", fragment=""))],
                at=self._clock(),
            )
        except Unauthenticated as exc:
            log.info("attestation_rejected", reason=getattr(exc, "reason", "unauthenticated"))
            raise _unauthenticated(getattr(exc, "public", "")) from None
        except ReplayCacheUnavailable:
            raise HTTPException(503, "authentication is unavailable") from None
        att = caller.attested
        assert att is not None
        if caller.status_refusal is not None:
            r = caller.status_refusal
            log.info("attestation_refused", code=r.code, jti=att.jti, person=caller.subject)
            raise HTTPException(403, f"{r.code}: {r.message}")
        return Principal(
            person_id=caller.subject,
            name=caller.subject,
            home_nation=att.person.home_nation,
            nationalities=att.person.nationalities,
            roles=frozenset(),  # foreign roles grant nothing on this node
            via="attestation",
            attested=att.person,
        )

    def require(self, request: Request) -> Principal:
        """The principal, or a 401 with ``WWW-Authenticate: Bearer``.

        Cookie-authenticated requests that change state must carry the CSRF token.
        """
        principal = self.principal(request)
        if principal is None:
            raise _unauthenticated()
        if (
            principal.via == "session"
            and request.method not in _SAFE_METHODS
            and not self.check_session_csrf(request, request.headers.get("x-csrf-token"))
        ):
            raise HTTPException(403, "missing or invalid CSRF token")
        return principal


def proof_key(request: Request, principal: Principal) -> str | None:
    """The RFC 7638 thumbprint of the DPoP proof key ``principal`` signed in with
    (an OIDC bearer token sent with a verified proof), else ``None``."""
    if principal.via != "bearer":
        return None
    jkt = getattr(request.state, "dpop_jkt", None)
    return jkt if isinstance(jkt, str) else None


def _unauthenticated(why: str = "") -> HTTPException:
    """A 401; ``why`` (an attestation's refusal, nothing secret) goes in the detail
    and the ``DPoP`` challenge (RFC 9449 section 7.1)."""
    if why:
        safe = why.replace('"', "'")[:200]
        return HTTPException(
            401,
            f"authentication required: {why}",
            headers={
                "WWW-Authenticate": f'DPoP realm="relto", error="invalid_token", '
                f'error_description="{safe}", algs="ES256 EdDSA"'
            },
        )
    return HTTPException(
        401, "authentication required", headers={"WWW-Authenticate": 'Bearer realm="relto"'}
    )
