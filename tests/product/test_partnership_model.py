"""The partnership model and its SQL repository: admissions cannot be forged,
overlapped, or made by someone who is not a member nation's security officer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relto.events import MemorySink
from relto.partnership import (
    CLASSIFICATIONS,
    Actor,
    AdmissionConflict,
    InvalidPartnership,
    MemoryRepository,
    NotPermitted,
    Partnership,
    PartnershipRepository,
    Project,
    UnknownRecord,
    admit,
    ceiling_for,
    create_partnership,
    create_project,
    end_admission,
    matrix,
)
from relto.store import Database
from relto.store.partnership import SqlPartnershipRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GBR_SO = Actor("gbr-so", "GBR", frozenset({("security_officer", "GBR")}))
JPN_SO = Actor("jpn-so", "JPN", frozenset({("security_officer", "JPN")}))
GBR_ENG = Actor("gbr-eng", "GBR", frozenset({("engineer", "GBR")}))


def _setup(repo: PartnershipRepository, sink: MemorySink) -> None:
    create_partnership(
        repo,
        sink,
        partnership=Partnership("aukus", "AUKUS", ("AUS", "GBR", "USA"), ("JPN", "KOR")),
        actor=GBR_SO,
        at=T0,
    )
    create_project(
        repo, sink, project=Project("hypersonic", "aukus", "Hypersonics"), actor=GBR_SO, at=T0
    )


def test_admission_is_audited_and_gives_ceiling() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    a = admit(
        repo, sink, project_id="hypersonic", nation="JPN", ceiling="SECRET", actor=GBR_SO, at=T0
    )
    assert sink.kinds()[-1] == "partnership.admitted"
    assert ceiling_for(repo.admissions_for("hypersonic"), "JPN", T0) == "SECRET"
    assert ceiling_for(repo.admissions_for("hypersonic"), "KOR", T0) is None
    end_admission(repo, sink, admission_id=a.id, actor=GBR_SO, at=T0 + timedelta(days=1))
    assert ceiling_for(repo.admissions_for("hypersonic"), "JPN", T0 + timedelta(days=1)) is None
    assert ceiling_for(repo.admissions_for("hypersonic"), "JPN", T0 + timedelta(hours=1))


def test_partner_security_officer_cannot_admit_itself() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    before = len(sink.events)
    with pytest.raises(NotPermitted):
        admit(
            repo, sink, project_id="hypersonic", nation="JPN", ceiling="SECRET", actor=JPN_SO, at=T0
        )
    with pytest.raises(NotPermitted):
        admit(
            repo,
            sink,
            project_id="hypersonic",
            nation="JPN",
            ceiling="SECRET",
            actor=GBR_ENG,
            at=T0,
        )
    refusals = sink.events[before:]
    assert [e.kind for e in refusals] == ["authz.decision", "authz.decision"]
    assert all(e.payload["allowed"] is False for e in refusals)  # recorded, not admitted
    assert repo.admissions == {}


def test_overlapping_admission_rejected() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    admit(
        repo, sink, project_id="hypersonic", nation="JPN", ceiling="RESTRICTED", actor=GBR_SO, at=T0
    )
    with pytest.raises(AdmissionConflict):
        admit(
            repo, sink, project_id="hypersonic", nation="JPN", ceiling="SECRET", actor=GBR_SO, at=T0
        )


def test_nation_outside_partnership_rejected() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    with pytest.raises(InvalidPartnership):
        admit(
            repo, sink, project_id="hypersonic", nation="FRA", ceiling="SECRET", actor=GBR_SO, at=T0
        )
    with pytest.raises(InvalidPartnership):
        admit(
            repo, sink, project_id="hypersonic", nation="JPN", ceiling="COSMIC", actor=GBR_SO, at=T0
        )
    with pytest.raises(UnknownRecord):
        admit(repo, sink, project_id="nope", nation="JPN", ceiling="SECRET", actor=GBR_SO, at=T0)


def test_naive_time_is_a_programming_error() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    with pytest.raises(ValueError):
        admit(
            repo,
            sink,
            project_id="hypersonic",
            nation="JPN",
            ceiling="SECRET",
            actor=GBR_SO,
            at=datetime(2026, 1, 1),
        )


def test_expired_admission_grants_nothing() -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    admit(
        repo,
        sink,
        project_id="hypersonic",
        nation="KOR",
        ceiling="SECRET",
        actor=GBR_SO,
        at=T0,
        valid_until=T0 + timedelta(days=30),
    )
    later = T0 + timedelta(days=30)
    assert ceiling_for(repo.admissions_for("hypersonic"), "KOR", later) is None
    m = matrix(repo.partnerships["aukus"], repo.projects.values(), repo.admissions.values(), later)
    assert m["hypersonic"]["KOR"] is None


@given(
    st.text(max_size=12),
    st.sampled_from(CLASSIFICATIONS) | st.text(max_size=12),
)
def test_bad_nation_or_ceiling_is_a_domain_error(nation: str, ceiling: str) -> None:
    repo, sink = MemoryRepository(), MemorySink()
    _setup(repo, sink)
    try:
        admit(
            repo, sink, project_id="hypersonic", nation=nation, ceiling=ceiling, actor=GBR_SO, at=T0
        )
    except (InvalidPartnership, AdmissionConflict):
        pass
    else:
        assert nation in ("AUS", "GBR", "USA", "JPN", "KOR") and ceiling in CLASSIFICATIONS


def test_sql_repository_round_trips(database: Database) -> None:
    sink = MemorySink()
    with database.session() as s:
        repo = SqlPartnershipRepository(s)
        _setup(repo, sink)
        a = admit(
            repo,
            sink,
            project_id="hypersonic",
            nation="JPN",
            ceiling="SECRET",
            actor=GBR_SO,
            at=T0,
            valid_until=T0 + timedelta(days=365),
        )
    with database.session() as s:
        repo = SqlPartnershipRepository(s)
        got = repo.get_admission(a.id)
        assert got == a
        assert repo.get_partnership("aukus") == Partnership(
            "aukus", "AUKUS", ("AUS", "GBR", "USA"), ("JPN", "KOR")
        )
        page = repo.list_admissions(project_id="hypersonic", nation=None, offset=0, limit=1000)
        assert page.limit == 200 and page.total == 1
        with pytest.raises(AdmissionConflict):
            admit(
                repo,
                sink,
                project_id="hypersonic",
                nation="JPN",
                ceiling="SECRET",
                actor=GBR_SO,
                at=T0,
            )
