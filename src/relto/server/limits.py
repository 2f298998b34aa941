"""Bounds on every request, before any route reads it: body size, sign-in, rate.

:class:`RequestGuard` is pure ASGI middleware in front of the whole app -- the
FastAPI stack and the KAS's front door alike (:class:`relto.server.front.ReltoApp`).
For each request it finds the route's :class:`RoutePolicy` (built once, from the
routes and the permission each declares) and, in this order:

1. **rate**: one hit per client address and, when a credential is presented, one
   per credential (sign-in: per address only); over the limit, 429 with
   ``Retry-After``;
2. **size**: a ``Content-Length`` above the route's limit is 413 at once; a body
   without one is counted as it streams and refused with 413 when it passes the
   limit (the route then sees a disconnect and nothing more);
3. **sign-in**: a JSON API or KAS route whose permission is not public, asked with
   a method that carries a body and no credential at all (no ``Authorization``,
   no session cookie in demo mode), is 401 without its body being read.

Credentials are only looked at, never verified here: the route verifies them. The
per-credential bucket is keyed by a digest of the credential as presented, so a
forged token can only spend its own budget, never a real person's (ADR 0081).

The client address is the socket peer, unless that peer is a trusted proxy
(``RELTO_TRUSTED_PROXIES``): then the right-most ``X-Forwarded-For`` address that
is not itself a trusted proxy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter, RateLimiter
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relto.authz import RULES, RuleKind
from relto.config import Settings
from relto.server.edge import declared_permission
from relto.server.errors import error_body

__all__ = [
    "FORM_OVERHEAD",
    "Guard",
    "Limits",
    "RequestGuard",
    "RoutePolicy",
    "client_address",
    "policies_for",
]

#: Room for the form fields around an uploaded file (multipart boundaries, title...).
FORM_OVERHEAD = 64 * 1024
#: Routes whose body is a document upload (``max_upload_bytes``, not ``max_body_bytes``).
UPLOAD_ROUTES = frozenset(
    {
        ("POST", "/api/v1/objects"),
        ("POST", "/console/documents/new"),
        # a leaked file to trace (held in memory, bounded again by the route)
        ("POST", "/api/v1/trace"),
        ("POST", "/console/trace"),
    }
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SESSION_COOKIE = b"relto_session="
#: Where people sign in (the demo picker, the console's sign-in form).
_SIGN_IN = frozenset({"/login", "/console/login"})


@dataclass(frozen=True)
class RoutePolicy:
    """What the guard enforces on one route."""

    #: Largest body accepted, in bytes.
    max_body: int
    #: Which rate limit applies: ``"api"``, ``"kas"``, ``"login"`` or ``None``.
    rate: str | None
    #: 401 before the body is read when no credential is presented.
    needs_credential: bool
    #: Errors in the Connect protocol's shape (the KAS) rather than relto's.
    connect: bool = False


def _rate_class(method: str, path: str) -> str | None:
    if path.startswith("/kas."):
        return "kas"
    if path.startswith("/api/"):
        return "api"
    if method == "POST" and path in _SIGN_IN:
        return "login"
    return None


def _flatten(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flatten(included.routes)
        else:
            yield route


def policies_for(
    routes: Sequence[BaseRoute], *, max_body: int, max_upload: int
) -> tuple[dict[tuple[str, str], RoutePolicy], list[tuple[re.Pattern[str], str, RoutePolicy]]]:
    """The policy of every route: exact paths in a dict, templated ones as regexes."""
    exact: dict[tuple[str, str], RoutePolicy] = {}
    templated: list[tuple[re.Pattern[str], str, RoutePolicy]] = []
    for route in _flatten(routes):
        path = str(getattr(route, "path", ""))
        regex = getattr(route, "path_regex", None)
        methods: Iterable[str] = (
            ("*",) if isinstance(route, Mount) else getattr(route, "methods", None) or ()
        )
        permission = declared_permission(route)
        public = permission is None or RULES[permission].kind is RuleKind.PUBLIC
        api = path.startswith(("/api/", "/kas."))
        for method in methods:
            policy = RoutePolicy(
                max_body=max_upload if (method, path) in UPLOAD_ROUTES else max_body,
                rate=_rate_class(method, path),
                needs_credential=api and not public and method in _BODY_METHODS,
                connect=path.startswith("/kas."),
            )
            if "{" in path or isinstance(route, Mount):
                if regex is not None:
                    templated.append((regex, method, policy))
            else:
                exact.setdefault((method, path), policy)
    return exact, templated


def client_address(peer: str, forwarded: str | None, trusted: Sequence[Any]) -> str:
    """The client's address: the socket ``peer``, or behind trusted proxies the
    right-most ``X-Forwarded-For`` entry that is not a trusted proxy itself."""
    if not trusted or not forwarded or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


def _in(address: str, networks: Sequence[Any]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class Limits:
    """The node's rate limits, in memory (one set per server process)."""

    def __init__(self, settings: Settings) -> None:
        storage = MemoryStorage()
        self._fixed: RateLimiter = FixedWindowRateLimiter(storage)
        self._moving: RateLimiter = MovingWindowRateLimiter(storage)
        self.items: dict[str, RateLimitItem] = {}
        for name, value in (
            ("login", settings.rate_limit_login),
            ("api", settings.rate_limit_api),
            ("kas", settings.rate_limit_kas),
        ):
            if value != "off":
                self.items[name] = parse(value)

    def _limiter(self, name: str) -> RateLimiter:
        # Sign-in is small and strict: a moving window, no burst at a window's edge.
        # The API and the KAS take a fixed window: one counter, O(1) per hit.
        return self._moving if name == "login" else self._fixed

    def hit(self, name: str, address: str, credential: str | None) -> float | None:
        """``None`` when allowed, else the seconds to wait before trying again."""
        item = self.items.get(name)
        if item is None:
            return None
        limiter = self._limiter(name)
        if not limiter.hit(item, name, "addr", address):
            return self._retry_after(limiter, item, name, "addr", address)
        if (
            credential is not None
            and name != "login"
            and not limiter.hit(item, name, "cred", credential)
        ):
            return self._retry_after(limiter, item, name, "cred", credential)
        return None

    @staticmethod
    def _retry_after(limiter: RateLimiter, item: RateLimitItem, *ids: str) -> float:
        reset = limiter.get_window_stats(item, *ids).reset_time
        return max(1.0, reset - time.time())


class Guard:
    """What :class:`RequestGuard` enforces, built once from the settings and the
    app's routes (after every adapter has mounted its own); shared by the FastAPI
    stack and the front door, so both count against the same limits."""

    def __init__(self, settings: Settings, routes: Sequence[BaseRoute], *, max_upload: int) -> None:
        self.demo = settings.demo
        self.default = RoutePolicy(
            max_body=settings.max_body_bytes, rate=None, needs_credential=False
        )
        self.exact, self.templated = policies_for(
            routes, max_body=settings.max_body_bytes, max_upload=max_upload
        )
        self.limits = Limits(settings)
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]

    def policy(self, method: str, path: str) -> RoutePolicy:
        hit = self.exact.get((method, path))
        if hit is not None:
            return hit
        for regex, m, policy in self.templated:
            if (m == method or m == "*") and regex.match(path):
                return policy
        if path.startswith("/kas."):
            return RoutePolicy(self.default.max_body, "kas", False, connect=True)
        return RoutePolicy(self.default.max_body, _rate_class(method, path), False)


class RequestGuard:
    """Pure ASGI middleware: rate, size and sign-in bounds before any route runs."""

    def __init__(self, app: ASGIApp, *, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.guard
        method: str = scope["method"]
        policy = guard.policy(method, scope["path"])
        length: bytes | None = None
        authorization: bytes | None = None
        forwarded: bytes | None = None
        has_session = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"cookie":
                has_session = has_session or _SESSION_COOKIE in value
            elif name == b"x-forwarded-for":
                forwarded = value
        # Any session cookie counts (also "__Host-relto_session"): only presence is checked.
        has_credential = bool(authorization) or has_session

        if policy.rate is not None:
            client = scope.get("client")
            peer = client[0] if client else ""
            address = (
                client_address(peer, forwarded.decode("latin-1"), guard.trusted)
                if forwarded is not None and guard.trusted
                else peer
            )
            credential = (
                hashlib.blake2b(authorization, digest_size=16).hexdigest()
                if authorization
                else None
            )
            wait = guard.limits.hit(policy.rate, address, credential)
            if wait is not None:
                await _refuse(
                    scope,
                    send,
                    policy,
                    429,
                    "rate_limited",
                    "too many requests; try again later",
                    headers={"retry-after": str(math.ceil(wait))},
                )
                return

        if length is not None:
            if not length.isdigit():
                await _refuse(scope, send, policy, 400, "bad_request", "bad Content-Length")
                return
            if int(length) > policy.max_body:
                await _refuse(scope, send, policy, 413, "too_large", _too_large(policy))
                return

        if policy.needs_credential and not has_credential:
            await _refuse(
                scope,
                send,
                policy,
                401,
                "unauthenticated",
                "authentication required",
                headers={"www-authenticate": 'Bearer realm="relto"'},
            )
            return

        if length is not None:
            # Declared and within the limit: the server stops at the declared length.
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, policy)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, policy: RoutePolicy
    ) -> None:
        """A body of unknown length: count it, and refuse it once it passes the limit."""
        received = 0
        started = False
        refused = False

        async def receive_counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > policy.max_body:
                    refused = True
                    if not started:
                        await _refuse(scope, send_app, policy, 413, "too_large", _too_large(policy))
                    return {"type": "http.disconnect"}
            return message

        async def send_app(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def send_unless_refused(message: Message) -> None:
            if not refused:
                await send_app(message)

        try:
            await self.app(scope, receive_counted, send_unless_refused)
        except Exception:
            if not refused:
                raise
            # The route gave up on a body it was not given: already answered.


_CONNECT = {
    401: ("unauthenticated", "unauthenticated"),
    413: ("resource_exhausted", "message too large"),
    429: ("resource_exhausted", "too many requests"),
}


def _too_large(policy: RoutePolicy) -> str:
    return f"the request body is larger than {policy.max_body} bytes"


async def _refuse(
    scope: Scope,
    send: Send,
    policy: RoutePolicy,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer at once, in the route's error shape; the body is never read.

    ``connection: close`` because the unread body is still on its way: the server
    would otherwise have to read and throw it away before the next request.
    """
    all_headers = {"connection": "close", **(headers or {})}
    if policy.connect:
        # The KAS's own opaque Connect errors (relto.server.routes.kas).
        connect_code, connect_message = _CONNECT.get(
            status, ("invalid_argument", "invalid request")
        )
        body: dict[str, Any] = {"code": connect_code, "message": connect_message}
    else:
        body = error_body(code, message, Request(scope))

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await JSONResponse(body, status_code=status, headers=all_headers)(scope, no_body, send)
