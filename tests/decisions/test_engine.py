"""The engine's rules, one threat at a time (reason codes must be exact)."""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import datetime

import pytest
from decisions_testing import AT

from conftest import doc, person
from relto import errors as relto_errors
from relto.decisions import (
    AccessDenied,
    Engine,
    ExportFacts,
    TableLevelMapper,
    TableRecognition,
    World,
    enforce,
    evaluate,
)
from relto.events import MemorySink


def codes(engine: Engine, subject, action, obj, at: datetime = AT) -> list[str]:  # type: ignore[no-untyped-def]
    return list(engine.evaluate(subject, action, obj, at=at).codes)


def test_cleared_member_with_need_to_know_is_allowed(engine: Engine) -> None:
    d = engine.evaluate(person(), "read", doc(), at=AT)
    assert d.allowed and d.reasons == () and d.rule == "permit:read"
    assert d.policy_version == "test-1"
    assert [o.kind for o in d.obligations] == ["log"]


@pytest.mark.parametrize("action", ["download", "share"])
def test_released_copies_must_be_fingerprinted(engine: Engine, action: str) -> None:
    d = engine.evaluate(person(), action, doc(), at=AT)
    assert d.allowed and [o.kind for o in d.obligations] == ["log", "fingerprint"]


def test_person_without_clearance_denied(engine: Engine) -> None:
    assert codes(engine, person(clearances=()), "read", doc()) == ["CLEARANCE_MISSING"]


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        ("expired", "has expired"),
        ("suspended", "is suspended"),
        ("revoked", "was revoked"),
        ("lapsed", "has lapsed"),
        ("denied", "was denied"),
        ("investigating", "still being investigated"),
        ("under_review", "under review"),
    ],
)
def test_non_current_clearance_denied_and_says_why(
    engine: Engine, status: str, phrase: str
) -> None:
    d = engine.evaluate(person(clearances=(("USA", "TOP SECRET", status),)), "read", doc(), at=AT)
    assert d.codes == ("CLEARANCE_NOT_CURRENT",)
    assert phrase in d.reasons[0].sentence


def test_under_review_counts_only_where_the_nation_keeps_access(engine: Engine) -> None:
    gbr = person(nats=("GBR",), clearances=(("GBR", "SECRET", "under_review"),))
    assert codes(engine, gbr, "read", doc()) == []


def test_clearance_from_unrecognised_nation_denied(engine: Engine) -> None:
    aus = person(nats=("AUS",), clearances=(("AUS", "TOP SECRET", "granted"),))
    assert codes(engine, aus, "read", doc()) == ["CLEARANCE_NOT_RECOGNISED"]
    # the originator's own clearances always count
    assert codes(engine, aus, "read", doc(orig="AUS")) == []


def test_reading_up_denied(engine: Engine) -> None:
    low = person(clearances=(("USA", "CONFIDENTIAL", "granted"),))
    d = engine.evaluate(low, "read", doc(level="SECRET"), at=AT)
    assert d.codes == ("CLEARANCE_TOO_LOW",)
    assert "CONFIDENTIAL" in d.reasons[0].sentence


def test_clearance_is_mapped_through_equivalences(engine: Engine) -> None:
    gbr = person(nats=("GBR",), clearances=(("GBR", "OFFICIAL-SENSITIVE", "granted"),))
    d = engine.evaluate(gbr, "read", doc(level="CONFIDENTIAL"), at=AT)
    assert d.codes == ("CLEARANCE_TOO_LOW",)
    assert "maps to UNCLASSIFIED in USA's scheme" in d.reasons[0].sentence


def test_unmapped_clearance_level_denied() -> None:
    mapper = TableLevelMapper({"USA": (("SECRET", 3),), "XAA": (("LOW", 0),)})
    eng = Engine(World(implicit_members=frozenset({"USA", "XAA"})), mapper, TableRecognition())
    s = person(nats=("USA",), clearances=(("XAA", "LOW", "granted"),))
    d = eng.evaluate(s, "read", doc(rel=("USA",)), at=AT)
    assert "CLEARANCE_TOO_LOW" in d.codes and not d.allowed
    assert "has no equivalent" in d.reasons[0].sentence or "no equivalent" in d.explain()


def test_missing_caveat_denied(engine: Engine) -> None:
    assert codes(engine, person(), "read", doc(cats=("ATOMAL",))) == ["CAVEAT_NOT_HELD"]
    assert codes(engine, person(caveats=("ATOMAL",)), "read", doc(cats=("ATOMAL",))) == []


def test_nationality_outside_releasable_to_denied(engine: Engine) -> None:
    assert codes(engine, person(), "read", doc(rel=("GBR", "AUS"))) == ["NOT_RELEASABLE"]


def test_dual_national_judged_by_originator_rule(world: World) -> None:
    dual = person(nats=("USA", "JPN"))
    obj = doc(rel=("USA", "GBR"))
    rec = TableRecognition()
    any_rule = Engine(world, TableLevelMapper(), rec)
    all_rule = Engine(
        dataclasses.replace(world, dual_national_rule={"USA": "all"}), TableLevelMapper(), rec
    )
    assert any_rule.evaluate(dual, "read", obj, at=AT).allowed
    assert all_rule.evaluate(dual, "read", obj, at=AT).codes == ("NOT_RELEASABLE",)


def test_person_without_nationality_is_never_releasable(engine: Engine) -> None:
    assert "NOT_RELEASABLE" in codes(engine, person(nats=()), "read", doc())


def test_non_member_of_project_denied(engine: Engine) -> None:
    assert codes(engine, person(projects=()), "read", doc()) == ["NO_NEED_TO_KNOW"]
    assert codes(engine, person(), "read", doc(project=None)) == ["NO_NEED_TO_KNOW"]


def test_partner_not_admitted_to_project_denied(engine: Engine) -> None:
    jpn = person(
        nats=("JPN",), clearances=(("JPN", "TOP SECRET", "granted"),), projects=("hypersonics",)
    )
    obj = doc(rel=("USA", "JPN"), project="hypersonics")
    assert codes(engine, jpn, "read", obj) == ["NATION_NOT_ADMITTED"]


def test_partner_admitted_only_up_to_its_ceiling(engine: Engine) -> None:
    jpn = person(nats=("JPN",), clearances=(("JPN", "TOP SECRET", "granted"),))
    assert codes(engine, jpn, "read", doc(rel=("USA", "JPN"))) == []
    assert codes(engine, jpn, "read", doc(rel=("USA", "JPN"), level="TOP SECRET")) == [
        "NATION_NOT_ADMITTED"
    ]


def test_partner_not_yet_admitted_at_that_time_denied(engine: Engine) -> None:
    jpn = person(nats=("JPN",), clearances=(("JPN", "SECRET", "granted"),))
    before = AT.replace(year=2025)
    assert codes(engine, jpn, "read", doc(rel=("USA", "JPN")), at=before) == ["NATION_NOT_ADMITTED"]


def test_member_with_explicit_admission_is_bound_by_it(world: World) -> None:
    w = dataclasses.replace(
        world,
        admissions=(
            *world.admissions,
            world.admissions[0].__class__("GBR", "undersea", "CONFIDENTIAL", AT.replace(year=2020)),
        ),
    )
    eng = Engine(w, TableLevelMapper(), TableRecognition([]))
    gbr = person(nats=("GBR",), clearances=(("GBR", "SECRET", "granted"),))
    assert codes(eng, gbr, "read", doc(orig="GBR")) == ["NATION_NOT_ADMITTED"]


def test_orcon_needs_originator_approval(engine: Engine) -> None:
    obj = doc(orcon=True, approved=("bob",))
    assert codes(engine, person(), "read", obj) == ["ORIGINATOR_CONTROLLED"]
    assert codes(engine, person("bob"), "read", obj) == []
    assert codes(engine, person("bob"), "share", obj) == ["ORIGINATOR_CONTROLLED"]


def test_relabel_needs_security_officer_of_the_originator(engine: Engine) -> None:
    officer = person(roles=("security_officer",))
    assert codes(engine, officer, "relabel", doc()) == []
    assert codes(engine, person(), "relabel", doc()) == ["NO_NEED_TO_KNOW"]
    gbr_officer = person(
        nats=("GBR",), clearances=(("GBR", "SECRET", "granted"),), roles=("security_officer",)
    )
    assert codes(engine, gbr_officer, "relabel", doc()) == ["ORIGINATOR_CONTROLLED"]


def test_export_controlled_object_denied_without_export_check(engine: Engine) -> None:
    obj = dataclasses.replace(doc(), export=ExportFacts("ITAR", "XI(a)"))
    assert codes(engine, person(), "read", obj) == ["EXPORT_CONTROLLED"]


def test_export_hook_decides_export_controlled_objects(world: World) -> None:
    class Licensed:
        def check(self, subject, action, obj, at):  # type: ignore[no-untyped-def]
            return None if subject.id == "alice" else "bob holds no licence"

    eng = Engine(world, TableLevelMapper(), TableRecognition(), Licensed())
    obj = dataclasses.replace(doc(), export=ExportFacts("ITAR", "XI(a)"))
    assert eng.evaluate(person(), "read", obj, at=AT).allowed
    d = eng.evaluate(person("bob"), "read", obj, at=AT)
    assert d.codes == ("EXPORT_CONTROLLED",) and d.reasons[0].sentence == "bob holds no licence"


@pytest.mark.parametrize(
    ("subject", "obj", "action"),
    [
        (person(), doc(cats=("ZEBRA",)), "read"),
        (person(), doc(level="ULTRA SECRET"), "read"),
        (person(), doc(orig="XYZ"), "read"),
        (person(), doc(rel=("USA", "FVEY")), "read"),
        (
            person(clearances=(("USA", "TOP SECRET", "granted"), ("USA", "SECRET", "weird"))),
            doc(),
            "read",
        ),
        (person(clearances=(("USA", "COSMIC", "granted"),)), doc(), "read"),
        (person(), doc(), "print"),
    ],
)
def test_anything_uninterpretable_denies(engine: Engine, subject, obj, action) -> None:  # type: ignore[no-untyped-def]
    d = engine.evaluate(subject, action, obj, at=AT)
    assert not d.allowed and "UNKNOWN_ATTRIBUTE" in d.codes


def test_unreadable_clearance_is_unknown_not_missing(engine: Engine) -> None:
    s = person(clearances=(("USA", "COSMIC", "granted"),))
    assert codes(engine, s, "read", doc()) == ["UNKNOWN_ATTRIBUTE"]


def test_engine_error_fails_closed(world: World) -> None:
    class Broken:
        def rank(self, nation: str, level: str) -> int | None:
            raise RuntimeError("boom")

        def map_level(self, f: str, level: str, t: str) -> str | None:
            raise RuntimeError("boom")

    d = Engine(world, Broken(), TableRecognition()).evaluate(person(), "read", doc(), at=AT)
    assert not d.allowed and d.codes == ("UNKNOWN_ATTRIBUTE",)
    assert "RuntimeError" in d.reasons[0].sentence and "boom" not in d.reasons[0].sentence
    assert Engine(world, Broken(), TableRecognition()).readable(person(), [doc()], at=AT) == []


def test_every_failing_reason_is_reported_in_code_order(engine: Engine) -> None:
    s = person(
        nats=("KOR",),
        clearances=(("KOR", "CONFIDENTIAL", "expired"),),
        projects=(),
    )
    obj = doc(cats=("ATOMAL", "ZEBRA"), orcon=True)
    got = codes(engine, s, "share", obj)
    assert got == sorted(got)
    assert got == [
        "CAVEAT_NOT_HELD",
        "CLEARANCE_NOT_CURRENT",
        "CLEARANCE_NOT_RECOGNISED",
        "CLEARANCE_TOO_LOW",
        "NATION_NOT_ADMITTED",
        "NOT_RELEASABLE",
        "NO_NEED_TO_KNOW",
        "ORIGINATOR_CONTROLLED",
        "UNKNOWN_ATTRIBUTE",
    ]


def test_nearest_clearance_explains_the_denial(engine: Engine) -> None:
    # expired TOP SECRET (fails 1 check) beats a current CONFIDENTIAL (fails 1, heavier)
    s = person(clearances=(("USA", "CONFIDENTIAL", "granted"), ("USA", "TOP SECRET", "expired")))
    assert codes(engine, s, "read", doc()) == ["CLEARANCE_NOT_CURRENT"]
    # one failure beats two
    s = person(clearances=(("JPN", "CONFIDENTIAL", "expired"), ("USA", "CONFIDENTIAL", "granted")))
    assert codes(engine, s, "read", doc()) == ["CLEARANCE_TOO_LOW"]
    # any passing clearance means no clearance reason at all
    s = person(clearances=(("JPN", "CONFIDENTIAL", "expired"), ("USA", "SECRET", "granted")))
    assert codes(engine, s, "read", doc()) == []


def test_clearance_order_never_changes_the_reasons(engine: Engine) -> None:
    clr = [
        ("USA", "CONFIDENTIAL", "granted"),
        ("KOR", "TOP SECRET", "granted"),
        ("USA", "SECRET", "revoked"),
    ]
    results = {
        tuple(codes(engine, person(f"p{i}", clearances=tuple(perm)), "read", doc()))
        for i, perm in enumerate(itertools.permutations(clr))
    }
    assert len(results) == 1


def test_enforce_raises_opaque_access_denied_and_records(engine: Engine) -> None:
    sink = MemorySink()
    with pytest.raises(AccessDenied) as info:
        enforce(person(projects=()), "read", doc(), at=AT, engine=engine, sink=sink)
    exc = info.value
    assert isinstance(exc, relto_errors.AccessDenied)
    assert str(exc) == "access denied"
    assert exc.decision.codes == ("NO_NEED_TO_KNOW",)
    assert sink.kinds() == ["decision"]
    assert sink.events[0].payload["reasons"][0]["code"] == "NO_NEED_TO_KNOW"
    ok = enforce(person(), "read", doc(), at=AT, engine=engine, sink=sink)
    assert ok.allowed and sink.kinds() == ["decision", "decision"]


def test_decisions_are_frozen(engine: Engine) -> None:
    d = evaluate(person(), "read", doc(), at=AT, engine=engine)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.allowed = False  # type: ignore[misc]


def test_naive_time_is_a_programming_error(engine: Engine) -> None:
    with pytest.raises(ValueError):
        engine.evaluate(person(), "read", doc(), at=datetime(2026, 1, 1))


def test_list_page_of_100k_objects_well_under_a_second(engine: Engine) -> None:
    levels = ("UNCLASSIFIED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
    rels = [("USA", "GBR"), ("GBR", "AUS"), ("USA", "JPN", "GBR"), ("USA",)]
    objects = [
        doc(
            f"o{i}",
            level=levels[i % 4],
            rel=rels[i % 3],
            project=("undersea", "hypersonics")[i % 2],
            cats=("ATOMAL",) if i % 7 == 0 else (),
        )
        for i in range(100_000)
    ]
    s = person(clearances=(("USA", "SECRET", "granted"),))
    started = time.perf_counter()
    readable = engine.readable(s, objects, at=AT)
    elapsed = time.perf_counter() - started
    fresh = Engine(engine.world, engine.mapper, engine.recognition)
    sample = objects[:2000]
    assert {o.id for o in readable if int(o.id[1:]) < 2000} == {
        o.id for o in sample if fresh.evaluate(s, "read", o, at=AT).allowed
    }
    assert 0 < len(readable) < len(objects)
    assert elapsed < 0.5, elapsed


def test_readers_of_an_object(engine: Engine) -> None:
    people = [
        person("a"),
        person("b", projects=()),
        person("c", nats=("GBR",), clearances=(("GBR", "SECRET", "granted"),)),
    ]
    assert [s.id for s in engine.readers(doc(), people, at=AT)] == ["a", "c"]
