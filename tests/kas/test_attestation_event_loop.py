"""Attestation rewraps on the KAS's event loop (ADR 0131).

A partner's attestation is checked inline (DPoP proof, the attestation's signature
against the pinned node, ``cnf`` binding, the cached status) when the pins and the
status list are in memory; a pin reload or a status list fetch sends the whole
rewrap to a worker thread, as a JWKS fetch does for an OIDC token. Either way the
same checks give the same refusals. An untrust made through this process's trust
store stops the partner at the next request; one made elsewhere (another worker,
the CLI) within the snapshot's 1 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kas_testing import DpopKey, client_keys, make_kao, policy_b64, request_body

from relto.audit.note import NoteSigner
from relto.authz import Authorizer, Principal
from relto.events import MemorySink
from relto.federation import (
    AttestationKey,
    AttestationSigner,
    AttestedPerson,
    KasKey,
    MemoryPinRepository,
    PinnedNode,
    PinSnapshot,
    SigningKey,
    StatusList,
    StatusReference,
    TrustStore,
    make_attestation,
    make_descriptor,
)
from relto.federation._keys import sign_compact
from relto.federation.acceptance import AttestationAcceptor
from relto.federation.errors import InvalidStatusList, StatusUnavailable
from relto.federation.status_client import StatusListCache
from relto.kas import KasDecision, RewrapFacts
from relto.kas.auth import AttestationAuthenticator, MemoryReplayCache
from relto.kas.config import KasSettings
from relto.kas.errors import Unauthenticated
from relto.kas.filestore import FileKeyStore
from relto.kas.runtime import KasRuntime
from relto.kas.service import KasService
from relto.store import create_database
from relto.store.federation import SqlPinRepository

URL = "http://kas.test/kas.AccessService/Rewrap"
USA = "https://relto.usa.example"
STATUS_URI = f"{USA}/api/v1/federation/status/1"
OFFICER = Principal("gbr-so", "Officer", "GBR", frozenset({"GBR"}),
                    frozenset({("security_officer", "GBR")}), "test")  # fmt: skip


class ComputingDecider:
    blocking = False

    def __init__(self) -> None:
        self.threads: list[str] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.threads.append(threading.current_thread().name)
        return KasDecision(True)


class CountingRepo(MemoryPinRepository):
    """The pins' storage; every read counted (on a node, a database query)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def all(self) -> list[PinnedNode]:
        self.reads.append(threading.current_thread().name)
        return super().all()


@dataclass
class Home:
    """The USA node: its keys, and its status list endpoint in process."""

    node_key: SigningKey = field(default_factory=SigningKey.generate)
    att_key: SigningKey = field(default_factory=lambda: SigningKey.generate("P-256"))
    statuses: list[int] = field(default_factory=lambda: [0, 0])
    fetches: list[str] = field(default_factory=list)

    def descriptor(self, at: datetime) -> str:
        _, kas_pem = client_keys("ec")
        return make_descriptor(
            nation="USA",
            base_url=USA,
            node_key=self.node_key.public,
            kas_keys=[KasKey("kas-ec-1", "ec:secp256r1", kas_pem)],
            log_key=NoteSigner.generate("relto/usa/audit").verifier().vkey,
            witness_key=NoteSigner.generate("relto/usa/witness").cosignature_verifier().vkey,
            attestation_keys=[AttestationKey("att-1", self.att_key.public)],
            issued_at=at,
            not_after=at + timedelta(days=30),
            signing_key=self.node_key,
        )

    def fetch(self, uri: str) -> bytes:
        self.fetches.append(threading.current_thread().name)
        iat = int(time.time())
        claims = {
            "sub": uri,
            "iat": iat,
            "exp": iat + 300,
            "ttl": 30,
            "status_list": {"bits": 1, "lst": StatusList.of(self.statuses).encode()},
        }
        return sign_compact(
            self.att_key, {"typ": "statuslist+jwt", "kid": "att-1"}, claims
        ).encode()

    def attestation(self, key: DpopKey, *, signer: SigningKey | None = None, **kw: Any) -> str:
        args: dict[str, Any] = {
            "cnf_jkt": key.thumbprint(),
            "signer": AttestationSigner("att-1", signer or self.att_key),
            "issuer": USA,
            "now": datetime.now(UTC),
            "status": StatusReference(0, STATUS_URI),
        }
        args.update(kw)
        return make_attestation(AttestedPerson("usa-eng", "USA", frozenset({"USA"})), **args)


@dataclass
class Gbr:
    """The GBR KAS that pinned the USA node."""

    runtime: KasRuntime
    trust: TrustStore
    snapshot: PinSnapshot
    decider: ComputingDecider
    store: FileKeyStore
    sink: MemorySink


def _gbr(file_store: FileKeyStore, home: Home, repo: Any, *, clock: Any = time.monotonic) -> Gbr:
    sink = MemorySink()
    trust = TrustStore(repo, Authorizer(sink), sink, "GBR")
    now = datetime.now(UTC)
    if not trust.trusted():
        trust.pin(
            home.descriptor(now - timedelta(minutes=1)),
            fingerprint=home.node_key.fingerprint,
            actor=OFFICER,
            now=now,
        )
    snapshot = PinSnapshot(trust, clock=clock)
    acceptor = AttestationAcceptor(
        snapshot.trusted, StatusListCache(snapshot, fetch=home.fetch), cached=snapshot.cached
    )
    file_store.rotate("ec:secp256r1", at=now)
    decider = ComputingDecider()
    service = KasService(store=file_store, sink=sink, decider=decider)
    attestations = AttestationAuthenticator(acceptor, replay=MemoryReplayCache())
    runtime = KasRuntime(service=service, settings=KasSettings(), attestations=attestations)
    return Gbr(runtime, trust, snapshot, decider, file_store, sink)


def _args(gbr: Gbr, key: DpopKey, token: str, *, proof: str | None = None) -> dict[str, Any]:
    info = gbr.store.active("ec:secp256r1")
    policy = policy_b64()
    kao, _ = make_kao(info.public_key_pem, info.kid, policy, ec_key=True)
    _, client_pem = client_keys("ec")
    now = int(time.time())
    srt = key.sign(
        {"requestBody": request_body(client_pem, policy, [kao]), "iat": now, "exp": now + 60}
    )
    return {
        "srt": srt,
        "authorization": f"DPoP {token}",
        "dpop": proof or key.proof(URL, token),
        "method": "POST",
        "url": URL,
        "at": datetime.now(UTC),
        "request_id": "r1",
    }


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every ``asyncio.to_thread`` call, by the name of what it ran."""
    hops: list[str] = []
    real = asyncio.to_thread

    async def counting(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", None) or type(func).__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    yield hops


def _status(result: Any) -> str:
    return str(result.responses[0].results[0].status)


def test_cached_attestation_rewrap_never_leaves_the_event_loop(
    file_store: FileKeyStore, thread_hops: list[str]
) -> None:
    """Once the pins and the status list are in memory, an attestation rewrap is
    checked, decided and released on the loop: no thread, no pin read, no fetch."""
    home, repo = Home(), CountingRepo()
    gbr = _gbr(file_store, home, repo, clock=lambda: 1000.0)  # the pins never age here
    key = DpopKey()
    token = home.attestation(key)

    async def main() -> tuple[list[str], str]:
        first = await gbr.runtime.handle_rewrap_async(**_args(gbr, key, token))
        cold = list(thread_hops)
        reads, fetches = len(repo.reads), len(home.fetches)
        for _ in range(3):
            warm = await gbr.runtime.handle_rewrap_async(**_args(gbr, key, token))
            assert _status(warm) == "permit"
        assert (len(repo.reads), len(home.fetches)) == (reads, fetches)  # nothing read
        assert _status(first) == "permit"
        return cold, threading.current_thread().name

    cold, loop_thread = asyncio.run(main())
    assert cold == ["partial"]  # the first: pins and status list read, off the loop
    assert home.fetches and loop_thread not in home.fetches
    assert thread_hops == cold  # the next three: no thread at all
    assert gbr.decider.threads[1:] == [loop_thread] * 3
    assert [e.payload["allowed"] for e in gbr.sink.events if e.kind == "kas.rewrap"] == [True] * 4


def test_status_list_due_for_refresh_is_fetched_off_the_event_loop(
    file_store: FileKeyStore, thread_hops: list[str]
) -> None:
    home = Home()
    gbr = _gbr(file_store, home, CountingRepo(), clock=lambda: 1000.0)
    key = DpopKey()
    token = home.attestation(key)
    status = gbr.runtime.attestations.acceptor.status  # type: ignore[union-attr]
    assert isinstance(status, StatusListCache)

    async def main() -> str:
        await gbr.runtime.handle_rewrap_async(**_args(gbr, key, token))
        for entry in status._entries.values():  # the list is now 31 s old (ttl 30 s)
            entry.fetched_at -= timedelta(seconds=31)
        home.statuses[0] = 1  # revoked meanwhile
        got = await gbr.runtime.handle_rewrap_async(**_args(gbr, key, token))
        assert _status(got) == "fail"
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(home.fetches) == 2 and loop_thread not in home.fetches
    assert len(thread_hops) == 2
    reasons = [e.payload["reasons"] for e in gbr.sink.events if e.kind == "kas.rewrap"][-1]
    assert [r["code"] for r in reasons] == ["attestation_revoked"]


def _refusal(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(Unauthenticated) as info:
        call()
    return str(getattr(info.value, "reason", "")), str(getattr(info.value, "public", ""))


def _bad(home: Home, case: str) -> tuple[DpopKey, str, str | None]:
    """A caller's key, attestation and DPoP proof, wrong in the way ``case`` says."""
    key = DpopKey()
    if case == "wrong_key":
        token = home.attestation(DpopKey())
    elif case == "expired":
        token = home.attestation(key, now=datetime.now(UTC) - timedelta(minutes=10))
    elif case in ("forged", "replayed_and_forged"):
        token = home.attestation(key, signer=SigningKey.generate("P-256"))
    else:
        token = home.attestation(key)
    if case == "no_proof":
        return key, token, None
    if case == "bad_proof":
        return key, token, key.proof(URL, token, method="GET")
    return key, token, key.proof(URL, token)


@pytest.mark.parametrize(
    "case", ["forged", "expired", "wrong_key", "no_proof", "bad_proof", "replayed_and_forged"]
)
def test_refusals_are_the_same_on_the_loop_and_on_a_thread(
    file_store: FileKeyStore, thread_hops: list[str], case: str
) -> None:
    """Every refusal, reason and public sentence alike, whichever path checked it.
    A proof presented again is named a replay first, even with a forged attestation
    (the blocking path records the proof before it looks at the attestation)."""
    home = Home()
    gbr = _gbr(file_store, home, CountingRepo(), clock=lambda: 1000.0)
    warm_key = DpopKey()
    asyncio.run(gbr.runtime.handle_rewrap_async(**_args(gbr, warm_key, home.attestation(warm_key))))
    hops = len(thread_hops)

    def refused(on_loop: bool) -> tuple[str, str]:
        key, token, proof = _bad(home, case)

        def call() -> None:
            args = _args(gbr, key, token)
            args["dpop"] = proof
            if on_loop:
                asyncio.run(gbr.runtime.handle_rewrap_async(**args))
            else:
                gbr.runtime.handle_rewrap(**args)

        first = _refusal(call)
        if case != "replayed_and_forged":
            return first
        assert first[0].startswith("attestation_forged")
        return _refusal(call)  # the same proof again

    blocking, inline = refused(on_loop=False), refused(on_loop=True)
    assert inline == blocking
    assert len(thread_hops) == hops  # the loop refused them itself
    if case == "replayed_and_forged":
        assert blocking[0].startswith("dpop_replayed")


def test_untrust_here_stops_attestations_at_the_next_request(file_store: FileKeyStore) -> None:
    """Through this process's trust store (the console of this worker): at once."""
    clock = [1000.0]
    home = Home()
    gbr = _gbr(file_store, home, CountingRepo(), clock=lambda: clock[0])
    key = DpopKey()
    token = home.attestation(key)
    assert _status(asyncio.run(gbr.runtime.handle_rewrap_async(**_args(gbr, key, token)))) == (
        "permit"
    )
    gbr.trust.unpin("USA", actor=OFFICER, now=datetime.now(UTC))  # the clock stands still
    reason, _ = _refusal(
        lambda: asyncio.run(gbr.runtime.handle_rewrap_async(**_args(gbr, key, token)))
    )
    assert reason.startswith("attestation_unpinned")


def test_untrust_elsewhere_stops_attestations_within_one_second(
    file_store: FileKeyStore, tmp_path: Path
) -> None:
    """Another worker (or the CLI) untrusts the USA node in the shared database:
    this worker's snapshot serves the old pins for less than 1 s, then refuses."""
    db = create_database(f"sqlite:///{tmp_path / 'gbr.db'}")
    clock = [1000.0]
    home = Home()
    gbr = _gbr(file_store, home, SqlPinRepository(db), clock=lambda: clock[0])
    other_worker = TrustStore(SqlPinRepository(db), Authorizer(gbr.sink), gbr.sink, "GBR")
    key = DpopKey()
    token = home.attestation(key)

    def rewrap() -> Any:
        return asyncio.run(gbr.runtime.handle_rewrap_async(**_args(gbr, key, token)))

    assert _status(rewrap()) == "permit"  # pins read at t = 1000.0
    other_worker.unpin("USA", actor=OFFICER, now=datetime.now(UTC))
    clock[0] += 0.999
    assert _status(rewrap()) == "permit"  # within the bound: the snapshot still serves
    clock[0] += 0.001
    reason, _ = _refusal(rewrap)
    assert reason.startswith("attestation_unpinned")
    db.dispose()


def test_pin_snapshot_expires_in_real_time(tmp_path: Path) -> None:
    db = create_database(f"sqlite:///{tmp_path / 'gbr.db'}")
    sink, home = MemorySink(), Home()
    here = TrustStore(SqlPinRepository(db), Authorizer(sink), sink, "GBR")
    elsewhere = TrustStore(SqlPinRepository(db), Authorizer(sink), sink, "GBR")
    now = datetime.now(UTC)
    here.pin(home.descriptor(now), fingerprint=home.node_key.fingerprint, actor=OFFICER, now=now)
    snapshot = PinSnapshot(here)
    assert "USA" in snapshot.trusted()
    elsewhere.unpin("USA", actor=OFFICER, now=now)
    time.sleep(1.0)
    assert snapshot.cached() is None and "USA" not in snapshot.trusted()
    db.dispose()


def test_pin_snapshot_refuses_an_unbounded_age() -> None:
    store = TrustStore(MemoryPinRepository(), Authorizer(MemorySink()), MemorySink(), "GBR")
    for bad in (0.0, -1.0, 61.0):
        with pytest.raises(ValueError, match="max_age"):
            PinSnapshot(store, max_age=bad)


def test_cached_status_answers_as_status_or_not_at_all(file_store: FileKeyStore) -> None:
    """``cached_status`` never fetches: ``None`` until a list is cached and again
    once it is due for a refresh; otherwise the same answer, or the same refusal
    of a list outside the pinned node, as ``status``."""
    home = Home(statuses=[0, 1])
    gbr = _gbr(file_store, home, CountingRepo(), clock=lambda: 1000.0)
    gbr.snapshot.trusted()
    cache = StatusListCache(gbr.snapshot, fetch=home.fetch)
    now = datetime.now(UTC)
    valid, revoked = StatusReference(0, STATUS_URI), StatusReference(1, STATUS_URI)
    assert cache.cached_status(valid, "USA", now) is None and home.fetches == []
    assert [cache.status(r, "USA", now) for r in (valid, revoked)] == [
        cache.cached_status(r, "USA", now) for r in (valid, revoked)
    ]
    assert len(home.fetches) == 1
    assert cache.cached_status(valid, "USA", now + timedelta(seconds=30)) is None
    outside = StatusReference(0, "https://elsewhere.example/status/1")
    with pytest.raises(InvalidStatusList):
        cache.cached_status(outside, "USA", now)
    with pytest.raises(StatusUnavailable):
        cache.cached_status(valid, "JPN", now)
    assert StatusListCache(gbr.trust, fetch=home.fetch).cached_status(valid, "USA", now) is None
