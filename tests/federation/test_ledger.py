"""Partnership changes on real nodes: GBR proposes to admit JPN to hypersonics, AUS
and USA approve; the admission exists nowhere while only two have signed, and on
every node once all three have -- each node verifying every signature against the
node keys its own officer pinned. A rival change for a taken place is a fork,
recorded and refused; approvals no pinned key made count for nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from relto.audit.entries import decode_entry
from relto.config import Settings
from relto.demo import load_demo, read_demo
from relto.errors import AccessDenied, InvalidInput
from relto.federation import SigningKey
from relto.federation.changes import ChangeFork, approve
from relto.federation.homekeys import load_home_keys
from relto.federation.ledger import ChangeLedger
from relto.launcher.federation import nation_share
from relto.node import Node, build_node

NATIONS = ("AUS", "GBR", "USA", "JPN")
OFFICERS = {"AUS": "aus-so-campbell", "GBR": "gbr-so-whitfield", "USA": "usa-so-bennett",
            "JPN": "jpn-so-federation"}  # fmt: skip


@dataclass
class Member:
    nation: str
    node: Node
    ledger: ChangeLedger

    @property
    def officer(self):  # type: ignore[no-untyped-def]
        who = self.node.directory.principal(OFFICERS[self.nation], via="node")
        assert who is not None
        return who

    def kinds(self) -> list[str]:
        log = self.node.log
        return [decode_entry(e.body).kind for e in log.entries(0, log.size())]

    def jpn_admitted(self, at: datetime) -> bool:
        page = self.node.partnerships.admissions(
            self.officer, project_id="hypersonic", nation="JPN", offset=0, limit=50
        )
        return any(a.status_at(at) == "active" for a in page.items)


@pytest.fixture
def members(tmp_path: Path) -> Iterator[dict[str, Member]]:
    data = read_demo()
    nodes: dict[str, Member] = {}
    for i, nation in enumerate(NATIONS):
        settings = Settings(
            nation=nation, data_dir=tmp_path / nation.lower(), bind="127.0.0.1",
            port=47100 + i, public_url=f"http://127.0.0.1:{47100 + i}",
            secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)),
        )  # type: ignore[call-arg]  # fmt: skip
        node = build_node(settings)
        load_demo(node.db, node.sink, nation_share(data, nation), at=datetime.now(UTC))
        ledger = ChangeLedger(
            db=node.db, sink=node.sink, authorizer=node.authorizer, registry=node.partnerships,
            pins=node.trust.trusted, node_key=load_home_keys(settings).node_key, nation=nation,
            partnership=data.partnership.id, founders=data.partnership.members,
        )  # fmt: skip
        nodes[nation] = Member(nation, node, ledger)
    now = datetime.now(UTC)
    for a in nodes.values():  # every officer pins every other node, by fingerprint
        for b in nodes.values():
            if a is b:
                continue
            assert b.node.federation is not None
            a.node.trust.pin(
                b.node.federation.descriptor(now),
                fingerprint=b.node.federation.descriptors.fingerprint,
                actor=a.officer,
                now=now,
            )
    yield nodes
    for m in nodes.values():
        m.node.db.dispose()


def _send(src: Member, dst: Member, change_id: str) -> None:
    """What replication carries: the change's bytes and every word src holds on it."""
    held = src.ledger.standing(change_id)
    dst.ledger.receive(held.change.canonical().decode(), [a.token for a in held.approvals])


def _admit_jpn(m: Member, from_: datetime) -> str:
    payload = {"nation": "JPN", "project": "hypersonic", "ceiling": "SECRET",
               "valid_from": from_.isoformat()}  # fmt: skip
    return m.ledger.propose(
        m.officer, "admission.grant", payload, "JPN joins hypersonics"
    ).change.id


def test_admission_exists_nowhere_until_every_member_signed_then_everywhere(
    members: dict[str, Member],
) -> None:
    gbr, aus, usa = members["GBR"], members["AUS"], members["USA"]
    start = datetime.now(UTC) + timedelta(seconds=1)
    change = _admit_jpn(gbr, start)
    assert gbr.ledger.standing(change).quorum.approved_by == {"GBR"}
    _send(gbr, aus, change)
    aus.ledger.decide(aus.officer, change, "approve", "effect checked on the AUS node")
    _send(aus, gbr, change)
    later = start + timedelta(minutes=1)
    for m in (gbr, aus):
        assert m.ledger.standing(change).status == "pending"  # two of three signed
        assert not m.jpn_admitted(later)
    _send(aus, usa, change)
    usa.ledger.decide(usa.officer, change, "approve", "effect checked on the USA node")
    assert usa.ledger.standing(change).status == "applied"
    for m in (gbr, aus):
        _send(usa, m, change)
    for m in (gbr, aus, usa):
        assert m.ledger.standing(change).status == "applied", m.nation
        assert m.jpn_admitted(later), m.nation
        assert not m.jpn_admitted(start - timedelta(seconds=5))  # from its `from`, not before
        assert "partnership.change.applied" in m.kinds()
        assert m.ledger.chain().head == change


def test_rival_change_for_a_taken_place_is_a_fork_recorded_and_refused(
    members: dict[str, Member],
) -> None:
    gbr, aus, usa = members["GBR"], members["AUS"], members["USA"]
    first = _admit_jpn(gbr, datetime.now(UTC))
    rival = aus.ledger.propose(
        aus.officer, "project.create", {"id": "space-domain", "name": "Space domain awareness"},
        "a rival for the same place",
    ).change.id  # fmt: skip
    for m in (aus, usa):
        _send(gbr, m, first)
        m.ledger.decide(m.officer, first, "approve", "ok")
    for src in (aus, usa):  # every word reaches every node
        for dst in (gbr, aus, usa):
            if src is not dst:
                _send(src, dst, first)
    assert gbr.ledger.standing(first).status == "applied"
    # the rival AUS still held is superseded there; offered anywhere, it is a fork
    assert aus.ledger.standing(rival).status == "superseded"
    with pytest.raises(ChangeFork):
        _send(aus, usa, rival)
    held = aus.ledger.standing(rival)
    usa_word = approve(
        held.change, nation="USA", by="usa-so", key=load_home_keys(usa.node.settings).node_key,
        at=datetime.now(UTC), justification="signed late",
    )  # fmt: skip
    with pytest.raises(ChangeFork):
        gbr.ledger.receive(
            held.change.canonical().decode(), [a.token for a in held.approvals] + [usa_word]
        )
    assert "partnership.change.fork" in gbr.kinds()
    assert gbr.ledger.chain().head == first


def test_approvals_no_pinned_key_made_count_for_nothing(members: dict[str, Member]) -> None:
    gbr, usa = members["GBR"], members["USA"]
    change = _admit_jpn(gbr, datetime.now(UTC))
    held = gbr.ledger.standing(change)
    impostor = SigningKey.generate()
    forged = [
        approve(held.change, nation=n, by="x", key=impostor, at=datetime.now(UTC),
                justification="forged")
        for n in ("AUS", "USA")
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="no member node's approval"):
        usa.ledger.receive(held.change.canonical().decode(), forged)
    with pytest.raises(InvalidInput):
        gbr.ledger.receive(held.change.canonical().decode(), forged)
    assert gbr.ledger.standing(change).quorum.approved_by == {"GBR"}


def test_partner_node_may_not_propose(members: dict[str, Member]) -> None:
    jpn = members["JPN"]
    with pytest.raises(InvalidInput, match="not a member"):
        _admit_jpn(jpn, datetime.now(UTC))


def test_engineer_may_not_propose_or_approve(members: dict[str, Member]) -> None:
    gbr = members["GBR"]
    engineer = gbr.node.directory.principal("gbr-eng-harper", via="node")
    assert engineer is not None
    with pytest.raises(AccessDenied):
        gbr.ledger.propose(engineer, "member.add", {"nation": "JPN"}, "no")


def test_change_the_registry_refuses_here_fails_loudly_and_frees_its_place(
    members: dict[str, Member],
) -> None:
    """GBR admitted JPN to hypersonics by hand before; the quorum's identical
    admission conflicts there: recorded as failed, not applied, the chain not stuck."""
    gbr, aus, usa = members["GBR"], members["AUS"], members["USA"]
    start = datetime.now(UTC) + timedelta(seconds=1)
    gbr.node.partnerships.admit(
        gbr.officer, project_id="hypersonic", nation="JPN", ceiling="SECRET", at=start,
        valid_from=start, justification="admitted by hand before the quorum existed",
        by_quorum=True,  # as if made before GBR joined the federation
    )  # fmt: skip
    change = _admit_jpn(aus, start)
    for m in (gbr, usa):
        _send(aus, m, change)
        m.ledger.decide(m.officer, change, "approve", "effect checked")
        _send(m, aus, change)
    _send(usa, gbr, change)
    assert gbr.ledger.standing(change).status == "failed"
    assert "partnership.change.failed" in gbr.kinds()
    assert gbr.ledger.chain().next_seq == 0
    assert aus.ledger.standing(change).status == "applied"


def test_no_nation_alone_admits_once_it_pins_partners(members: dict[str, Member]) -> None:
    """A node in a federation refuses a single officer's admission, end or project:
    those are partnership changes, applied when every member node has signed."""
    gbr = members["GBR"]
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="partnership changes"):
        gbr.node.partnerships.admit(
            gbr.officer, project_id="hypersonic", nation="JPN", ceiling="SECRET", at=now,
            justification="one officer alone tries to admit JPN",
        )  # fmt: skip
    assert not gbr.jpn_admitted(now + timedelta(minutes=1))


def _through_quorum(
    members: dict[str, Member], kind: str, payload: dict[str, object], why: str
) -> str:
    """GBR proposes, AUS and USA approve, and every node (JPN too) receives it all."""
    gbr, aus, usa = members["GBR"], members["AUS"], members["USA"]
    change = gbr.ledger.propose(gbr.officer, kind, payload, why).change.id
    _send(gbr, aus, change)
    aus.ledger.decide(aus.officer, change, "approve", "effect checked on the AUS node")
    _send(aus, usa, change)
    usa.ledger.decide(usa.officer, change, "approve", "effect checked on the USA node")
    for m in members.values():
        if m is not usa:
            _send(usa, m, change)
    return change


def _partnership(m: Member):  # type: ignore[no-untyped-def]
    return m.node.partnerships.partnership(m.officer, "aukus-p2")


def test_member_added_by_quorum_is_a_member_on_every_node_and_signs_from_then(
    members: dict[str, Member],
) -> None:
    change = _through_quorum(members, "member.add", {"nation": "JPN"}, "JPN joins as a member")
    for m in members.values():
        assert m.ledger.standing(change).status == "applied", m.nation
        p = _partnership(m)
        assert "JPN" in p.members and "JPN" not in p.partners, m.nation
        assert m.ledger.chain().required("admission.grant") == 4
        assert "partnership.member_added" in m.kinds()
    # three signatures no longer make a change: JPN's is needed too
    nxt = _through_quorum(members, "project.create", {"id": "space", "name": "Space"},
                          "a new workstream on space")  # fmt: skip
    assert members["GBR"].ledger.standing(nxt).status == "pending"
    jpn = members["JPN"]
    jpn.ledger.decide(jpn.officer, nxt, "approve", "effect checked on the JPN node")
    assert jpn.ledger.standing(nxt).status == "applied"


def test_restarted_ledger_keeps_where_the_chain_began_after_a_member_joined(
    members: dict[str, Member],
) -> None:
    """The partnership's members moved on (JPN joined); a ledger made again from them
    must still judge the chain from its founders, not rewrite its history."""
    gbr = members["GBR"]
    change = _through_quorum(members, "member.add", {"nation": "JPN"}, "JPN joins as a member")
    p = _partnership(gbr)
    again = ChangeLedger(
        db=gbr.node.db, sink=gbr.node.sink, authorizer=gbr.node.authorizer,
        registry=gbr.node.partnerships, pins=gbr.node.trust.trusted,
        node_key=load_home_keys(gbr.node.settings).node_key, nation="GBR",
        partnership=p.id, founders=p.members,
    )  # fmt: skip
    chain = again.chain()
    assert chain.founders == frozenset({"AUS", "GBR", "USA"})
    assert chain.head == change and chain.members == {"AUS", "GBR", "USA", "JPN"}


def test_member_removed_stays_a_partner_with_its_admissions_untouched(
    members: dict[str, Member],
) -> None:
    gbr = members["GBR"]
    later = datetime.now(UTC) + timedelta(minutes=1)
    before = gbr.node.partnerships.admissions(
        gbr.officer, project_id="hypersonic", nation="AUS", offset=0, limit=50
    ).items
    assert before  # AUS takes part in hypersonics through an admission, as members do
    _through_quorum(members, "member.remove", {"nation": "AUS"}, "AUS leaves the membership")
    for m in members.values():
        p = _partnership(m)
        assert "AUS" not in p.members and "AUS" in p.partners, m.nation
        assert m.ledger.chain().members == {"GBR", "USA"}
    after = gbr.node.partnerships.admissions(
        gbr.officer, project_id="hypersonic", nation="AUS", offset=0, limit=50
    ).items
    assert after == before
    assert [a.status_at(later) for a in after] == [a.status_at(later) for a in before]


AUS_KOR = {
    "id": "AUS-KOR-CMI-2009",
    "parties": ["KOR", "AUS"],
    "title": "Agreement on the protection of classified military information",
    "in_force": "2009-09-16",
    "scope": "military",
    "sources": ["exchange of notes recorded by the partnership's officers"],
}


def test_agreement_recorded_by_quorum_makes_decisions_recognise_clearances(
    members: dict[str, Member],
) -> None:
    """relto's sourced data could not confirm when AUS-KOR entered into force (not
    recognised); once the members' quorum records it, every node's decision engine
    recognises KOR clearances for AUS information -- and not before the quorum."""
    now = datetime.now(UTC)
    for m in members.values():
        assert not m.node.facts.engine().recognition.recognises("KOR", "AUS", now)
    gbr = members["GBR"]
    change = gbr.ledger.propose(
        gbr.officer, "agreement.record", AUS_KOR, "the members confirmed its entry into force"
    ).change.id
    assert not gbr.node.facts.engine().recognition.recognises("KOR", "AUS", now)
    _send(gbr, members["AUS"], change)
    aus = members["AUS"]
    aus.ledger.decide(aus.officer, change, "approve", "AUS confirms the date it holds")
    _send(aus, members["USA"], change)
    usa = members["USA"]
    usa.ledger.decide(usa.officer, change, "approve", "USA agrees to record it")
    for m in members.values():
        if m is not usa:
            _send(usa, m, change)
    for m in members.values():
        recognition = m.node.facts.engine().recognition
        assert recognition.recognises("KOR", "AUS", now), m.nation
        assert recognition.recognises("AUS", "KOR", now), m.nation
        assert not recognition.recognises("KOR", "AUS", datetime(2009, 9, 15, tzinfo=UTC))
        assert "partnership.agreement_recorded" in m.kinds()
        (held,) = m.node.partnerships.agreements(m.officer, "aukus-p2")
        assert held.parties == ("AUS", "KOR") and held.recorded_by.startswith("change 0")


def test_agreement_ended_by_a_later_record_is_no_longer_recognised(
    members: dict[str, Member],
) -> None:
    _through_quorum(members, "agreement.record", AUS_KOR, "the members confirmed its entry")
    ended = AUS_KOR | {"terminated": "2026-01-01"}
    _through_quorum(members, "agreement.record", ended, "the agreement was terminated")
    now = datetime.now(UTC)
    for m in members.values():
        recognition = m.node.facts.engine().recognition
        assert not recognition.recognises("KOR", "AUS", now), m.nation
        assert recognition.recognises("KOR", "AUS", datetime(2025, 6, 1, tzinfo=UTC))


def test_one_officer_alone_cannot_change_members_or_record_agreements_once_federated(
    members: dict[str, Member],
) -> None:
    from relto.partnership import RecordedAgreement

    gbr = members["GBR"]
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="partnership changes"):
        gbr.node.partnerships.change_membership(
            gbr.officer, partnership_id="aukus-p2", nation="JPN", member=True, at=now,
            justification="one officer alone makes JPN a member",
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="partnership changes"):
        gbr.node.partnerships.record_agreement(
            gbr.officer,
            RecordedAgreement(
                id="AUS-KOR-CMI-2009", partnership_id="aukus-p2", parties=("AUS", "KOR"),
                title="t", in_force=now.date(), scope="military", sources=("s",),
            ),
            now, justification="one officer alone records an agreement",
        )  # fmt: skip
    assert "JPN" not in _partnership(gbr).members
    assert not gbr.node.facts.engine().recognition.recognises("KOR", "AUS", now)
