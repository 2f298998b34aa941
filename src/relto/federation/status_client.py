"""Reading a partner's Token Status List (draft-ietf-oauth-status-list-20), as a
relying node does before it believes an attestation.

:class:`StatusListCache` fetches the Status List Token an attestation's
``status.status_list.uri`` names, verifies it, caches it per URI and answers the
status at the attestation's index. It fails closed: when it cannot have a
verified list fetched less than ``stale_limit`` ago it raises
:class:`~relto.federation.errors.StatusUnavailable`, and the attestation is refused.

A token is believed only when

- the URI lies under the base URL of the **pinned** node of the person's home
  nation (a signed attestation cannot send this node to fetch anything else);
- it is a compact JWS with header ``typ`` ``statuslist+jwt`` and a ``kid`` naming
  an attestation key of that pinned descriptor, whose signature verifies (a
  pinned descriptor past its validity vouches for nothing);
- its claims are exactly ``sub``, ``iat``, ``exp``, ``ttl`` (optional) and
  ``status_list: {bits, lst[, aggregation_uri]}``; ``sub`` equals the URI;
- ``exp`` is not past and ``iat`` is neither ahead of this node's clock nor older
  than ``stale_limit``, both beyond the 2 minutes of clock skew tolerated; an
  older list than the one cached is refused (no rollback).

The token is fetched again once ``min(ttl, max_age)`` has passed since it was
fetched; when that fails, the cached list serves until ``stale_limit`` after its
fetch, then nothing does. A failed fetch is not retried for 2 seconds (a node that
is down is not hammered, nor does every decision wait on its timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog

from relto.federation._keys import split_compact, verify_compact
from relto.federation.attestation import StatusReference
from relto.federation.descriptor import CLOCK_SKEW, PinnedNode, check_base_url
from relto.federation.errors import InvalidStatusList, StatusUnavailable
from relto.federation.publisher import STATUS_LIST_TYP
from relto.federation.status import StatusList, TokenStatus

__all__ = [
    "MAX_STATUS_TOKEN_BYTES",
    "STATUS_LIST_MEDIA_TYPE",
    "StatusListCache",
    "http_fetch",
    "verify_status_list_token",
]

log = structlog.stdlib.get_logger("relto.federation")

STATUS_LIST_MEDIA_TYPE = "application/statuslist+jwt"
#: The largest Status List Token fetched (a 1 MiB list compresses well below).
MAX_STATUS_TOKEN_BYTES = 2 * 1024 * 1024
_HEADER = frozenset({"alg", "typ", "kid"})
_CLAIMS = frozenset({"sub", "iat", "exp", "ttl", "status_list"})
_REQUIRED = frozenset({"sub", "iat", "exp", "status_list"})
_LIST_MEMBERS = frozenset({"bits", "lst", "aggregation_uri"})
_MAX_TTL = 24 * 3600
_RETRY_AFTER = timedelta(seconds=2)
#: A list that predates an attestation and does not say VALID is fetched again at
#: most this often (a person attested for the first time, or reinstated, since).
_RECHECK_AFTER = timedelta(seconds=2)
_TIMEOUT = 5.0


class _HasTrusted(Protocol):
    def trusted(self) -> Mapping[str, PinnedNode]: ...


#: Who vouches for a nation: a :class:`~relto.federation.TrustStore` (anything
#: with ``trusted()``), a mapping of pins by nation, or ``nation -> pin or None``.
Trust = _HasTrusted | Mapping[str, PinnedNode] | Callable[[str], PinnedNode | None]


def http_fetch(uri: str) -> bytes:
    """GET ``uri`` (https, or http on a loopback address) with ``Accept:
    application/statuslist+jwt``, 5 s timeout, no redirects, at most
    :data:`MAX_STATUS_TOKEN_BYTES`; the answer must be 200 with that content type.
    :class:`StatusUnavailable` otherwise."""
    try:
        check_base_url(uri)
    except ValueError as exc:
        raise StatusUnavailable(f"a status list is fetched over https only: {exc}") from None
    try:
        with httpx.stream(
            "GET",
            uri,
            headers={"Accept": STATUS_LIST_MEDIA_TYPE},
            timeout=_TIMEOUT,
            follow_redirects=False,
        ) as resp:
            if resp.status_code != 200:
                raise StatusUnavailable(f"the status list answered HTTP {resp.status_code}")
            media = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != STATUS_LIST_MEDIA_TYPE:
                raise StatusUnavailable(f"the status list came as {media[:60]!r}, not a token")
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_STATUS_TOKEN_BYTES:
                    raise StatusUnavailable("the status list token is too large")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise StatusUnavailable(f"the status list is unreachable ({type(exc).__name__})") from None


@dataclass(frozen=True)
class _Verified:
    statuses: StatusList
    issued_at: datetime
    expires_at: datetime
    ttl: timedelta | None


def _time(value: object, name: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**40:
        raise InvalidStatusList(f"the status list token's {name} is not a time in seconds")
    return datetime.fromtimestamp(value, UTC)


def verify_status_list_token(
    token: object, *, uri: str, pin: PinnedNode, now: datetime, stale_limit: timedelta
) -> _Verified:
    """Verify a Status List Token for ``uri`` against ``pin`` (see the module
    docstring); :class:`InvalidStatusList` with a sentence otherwise."""
    try:
        parts = split_compact(token, typ=STATUS_LIST_TYP, header_members=_HEADER)
    except ValueError as exc:
        raise InvalidStatusList(f"not a status list token: {exc}") from None
    d = pin.descriptor
    if d.not_after < now - CLOCK_SKEW:
        raise InvalidStatusList(f"the pinned descriptor of {pin.nation} has expired")
    key = d.attestation_key(str(parts.header.get("kid")))
    if key is None or not verify_compact(parts, key.key):
        raise InvalidStatusList(
            f"the status list is not signed by an attestation key of the pinned {pin.nation} node"
        )
    claims: dict[str, Any] = parts.unverified_claims
    unknown = set(claims) - _CLAIMS
    if unknown:
        raise InvalidStatusList(
            f"the status list token has claims this node does not know: "
            f"{[u[:40] for u in sorted(unknown)[:5]]}"
        )
    missing = _REQUIRED - set(claims)
    if missing:
        raise InvalidStatusList(f"the status list token lacks {sorted(missing)}")
    if claims["sub"] != uri:
        raise InvalidStatusList("the status list token is for another list (sub is not the uri)")
    iat, exp = _time(claims["iat"], "iat"), _time(claims["exp"], "exp")
    if exp <= iat:
        raise InvalidStatusList("the status list token expires before it is issued")
    if iat > now + CLOCK_SKEW:
        raise InvalidStatusList(
            f"the status list is issued at {iat.isoformat()}, more than 2 minutes ahead of "
            f"this node's clock ({now.isoformat()}): check the clocks (clock skew)"
        )
    if exp < now - CLOCK_SKEW:
        raise InvalidStatusList(f"the status list token expired at {exp.isoformat()}")
    if iat < now - CLOCK_SKEW - stale_limit:
        raise InvalidStatusList(
            f"the status list was issued at {iat.isoformat()}: too old to believe "
            "(an old list replayed, or clocks apart beyond the skew tolerated)"
        )
    ttl: timedelta | None = None
    if "ttl" in claims:
        raw = claims["ttl"]
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw <= _MAX_TTL:
            raise InvalidStatusList("the status list token's ttl is not a positive time")
        ttl = timedelta(seconds=raw)
    sl = claims["status_list"]
    if not isinstance(sl, dict) or not {"bits", "lst"} <= set(sl) <= _LIST_MEMBERS:
        raise InvalidStatusList("status_list holds bits and lst")
    bits, lst = sl["bits"], sl["lst"]
    if not isinstance(bits, int) or isinstance(bits, bool) or not isinstance(lst, str):
        raise InvalidStatusList("status_list's bits is a number and lst a string")
    return _Verified(StatusList.decode(lst, bits), iat, exp, ttl)


@dataclass
class _Entry:
    nation: str
    pin_token: str
    verified: _Verified
    fetched_at: datetime


def _value(entry: _Entry, idx: int) -> TokenStatus:
    """The status at ``idx``: values other than VALID and SUSPENDED count as INVALID."""
    value = entry.verified.statuses.status(idx)
    if value in (TokenStatus.VALID, TokenStatus.SUSPENDED):
        return TokenStatus(value)
    return TokenStatus.INVALID


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


class StatusListCache:
    """Statuses of partners' attestations, from their Token Status Lists, cached
    per URI (see the module docstring). Thread-safe; it blocks on the network, except
    :meth:`cached_status`, which answers only from memory.

    ``trust`` is read at every :meth:`status`: on a node the same
    :class:`~relto.federation.trust.PinSnapshot` as the attestations' (ADR 0131)."""

    #: A status read may wait on the network (callers on an event loop use a thread,
    #: or :meth:`cached_status` first).
    blocking = True

    def __init__(
        self,
        trust: Trust,
        fetch: Callable[[str], bytes] = http_fetch,
        max_age: timedelta = timedelta(seconds=30),
        stale_limit: timedelta = timedelta(seconds=60),
    ) -> None:
        if not timedelta(0) < max_age <= stale_limit:
            raise ValueError("max_age is positive and at most stale_limit")
        self._trust = trust
        self._fetch = fetch
        self._max_age = max_age
        self._stale_limit = stale_limit
        self._entries: dict[str, _Entry] = {}
        self._failed: dict[str, datetime] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _pin(self, nation: str) -> PinnedNode | None:
        trust = self._trust
        if isinstance(trust, Mapping):
            return trust.get(nation)
        trusted = getattr(trust, "trusted", None)
        if callable(trusted):
            pins: Mapping[str, PinnedNode] = trusted()
            return pins.get(nation)
        assert callable(trust)
        return trust(nation)

    def _fresh(self, entry: _Entry | None, pin: PinnedNode, nation: str, now: datetime) -> bool:
        if entry is None or entry.nation != nation or entry.pin_token != pin.token:
            return False
        ttl = entry.verified.ttl
        refresh = min(ttl, self._max_age) if ttl is not None else self._max_age
        return timedelta(0) <= now - entry.fetched_at < refresh

    def _usable(self, entry: _Entry | None, pin: PinnedNode, nation: str, now: datetime) -> bool:
        """A cached list that may still serve when a fresh one cannot be had."""
        return (
            entry is not None
            and entry.nation == nation
            and entry.pin_token == pin.token
            and timedelta(0) <= now - entry.fetched_at <= self._stale_limit
            and entry.verified.expires_at >= now - CLOCK_SKEW
        )

    def status(
        self,
        ref: StatusReference,
        issuer_nation: str,
        now: datetime,
        *,
        issued_at: datetime | None = None,
    ) -> TokenStatus:
        """The status at ``ref.idx`` of the list ``ref.uri`` published by the pinned
        node of ``issuer_nation``. :class:`StatusUnavailable` when no verified list
        fetched less than ``stale_limit`` ago can be had; :class:`InvalidStatusList`
        for a reference outside that node or an index outside the list. Values
        other than VALID, INVALID and SUSPENDED count as INVALID.

        ``issued_at`` (the attestation's): a cached list issued before it that does
        not say VALID is fetched again first (at most every :data:`_RECHECK_AFTER`
        per list) -- it may predate the person's first attestation or a
        reinstatement. A list newer than the attestation is believed as it is."""
        now = _aware(now)
        pin = self._checked_pin(self._pin(issuer_nation), ref, issuer_nation)
        entry = self._entries.get(ref.uri)
        if not self._fresh(entry, pin, issuer_nation, now):
            entry = self._refresh(ref.uri, pin, issuer_nation, now)
        assert entry is not None
        value = _value(entry, ref.idx)
        if self._recheck(entry, value, issued_at, now):
            entry = self._refresh(ref.uri, pin, issuer_nation, now, newer_than=issued_at)
            value = _value(entry, ref.idx)
        return value

    @staticmethod
    def _recheck(
        entry: _Entry, value: TokenStatus, issued_at: datetime | None, now: datetime
    ) -> bool:
        """Whether a not-VALID answer comes from a list older than the attestation
        and old enough to ask again."""
        return (
            value != TokenStatus.VALID
            and issued_at is not None
            and entry.verified.issued_at < issued_at
            and not timedelta(0) <= now - entry.fetched_at < _RECHECK_AFTER
        )

    def cached_status(
        self,
        ref: StatusReference,
        issuer_nation: str,
        now: datetime,
        *,
        issued_at: datetime | None = None,
    ) -> TokenStatus | None:
        """:meth:`status` when it needs no I/O -- the pin is in memory (a mapping,
        or a trust with ``cached()`` that answers) and the list is cached and not
        yet due for a refresh: the same answer, or the same exception. ``None``
        otherwise (then call :meth:`status`, off the event loop)."""
        now = _aware(now)
        pins = self._cached_pins()
        if pins is None:
            return None
        pin = self._checked_pin(pins.get(issuer_nation), ref, issuer_nation)
        entry = self._entries.get(ref.uri)
        if entry is None or not self._fresh(entry, pin, issuer_nation, now):
            return None
        value = _value(entry, ref.idx)
        if self._recheck(entry, value, issued_at, now):
            return None
        return value

    def _cached_pins(self) -> Mapping[str, PinnedNode] | None:
        trust = self._trust
        if isinstance(trust, Mapping):
            return trust
        cached = getattr(trust, "cached", None)
        if callable(cached):
            pins: Mapping[str, PinnedNode] | None = cached()
            return pins
        return None  # a store read at every call: it may wait on the database

    @staticmethod
    def _checked_pin(pin: PinnedNode | None, ref: StatusReference, nation: str) -> PinnedNode:
        if pin is None:
            raise StatusUnavailable(f"no pinned node of {nation[:3]!r} publishes statuses")
        base = pin.descriptor.base_url.rstrip("/") + "/"
        if not isinstance(ref.uri, str) or not ref.uri.startswith(base):
            raise InvalidStatusList(
                f"the status list {str(ref.uri)[:80]!r} is not on the pinned {pin.nation} node"
            )
        return pin

    def _refresh(
        self,
        uri: str,
        pin: PinnedNode,
        nation: str,
        now: datetime,
        *,
        newer_than: datetime | None = None,
    ) -> _Entry:
        with self._lock:
            lock = self._locks.setdefault(uri, threading.Lock())
        with lock:  # one fetch per list at a time; the others use its result
            entry = self._entries.get(uri)
            if self._fresh(entry, pin, nation, now) and (
                newer_than is None
                or entry is None
                or entry.verified.issued_at >= newer_than
                or timedelta(0) <= now - entry.fetched_at < _RECHECK_AFTER
            ):
                assert entry is not None
                return entry
            failed = self._failed.get(uri)
            if failed is not None and timedelta(0) <= now - failed < _RETRY_AFTER:
                return self._fallback(entry, pin, nation, now, "the last fetch failed moments ago")
            try:
                verified = verify_status_list_token(
                    self._token(uri),
                    uri=uri,
                    pin=pin,
                    now=now,
                    stale_limit=self._stale_limit,
                )
                if entry is not None and verified.issued_at < entry.verified.issued_at:
                    raise InvalidStatusList("the status list is older than the one cached")
            except InvalidStatusList as exc:
                self._failed[uri] = now
                log.warning("status_list_refused", uri=uri[:200], nation=nation, reason=str(exc))
                return self._fallback(entry, pin, nation, now, str(exc))
            fresh = _Entry(nation, pin.token, verified, now)
            self._entries[uri] = fresh
            self._failed.pop(uri, None)
            return fresh

    def _token(self, uri: str) -> str:
        try:
            body = self._fetch(uri)
        except StatusUnavailable:
            raise
        except Exception as exc:  # a fetch function's own failure: unavailable
            raise StatusUnavailable(f"the status list could not be fetched: {exc}") from None
        if not isinstance(body, bytes | bytearray) or len(body) > MAX_STATUS_TOKEN_BYTES:
            raise StatusUnavailable("the status list token is missing or too large")
        try:
            return bytes(body).decode("ascii").strip()
        except UnicodeDecodeError:
            raise InvalidStatusList("the status list token is not ASCII") from None

    def _fallback(
        self, entry: _Entry | None, pin: PinnedNode, nation: str, now: datetime, why: str
    ) -> _Entry:
        if self._usable(entry, pin, nation, now):
            assert entry is not None
            return entry
        raise StatusUnavailable(
            f"no verified status list of the {nation} node newer than "
            f"{int(self._stale_limit.total_seconds())} s: {why}"
        )
