"""Console sign-in through the node's own OpenID provider (outside demo mode).

An OpenID Connect Relying Party (ADR 0120): the authorization code flow with PKCE
(S256), ``state`` and ``nonce``, against the issuer bound to this node's nation
(:attr:`relto.config.Settings.login_issuer`):

1. ``GET /login/oidc?next=...``: fresh ``state``, ``nonce`` and code verifier go into
   a short-lived cookie, MAC'd with a key derived from the node's secret key, and
   the browser is sent to the issuer's authorization endpoint (read from its
   discovery document, whose ``issuer`` must be the configured one);
2. ``GET /login/oidc/callback?code&state``: the state must equal the cookie's,
   the ``iss`` parameter (RFC 9207) the issuer; the code is exchanged at the token
   endpoint (client secret, code verifier); the ID token is verified with joserfc
   against the issuer's JWKS (signature, ``iss``, ``aud`` = the client id,
   ``nonce``, ``exp``, ``iat``);
3. ``sub`` is the person id: the node's directory must know the person, with this
   node's nation as home nation -- anyone else is refused with a page saying so.
   The session is then made exactly as the demo sign-in makes it
   (:meth:`relto.server.auth.RequestAuth.start_session`, :mod:`relto.sessions`).

Nothing the tokens claim beyond ``sub`` is read: name, nationality and roles come
from the directory. The start and callback routes are always mounted and answer
404 on a node without ``RELTO_OIDC_CLIENT_ID``; the sign-in page and sign-out are
mounted here only outside demo mode (demo mode has its own, :mod:`.login`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import structlog
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError

from relto.authz import Permission
from relto.config import Settings
from relto.kas.auth import HttpJwks, JwksSource
from relto.kas.errors import Unauthenticated
from relto.server.console import login
from relto.server.console._pages import Pages, safe_next
from relto.server.edge import needs

__all__ = ["OIDC_COOKIE", "OidcRelyingParty", "SignInRefused", "mount", "relying_party"]

log = structlog.stdlib.get_logger("relto.console")

#: The cookie carrying one sign-in's state, nonce and code verifier.
OIDC_COOKIE = "relto_oidc"
#: How long a sign-in at the provider may take.
FLOW_SECONDS = 600
#: Clock skew tolerated on the ID token's ``iat`` / ``exp``.
LEEWAY_SECONDS = 120
#: Largest discovery document or token response read.
_MAX_RESPONSE = 256 * 1024
_ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
_TIMEOUT = 5.0


class SignInRefused(Exception):
    """The sign-in failed; ``public`` is what the person is told, the message is logged."""

    def __init__(self, reason: str, public: str = "The sign-in could not be completed.") -> None:
        super().__init__(reason)
        self.public = public


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Flow:
    """One sign-in in progress, as the browser's cookie carries it."""

    state: str
    nonce: str
    verifier: str
    next: str
    expires: int

    @property
    def challenge(self) -> str:
        """The PKCE S256 code challenge (RFC 7636)."""
        return _b64(hashlib.sha256(self.verifier.encode()).digest())


class OidcRelyingParty:
    """This node as a client of its own nation's OpenID provider.

    ``http`` is the transport for discovery and the token endpoint (tests may pass
    an ``httpx.Client`` of their own); ``jwks`` the issuer's keys; ``clock`` seconds
    since the epoch.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        secret_key: str,
        jwks: JwksSource,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._key = hashlib.sha256(b"relto-oidc-login\0" + secret_key.encode()).digest()
        self._jwks = jwks
        self._http = http or httpx.Client(timeout=_TIMEOUT, follow_redirects=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovered_at = 0.0

    # -- the flow cookie ------------------------------------------------------------

    def begin(self, next_url: str) -> tuple[Flow, str]:
        """A fresh flow and the cookie value carrying it."""
        flow = Flow(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            next=safe_next(next_url),
            expires=int(self._clock()) + FLOW_SECONDS,
        )
        body = _b64(
            json.dumps(
                {
                    "s": flow.state,
                    "n": flow.nonce,
                    "v": flow.verifier,
                    "x": flow.next,
                    "e": flow.expires,
                },
                separators=(",", ":"),
            ).encode()
        )
        return flow, f"{body}.{self._mac(body)}"

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, b"flow\0" + body.encode(), hashlib.sha256).hexdigest()

    def flow(self, cookie: str | None) -> Flow:
        """The flow in a well-signed, unexpired cookie; else :class:`SignInRefused`."""
        if not cookie or len(cookie) > 2048 or "." not in cookie:
            raise SignInRefused("no sign-in in progress (cookie missing)", _START_AGAIN)
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(self._mac(body), mac):
            raise SignInRefused("sign-in cookie not signed by this node", _START_AGAIN)
        try:
            d = json.loads(_unb64(body))
            flow = Flow(str(d["s"]), str(d["n"]), str(d["v"]), str(d["x"]), int(d["e"]))
        except (ValueError, KeyError, TypeError):
            raise SignInRefused("sign-in cookie unreadable", _START_AGAIN) from None
        if flow.expires < self._clock():
            raise SignInRefused("sign-in took too long", _START_AGAIN)
        return flow

    # -- the provider -----------------------------------------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        resp = self._http.get(url, headers={"Accept": "application/json"})
        if resp.status_code != 200 or len(resp.content) > _MAX_RESPONSE:
            raise SignInRefused(f"{url} answered {resp.status_code}", _PROVIDER_DOWN)
        data = resp.json()
        if not isinstance(data, dict):
            raise SignInRefused(f"{url} is not a JSON object", _PROVIDER_DOWN)
        return data

    def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document (cached 5 minutes), checked to be its own."""
        with self._lock:
            if self._discovery is not None and self._clock() - self._discovered_at < 300:
                return self._discovery
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            doc = self._get_json(url)
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInRefused(f"discovery failed: {type(exc).__name__}", _PROVIDER_DOWN) from None
        if doc.get("issuer") != self.issuer:
            raise SignInRefused("the discovery document names another issuer", _PROVIDER_DOWN)
        for name in ("authorization_endpoint", "token_endpoint"):
            if not isinstance(doc.get(name), str):
                raise SignInRefused(f"the discovery document has no {name}", _PROVIDER_DOWN)
        if "S256" not in doc.get("code_challenge_methods_supported", ["S256"]):
            raise SignInRefused("the provider does not support PKCE S256", _PROVIDER_DOWN)
        with self._lock:
            self._discovery, self._discovered_at = doc, self._clock()
        return doc

    def authorization_url(self, flow: Flow) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": "openid profile",
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": flow.challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = str(self.discovery()["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def finish(
        self, flow: Flow, *, code: str, state: str, iss: str | None, error: str | None
    ) -> str:
        """Check the callback against ``flow``, redeem the code, verify the ID token;
        the person id (``sub``) it vouches for."""
        if not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise SignInRefused(
                "state does not match the sign-in this browser started", _START_AGAIN
            )
        if iss is not None and iss != self.issuer:
            raise SignInRefused("the authorization response names another issuer")
        if error:
            raise SignInRefused(
                f"the provider refused: {error[:100]}",
                "Your identity provider refused the sign-in.",
            )
        if not code:
            raise SignInRefused("no authorization code")
        token_endpoint = str(self.discovery()["token_endpoint"])
        try:
            resp = self._http.post(
                token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": flow.verifier,
                },
                auth=(self.client_id, self._client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise SignInRefused(f"token endpoint: {type(exc).__name__}", _PROVIDER_DOWN) from None
        if resp.status_code != 200 or len(resp.content) > _MAX_RESPONSE:
            raise SignInRefused(f"token endpoint answered {resp.status_code}: {resp.text[:200]}")
        try:
            id_token = resp.json().get("id_token")
        except (ValueError, AttributeError):
            id_token = None
        if not isinstance(id_token, str):
            raise SignInRefused("the token response has no ID token")
        return self.verify_id_token(id_token, nonce=flow.nonce)

    def verify_id_token(self, id_token: str, *, nonce: str) -> str:
        """The ``sub`` of an ID token this node's client was issued, for ``nonce``."""
        try:
            try:
                token = jwt.decode(id_token, self._jwks.keys(), algorithms=list(_ALGORITHMS))
            except JoseError:
                token = jwt.decode(
                    id_token, self._jwks.keys(refresh=True), algorithms=list(_ALGORITHMS)
                )
            jwt.JWTClaimsRegistry(
                now=int(self._clock()),
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise SignInRefused(f"ID token refused: {type(exc).__name__}: {exc}") from None
        except Unauthenticated as exc:
            raise SignInRefused(f"ID token keys: {exc}", _PROVIDER_DOWN) from None
        azp = token.claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise SignInRefused("ID token issued to another client (azp)")
        sub = token.claims["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= 100:
            raise SignInRefused("ID token subject is not a person id")
        return sub


_START_AGAIN = "This sign-in is not the one your browser started, or it took too long: start again."
_PROVIDER_DOWN = "Your nation's identity provider cannot be reached; try again later."


def relying_party(settings: Settings) -> OidcRelyingParty | None:
    """The node's relying party, or ``None`` without ``RELTO_OIDC_CLIENT_ID``
    (:meth:`~relto.config.Settings.check_console_sign_in` checked the rest at start)."""
    issuer_url = settings.login_issuer if settings.oidc_client_id else None
    if issuer_url is None or not settings.public_url or settings.oidc_client_secret is None:
        return None
    issuer = settings.trusted_issuers[issuer_url]
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return OidcRelyingParty(
        issuer=issuer_url,
        client_id=str(settings.oidc_client_id),
        client_secret=settings.oidc_client_secret.get_secret_value(),
        redirect_uri=settings.public_url.rstrip("/") + "/login/oidc/callback",
        secret_key=secret,
        jwks=HttpJwks(issuer.jwks_url),
    )


def mount(app: FastAPI, pages: Pages, rp: OidcRelyingParty | None = None) -> None:
    settings = pages.node.settings
    rp = rp or relying_party(settings)
    directory = pages.node.directory
    auth = pages.edge.auth

    def refused(request: Request, reason: str, public: str, status: int) -> HTMLResponse:
        log.info("oidc_login_refused", reason=reason)
        response = pages.render(
            request,
            "oidc_refused.html",
            None,
            status_code=status,
            title="Sign-in refused",
            message=public,
            nation=settings.nation,
        )
        auth.clear_cookie(request, response, OIDC_COOKIE)
        return response

    @app.get("/login/oidc", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def oidc_start(request: Request, next: str | None = None) -> Response:
        if rp is None:
            return HTMLResponse("not found", status_code=404)
        flow, cookie = rp.begin(next or "/console")
        try:
            target = rp.authorization_url(flow)
        except SignInRefused as exc:
            return refused(request, str(exc), exc.public, 502)
        response = RedirectResponse(target, status_code=303)
        auth.set_cookie(request, response, OIDC_COOKIE, cookie, FLOW_SECONDS)
        log.info("oidc_login_started", issuer=rp.issuer)
        return response

    @app.get("/login/oidc/callback", include_in_schema=False, **needs(Permission.SESSION_MANAGE))
    def oidc_callback(
        request: Request,
        code: Annotated[str, Query(max_length=2048)] = "",
        state: Annotated[str, Query(max_length=512)] = "",
        iss: Annotated[str | None, Query(max_length=512)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        if rp is None:
            return HTMLResponse("not found", status_code=404)
        try:
            flow = rp.flow(auth.cookie(request, OIDC_COOKIE))
            person_id = rp.finish(flow, code=code, state=state, iss=iss, error=error)
        except SignInRefused as exc:
            return refused(request, str(exc), exc.public, 400)
        person = directory.principal(person_id, via="session")
        if person is None or person.home_nation != settings.nation:
            return refused(
                request,
                f"{person_id[:100]} is not a person of {settings.nation} in this node's directory",
                f"You signed in at your identity provider, but this is the {settings.nation} "
                f"node: only people of {settings.nation} sign in here. Sign in at your own "
                "nation's node; it vouches for you to the others.",
                403,
            )
        response = RedirectResponse(flow.next, status_code=303)
        auth.start_session(request, response, person_id)
        auth.clear_cookie(request, response, OIDC_COOKIE)
        log.info("oidc_login", person=person_id, issuer=rp.issuer)
        return response

    if settings.demo or rp is None:
        return

    @app.get(
        "/login",
        include_in_schema=False,
        response_class=HTMLResponse,
        **needs(Permission.SESSION_MANAGE),
    )
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return pages.render(
            request,
            "oidc_login.html",
            None,
            title="Sign in",
            start=f"/login/oidc?{urlencode({'next': safe_next(next)})}",
            issuer=rp.issuer,
            nation=settings.nation,
        )

    login.mount_sign_out(app, pages)
