"""StatusListCache: a relying node reads a home node's Token Status List and fails
closed on anything it cannot verify or fetch in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relto.federation import PinnedNode, SigningKey, StatusList, StatusReference, TokenStatus
from relto.federation._keys import sign_compact
from relto.federation.errors import InvalidStatusList, StatusUnavailable
from relto.federation.status_client import StatusListCache

from .conftest import NOW, FakeNode

URI = "https://relto.usa.example/api/v1/federation/status/1"


def status_token(
    node: FakeNode,
    statuses: list[int],
    *,
    at: datetime = NOW,
    key: SigningKey | None = None,
    kid: str = "att-1",
    typ: str = "statuslist+jwt",
    **overrides: Any,
) -> bytes:
    iat = int(at.timestamp())
    claims: dict[str, Any] = {
        "sub": URI,
        "iat": iat,
        "exp": iat + 300,
        "ttl": 30,
        "status_list": {"bits": 1, "lst": StatusList.of(statuses).encode()},
    }
    claims.update(overrides)
    return sign_compact(key or node.attestation, {"typ": typ, "kid": kid}, claims).encode()


class Home:
    """The USA node's status endpoint, in process: what it serves, and how often asked."""

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.body: bytes | Exception = status_token(node, [0, 1, 0])
        self.calls = 0

    def fetch(self, uri: str) -> bytes:
        self.calls += 1
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


@pytest.fixture
def pins(usa: FakeNode) -> dict[str, PinnedNode]:
    return {"USA": usa.pinned()}


def ref(idx: int = 0, uri: str = URI) -> StatusReference:
    return StatusReference(idx, uri)


def test_valid_and_revoked_entries_read_from_a_verified_list(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.VALID
    assert cache.status(ref(1), "USA", NOW) is TokenStatus.INVALID
    assert home.calls == 1  # cached per URI


def test_revocation_seen_once_the_cached_list_is_older_than_its_ttl(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.VALID
    home.body = status_token(usa, [1, 1, 0], at=NOW + timedelta(seconds=20))
    assert cache.status(ref(0), "USA", NOW + timedelta(seconds=29)) is TokenStatus.VALID
    assert cache.status(ref(0), "USA", NOW + timedelta(seconds=30)) is TokenStatus.INVALID


def test_forged_status_list_refused(usa: FakeNode, pins: dict[str, PinnedNode]) -> None:
    home = Home(usa)
    home.body = status_token(usa, [0, 0, 0], key=SigningKey.generate("P-256"))
    with pytest.raises(StatusUnavailable, match="not signed by an attestation key"):
        StatusListCache(pins, home.fetch).status(ref(1), "USA", NOW)


def test_status_list_signed_by_another_nations_node_refused(
    usa: FakeNode, gbr: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    home.body = status_token(gbr, [0, 0, 0])
    with pytest.raises(StatusUnavailable):
        StatusListCache({**pins, "GBR": gbr.pinned()}, home.fetch).status(ref(1), "USA", NOW)


def test_node_key_cannot_sign_status_lists(usa: FakeNode, pins: dict[str, PinnedNode]) -> None:
    home = Home(usa)
    home.body = status_token(usa, [0, 0, 0], key=usa.node_key, kid=usa.node_key.fingerprint)
    with pytest.raises(StatusUnavailable):
        StatusListCache(pins, home.fetch).status(ref(1), "USA", NOW)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"sub": "https://relto.usa.example/api/v1/federation/status/2"}, "another list"),
        ({"typ": "JWT"}, "typ"),
        ({"iat": int(NOW.timestamp()) - 250, "exp": int(NOW.timestamp()) - 200}, "expired"),
        ({"iat": int(NOW.timestamp()) + 600, "exp": int(NOW.timestamp()) + 900}, "clock skew"),
        ({"ttl": -1}, "ttl"),
        ({"aud": "x"}, "does not know"),
        ({"status_list": {"bits": 3, "lst": "eNrbuRgAAhcBXQ"}}, "bits"),
    ],
)
def test_malformed_or_mismatched_status_list_refused(
    usa: FakeNode, pins: dict[str, PinnedNode], overrides: dict[str, Any], why: str
) -> None:
    home = Home(usa)
    typ = overrides.pop("typ", "statuslist+jwt")
    home.body = status_token(usa, [0, 0, 0], typ=typ, **overrides)
    with pytest.raises(StatusUnavailable, match=why):
        StatusListCache(pins, home.fetch).status(ref(0), "USA", NOW)


def test_old_status_list_replayed_is_refused(usa: FakeNode, pins: dict[str, PinnedNode]) -> None:
    """A list from before a revocation, replayed later, is too old to believe."""
    home = Home(usa)
    home.body = status_token(usa, [0], at=NOW - timedelta(minutes=4))
    with pytest.raises(StatusUnavailable, match="too old"):
        StatusListCache(pins, home.fetch).status(ref(0), "USA", NOW)


def test_rollback_to_an_older_list_than_the_cached_one_refused(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    home.body = status_token(usa, [1], at=NOW)
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.INVALID
    home.body = status_token(usa, [0], at=NOW - timedelta(seconds=10))  # the list before
    later = NOW + timedelta(seconds=31)
    assert cache.status(ref(0), "USA", later) is TokenStatus.INVALID  # the cached one stands
    with pytest.raises(StatusUnavailable, match="older than the one cached"):
        cache.status(ref(0), "USA", NOW + timedelta(seconds=62))


def test_unreachable_home_node_serves_the_cached_list_until_the_stale_limit(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.VALID
    home.body = ConnectionError("USA node down")
    assert cache.status(ref(0), "USA", NOW + timedelta(seconds=45)) is TokenStatus.VALID
    calls = home.calls
    # A failed fetch is not retried at once: the next decision does not wait on it.
    assert cache.status(ref(0), "USA", NOW + timedelta(seconds=46)) is TokenStatus.VALID
    assert home.calls == calls
    with pytest.raises(StatusUnavailable, match="newer than 60 s"):
        cache.status(ref(0), "USA", NOW + timedelta(seconds=61))


def test_unreachable_home_node_without_a_cached_list_fails_closed(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    home.body = TimeoutError("timed out")
    with pytest.raises(StatusUnavailable):
        StatusListCache(pins, home.fetch).status(ref(0), "USA", NOW)


def test_status_uri_outside_the_pinned_node_is_never_fetched(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    """A signed attestation cannot make this node fetch another host (SSRF)."""
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    for uri in ("http://169.254.169.254/latest", "https://relto.usa.example.evil/status/1",
                "https://relto.usa.example@evil/status"):  # fmt: skip
        with pytest.raises(InvalidStatusList):
            cache.status(ref(0, uri), "USA", NOW)
    assert home.calls == 0


def test_unpinned_nation_has_no_status(usa: FakeNode) -> None:
    home = Home(usa)
    with pytest.raises(StatusUnavailable, match="no pinned node"):
        StatusListCache({}, home.fetch).status(ref(0), "USA", NOW)
    assert home.calls == 0


def test_untrusting_a_node_stops_its_cached_list_at_once(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    trusted = dict(pins)
    cache = StatusListCache(lambda nation: trusted.get(nation), home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.VALID
    trusted.clear()
    with pytest.raises(StatusUnavailable):
        cache.status(ref(0), "USA", NOW + timedelta(seconds=1))


def test_index_outside_the_list_refused(usa: FakeNode, pins: dict[str, PinnedNode]) -> None:
    home = Home(usa)
    with pytest.raises(InvalidStatusList, match="outside the status list"):
        StatusListCache(pins, home.fetch).status(ref(8), "USA", NOW)


def test_application_specific_status_counts_as_invalid(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    iat = int(NOW.timestamp())
    lst = StatusList.of([2, 3], bits=2).encode()
    claims = {"sub": URI, "iat": iat, "exp": iat + 300, "ttl": 30,
              "status_list": {"bits": 2, "lst": lst}}  # fmt: skip
    header = {"typ": "statuslist+jwt", "kid": "att-1"}
    home.body = sign_compact(usa.attestation, header, claims).encode()
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.SUSPENDED
    assert cache.status(ref(1), "USA", NOW) is TokenStatus.INVALID


def test_plain_http_status_list_refused_off_loopback() -> None:
    from relto.federation.status_client import http_fetch

    with pytest.raises(StatusUnavailable, match="https"):
        http_fetch("http://relto.usa.example/api/v1/federation/status/1")


def test_time_must_be_timezone_aware(usa: FakeNode, pins: dict[str, PinnedNode]) -> None:
    with pytest.raises(ValueError):
        StatusListCache(pins, Home(usa).fetch).status(ref(0), "USA", datetime(2026, 12, 1))
    cache = StatusListCache(pins, Home(usa).fetch)
    assert cache.status(ref(0), "USA", NOW.astimezone(UTC)) is TokenStatus.VALID


def test_person_first_attested_after_the_list_was_cached_is_not_taken_for_revoked(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    """The list cached at NOW does not know index 1 yet (a person registered since);
    an attestation issued after it makes the cache ask again before refusing."""
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    assert cache.status(ref(0), "USA", NOW) is TokenStatus.VALID
    home.body = status_token(usa, [0, 0, 0], at=NOW + timedelta(seconds=10))
    later = NOW + timedelta(seconds=11)
    assert cache.cached_status(ref(1), "USA", later, issued_at=later) is None  # needs a fetch
    assert cache.status(ref(1), "USA", later, issued_at=later) is TokenStatus.VALID
    assert home.calls == 2


def test_revocation_after_the_attestation_is_believed_without_asking_again(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    issued = NOW - timedelta(seconds=30)  # the attestation predates the list
    assert cache.status(ref(1), "USA", NOW, issued_at=issued) is TokenStatus.INVALID
    assert cache.cached_status(ref(1), "USA", NOW, issued_at=issued) is TokenStatus.INVALID
    assert home.calls == 1


def test_asking_again_for_newer_attestations_is_bounded(
    usa: FakeNode, pins: dict[str, PinnedNode]
) -> None:
    """A home node that keeps vouching for someone its list calls INVALID cannot make
    a partner fetch the list on every request: at most once every 2 s per list."""
    home = Home(usa)
    cache = StatusListCache(pins, home.fetch)
    for i in range(10):
        at = NOW + timedelta(milliseconds=100 * i)
        assert cache.status(ref(1), "USA", at, issued_at=at) is TokenStatus.INVALID
    assert home.calls == 1
    at = NOW + timedelta(seconds=2, milliseconds=100)
    assert cache.status(ref(1), "USA", at, issued_at=at) is TokenStatus.INVALID
    assert home.calls == 2
