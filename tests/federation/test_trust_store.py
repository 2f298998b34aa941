"""The pinned trust store: officers of this node's nation change it, the log records it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from relto.authz import Authorizer, Principal
from relto.errors import AccessDenied
from relto.events import MemorySink
from relto.federation import MemoryPinRepository, PinRepository, SigningKey, TrustStore
from relto.federation.errors import AlreadyPinned, NotPinned, UntrustedDescriptor
from relto.store import create_database
from relto.store.federation import SqlPinRepository

from .conftest import NOW, FakeNode

OFFICER = Principal("gbr-so", "Officer", "GBR", frozenset({"GBR"}),
                    frozenset({("security_officer", "GBR")}), "test")  # fmt: skip
FOREIGN_OFFICER = Principal("usa-so", "Officer", "USA", frozenset({"USA"}),
                            frozenset({("security_officer", "USA")}), "test")  # fmt: skip
ENGINEER = Principal("gbr-eng", "Eng", "GBR", frozenset({"GBR"}),
                     frozenset({("engineer", "GBR")}), "test")  # fmt: skip


@pytest.fixture(params=["memory", "sqlite"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> PinRepository:
    if request.param == "memory":
        return MemoryPinRepository()
    return SqlPinRepository(create_database(f"sqlite:///{tmp_path / 'fed.db'}"))


def _store(repo: PinRepository, sink: MemorySink) -> TrustStore:
    return TrustStore(repo, Authorizer(sink), sink, "GBR")


def test_pin_update_unpin_recorded_with_nation_fingerprint_actor(
    repo: PinRepository, usa: FakeNode
) -> None:
    sink = MemorySink()
    store = _store(repo, sink)
    pin = store.pin(usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=OFFICER, now=NOW)
    assert store.trusted()["USA"].fingerprint == usa.node_key.fingerprint
    old_key, usa.node_key = usa.node_key, SigningKey.generate()
    later = NOW + timedelta(hours=1)
    store.update(usa.descriptor(at=later, signing_key=old_key), actor=OFFICER, now=later)
    assert [p.fingerprint for p in store.pinned()] == [usa.node_key.fingerprint]
    assert store.pinned()[0].descriptor.previous == pin.fingerprint
    store.unpin("USA", actor=OFFICER, now=later)
    assert store.pinned() == []
    changes = [e for e in sink.events if e.kind.startswith("federation.node.")]
    assert [e.kind for e in changes] == [
        "federation.node.pinned", "federation.node.updated", "federation.node.unpinned"
    ]  # fmt: skip
    assert all(e.payload["nation"] == "USA" and e.payload["actor"] == "gbr-so" for e in changes)
    assert changes[0].payload["fingerprint"] == old_key.fingerprint
    assert changes[1].payload["previous_fingerprint"] == old_key.fingerprint


@pytest.mark.parametrize("who", [ENGINEER, FOREIGN_OFFICER], ids=["engineer", "foreign-officer"])
def test_only_security_officer_of_this_nation_changes_trust(
    repo: PinRepository, usa: FakeNode, who: Principal
) -> None:
    sink = MemorySink()
    store = _store(repo, sink)
    with pytest.raises(AccessDenied):
        store.pin(usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=who, now=NOW)
    assert store.pinned() == []
    assert sink.kinds() == ["authz.decision"]


def test_second_pin_of_a_nation_refused_untrusted_update_changes_nothing(
    repo: PinRepository, usa: FakeNode
) -> None:
    store = _store(repo, MemorySink())
    store.pin(usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=OFFICER, now=NOW)
    with pytest.raises(AlreadyPinned):
        store.pin(usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=OFFICER, now=NOW)
    usa.node_key = SigningKey.generate()
    later = NOW + timedelta(hours=1)
    with pytest.raises(UntrustedDescriptor):
        store.update(usa.descriptor(at=later), actor=OFFICER, now=later)
    with pytest.raises(NotPinned):
        store.unpin("JPN", actor=OFFICER, now=NOW)
    assert len(store.pinned()) == 1


def test_concurrent_update_loses_instead_of_overwriting(repo: PinRepository, usa: FakeNode) -> None:
    store = _store(repo, MemorySink())
    first = store.pin(
        usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=OFFICER, now=NOW
    )
    later = NOW + timedelta(hours=1)
    store.update(usa.descriptor(at=later), actor=OFFICER, now=later)
    with pytest.raises(NotPinned, match="meanwhile"):
        repo.replace(first, first)
