"""The KAS on an event loop: what may run inline, what must not, and the order
"record, then release" on the async path as on the threaded one."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import KeySet
from kas_testing import (
    AUDIENCE,
    ISSUER,
    DpopKey,
    TestIssuer,
    client_keys,
    make_kao,
    open_result,
    policy_b64,
    request_body,
)

from relto.events import MemorySink
from relto.kas import AuthConfig, Authenticator, KasDecision, RewrapFacts, StaticJwks
from relto.kas.auth import MemoryReplayCache
from relto.kas.config import KasSettings
from relto.kas.errors import AuditUnavailable
from relto.kas.filestore import FileKeyStore
from relto.kas.replay import SqliteReplayCache
from relto.kas.runtime import KasRuntime
from relto.kas.service import KasService

URL = "http://kas.test/kas.AccessService/Rewrap"


class ComputingDecider:
    blocking = False

    def __init__(self) -> None:
        self.threads: list[str] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.threads.append(threading.current_thread().name)
        return KasDecision(True)


class SlowDecider:
    """Says nothing about blocking (so it is assumed to), and does block."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return KasDecision(True)


class CountingJwks:
    """A key source that may fetch over the network (it does not say otherwise)."""

    def __init__(self, issuer: TestIssuer) -> None:
        self._keys = KeySet.import_key_set(issuer.jwks())  # type: ignore[arg-type]
        self.threads: list[str] = []

    def keys(self, *, refresh: bool = False) -> KeySet:
        self.threads.append(threading.current_thread().name)
        return self._keys


def _runtime(store: FileKeyStore, decider: Any, sink: Any, jwks: Any, replay: Any = None) -> Any:
    # These tests drive both paths with bearer-only requests as well as DPoP ones:
    # DPoP is relaxed explicitly (RELTO_KAS_REQUIRE_DPOP=false).
    service = KasService(store=store, sink=sink, decider=decider)
    auth = Authenticator(AuthConfig(ISSUER, AUDIENCE, require_dpop=False), jwks, replay)
    settings = KasSettings(require_dpop=False)
    return KasRuntime(service=service, settings=settings, authenticator=auth)


def _args(
    store: FileKeyStore, token: str, dpop: DpopKey | None = None
) -> tuple[dict[str, Any], Any, bytes]:
    info = store.active("ec:secp256r1")
    policy = policy_b64()
    kao, share = make_kao(info.public_key_pem, info.kid, policy, ec_key=True)
    priv, client_pem = client_keys("ec")
    signer = dpop or DpopKey()
    now = int(time.time())
    srt = signer.sign(
        {"requestBody": request_body(client_pem, policy, [kao]), "iat": now, "exp": now + 60}
    )
    args = {
        "srt": srt,
        "authorization": f"{'DPoP' if dpop else 'Bearer'} {token}",
        "dpop": dpop.proof(URL, token) if dpop else None,
        "method": "POST",
        "url": URL,
        "at": datetime.now(UTC),
        "request_id": "r1",
    }
    return args, priv, share


@pytest.fixture
def store(file_store: FileKeyStore) -> FileKeyStore:
    now = datetime.now(UTC)
    file_store.rotate("ec:secp256r1", at=now)
    return file_store


def test_key_never_leaves_before_its_record(store: FileKeyStore) -> None:
    """Release is refused for a request whose audit record was not written."""
    issuer = TestIssuer()
    rt = _runtime(store, ComputingDecider(), MemorySink(), StaticJwks(issuer.jwks()))
    args, _, _ = _args(store, issuer.token())
    caller = rt._caller(args["authorization"], None, "POST", URL, args["at"])
    body, verified = rt._request_body(args["srt"], caller, args["at"])
    prepared = rt.service.prepare(body, caller, at=args["at"], request_verified=verified)
    with pytest.raises(AuditUnavailable):
        rt.service.release(prepared)
    rt.service.record(prepared)
    assert rt.service.release(prepared).responses[0].results[0].status == "permit"


def test_async_audit_failure_releases_nothing(store: FileKeyStore) -> None:
    class BrokenAsyncSink:
        def record(self, kind: str, payload: Mapping[str, Any]) -> None:
            raise AssertionError("the async path must use record_async")

        async def record_async(self, kind: str, payload: Mapping[str, Any]) -> None:
            raise OSError("log disk full")

    issuer = TestIssuer()
    rt = _runtime(store, ComputingDecider(), BrokenAsyncSink(), StaticJwks(issuer.jwks()))
    args, _, _ = _args(store, issuer.token())
    with pytest.raises(AuditUnavailable):
        asyncio.run(rt.handle_rewrap_async(**args))


def test_inline_path_releases_the_same_key_after_recording(store: FileKeyStore) -> None:
    issuer = TestIssuer()
    sink, decider = MemorySink(), ComputingDecider()
    rt = _runtime(store, decider, sink, StaticJwks(issuer.jwks()))
    args, priv, share = _args(store, issuer.token())

    async def main() -> tuple[Any, str]:
        return await rt.handle_rewrap_async(**args), threading.current_thread().name

    resp, loop_thread = asyncio.run(main())
    result = resp.responses[0].results[0]
    assert result.status == "permit"
    assert (
        open_result(
            priv,
            base64.b64encode(result.kas_wrapped_key).decode(),
            resp.session_public_key,
        )
        == share
    )
    assert decider.threads == [loop_thread]  # computing decider: inline
    (event,) = sink.events
    assert event.kind == "kas.rewrap" and event.payload["allowed"] is True


def test_blocking_decider_never_stalls_the_event_loop(store: FileKeyStore) -> None:
    issuer = TestIssuer()
    decider = SlowDecider(0.3)
    rt = _runtime(store, decider, MemorySink(), StaticJwks(issuer.jwks()))
    args, _, _ = _args(store, issuer.token())

    async def main() -> tuple[int, str]:
        task = asyncio.create_task(rt.handle_rewrap_async(**args))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await task
        return ticks, threading.current_thread().name

    ticks, loop_thread = asyncio.run(main())
    assert decider.threads and decider.threads[0] != loop_thread
    assert ticks >= 10  # the loop went on ticking through the 0.3 s decision


def test_jwks_lookup_for_a_new_token_never_runs_on_the_event_loop(store: FileKeyStore) -> None:
    """A token not seen before may need a JWKS fetch: that request goes to a
    worker thread; the same token a moment later is checked inline from the cache."""
    issuer = TestIssuer()
    jwks = CountingJwks(issuer)
    rt = _runtime(store, ComputingDecider(), MemorySink(), jwks)
    token = issuer.token()

    async def main() -> str:
        for _ in range(2):
            args, _, _ = _args(store, token)
            resp = await rt.handle_rewrap_async(**args)
            assert resp.responses[0].results[0].status == "permit"
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(jwks.threads) == 1 and jwks.threads[0] != loop_thread
    assert rt.authenticator.needs_io(f"Bearer {token}", None) is False
    assert rt.authenticator.needs_io(f"Bearer {issuer.token('bob')}", None) is True


def test_host_wide_replay_cache_is_written_off_the_event_loop(
    store: FileKeyStore, tmp_path: Path
) -> None:
    """DPoP with the SQLite replay cache (shared by the server's processes) is file
    I/O: it is written on a worker or the cache's writer thread, never on the loop,
    and a replayed proof is refused on either path."""
    issuer = TestIssuer()
    replay = SqliteReplayCache(tmp_path / "replay.sqlite")
    writes: list[str] = []
    original = replay._check

    def spy(conn: Any, jti: str, expires_at: float, now: float) -> bool:
        writes.append(threading.current_thread().name)
        return original(conn, jti, expires_at, now)

    replay._check = spy  # type: ignore[method-assign]
    rt = _runtime(store, ComputingDecider(), MemorySink(), StaticJwks(issuer.jwks()), replay)
    key = DpopKey()
    token = issuer.token(cnf={"jkt": key.thumbprint()})
    first, _, _ = _args(store, token, dpop=key)
    second, _, _ = _args(store, token, dpop=key)

    async def main() -> str:
        from relto.kas.errors import Unauthenticated

        for args in (first, second):  # a new token (thread path), then a known one (inline)
            resp = await rt.handle_rewrap_async(**args)
            assert resp.responses[0].results[0].status == "permit"
            with pytest.raises(Unauthenticated):
                await rt.handle_rewrap_async(**args)  # the same proof again
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert len(writes) == 4 and loop_thread not in writes
    assert "relto-dpop-replay" in writes  # the inline path used the batching writer


def test_in_memory_replay_cache_may_run_inline(store: FileKeyStore) -> None:
    issuer = TestIssuer()
    rt = _runtime(
        store, ComputingDecider(), MemorySink(), StaticJwks(issuer.jwks()), MemoryReplayCache()
    )
    key = DpopKey()
    token = issuer.token(cnf={"jkt": key.thumbprint()})
    args, _, _ = _args(store, token, dpop=key)
    assert rt.authenticator.needs_io(args["authorization"], args["dpop"]) is False
    resp = asyncio.run(rt.handle_rewrap_async(**args))
    assert resp.responses[0].results[0].status == "permit"


def test_both_paths_hand_the_decider_the_same_facts(store: FileKeyStore) -> None:
    issuer = TestIssuer()
    seen: list[RewrapFacts] = []

    class Capturing(ComputingDecider):
        def decide(self, facts: RewrapFacts) -> KasDecision:
            seen.append(facts)
            return KasDecision(True)

    rt = _runtime(store, Capturing(), MemorySink(), StaticJwks(issuer.jwks()))
    args, _, _ = _args(store, issuer.token())
    asyncio.run(rt.handle_rewrap_async(**args))
    rt.handle_rewrap(**args)
    inline, threaded = seen
    assert inline == threaded


def test_replayed_proof_refused_across_workers_and_within_one_batch(tmp_path: Path) -> None:
    """Two server processes share the SQLite cache: a proof used at one is refused
    at the other, and the same proof sent twice at once counts only once."""
    path = tmp_path / "replay.sqlite"
    worker_a, worker_b = SqliteReplayCache(path), SqliteReplayCache(path)
    exp = time.time() + 60

    async def main() -> list[bool]:
        keys = [f"thumb:jti-{i:04d}" for i in range(50)] + ["thumb:jti-0007"]
        return list(await asyncio.gather(*(worker_a.check_and_add_async(k, exp) for k in keys)))

    answers = asyncio.run(main())
    assert answers.count(False) == 1 and answers[-1] is False
    assert asyncio.run(worker_b.check_and_add_async("thumb:jti-0003", exp)) is False
    assert worker_b.check_and_add("thumb:jti-0003", exp) is False
    assert asyncio.run(worker_b.check_and_add_async("thumb:new", exp)) is True
    # an entry past its expiry no longer blocks (the DPoP window refuses old proofs)
    assert worker_a.check_and_add("thumb:old", time.time() - 1) is True
    assert asyncio.run(worker_b.check_and_add_async("thumb:old", exp)) is True


def test_proof_replayed_to_another_host_of_the_node_is_refused(database: Any) -> None:
    """Hosts behind a load balancer share the node's database: a proof accepted by
    one host is a replay at the other, in the same batch or later; an expired entry
    no longer blocks (the DPoP window refuses old proofs itself)."""
    from relto.kas.replay import DatabaseReplayCache

    host_a, host_b = DatabaseReplayCache(database), DatabaseReplayCache(database)
    exp = time.time() + 60

    async def burst() -> list[bool]:
        keys = [f"thumb:jti-{i:04d}" for i in range(40)] + ["thumb:jti-0011"]
        return list(await asyncio.gather(*(host_a.check_and_add_async(k, exp) for k in keys)))

    answers = asyncio.run(burst())
    assert answers.count(False) == 1 and answers[-1] is False
    assert host_b.check_and_add("thumb:jti-0005", exp) is False
    assert asyncio.run(host_b.check_and_add_async("thumb:jti-0006", exp)) is False
    assert host_b.check_and_add("thumb:fresh", exp) is True
    assert host_a.check_and_add("thumb:old", time.time() - 1) is True
    assert asyncio.run(host_b.check_and_add_async("thumb:old", exp)) is True


def test_node_on_postgresql_shares_its_replay_cache_across_hosts(
    postgres_url: str, tmp_path: Path
) -> None:
    from relto.config import Settings
    from relto.kas.replay import DatabaseReplayCache
    from relto.kas.runtime import replay_cache
    from relto.store import create_database

    settings = Settings(data_dir=tmp_path)
    db = create_database(postgres_url)
    try:
        assert isinstance(replay_cache(settings, db), DatabaseReplayCache)
    finally:
        db.dispose()
    sqlite_db = create_database(f"sqlite:///{tmp_path / 'relto.db'}")
    assert isinstance(replay_cache(settings, sqlite_db), SqliteReplayCache)


class AsyncDecider:
    """Has ``decide_async``; its blocking ``decide`` must never be used on the loop."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.threads: list[str] = []

    def decide(self, facts: RewrapFacts) -> KasDecision:
        raise AssertionError("the event-loop path must await decide_async")

    async def decide_async(self, facts: RewrapFacts) -> Any:
        self.threads.append(threading.current_thread().name)
        await asyncio.sleep(0)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_async_decider_is_awaited_and_fails_closed(store: FileKeyStore) -> None:
    """A decider that can answer on the loop is awaited there; an error or a
    malformed answer denies, and dissem still binds whatever it says."""
    issuer = TestIssuer()

    def outcome(decider: AsyncDecider, **policy: Any) -> tuple[str, list[Any]]:
        sink = MemorySink()
        rt = _runtime(store, decider, sink, StaticJwks(issuer.jwks()))
        args, _, _ = _args(store, issuer.token())
        if policy:
            info = store.active("ec:secp256r1")
            pol = policy_b64(**policy)
            kao, _ = make_kao(info.public_key_pem, info.kid, pol, ec_key=True)
            now = int(time.time())
            body = request_body(client_keys("ec")[1], pol, [kao])
            args["srt"] = DpopKey().sign({"requestBody": body, "iat": now, "exp": now + 60})
        resp = asyncio.run(rt.handle_rewrap_async(**args))
        (event,) = sink.events
        return resp.responses[0].results[0].status, event.payload["reasons"]

    allow = AsyncDecider(KasDecision(True))
    assert outcome(allow)[0] == "permit" and allow.threads == ["MainThread"]
    status, reasons = outcome(AsyncDecider(RuntimeError("engine down")))
    assert status == "fail" and reasons[0]["code"] == "decider_error"
    status, reasons = outcome(AsyncDecider("yes please"))
    assert status == "fail" and reasons[0]["code"] == "decider_error"
    status, reasons = outcome(AsyncDecider(KasDecision(True)), dissem=["bob@example.org"])
    assert status == "fail" and reasons[0]["code"] == "not_in_dissem"


class BrokenReplayCache:
    """A replay cache whose store has failed."""

    def check_and_add(self, jti: str, expires_at: float) -> bool:
        raise OSError("replay store down")

    async def check_and_add_async(self, jti: str, expires_at: float) -> bool:
        raise OSError("replay store down")


def test_failed_replay_cache_refuses_the_proof_on_both_paths(store: FileKeyStore) -> None:
    """A proof that cannot be recorded as used could be replayed: refuse it, as
    'unavailable', and release nothing (the decider is never asked)."""
    from relto.kas.errors import ReplayCacheUnavailable

    issuer = TestIssuer()
    decider = ComputingDecider()
    sink = MemorySink()
    rt = _runtime(store, decider, sink, StaticJwks(issuer.jwks()), BrokenReplayCache())
    key = DpopKey()
    token = issuer.token(cnf={"jkt": key.thumbprint()})
    for _ in range(2):  # a new token (thread path), then a known one (inline path)
        args, _, _ = _args(store, token, dpop=key)
        with pytest.raises(ReplayCacheUnavailable):
            asyncio.run(rt.handle_rewrap_async(**args))
        rt.authenticator._access_token_claims(token, args["at"])  # now cached
    assert decider.threads == [] and sink.events == []
