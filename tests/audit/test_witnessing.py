"""Mutual witnessing driven by the pins: a federated node witnesses the logs of the
partners it pins (and stops when it untrusts one), and pushes its own checkpoints
to their witnesses, keeping only cosignatures made by the pinned witness keys; a
forked or rolled-back log is refused and raises an alarm on the witness's node,
a replayed checkpoint or a junk proof does not.

Two real nodes (GBR and USA, under uvicorn on 127.0.0.1, each pinning the other)
for what crosses the wire; a partner that exists only as keys for the rest.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from federation.live_server import Server, free_port
from relto.audit import NoteSigner, TransparencyLog
from relto.audit.checkpoint import open_checkpoint
from relto.audit.config import database_url
from relto.audit.errors import ForkRefused, RollbackRefused
from relto.audit.note import open_note, parse_verifier
from relto.audit.witness import MemoryWitnessState, Witness
from relto.audit.witnessing import (
    ALARM_KIND,
    REFUSED_KIND,
    Answer,
    CheckpointPusher,
    MemoryAlarmStore,
    MemoryCosignatureStore,
    Partner,
    PartnerWitness,
    known_logs,
)
from relto.authz import Authorizer, Principal
from relto.cli.main import main
from relto.config import Settings
from relto.errors import AccessDenied
from relto.events import MemorySink
from relto.federation import AttestationKey, SigningKey, make_descriptor
from relto.node import Node
from relto.server import create_app
from relto.server.witnessing import push_once, start_witness_push
from relto.store import create_database
from relto.vetting import Person, Role

from .conftest import T0, Clock, fill

URL = "/api/v1/audit/witness/add-checkpoint"
SECRET = SecretStr("witnessing-test-secret-0123456789")


def _body(old: int, proof: tuple[bytes, ...], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


def _settings(nation: str, data: Path, port: int) -> Settings:
    return Settings(
        nation=nation, data_dir=data, port=port, secret_key=SECRET, keystore_passphrase=SECRET
    )  # type: ignore[call-arg]


def _officer(node: Node) -> Principal:
    """A security officer of the node's nation (registered on first use)."""
    pid = f"{node.settings.nation.lower()}-so-witnessing"
    if node.directory.principal(pid, via="node") is None:
        node.vetting.register_person(
            Person(pid, "Officer", frozenset({node.settings.nation}), "MOD",
                   node.settings.nation, frozenset({Role.SECURITY_OFFICER})),
            at=datetime.now(UTC), actor="test-setup",
        )  # fmt: skip
    who = node.directory.principal(pid, via="node")
    assert who is not None
    return who


@dataclass
class Stranger:
    """A partner node that exists only as its keys: its log is a local one."""

    nation: str
    log_signer: NoteSigner
    node_key: SigningKey
    witness_signer: NoteSigner

    @classmethod
    def make(cls, nation: str, log_name: str | None = None) -> Stranger:
        return cls(
            nation,
            NoteSigner.generate(log_name or f"relto/{nation.lower()}/audit"),
            SigningKey.generate(),
            NoteSigner.generate(f"relto/{nation.lower()}/witness"),
        )

    def descriptor(self) -> str:
        now = datetime.now(UTC)
        return make_descriptor(
            nation=self.nation,
            base_url=f"https://relto.{self.nation.lower()}.example",
            node_key=self.node_key.public,
            kas_keys=[],
            log_key=self.log_signer.verifier().vkey,
            witness_key=self.witness_signer.cosignature_verifier().vkey,
            attestation_keys=[AttestationKey("att-1", SigningKey.generate("P-256").public)],
            issued_at=now - timedelta(minutes=1),
            not_after=now + timedelta(days=30),
            signing_key=self.node_key,
        )

    def pin_on(self, node: Node) -> None:
        node.trust.pin(
            self.descriptor(), fingerprint=self.node_key.fingerprint, actor=_officer(node),
            now=datetime.now(UTC),
        )  # fmt: skip


@pytest.fixture
def gbr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Node]]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    app = create_app(_settings("GBR", tmp_path / "gbr", 18999))
    node: Node = app.state.node
    assert node.federation is not None  # a loopback address: a federated node
    with TestClient(app) as client:
        yield client, node
    node.db.dispose()


def _partner(p: Stranger) -> Partner:
    return Partner(p.nation, "https://x.example", p.log_signer.verifier().vkey,
                   p.witness_signer.cosignature_verifier().vkey)  # fmt: skip


# -- 1. witness what the pins say ----------------------------------------------------------


def test_pinned_partners_log_is_witnessed_without_static_configuration(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, node = gbr
    usa = Stranger.make("USA")
    usa.pin_on(node)
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    fill(log, 4)
    note = log.sign_checkpoint(usa.log_signer, T0)
    r = client.post(URL, content=_body(0, (), note))
    assert r.status_code == 200, r.text
    assert node.witness is not None
    cosigner = node.witness.witness.signer.cosignature_verifier()
    assert open_note(note + r.text, [cosigner]).timestamps  # cosigned by GBR's witness key


def test_unpinned_nations_log_is_not_witnessed(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, _ = gbr
    jpn = Stranger.make("JPN")  # never pinned
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'jpn.db'}"), clock=Clock())
    fill(log, 2)
    r = client.post(URL, content=_body(0, (), log.sign_checkpoint(jpn.log_signer, T0)))
    assert r.status_code == 404


def test_untrusted_partner_is_no_longer_witnessed(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    client, node = gbr
    usa = Stranger.make("USA")
    usa.pin_on(node)
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    fill(log, 3)
    first = log.sign_checkpoint(usa.log_signer, T0)
    assert client.post(URL, content=_body(0, (), first)).is_success
    node.trust.unpin("USA", actor=_officer(node), now=datetime.now(UTC))
    fill(log, 2, 3)
    proof = log.consistency_proof(3, 5).proof
    r = client.post(URL, content=_body(3, proof, log.sign_checkpoint(usa.log_signer, T0)))
    assert r.status_code == 404  # an untrust stops the witnessing at once


def test_log_key_rotated_by_a_signed_descriptor_update_is_witnessed_under_the_new_key(
    tmp_path: Path, gbr: tuple[TestClient, Node]
) -> None:
    """A partner rotates its log key: checkpoints under the new key count only once
    its descriptor update, signed by its pinned node key, is taken -- and then the
    old key's no longer do. The tree goes on: the witness checks consistency from
    the size it cosigned under the old key."""
    client, node = gbr
    usa = Stranger.make("USA")
    usa.pin_on(node)
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    fill(log, 3)
    assert client.post(
        URL, content=_body(0, (), log.sign_checkpoint(usa.log_signer, T0))
    ).is_success
    old = usa.log_signer
    usa.log_signer = NoteSigner.generate("relto/usa/audit")  # same log, new key
    fill(log, 2, 3)
    proof = log.consistency_proof(3, 5).proof
    rotated = log.sign_checkpoint(usa.log_signer, T0)
    assert client.post(URL, content=_body(3, proof, rotated)).status_code == 403
    time.sleep(1.1)  # a descriptor update is issued later than the one it replaces
    node.trust.update(usa.descriptor(), actor=_officer(node), now=datetime.now(UTC))
    r = client.post(URL, content=_body(3, proof, rotated))
    assert r.status_code == 200, r.text
    assert node.witness is not None and node.witness.last_size("relto/usa/audit") == 5
    fill(log, 1, 5)
    stale = log.sign_checkpoint(old, T0)
    r = client.post(URL, content=_body(5, log.consistency_proof(5, 6).proof, stale))
    assert r.status_code == 403  # the replaced key signs nothing any more


def test_partner_claiming_another_logs_origin_is_witnessed_for_neither() -> None:
    usa = Stranger.make("USA")
    impostor = Stranger.make("JPN", log_name="relto/usa/audit")  # claims USA's origin
    honest = known_logs({}, [_partner(usa)])
    assert set(honest) == {"relto/usa/audit"}
    assert known_logs({}, [_partner(usa), _partner(impostor)]) == {}
    # nor can a pin take over a log configured by hand
    static = {"relto/usa/audit": usa.log_signer.verifier()}
    assert known_logs(static, [_partner(impostor)]) == {}


# -- 2. push on a schedule -----------------------------------------------------------------


@dataclass
class Nation:
    node: Node
    url: str
    server: Server


@dataclass
class Pair:
    gbr: Nation
    usa: Nation


def _pin(on: Node, other: Nation) -> None:
    assert other.node.federation is not None
    descriptor = httpx.get(other.url + "/.well-known/relto-node", timeout=10).text
    on.trust.pin(
        descriptor, fingerprint=other.node.federation.descriptors.fingerprint,
        actor=_officer(on), now=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    monkeypatch.delenv("RELTO_AUDIT_WITNESS_LOGS", raising=False)
    nations = {}
    for nation in ("GBR", "USA"):
        port = free_port()
        app = create_app(_settings(nation, tmp_path / nation.lower(), port))
        nations[nation] = Nation(app.state.node, f"http://127.0.0.1:{port}", Server(app, port))
    gbr, usa = nations["GBR"], nations["USA"]
    try:
        for n in (gbr, usa):
            n.server.start()
        _pin(gbr.node, usa)
        _pin(usa.node, gbr)
        yield Pair(gbr, usa)
    finally:
        for n in (gbr, usa):
            n.server.stop()
            n.node.db.dispose()


def _pinned_witness_key(on: Node, nation: str) -> Any:
    return parse_verifier(on.trust.trusted()[nation].descriptor.witness_key)


def test_partner_cosigns_our_checkpoint_and_we_keep_it_verified_by_pinned_key(
    pair: Pair,
) -> None:
    gbr, usa = pair.gbr, pair.usa
    (pushed,) = push_once(gbr.node)
    assert (pushed.nation, pushed.outcome, pushed.old) == ("USA", "cosigned", 0), pushed
    store = gbr.node.witnessing.store  # type: ignore[union-attr]
    (cosig,) = store.at(pushed.size)
    note = gbr.node.log.checkpoint(pushed.size)
    assert note is not None
    signed = open_checkpoint(
        note + cosig.line,
        node_signer_of(gbr.node).verifier(),
        extra=[_pinned_witness_key(gbr.node, "USA")],
    )
    assert signed.verified.timestamps == {"relto/usa/witness": cosig.cosigned_at}
    # nothing new: the partner is not asked again
    assert [p.outcome for p in push_once(gbr.node)] == ["current"]
    gbr.node.log.record("test.growth", {"n": 1})
    (grown,) = push_once(gbr.node)
    assert grown.outcome == "cosigned" and grown.old >= pushed.size and grown.size > pushed.size
    assert usa.node.witness is not None
    assert usa.node.witness.last_size("relto/gbr/audit") == grown.size


def test_partner_down_is_asked_again_and_nothing_is_lost(pair: Pair) -> None:
    gbr, usa = pair.gbr, pair.usa
    (first,) = push_once(gbr.node)
    assert first.outcome == "cosigned"
    usa.server.stop()
    for i in range(5):
        gbr.node.log.record("test.while_down", {"i": i})
    (down,) = push_once(gbr.node)
    assert down.outcome == "unreachable" and down.size > first.size
    usa.server.start()
    (back,) = push_once(gbr.node)
    assert back.outcome == "cosigned", back
    assert back.old == first.size and back.size >= down.size  # proof from where it stopped
    store = gbr.node.witnessing.store  # type: ignore[union-attr]
    assert store.get(first.size, "USA") is not None and store.get(back.size, "USA") is not None
    assert store.last_size("USA") == back.size


def test_cosigned_checkpoint_served_with_partner_cosignature_for_offline_check(
    pair: Pair,
) -> None:
    gbr = pair.gbr
    assert httpx.get(gbr.url + "/api/v1/audit/checkpoint/cosigned", timeout=10).status_code == 404
    (pushed,) = push_once(gbr.node)
    r = httpx.get(gbr.url + "/api/v1/audit/checkpoint/cosigned", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    usa_witness = _pinned_witness_key(gbr.node, "USA")
    signed = open_checkpoint(r.text, node_signer_of(gbr.node).verifier(), extra=[usa_witness])
    assert signed.checkpoint.size == pushed.size
    assert list(signed.verified.timestamps) == ["relto/usa/witness"]  # one partner cosigned
    # a later checkpoint nobody cosigned yet does not replace it
    gbr.node.log.record("test.growth", {"n": 1})
    gbr.node.log.sign_checkpoint(node_signer_of(gbr.node))
    again = httpx.get(gbr.url + "/api/v1/audit/checkpoint/cosigned", timeout=10).text
    assert again == r.text


def test_witness_size_conflict_answered_once_from_the_witness_size(pair: Pair) -> None:
    gbr = pair.gbr
    (first,) = push_once(gbr.node)
    assert first.outcome == "cosigned"
    gbr.node.log.record("test.growth", {"n": 1})
    # A pusher that forgot what USA cosigned (a lost store) says "old 0": USA answers
    # 409 with its size, and the push goes again once from there.
    forgetful = CheckpointPusher(
        gbr.node.log, node_signer_of(gbr.node), gbr.node.witnessing.partners,  # type: ignore[union-attr]
        MemoryCosignatureStore(), nation="GBR", sink=MemorySink(), alarms=MemoryAlarmStore(),
    )  # fmt: skip
    (again,) = forgetful.push(datetime.now(UTC))
    assert (again.outcome, again.old) == ("cosigned", first.size), again


def test_scheduled_push_reaches_the_partner_without_anyone_asking(pair: Pair) -> None:
    gbr = pair.gbr
    store = gbr.node.witnessing.store  # type: ignore[union-attr]
    assert start_witness_push(gbr.node, every=0) is None  # 0: switched off

    async def run() -> float:
        started = time.monotonic()
        task = start_witness_push(gbr.node, every=0.2)
        assert task is not None
        try:
            while store.latest_size() is None:
                assert time.monotonic() - started < 20, "no push within 20 s"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
        return time.monotonic() - started

    assert asyncio.run(run()) < 20
    assert store.at(store.latest_size() or 0)[0].nation == "USA"


def node_signer_of(node: Node) -> NoteSigner:
    from relto.audit.config import node_signer

    return node_signer(node.settings)


# -- a cosignature must come from the pinned witness key ------------------------------------


def _lonely_pusher(
    tmp_path: Path, witness_key: str, answer: Callable[[bytes], Answer]
) -> tuple[CheckpointPusher, TransparencyLog]:
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'gbr.db'}"), clock=Clock())
    fill(log, 3)
    signer = NoteSigner.generate("relto/gbr/audit")
    partner = Partner("USA", "https://relto.usa.example", NoteSigner.generate("u").verifier().vkey,
                      witness_key)  # fmt: skip
    pusher = CheckpointPusher(
        log, signer, lambda: [partner], MemoryCosignatureStore(), nation="GBR",
        sink=MemorySink(), alarms=MemoryAlarmStore(), post=lambda url, body: answer(body),
    )  # fmt: skip
    return pusher, log


def _cosign_with(signer: NoteSigner, at: datetime | None = None) -> Callable[[bytes], Answer]:
    def answer(body: bytes) -> Answer:
        note = body.partition(b"\n\n")[2].decode()
        cp_body = note.partition("\n\n")[0] + "\n"
        sig = signer.cosign(cp_body, int((at or datetime.now(UTC)).timestamp()))
        return Answer(200, "text/plain; charset=utf-8", sig.line().encode())

    return answer


def test_cosignature_not_made_by_pinned_witness_key_rejected(tmp_path: Path) -> None:
    pinned = NoteSigner.generate("relto/usa/witness")
    impostor = NoteSigner.generate("relto/usa/witness")  # same name, another key
    pusher, _ = _lonely_pusher(tmp_path, pinned.cosignature_verifier().vkey, _cosign_with(impostor))
    (pushed,) = pusher.push(datetime.now(UTC))
    assert pushed.outcome == "bad_cosignature"
    assert pusher.store.latest_size() is None  # nothing kept


def test_forged_cosignature_under_the_pinned_key_id_rejected(tmp_path: Path) -> None:
    pinned = NoteSigner.generate("relto/usa/witness")

    def forged(body: bytes) -> Answer:
        line = _cosign_with(pinned)(body).body.decode()
        name, blob = line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 1  # one bit of the signature flipped
        return Answer(
            200, "text/plain", f"{name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
        )

    pusher, _ = _lonely_pusher(tmp_path, pinned.cosignature_verifier().vkey, forged)
    assert [p.outcome for p in pusher.push(datetime.now(UTC))] == ["bad_cosignature"]
    assert pusher.store.latest_size() is None


def test_replayed_stale_cosignature_rejected(tmp_path: Path) -> None:
    pinned = NoteSigner.generate("relto/usa/witness")
    old = datetime.now(UTC) - timedelta(hours=1)
    pusher, _ = _lonely_pusher(
        tmp_path, pinned.cosignature_verifier().vkey, _cosign_with(pinned, old)
    )
    assert [p.outcome for p in pusher.push(datetime.now(UTC))] == ["bad_cosignature"]


def test_pinned_witness_cosignature_kept(tmp_path: Path) -> None:
    pinned = NoteSigner.generate("relto/usa/witness")
    pusher, _ = _lonely_pusher(tmp_path, pinned.cosignature_verifier().vkey, _cosign_with(pinned))
    (pushed,) = pusher.push(datetime.now(UTC))
    assert pushed.outcome == "cosigned" and pusher.store.get(3, "USA") is not None


# -- 3. forks and rollbacks raise alarms ---------------------------------------------------


def _entries(node: Node) -> list[dict[str, Any]]:
    return [json.loads(e.body) for e in node.log.iter_entries()]


def _of_kind(node: Node, kind: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in _entries(node) if e["kind"] == kind]


def _rewritten(tmp_path: Path, node: Node, keep: int, rewrite: int = 1, more: int = 0) -> (
    TransparencyLog
):  # fmt: skip
    """A second log with the node's history up to ``keep`` entries, then ``rewrite``
    entries that say something else, then ``more`` new ones: what an operator who
    rewrites the log by hand and re-signs it with the node's key produces."""
    forged = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'forged.db'}"))
    for e in _entries(node)[:keep]:
        forged.append(e["kind"], e["payload"], datetime.fromisoformat(e["time"]))
    for i in range(rewrite):
        forged.append("key.release", {"object": f"never-released-{i}", "person": "nobody"})
    for i in range(more):
        forged.append("test.after", {"i": i})
    return forged


def _forged_pusher(gbr: Nation, forged: TransparencyLog) -> CheckpointPusher:
    """GBR's own pusher (its cosignature and alarm stores, its log as sink), pushing
    the forged log signed with GBR's key."""
    real = gbr.node.witnessing
    assert real is not None
    return CheckpointPusher(
        forged, node_signer_of(gbr.node), real.partners, real.store, nation="GBR",
        sink=gbr.node.sink, alarms=real.alarms,
    )  # fmt: skip


def test_forked_log_refused_by_partner_and_alarm_recorded_within_one_push(
    tmp_path: Path, pair: Pair
) -> None:
    gbr, usa = pair.gbr, pair.usa
    (honest,) = push_once(gbr.node)
    assert honest.outcome == "cosigned"
    # GBR's history rewritten at its last entry, same size, re-signed with GBR's key
    forged = _rewritten(tmp_path, gbr.node, keep=honest.size - 1)
    assert forged.size() == honest.size
    started = time.monotonic()
    (pushed,) = _forged_pusher(gbr, forged).push(datetime.now(UTC))
    detected = time.monotonic() - started
    assert (pushed.outcome, pushed.reason) == ("refused", "fork"), pushed
    (alarm,) = _of_kind(usa.node, ALARM_KIND)
    assert alarm["nation"] == "GBR" and alarm["reason"] == "fork"
    assert alarm["witnessed_size"] == alarm["size"] == honest.size
    assert detected < 5, detected  # within the push itself, not an interval later
    (refused,) = _of_kind(gbr.node, REFUSED_KIND)
    assert refused["witness"] == "USA" and refused["reason"] == "fork"
    assert usa.node.witness is not None
    (kept,) = usa.node.witness.read_alarms(_officer(usa.node))
    assert (kept.nation, kept.reason, kept.size) == ("GBR", "fork", honest.size)
    # pushed again next interval: the same alarm is seen again, not recorded twice
    _forged_pusher(gbr, forged).push(datetime.now(UTC))
    assert len(_of_kind(usa.node, ALARM_KIND)) == 1 and len(_of_kind(gbr.node, REFUSED_KIND)) == 1
    (again,) = usa.node.witness.read_alarms(_officer(usa.node))
    assert again.count == 2


def test_log_rewritten_behind_a_longer_history_is_a_fork_its_own_log_cannot_disprove(
    tmp_path: Path, pair: Pair
) -> None:
    gbr, usa = pair.gbr, pair.usa
    (honest,) = push_once(gbr.node)
    assert honest.outcome == "cosigned"
    for i in range(5):
        gbr.node.log.record("test.growth", {"i": i})
    # a longer rewritten history: USA's witness refuses its proof (422) and asks
    # GBR's own log, which proves something else
    forged = _rewritten(tmp_path, gbr.node, keep=honest.size - 1, more=3)
    (pushed,) = _forged_pusher(gbr, forged).push(datetime.now(UTC))
    assert (pushed.outcome, pushed.reason) == ("refused", "fork"), pushed
    (alarm,) = _of_kind(usa.node, ALARM_KIND)
    assert (alarm["reason"], alarm["witnessed_size"], alarm["size"]) == (
        "fork", honest.size, honest.size + 3
    )  # fmt: skip
    assert "cannot prove" in alarm["detail"]


def test_replayed_old_checkpoint_raises_no_alarm(pair: Pair) -> None:
    gbr, usa = pair.gbr, pair.usa
    (first,) = push_once(gbr.node)
    old_note = gbr.node.log.checkpoint(first.size)
    assert old_note is not None
    gbr.node.log.record("test.growth", {"n": 1})
    (second,) = push_once(gbr.node)
    assert second.outcome == "cosigned"
    # anyone may post GBR's old (public) checkpoint: refused, but GBR's log proves
    # it is a prefix of what was cosigned, so it is a replay, not a rollback
    r = httpx.post(usa.url + URL, content=_body(second.size, (), old_note), timeout=10)
    assert r.status_code == 400
    assert _of_kind(usa.node, ALARM_KIND) == []


def test_junk_proof_for_a_genuine_checkpoint_raises_no_alarm(pair: Pair) -> None:
    gbr, usa = pair.gbr, pair.usa
    (first,) = push_once(gbr.node)
    gbr.node.log.record("test.growth", {"n": 1})
    note = gbr.node.log.sign_checkpoint(node_signer_of(gbr.node))
    junk = (bytes(32), bytes(range(32)))
    r = httpx.post(usa.url + URL, content=_body(first.size, junk, note), timeout=10)
    assert r.status_code == 422
    assert _of_kind(usa.node, ALARM_KIND) == []
    (next_push,) = push_once(gbr.node)  # GBR's own push still goes through
    assert next_push.outcome == "cosigned"


# The partner's log answers are given by hand below (rollbacks cannot be made on a
# node's own log without editing its storage).


@dataclass
class Witnessed:
    witness: PartnerWitness
    sink: MemorySink
    log: TransparencyLog
    signer: NoteSigner
    asked: list[str]


def _witnessed(tmp_path: Path, ask: Callable[[str], Answer]) -> Witnessed:
    usa = Stranger.make("USA")
    log = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'usa.db'}"), clock=Clock())
    sink = MemorySink()
    asked: list[str] = []

    def asking(url: str) -> Answer:
        asked.append(url)
        return ask(url)

    partner = Partner("USA", "https://relto.usa.example", usa.log_signer.verifier().vkey,
                      usa.witness_signer.cosignature_verifier().vkey)  # fmt: skip
    witness = PartnerWitness(
        Witness(NoteSigner.generate("relto/gbr/witness"), lambda: known_logs({}, [partner]),
                MemoryWitnessState()),
        lambda: [partner], sink=sink, alarms=MemoryAlarmStore(), authorizer=Authorizer(sink),
        nation="GBR", ask=asking,
    )  # fmt: skip
    return Witnessed(witness, sink, log, usa.log_signer, asked)


def _consistency_answer(log: TransparencyLog) -> Callable[[str], Answer]:
    """What the partner's /proof/consistency serves from ``log``."""

    def answer(url: str) -> Answer:
        q = dict(x.split("=") for x in url.split("?", 1)[1].split("&"))
        try:
            c = log.consistency_proof(int(q["first"]), int(q["second"]) if "second" in q else None)
        except Exception:
            return Answer(404, "application/json", b"{}")
        b64 = lambda h: base64.b64encode(h).decode()  # noqa: E731
        body = {"first": c.first, "second": c.second, "proof": [b64(h) for h in c.proof],
                "first_root": b64(c.first_root), "second_root": b64(c.second_root)}  # fmt: skip
        return Answer(200, "application/json", json.dumps(body).encode())

    return answer


def test_rolled_back_log_raises_rollback_alarm(tmp_path: Path) -> None:
    truncated = TransparencyLog(create_database(f"sqlite:///{tmp_path / 'cut.db'}"), clock=Clock())
    w = _witnessed(tmp_path, _consistency_answer(truncated))
    fill(w.log, 6)
    w.witness.add_checkpoint(0, (), w.log.sign_checkpoint(w.signer, T0), at=datetime.now(UTC))
    # the partner's log now holds 4 entries: it signs and serves a smaller tree
    fill(truncated, 4)
    smaller = truncated.sign_checkpoint(w.signer, T0)
    with pytest.raises(RollbackRefused):
        w.witness.add_checkpoint(6, (), smaller, at=datetime.now(UTC))
    assert w.asked and "first=4&second=6" in w.asked[0]
    (alarm,) = [e.payload for e in w.sink.events if e.kind == ALARM_KIND]
    assert (alarm["nation"], alarm["reason"], alarm["witnessed_size"], alarm["size"]) == (
        "USA", "rollback", 6, 4
    )  # fmt: skip


def test_refusal_the_partner_cannot_be_asked_about_raises_no_alarm(tmp_path: Path) -> None:
    def down(url: str) -> Answer:
        raise httpx.ConnectError("partner down")

    w = _witnessed(tmp_path, down)
    fill(w.log, 6)
    w.witness.add_checkpoint(0, (), w.log.sign_checkpoint(w.signer, T0), at=datetime.now(UTC))
    fill(w.log, 2, 6)
    with pytest.raises(ForkRefused):
        w.witness.add_checkpoint(6, (bytes(32),), w.log.sign_checkpoint(w.signer, T0),
                                 at=datetime.now(UTC))  # fmt: skip
    assert w.asked and not [e for e in w.sink.events if e.kind == ALARM_KIND]
    assert w.witness.alarms.alarms() == []


def test_alarms_are_read_only_by_people_of_the_nation(tmp_path: Path) -> None:
    w = _witnessed(tmp_path, _consistency_answer(TransparencyLog(create_database("sqlite://"))))
    usa_person = Principal("usa-x", "X", "USA", frozenset({"USA"}), frozenset(), "test")
    gbr_person = Principal("gbr-x", "X", "GBR", frozenset({"GBR"}), frozenset(), "test")
    assert w.witness.read_alarms(gbr_person) == []
    with pytest.raises(AccessDenied):
        w.witness.read_alarms(usa_person)


def test_audit_verify_requires_partner_cosignatures_from_pinned_witnesses(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``relto audit verify`` trusts the node's latest checkpoint only with the
    cosignatures it is told to need, each by a witness key of a pinned partner."""
    gbr = pair.gbr
    s = gbr.node.settings
    for name, value in (("RELTO_DATA_DIR", str(s.data_dir)), ("RELTO_NATION", "GBR")):
        monkeypatch.setenv(name, value)
    log_key = node_signer_of(gbr.node).verifier().vkey
    args = ["audit", "verify", "--log", database_url(s), "--cosigned-from", gbr.url,
            "--log-key", log_key, "--min-cosignatures", "1"]  # fmt: skip
    push_once(gbr.node)
    # without the pinned witnesses' keys, USA's cosignature proves nothing
    assert main(args) == 1
    assert "0 witness cosignature(s), need 1" in capsys.readouterr().err
    assert main([*args, "--pinned-witnesses"]) == 0
    assert main([*args[:-1], "2", "--pinned-witnesses"]) == 1  # only one partner cosigned
