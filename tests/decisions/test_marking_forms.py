"""Issue 13: a marking means the same to relto.labels and to a decision.

Every banner or portion form ``relto.labels.parse_banner`` reads is read by the
decisions adapter with the same meaning (one parser: ``relto.labels.read_marking``);
the advice in a refused marking never changes who may read; caveats are held only
through current clearances; admission ceilings on the common scale admit exactly
the national levels whose common equivalent they dominate.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from decisions_testing import AT
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from relto.decisions import (
    COMMON_SCHEME,
    Admission,
    ClearanceFact,
    Engine,
    Resource,
    Subject,
    World,
)
from relto.decisions.adapters import (
    DEFAULT_CATEGORIES,
    LabelsLevelMapper,
    default_recognition,
    resource_from_banner,
    subject_from_vetting,
)
from relto.labels import MarkingError, builtin_policy, parse_banner
from relto.labels.banner import CLASSIFICATION_ABBREVIATIONS, TETRAGRAPHS, expand_rel_to
from relto.vetting import Clearance, Person, ProjectMembership, Status, default_policy

NATIONS = ("USA", "GBR", "AUS", "CAN", "NZL", "JPN", "KOR")
COMMON = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
#: Controls other than REL TO and NOFORN, with their portion forms.
CONTROLS = {
    "RSEN": "RS",
    "FOUO": "FOUO",
    "ORCON": "OC",
    "IMCON": "IMC",
    "PROPIN": "PR",
    "RELIDO": "RELIDO",
    "DSEN": "DSEN",
    "FISA": "FISA",
}
RESTRICTIVE = {"IMCON", "PROPIN", "RSEN", "DSEN", "FISA"}
OTHERS = ("USA", "GBR", "AUS", "CAN", "NZL", "JPN", "KOR", "FRA", "DEU")


def _engine(*admissions: Admission) -> Engine:
    world = World(
        admissions=admissions,
        implicit_members=frozenset() if admissions else frozenset(NATIONS),
        known_categories=DEFAULT_CATEGORIES,
    )
    return Engine(world, LabelsLevelMapper(), default_recognition())


def _top(nation: str) -> str:
    return max(builtin_policy(nation).classifications, key=lambda c: c.hierarchy).name


def _reader(nation: str, caveats: frozenset[str] = DEFAULT_CATEGORIES) -> Subject:
    """A national of ``nation`` cleared by it at its highest level, in project p."""
    return Subject(
        f"{nation.lower()}-reader",
        frozenset({nation}),
        (ClearanceFact("c", nation, _top(nation), "granted"),),
        caveats=caveats,
        projects=frozenset({"p"}),
    )


def _readers(obj: Resource, nations: tuple[str, ...] = OTHERS) -> frozenset[str]:
    """Nations to whose people ``obj``'s marking releases it (the engine's Releasable To
    and marking checks; clearance recognition between nations is another matter)."""
    engine = _engine()
    out = set()
    for n in nations:
        if n not in builtin_nations():  # no scheme to clear anyone with
            continue
        s = _reader(n)
        o = Resource(
            obj.id,
            obj.originator,
            obj.classification,
            obj.rel_to,
            obj.project,
            obj.categories,
            obj.orcon,
            frozenset({s.id}),
            obj.export,
            obj.marking_error,
        )
        codes = engine.evaluate(s, "read", o, at=AT).codes
        if "NOT_RELEASABLE" not in codes and "UNKNOWN_ATTRIBUTE" not in codes:
            out.add(n)
    return frozenset(out)


def builtin_nations() -> frozenset[str]:
    return frozenset(NATIONS)


# -- point 1: the foreign-government form -----------------------------------------------


def test_foreign_government_banner_not_denied_as_unknown_attribute() -> None:
    obj = resource_from_banner("d", "//GBR SECRET//REL TO GBR, USA", project="p")
    assert obj.marking_error is None
    assert (obj.originator, obj.classification, obj.rel_to) == ("GBR", "SECRET", {"GBR", "USA"})
    assert _readers(obj) == {"GBR", "USA"}


def test_foreign_government_form_agrees_with_originator_argument() -> None:
    a = resource_from_banner("d", "//GBR SECRET//REL TO GBR, USA//ORCON", project="p")
    b = resource_from_banner("d", "SECRET//ORCON/REL TO USA, GBR", originator="GBR", project="p")
    assert a == b


def test_foreign_form_naming_another_originator_than_given_is_refused() -> None:
    obj = resource_from_banner("d", "//GBR SECRET//REL TO GBR, USA", originator="USA")
    assert obj.marking_error is not None and "originator" in obj.marking_error


# -- point 2: order and separators of controls do not change the meaning ----------------


@pytest.mark.parametrize(
    "banner",
    [
        "SECRET//ORCON/REL TO GBR",
        "SECRET//REL TO GBR//ORCON",
        "SECRET//REL TO GBR/ORCON",
        "SECRET//ORCON//REL TO GBR",
        "//GBR SECRET//ORCON/REL TO GBR",
        "SECRET//ORCON/NOFORN",
        "(S//OC/REL TO GBR)",
        "(S//OC/NF)",
    ],
)
def test_rel_to_originator_alone_reads_as_noforn_in_any_position(banner: str) -> None:
    obj = resource_from_banner("d", banner, originator="GBR", project="p")
    assert obj.marking_error is None, obj.marking_error
    assert obj.rel_to == {"GBR"} and obj.orcon and obj.classification == "SECRET"


def test_rel_to_naming_only_another_nation_stays_refused() -> None:
    # a USA object marked REL TO GBR is malformed (it must name USA): fail closed
    obj = resource_from_banner("d", "SECRET//ORCON/REL TO GBR", originator="USA", project="p")
    assert obj.marking_error is not None and "REL TO USA, GBR" in obj.marking_error
    assert _readers(obj) == frozenset()


# -- point 3: portion marks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("portion", "banner"),
    [
        ("(S//NF)", "SECRET//NOFORN"),
        ("(TS//REL TO USA, GBR)", "TOP SECRET//REL TO USA, GBR"),
        ("(C//OC/REL TO USA, AUS)", "CONFIDENTIAL//ORCON/REL TO USA, AUS"),
        ("(U)", "UNCLASSIFIED"),
        ("(S//IMC/NF)", "SECRET//IMCON/NOFORN"),
        ("(//GBR S//REL TO GBR, USA)", "//GBR SECRET//REL TO GBR, USA"),
    ],
)
def test_portion_mark_means_what_its_banner_means(portion: str, banner: str) -> None:
    orig = None if portion.startswith("(//") else "USA"
    p = resource_from_banner("d", portion, originator=orig, project="p")
    b = resource_from_banner("d", banner, originator=orig, project="p")
    assert p.marking_error is None and p == b


# -- the property: whatever relto.labels reads, a decision reads the same ----------------


@st.composite
def accepted_markings(draw: st.DrawFn) -> tuple[str, str | None, str]:
    """(marking text, originator argument, originator) that parse_banner accepts."""
    orig = draw(st.sampled_from(NATIONS))
    national = [c.name for c in builtin_policy(orig).classifications]
    portion = draw(st.booleans())
    cls_names = list(CLASSIFICATION_ABBREVIATIONS) + national
    cls = draw(st.sampled_from(cls_names))
    if portion:
        cls = CLASSIFICATION_ABBREVIATIONS.get(cls, cls)
    controls = draw(st.lists(st.sampled_from(sorted(CONTROLS)), unique=True, max_size=3))
    tokens = [CONTROLS[c] if portion and draw(st.booleans()) else c for c in controls]
    release = draw(st.sampled_from(["none", "noforn", "rel"]))
    if release == "noforn":
        tokens.append("NF" if portion else "NOFORN")
    elif release == "rel":
        others = draw(
            st.lists(st.sampled_from([*OTHERS, *sorted(TETRAGRAPHS)]), unique=True, max_size=3)
        )
        codes = draw(st.permutations([orig, *[c for c in others if c != orig]]))
        sep = draw(st.sampled_from([", ", ",", " "]))
        tokens.append("REL TO " + sep.join(codes))
    tokens = list(draw(st.permutations(tokens)))
    body = cls
    for i, tok in enumerate(tokens):
        body += "//" if i == 0 or draw(st.booleans()) else "/"
        body += tok
    foreign = draw(st.booleans())
    if foreign:
        body = f"//{orig} {body}"
    if draw(st.booleans()):
        body = body.lower()
    text = f"({body})" if portion else body
    given_orig = None if foreign and draw(st.booleans()) else orig
    return text, given_orig, orig


@settings(max_examples=300, deadline=None)
@given(accepted_markings())
def test_every_marking_labels_reads_is_read_alike_by_decisions(
    case: tuple[str, str | None, str],
) -> None:
    text, given_orig, orig = case
    try:
        b = parse_banner(text, given_orig)
    except MarkingError:
        assume(False)
        raise
    obj = resource_from_banner("d", text, originator=given_orig, project="p")
    if obj.marking_error is not None:
        # the one refusal allowed: a CAPCO name the originator's scheme lacks, said so
        assert LabelsLevelMapper().rank(orig, b.classification) is None
        assert f"not a level of {orig}'s classification scheme" in obj.marking_error
        return
    assert obj.originator == b.originator == orig
    assert obj.classification == b.classification
    assert obj.rel_to == (b.releasable_to() if b.rel_to else {orig})
    assert obj.orcon == ("ORCON" in b.dissem)
    assert obj.categories == set(b.dissem) & RESTRICTIVE
    decision = _engine().evaluate(
        _reader(orig),
        "read",
        Resource(**{**_fields(obj), "orcon_approved": frozenset({f"{orig.lower()}-reader"})}),
        at=AT,
    )
    assert "UNKNOWN_ATTRIBUTE" not in decision.codes
    assert decision.allowed


def _fields(obj: Resource) -> dict[str, object]:
    return {f: getattr(obj, f) for f in Resource.__dataclass_fields__}


@settings(max_examples=200, deadline=None)
@given(accepted_markings(), st.randoms(use_true_random=False))
def test_control_order_and_separators_never_change_the_facts(
    case: tuple[str, str | None, str], rng: random.Random
) -> None:
    text, given_orig, _ = case
    inner = text[1:-1] if text.startswith("(") else text
    head, _, rest = inner.lstrip("/").partition("//") if inner.startswith("//") else ("", "", "")
    if inner.startswith("//"):
        prefix, controls = "//" + head + "//", rest
    else:
        cls, _, controls = inner.partition("//")
        prefix = cls + "//"
    if not controls:
        return
    tokens = controls.replace("//", "/").split("/")
    rng.shuffle(tokens)
    shuffled = prefix + "".join(
        (("//" if i and rng.random() < 0.5 else "/") if i else "") + t for i, t in enumerate(tokens)
    )
    if text.startswith("("):
        shuffled = f"({shuffled})"
    try:
        parse_banner(text, given_orig)
    except MarkingError:
        assume(False)
    a = resource_from_banner("d", text, originator=given_orig, project="p")
    b = resource_from_banner("d", shuffled, originator=given_orig, project="p")
    assert a == b, (text, shuffled)


# -- point 6: advice never changes who may read ----------------------------------------


@st.composite
def refused_releases(draw: st.DrawFn) -> tuple[str, str | None]:
    orig = draw(st.sampled_from(NATIONS))
    named = draw(st.lists(st.sampled_from([*OTHERS, "FVEY", "TEYE"]), min_size=1, max_size=3))
    controls = draw(st.lists(st.sampled_from(["ORCON", "RELIDO", "PROPIN"]), unique=True))
    tokens = [*controls, "REL TO " + ", ".join(named)]
    tokens = list(draw(st.permutations(tokens)))
    cls = draw(st.sampled_from(["SECRET", "TOP SECRET", "S", "TS"]))
    text = cls + "//" + "/".join(tokens)
    if draw(st.booleans()):
        return f"//{orig} {text}", None
    return text, orig


@settings(max_examples=300, deadline=None)
@given(refused_releases())
def test_advice_in_a_refused_marking_keeps_its_readers(case: tuple[str, str | None]) -> None:
    text, given_orig = case
    try:
        parse_banner(text, given_orig)
    except MarkingError as exc:
        refusal = exc
    else:
        return
    if refusal.suggestion is None:
        assert "NOFORN" not in str(refusal) or "lists only" in str(refusal)
        return
    b = parse_banner(refusal.suggestion, given_orig)  # the advice is a valid marking
    orig = b.originator
    assert orig is not None
    named = text.split("REL TO ", 1)[1].split("/", 1)[0]
    intended = expand_rel_to(c for c in named.replace(",", " ").split()) | {orig}
    advised = resource_from_banner("d", refusal.suggestion, originator=given_orig, project="p")
    assert advised.marking_error is None
    assert advised.rel_to == intended  # the nations the marking named, and its originator
    assert _readers(advised) == intended & builtin_nations()
    original = resource_from_banner("d", text, originator=given_orig, project="p")
    if original.marking_error is None:  # REL TO of the originator alone: read as NOFORN
        assert _readers(original) == _readers(advised)
        assert original.rel_to == advised.rel_to


def test_rel_to_a_partner_from_usa_is_not_advised_noforn() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("SECRET//REL TO GBR", "USA")
    assert info.value.suggestion == "SECRET//REL TO USA, GBR"
    assert "NOFORN" not in str(info.value)
    advised = resource_from_banner("d", info.value.suggestion, originator="USA", project="p")
    assert _readers(advised) == {"USA", "GBR"}


# -- point 4: caveats only through current clearances -----------------------------------

START = datetime(2025, 1, 1, tzinfo=UTC)


def _sponsored() -> Clearance:
    return Clearance.sponsor_new(
        id="c1",
        person_id="p1",
        nation="GBR",
        level="SC",
        sponsor="MOD",
        at=START,
        actor="officer",
        reason="needed for undersea",
        policy=default_policy(),
        caveats=frozenset({"ATOMAL"}),
    )


def _walk(c: Clearance, path: list[Status], **last: object) -> Clearance:
    t = START
    for i, st_ in enumerate(path):
        t += timedelta(days=10)
        extra = last if i == len(path) - 1 else {}
        c = c.transition(
            st_, at=t, actor="officer", reason="step", policy=default_policy(), **extra
        )  # type: ignore[arg-type]
    return c


GRANTED_PATH = [Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED]
NOT_CURRENT = {
    "revoked": [*GRANTED_PATH, Status.REVOKED],
    "suspended": [*GRANTED_PATH, Status.SUSPENDED],
    "lapsed": [*GRANTED_PATH, Status.LAPSED],
    "denied": [Status.INVESTIGATING, Status.ADJUDICATING, Status.DENIED],
    "sponsored": [],
    "investigating": [Status.INVESTIGATING],
    "adjudicating": [Status.INVESTIGATING, Status.ADJUDICATING],
}


def _person() -> Person:
    return Person(
        id="p1",
        name="Pat",
        nationalities=frozenset({"GBR"}),
        organisation="MOD",
        home_nation="GBR",
        projects=(ProjectMembership("p"),),
    )


@pytest.mark.parametrize("state", sorted(NOT_CURRENT))
def test_caveat_of_a_non_current_clearance_is_not_held(state: str) -> None:
    c = _walk(_sponsored(), NOT_CURRENT[state])
    s = subject_from_vetting(_person(), [c], AT)
    assert s.caveats == frozenset(), state


def test_caveat_of_an_expired_clearance_is_not_held() -> None:
    c = _walk(_sponsored(), GRANTED_PATH, valid_until=START + timedelta(days=60))
    assert subject_from_vetting(_person(), [c], START + timedelta(days=40)).caveats == {"ATOMAL"}
    assert subject_from_vetting(_person(), [c], AT).caveats == frozenset()


def test_caveat_of_a_current_clearance_is_held_and_ends_with_it() -> None:
    granted = _walk(_sponsored(), GRANTED_PATH)
    assert subject_from_vetting(_person(), [granted], AT).caveats == {"ATOMAL"}
    obj = resource_from_banner(
        "d", "SECRET//ATOMAL//REL TO GBR, USA", originator="GBR", project="p"
    )
    engine = _engine()
    assert engine.evaluate(
        subject_from_vetting(_person(), [granted], AT), "read", obj, at=AT
    ).allowed
    revoked = granted.transition(
        Status.REVOKED, at=AT - timedelta(days=1), actor="o", reason="r", policy=default_policy()
    )
    # a second, current clearance without the caveat still reads the level...
    other = Clearance.sponsor_new(
        id="c2",
        person_id="p1",
        nation="GBR",
        level="SC",
        sponsor="MOD",
        at=START,
        actor="officer",
        reason="r",
        policy=default_policy(),
    )
    other = _walk(other, GRANTED_PATH)
    s = subject_from_vetting(_person(), [revoked, other], AT)
    # ...but the revoked clearance's ATOMAL access ended with it
    assert engine.evaluate(s, "read", obj, at=AT).codes == ("CAVEAT_NOT_HELD",)


def test_scenario_caveat_of_a_revoked_clearance_is_not_held() -> None:
    from relto.decisions.scenario import load_scenario

    text = """
format: relto-decisions-scenario/1
at: 2026-06-01T12:00:00Z
nations:
  GBR: {review_suspends: true}
people:
  - {id: pat, nationalities: [GBR], projects: [p]}
  - {id: sam, nationalities: [GBR], projects: [p]}
clearances:
  - id: c1
    person: pat
    nation: GBR
    level: SECRET
    caveats: [ATOMAL]
    events:
      - {at: 2025-01-01T00:00:00Z, status: granted}
      - {at: 2026-01-01T00:00:00Z, status: revoked}
  - id: c2
    person: sam
    nation: GBR
    level: SECRET
    caveats: [ATOMAL]
    events:
      - {at: 2025-01-01T00:00:00Z, status: granted}
      - {at: 2026-01-01T00:00:00Z, status: under_review}
"""
    sc = load_scenario(text)
    assert sc.subject_at("pat", datetime(2025, 6, 1, tzinfo=UTC)).caveats == {"ATOMAL"}
    assert sc.subject_at("pat", AT).caveats == frozenset()
    # under review where GBR suspends access during review: not current either
    assert sc.subject_at("sam", AT).caveats == frozenset()


# -- point 5: ceilings on the common scale ----------------------------------------------

#: The common equivalent of every level of every built-in national scheme (ADR 0085):
#: sourced equivalences or the same name where there are some, else the engine table.
COMMON_OF = {
    ("USA", "UNCLASSIFIED"): "UNCLASSIFIED",
    ("USA", "CONFIDENTIAL"): "CONFIDENTIAL",
    ("USA", "SECRET"): "SECRET",
    ("USA", "TOP SECRET"): "TOP SECRET",
    ("GBR", "OFFICIAL"): "UNCLASSIFIED",
    ("GBR", "SECRET"): "SECRET",
    ("GBR", "TOP SECRET"): "TOP SECRET",
    ("AUS", "UNOFFICIAL"): "UNCLASSIFIED",
    ("AUS", "OFFICIAL"): "UNCLASSIFIED",
    ("AUS", "OFFICIAL: Sensitive"): "RESTRICTED",
    ("AUS", "PROTECTED"): "CONFIDENTIAL",
    ("AUS", "SECRET"): "SECRET",
    ("AUS", "TOP SECRET"): "TOP SECRET",
    ("CAN", "UNCLASSIFIED"): "UNCLASSIFIED",
    ("CAN", "CONFIDENTIAL"): "CONFIDENTIAL",
    ("CAN", "SECRET"): "SECRET",
    ("CAN", "TOP SECRET"): "TOP SECRET",
    ("NZL", "UNCLASSIFIED"): "UNCLASSIFIED",
    ("NZL", "RESTRICTED"): "RESTRICTED",
    ("NZL", "CONFIDENTIAL"): "CONFIDENTIAL",
    ("NZL", "SECRET"): "SECRET",
    ("NZL", "TOP SECRET"): "TOP SECRET",
    ("JPN", "HI"): "CONFIDENTIAL",
    ("JPN", "GOKUHI"): "SECRET",
    ("JPN", "KIMITSU"): "TOP SECRET",
    ("KOR", "CLASS III SECRET"): "CONFIDENTIAL",
    ("KOR", "CLASS II SECRET"): "SECRET",
    ("KOR", "CLASS I SECRET"): "TOP SECRET",
}


def test_every_national_level_has_its_stated_common_equivalent() -> None:
    m = LabelsLevelMapper()
    for nation in NATIONS:
        for cls in builtin_policy(nation).classifications:
            assert m.common_level(nation, cls.name) == COMMON_OF[(nation, cls.name)]


def _admitted(nation: str, level: str, ceiling: str) -> bool:
    """Does a partner admitted up to ``ceiling`` pass the admission rule on ``level``?"""
    partner = "NZL" if nation != "NZL" else "CAN"
    engine = _engine(Admission(partner, "p", ceiling, AT - timedelta(days=1)))
    obj = Resource("d", nation, level, frozenset({nation, partner}), "p")
    s = Subject("x", frozenset({partner}), (), projects=frozenset({"p"}))
    return "NATION_NOT_ADMITTED" not in engine.evaluate(s, "read", obj, at=AT).codes


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(COMMON_OF)),
    st.sampled_from(COMMON),
)
def test_ceiling_admits_a_level_iff_its_common_equivalent_is_at_or_below(
    nation_level: tuple[str, str], ceiling: str
) -> None:
    nation, level = nation_level
    expected = COMMON.index(COMMON_OF[nation_level]) <= COMMON.index(ceiling)
    assert _admitted(nation, level, ceiling) == expected


@pytest.mark.parametrize("nation", ["GBR", "AUS"])
@pytest.mark.parametrize("ceiling", ["RESTRICTED", "CONFIDENTIAL"])
def test_low_ceiling_on_gbr_or_aus_object_still_admits_official(nation: str, ceiling: str) -> None:
    assert _admitted(nation, "OFFICIAL", ceiling)
    assert not _admitted(nation, "SECRET", ceiling)


def test_ceiling_maps_to_the_highest_level_it_dominates() -> None:
    m = LabelsLevelMapper()
    assert m.map_level(COMMON_SCHEME, "CONFIDENTIAL", "GBR") == "OFFICIAL"
    assert m.map_level(COMMON_SCHEME, "RESTRICTED", "GBR") == "OFFICIAL"
    assert m.map_level(COMMON_SCHEME, "CONFIDENTIAL", "AUS") == "PROTECTED"
    assert m.map_level(COMMON_SCHEME, "RESTRICTED", "AUS") == "OFFICIAL: Sensitive"
    assert m.map_level(COMMON_SCHEME, "RESTRICTED", "JPN") is None  # JPN starts at HI
    assert m.map_level(COMMON_SCHEME, "SECRET", "KOR") == "CLASS II SECRET"
    assert m.map_level(COMMON_SCHEME, "SECRET", "FRA") is None  # no scheme: nothing
