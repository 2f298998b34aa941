"""Facts built from relto.labels and relto.vetting objects (the real APIs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from decisions_testing import AT

from relto.decisions import Engine, World
from relto.decisions.adapters import (
    LabelsLevelMapper,
    default_mapper,
    default_recognition,
    resource_from_4774,
    resource_from_banner,
    subject_from_vetting,
)
from relto.labels import parse_banner, write_label
from relto.labels.national import banner_to_label, builtin_policy
from relto.vetting import Clearance, Person, ProjectMembership, Role, Status, default_policy


def test_default_services_are_the_real_ones() -> None:
    assert isinstance(default_mapper(), LabelsLevelMapper)
    rec = default_recognition()
    assert rec.recognises("JPN", "USA", AT) and not rec.recognises("AUS", "GBR", AT)


def test_labels_mapper_reads_equivalences_and_fails_closed() -> None:
    m = LabelsLevelMapper()
    assert m.map_level("JPN", "GOKUHI", "USA") == "SECRET"
    assert m.rank("JPN", "SECRET") == m.rank("JPN", "GOKUHI")  # CAPCO name read via USA
    assert m.map_level("USA", "CONFIDENTIAL", "GBR") is None  # no public equivalence
    assert m.rank("GBR", "COSMIC PURPLE") is None and m.rank("XYZ", "SECRET") is None
    assert m.map_level("COMMON", "SECRET", "JPN") == "GOKUHI"
    assert m.map_level("COMMON", "CONFIDENTIAL", "USA") == "CONFIDENTIAL"
    assert m.rank("USA", "TS") == m.rank("USA", "top secret") == m.rank("USA", "TOP SECRET")


def _clearance(status_path: list[Status], when: datetime) -> Clearance:
    policy = default_policy()
    c = Clearance.sponsor_new(
        id="c1",
        person_id="p1",
        nation="GBR",
        level="SC",
        sponsor="MOD",
        at=when,
        actor="officer",
        reason="needed for undersea",
        policy=policy,
        caveats=frozenset({"ATOMAL"}),
    )
    t = when
    for st in status_path:
        t += timedelta(days=10)
        c = c.transition(st, at=t, actor="officer", reason="step", policy=policy)
    return c


def test_subject_from_vetting_records() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    person = Person(
        id="p1",
        name="Pat",
        nationalities=frozenset({"GBR"}),
        organisation="MOD",
        home_nation="GBR",
        roles=frozenset({Role.SECURITY_OFFICER}),
        projects=(ProjectMembership("undersea"),),
    )
    granted = _clearance([Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED], start)
    s = subject_from_vetting(person, [granted], AT)
    assert s.nationalities == {"GBR"} and s.projects == {"undersea"}
    assert "security_officer" in s.roles and s.caveats == {"ATOMAL"}
    [fact] = s.clearances
    assert (fact.nation, fact.level, fact.status) == ("GBR", "SECRET", "granted")
    revoked = granted.transition(
        Status.REVOKED, at=AT - timedelta(days=1), actor="o", reason="r", policy=default_policy()
    )
    [fact] = subject_from_vetting(person, [revoked], AT).clearances
    assert fact.status == "revoked" and "revoked" in fact.cause
    # a clearance sponsored after `at` is not a fact yet
    assert subject_from_vetting(person, [granted], start - timedelta(days=1)).clearances == ()


def test_banner_and_4774_label_give_the_same_facts() -> None:
    banner = "SECRET//REL TO USA, GBR, AUS//ORCON"
    from_banner = resource_from_banner("d", banner, originator="USA", project="p")
    label = banner_to_label(parse_banner(banner, "USA"), builtin_policy("USA"))
    xml = write_label(label, AT)
    from_xml = resource_from_4774("d", xml, originator="USA", project="p")
    assert from_banner.rel_to == from_xml.rel_to == {"USA", "GBR", "AUS"}
    assert from_banner.classification == from_xml.classification == "SECRET"
    assert from_banner.orcon and from_xml.orcon


def test_engine_on_real_services_denies_unmapped_levels() -> None:
    engine = Engine(
        World(implicit_members=frozenset({"USA", "GBR"})), default_mapper(), default_recognition()
    )
    from relto.decisions import ClearanceFact, Subject

    s = Subject(
        "p",
        frozenset({"GBR"}),
        (ClearanceFact("c", "GBR", "OFFICIAL", "granted"),),
        projects=frozenset({"p"}),
    )
    obj = resource_from_banner("d", "CONFIDENTIAL//REL TO USA, GBR", originator="USA", project="p")
    assert engine.evaluate(s, "read", obj, at=AT).codes == ("CLEARANCE_TOO_LOW",)
