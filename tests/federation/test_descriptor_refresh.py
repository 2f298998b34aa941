"""A node keeps its partners' descriptors current by fetching them from the
partners' own addresses -- and takes only what the pinned node key signed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from relto.authz import Authorizer, Principal
from relto.events import MemorySink
from relto.federation import MemoryPinRepository, SigningKey, TrustStore
from relto.federation.refresh import DescriptorRefresher

from .conftest import NOW, FakeNode

OFFICER = Principal(
    "gbr-so", "GBR officer", "GBR", frozenset({"GBR"}),
    frozenset({("security_officer", "GBR")}), "test",
)  # fmt: skip
LATER = NOW + timedelta(days=1)


def _store(usa: FakeNode) -> tuple[TrustStore, MemorySink]:
    sink = MemorySink()
    store = TrustStore(MemoryPinRepository(), Authorizer(sink), sink, "GBR")
    store.pin(usa.descriptor(), fingerprint=usa.node_key.fingerprint, actor=OFFICER, now=NOW)
    return store, sink


def test_newer_descriptor_signed_by_the_pinned_key_is_taken_and_recorded(usa: FakeNode) -> None:
    store, sink = _store(usa)
    rotated_attestation = SigningKey.generate("P-256")
    newer = FakeNode("USA", node_key=usa.node_key, attestation=rotated_attestation)
    token = newer.descriptor(at=LATER)
    [result] = DescriptorRefresher(store, fetch=lambda url: token).refresh(LATER)
    assert result.outcome == "updated"
    assert store.trusted()["USA"].token == token
    assert store.trusted()["USA"].pinned_by == "gbr-so"  # still the officer who pinned it
    assert sink.kinds()[-1] == "federation.node.updated"


def test_same_descriptor_changes_nothing(usa: FakeNode) -> None:
    store, sink = _store(usa)
    pinned = store.trusted()["USA"].token
    [result] = DescriptorRefresher(store, fetch=lambda url: pinned).refresh(LATER)
    assert result.outcome == "unchanged" and sink.kinds()[-1] == "federation.node.pinned"


def test_descriptor_signed_by_another_key_is_refused_and_the_pin_kept(usa: FakeNode) -> None:
    """Someone answering at the partner's address (a hijacked DNS name, say) cannot
    replace the pinned node: only its key signs an update."""
    store, _ = _store(usa)
    impostor = FakeNode("USA")  # a different node key
    [result] = DescriptorRefresher(store, fetch=lambda url: impostor.descriptor(at=LATER)).refresh(
        LATER
    )
    assert result.outcome == "refused"
    assert store.trusted()["USA"].fingerprint == usa.node_key.fingerprint


def test_older_descriptor_replayed_is_refused(usa: FakeNode) -> None:
    store, _ = _store(usa)
    older = usa.descriptor(at=NOW - timedelta(hours=1))
    [result] = DescriptorRefresher(store, fetch=lambda url: older).refresh(LATER)
    assert result.outcome == "refused"


def test_another_nations_descriptor_at_the_address_is_refused(usa: FakeNode) -> None:
    store, _ = _store(usa)
    jpn = FakeNode("JPN")
    [result] = DescriptorRefresher(store, fetch=lambda url: jpn.descriptor(at=LATER)).refresh(LATER)
    assert result.outcome == "refused" and "another nation" in result.detail


def test_key_rotation_signed_by_the_old_key_is_taken(usa: FakeNode) -> None:
    store, _ = _store(usa)
    new_key = SigningKey.generate()
    rotated = usa.descriptor(
        at=LATER,
        node_key=new_key.public,
        signing_key=usa.node_key,
    )
    [result] = DescriptorRefresher(store, fetch=lambda url: rotated).refresh(LATER)
    assert result.outcome == "updated", result.detail
    assert store.trusted()["USA"].fingerprint == new_key.fingerprint


def test_unreachable_partner_changes_nothing(usa: FakeNode) -> None:
    store, _ = _store(usa)

    def down(url: str) -> str:
        raise httpx.ConnectError("refused")

    [result] = DescriptorRefresher(store, fetch=down).refresh(LATER)
    assert result.outcome == "unreachable"
    assert store.trusted()["USA"].fingerprint == usa.node_key.fingerprint


@pytest.mark.parametrize("junk", ["", "not a jwt", "a.b.c"])
def test_junk_at_the_address_is_refused(usa: FakeNode, junk: str) -> None:
    store, _ = _store(usa)
    [result] = DescriptorRefresher(store, fetch=lambda url: junk).refresh(LATER)
    assert result.outcome == "refused"
