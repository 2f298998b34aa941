"""Sign-in hand-off for programs: an access token of the person's own nation's
identity provider, bound to their DPoP key, for their home node.

:func:`sign_in` runs the OAuth 2.0 authorization code flow for native apps
(RFC 8252): a one-shot HTTP listener on a loopback port receives the redirect,
PKCE (S256) and ``state`` protect the code, and the code is redeemed with a DPoP
proof (RFC 9449) so the token carries ``cnf.jkt`` of the person's key and is
useless without it. The browser is the person's own: ``open_browser`` gets the
authorization URL (default: :func:`webbrowser.open`, which honours ``$BROWSER``).

:class:`SavedSession` keeps the result (token, key, home node) in a file only the
person can read (mode 0600), for the command line's online commands.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc.jwk import ECKey

from relto.client._dpop import DpopKey
from relto.client.errors import ClientError, NodeUnreachable, NotAuthenticated

__all__ = ["SavedSession", "SignInResult", "default_session_path", "sign_in"]

_TIMEOUT = 10.0
_MAX_JSON = 256 * 1024


@dataclass(frozen=True)
class SignInResult:
    """An access token, its type (``DPoP``) and when it expires."""

    access_token: str
    token_type: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _discover(issuer: str, http: httpx.Client) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        resp = http.get(url)
    except httpx.HTTPError as exc:
        raise NodeUnreachable(f"identity provider unreachable ({type(exc).__name__})") from None
    if resp.status_code != 200 or len(resp.content) > _MAX_JSON:
        raise NodeUnreachable(f"identity provider discovery answered HTTP {resp.status_code}")
    doc = resp.json()
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        raise ClientError("the discovery document names another issuer")
    for name in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(doc.get(name), str):
            raise ClientError(f"the discovery document has no {name}")
    return doc


class _Inbox:
    """Where the one redirect lands."""

    def __init__(self) -> None:
        self.got: dict[str, str] | None = None
        self.done = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Callback(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/callback" or inbox.done.is_set():
                    self.send_error(404)
                    return
                inbox.got = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = b"Signed in: you may close this window and return to the command line.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                inbox.done.set()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Callback


def sign_in(
    issuer: str,
    client_id: str,
    dpop: DpopKey,
    *,
    open_browser: Callable[[str], object] = webbrowser.open,
    timeout: float = 300.0,
    transport: httpx.BaseTransport | None = None,
) -> SignInResult:
    """Sign the person in at ``issuer`` (a public client ``client_id`` registered
    with the loopback redirect URI ``http://127.0.0.1/callback``, any port)."""
    with httpx.Client(timeout=_TIMEOUT, transport=transport, follow_redirects=False) as http:
        doc = _discover(issuer, http)
        inbox = _Inbox()
        server = HTTPServer(("127.0.0.1", 0), inbox.handler())
        port = server.server_address[1]
        redirect_uri = f"http://127.0.0.1:{port}/callback"
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(24)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid",
                "state": state,
                "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
                "code_challenge_method": "S256",
                "dpop_jkt": dpop.thumbprint,
            }
        )
        endpoint = str(doc["authorization_endpoint"])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            open_browser(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}")
            if not inbox.done.wait(timeout):
                raise ClientError(f"no sign-in came back within {timeout:.0f} s")
        finally:
            server.shutdown()
            server.server_close()
        got = inbox.got or {}
        if not secrets.compare_digest(got.get("state", ""), state):
            raise ClientError("the sign-in came back for another request (state)")
        if got.get("iss") not in (None, issuer):
            raise ClientError("the sign-in came back from another issuer")
        if "error" in got:
            raise NotAuthenticated(f"the identity provider refused: {got['error'][:100]}")
        token_url = str(doc["token_endpoint"])
        try:
            resp = http.post(
                token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": got.get("code", ""),
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                    "client_id": client_id,
                },
                headers={"DPoP": dpop.proof("POST", token_url), "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"token endpoint unreachable ({type(exc).__name__})") from None
        if resp.status_code != 200 or len(resp.content) > _MAX_JSON:
            raise NotAuthenticated(f"the token endpoint answered HTTP {resp.status_code}")
        data = resp.json()
        token, kind = data.get("access_token"), str(data.get("token_type", ""))
        if not isinstance(token, str) or kind.lower() != "dpop":
            raise ClientError("the identity provider did not issue a DPoP-bound access token")
        lifetime = int(data.get("expires_in", 300))
        return SignInResult(token, kind, datetime.now(UTC) + timedelta(seconds=lifetime))


def default_session_path() -> Path:
    """``$RELTO_CLIENT_SESSION``, else ``~/.config/relto/session.json``."""
    found = os.environ.get("RELTO_CLIENT_SESSION")
    if found:
        return Path(found)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "relto" / "session.json"


@dataclass(frozen=True)
class SavedSession:
    """What ``relto login`` keeps: the home node, the token and the key it is bound to."""

    home_url: str
    nation: str
    issuer: str
    access_token: str
    expires_at: datetime
    dpop: DpopKey

    def save(self, path: Path) -> None:
        """Write the session, readable by the person only (mode 0600, atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {
            "home_url": self.home_url,
            "nation": self.nation,
            "issuer": self.issuer,
            "access_token": self.access_token,
            "expires_at": self.expires_at.isoformat(),
            "dpop_key": self.dpop.key.as_dict(private=True),
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SavedSession:
        """The saved session; :class:`NotAuthenticated` when there is none, it is
        unreadable, or it expired (sign in again)."""
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            key = ECKey.import_key(d["dpop_key"])
            session = cls(
                home_url=str(d["home_url"]),
                nation=str(d["nation"]),
                issuer=str(d["issuer"]),
                access_token=str(d["access_token"]),
                expires_at=datetime.fromisoformat(d["expires_at"]),
                dpop=DpopKey(key),
            )
        except FileNotFoundError:
            raise NotAuthenticated(f"not signed in (no {path}): run `relto login`") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise NotAuthenticated(f"{path} is unreadable: run `relto login` again") from None
        if session.expires_at <= datetime.now(UTC):
            raise NotAuthenticated("the sign-in expired: run `relto login` again")
        return session

    @staticmethod
    def forget(path: Path) -> bool:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            return True
        return False
