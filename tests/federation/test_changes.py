"""Signed partnership changes with a quorum, in one hash-chained order: no nation
alone changes the partnership, a signature counts only for the member node whose
key is held, and no node can be made to apply a different sequence."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.federation import SigningKey
from relto.federation.changes import (
    GENESIS,
    Change,
    ChangeChain,
    ChangeFork,
    InvalidChange,
    approve,
    verify_approval,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KEYS = {n: SigningKey.generate() for n in ("AUS", "GBR", "USA", "JPN")}
PUBLIC = {n: k.public for n, k in KEYS.items()}
MEMBERS = frozenset({"AUS", "GBR", "USA"})


def admit_jpn(seq: int = 0, prev: str = GENESIS, **kw: object) -> Change:
    fields: dict[str, object] = {
        "partnership": "aukus-p2",
        "seq": seq,
        "prev": prev,
        "kind": "admission.grant",
        "payload": {
            "nation": "JPN",
            "project": "hypersonic",
            "ceiling": "SECRET",
            "valid_from": (NOW + timedelta(days=1)).isoformat(),
        },
        "nation": "GBR",
        "person": "gbr-so-whitfield",
        "at": NOW,
        "justification": "JPN joins the hypersonics work package",
    }
    fields.update(kw)
    return Change(**fields)  # type: ignore[arg-type]


def signed(change: Change, *nations: str, decision: str = "approve") -> list[str]:
    return [
        approve(change, nation=n, by=f"{n.lower()}-so", key=KEYS[n], at=NOW,
                justification="checked the effect", decision=decision)
        for n in nations
    ]  # fmt: skip


def verified(change: Change, tokens: list[str]) -> list:  # type: ignore[type-arg]
    return [verify_approval(t, change, PUBLIC) for t in tokens]


def test_change_needs_every_member_by_default() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    change = admit_jpn()
    two = verified(change, signed(change, "GBR", "AUS"))
    assert chain.quorum(change, two).status == "pending"
    with pytest.raises(InvalidChange, match="2 of the 3"):
        chain.append(change, two)
    assert chain.next_seq == 0  # nothing applied
    three = verified(change, signed(change, "GBR", "AUS", "USA"))
    assert chain.append(change, three).status == "approved"
    assert chain.head == change.id


def test_one_nation_signing_many_times_counts_once() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    change = admit_jpn()
    approvals = verified(change, signed(change, "GBR") * 3)
    assert chain.quorum(change, approvals).approved_by == {"GBR"}


def test_partner_approval_does_not_count_towards_a_members_quorum() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    change = admit_jpn()
    approvals = verified(change, signed(change, "GBR", "AUS", "JPN"))
    state = chain.quorum(change, approvals)
    assert state.approved_by == {"GBR", "AUS"} and not state.reached


def test_approval_signed_by_another_key_is_refused() -> None:
    change = admit_jpn()
    forged = approve(change, nation="USA", by="x", key=KEYS["GBR"], at=NOW,
                     justification="pretending to be USA")  # fmt: skip
    with pytest.raises(InvalidChange, match="not signed by the node key of USA"):
        verify_approval(forged, change, PUBLIC)


def test_approval_of_one_change_cannot_be_reused_for_another() -> None:
    change, other = admit_jpn(), admit_jpn(justification="a different change")
    [token] = signed(change, "USA")
    with pytest.raises(InvalidChange, match="another change"):
        verify_approval(token, other, PUBLIC)


def test_approval_of_a_nation_whose_key_is_not_held_is_refused() -> None:
    change = admit_jpn()
    [token] = signed(change, "USA")
    with pytest.raises(InvalidChange, match="no node key is held for USA"):
        verify_approval(token, change, {"GBR": PUBLIC["GBR"]})


def test_rejections_make_a_change_impossible() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    change = admit_jpn()
    approvals = verified(change, signed(change, "GBR")) + verified(
        change, signed(change, "USA", decision="reject")
    )
    assert chain.quorum(change, approvals).status == "rejected"


def test_k_of_n_rule_set_by_a_change_itself_needing_all() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    rule = Change("aukus-p2", 0, GENESIS, "quorum.set", {"kind": "admission.grant",
                  "required": 2}, "AUS", "aus-so", NOW, "two of three admit")  # fmt: skip
    chain.append(rule, verified(rule, signed(rule, "AUS", "GBR", "USA")))
    change = admit_jpn(seq=1, prev=rule.id)
    assert chain.append(change, verified(change, signed(change, "GBR", "AUS"))).reached


def test_fork_for_a_place_already_taken_is_refused_and_named() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    first = admit_jpn()
    chain.append(first, verified(first, signed(first, "AUS", "GBR", "USA")))
    rival = admit_jpn(justification="a rival history")
    with pytest.raises(ChangeFork) as fork:
        chain.append(rival, verified(rival, signed(rival, "AUS", "GBR", "USA")))
    assert fork.value.seq == 0 and fork.value.applied == first.id
    assert chain.head == first.id and chain.next_seq == 1


def test_change_not_following_the_head_is_a_fork() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    first = admit_jpn()
    chain.append(first, verified(first, signed(first, "AUS", "GBR", "USA")))
    stray = admit_jpn(seq=1, prev="f" * 64)
    with pytest.raises(ChangeFork):
        chain.append(stray, verified(stray, signed(stray, "AUS", "GBR", "USA")))


def test_changes_out_of_order_wait_and_change_nothing() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    later = admit_jpn(seq=1, prev="a" * 64)
    with pytest.raises(InvalidChange, match="before change 0"):
        chain.append(later, verified(later, signed(later, "AUS", "GBR", "USA")))
    assert chain.next_seq == 0


def test_partner_may_not_propose() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    change = admit_jpn(nation="JPN", person="jpn-so")
    with pytest.raises(InvalidChange, match="not a member"):
        chain.append(change, verified(change, signed(change, "AUS", "GBR", "USA")))


def test_new_member_counts_only_after_its_admission_is_applied() -> None:
    chain = ChangeChain("aukus-p2", MEMBERS)
    add = Change("aukus-p2", 0, GENESIS, "member.add", {"nation": "JPN"}, "USA", "usa-so",
                 NOW, "JPN becomes a member")  # fmt: skip
    with pytest.raises(InvalidChange):  # JPN's own approval does not count before
        chain.append(add, verified(add, signed(add, "USA", "GBR", "JPN")))
    chain.append(add, verified(add, signed(add, "USA", "GBR", "AUS")))
    assert chain.required("admission.grant") == 4


def test_last_member_cannot_be_removed() -> None:
    chain = ChangeChain("solo", frozenset({"GBR"}))
    out = Change("solo", 0, GENESIS, "member.remove", {"nation": "GBR"}, "GBR", "gbr-so",
                 NOW, "leaving the partnership")  # fmt: skip
    with pytest.raises(InvalidChange, match="last member"):
        chain.append(out, verified(out, signed(out, "GBR")))


_AGREEMENT = {
    "id": "GBR-JPN-ISA-2013",
    "parties": ["GBR", "JPN"],
    "title": "ISA",
    "in_force": "2014-01-08",
    "scope": "government",
    "sources": ["a treaty series"],
}


def test_agreement_record_takes_a_bilateral_dated_sourced_agreement() -> None:
    change = Change("aukus-p2", 0, GENESIS, "agreement.record", _AGREEMENT, "GBR", "gbr-so",
                    NOW, "the members record it")  # fmt: skip
    assert Change.parse(change.canonical()) == change


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("admission.grant", {"nation": "JPN", "project": "hypersonic", "ceiling": "ULTRA",
                             "valid_from": NOW.isoformat()}),
        ("admission.grant", {"nation": "jpn", "project": "hypersonic", "ceiling": "SECRET",
                             "valid_from": NOW.isoformat()}),
        ("admission.grant", {"nation": "JPN", "project": "hypersonic", "ceiling": "SECRET",
                             "valid_from": NOW.isoformat(), "valid_until": NOW.isoformat()}),
        ("admission.end", {"nation": "JPN", "project": "hypersonic"}),
        ("project.create", {"id": "Bad Id", "name": "x"}),
        ("agreement.record", {"id": "gsa", "parties": ["GBR"], "title": "one party"}),
        ("agreement.record", _AGREEMENT | {"parties": ["GBR", "JPN", "USA"]}),
        ("agreement.record", _AGREEMENT | {"parties": ["GBR", "GBR"]}),
        ("agreement.record", _AGREEMENT | {"terminated": "2010-01-01"}),
        ("agreement.record", _AGREEMENT | {"in_force": "2013-02-30"}),
        ("agreement.record", _AGREEMENT | {"scope": "everything"}),
        ("agreement.record", _AGREEMENT | {"sources": []}),
        ("agreement.record", _AGREEMENT | {"id": "has space"}),
        ("quorum.set", {"kind": "admission.grant", "required": 0}),
        ("quorum.set", {"kind": "no.such", "required": 1}),
        ("member.add", {"nation": "JPN", "extra": 1}),
    ],
)  # fmt: skip
def test_payload_that_does_not_fit_its_kind_is_refused(kind: str, payload: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidChange):
        Change("aukus-p2", 0, GENESIS, kind, payload, "GBR", "gbr-so", NOW, "a valid reason")


def test_parse_takes_canonical_bytes_only() -> None:
    change = admit_jpn()
    assert Change.parse(change.canonical()) == change
    pretty = json.dumps(json.loads(change.canonical()), indent=2).encode()
    with pytest.raises(InvalidChange, match="canonical"):
        Change.parse(pretty)
    extra = json.loads(change.canonical()) | {"note": "x"}
    with pytest.raises(InvalidChange, match="exactly the members"):
        Change.parse(json.dumps(extra, sort_keys=True, separators=(",", ":")))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parse_refuses_junk_with_a_clear_error(data: bytes) -> None:
    try:
        Change.parse(data)
    except InvalidChange:
        return


@settings(max_examples=100, deadline=None)
@given(
    justification=st.text(
        alphabet=st.characters(whitelist_categories=("L", "N", "Zs")), min_size=10, max_size=200
    )
    .map(str.strip)
    .filter(lambda t: len(t) >= 10),
    seq=st.integers(min_value=1, max_value=10**6),
    ceiling=st.sampled_from(["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET"]),
)
def test_round_trip_and_any_edit_changes_the_id(justification: str, seq: int, ceiling: str) -> None:
    change = admit_jpn(seq=seq, prev="b" * 64, justification=justification)
    change = replace(change, payload={**change.payload, "ceiling": ceiling})
    assert Change.parse(change.canonical()).id == change.id
    edited = replace(change, justification=justification + ".")
    assert edited.id != change.id


@pytest.mark.parametrize("why", ["", "too short", "  padded justification  ", "x" * 501])
def test_change_needs_a_justification_the_registry_would_take(why: str) -> None:
    """A change whose effect the registry would refuse could never be applied: it is
    refused when it is made, on every node alike."""
    with pytest.raises(InvalidChange):
        admit_jpn(justification=why)
