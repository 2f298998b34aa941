"""Issue 13: advice in a refused marking, the decision reading of markings, and the
JPN-KOR GSOMIA equivalences as Japan's Ministry of Foreign Affairs corrected them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.cli.main import main
from relto.labels import Marking, MarkingError, map_level, parse_banner, read_marking
from relto.labels.banner import DISSEMINATION_CONTROLS, expand_rel_to

NATIONS = ("USA", "GBR", "AUS", "CAN", "NZL", "JPN", "KOR")


# -- advice -------------------------------------------------------------------------------


def test_rel_to_a_partner_without_the_originator_is_not_advised_noforn() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("SECRET//REL TO GBR", "USA")
    assert "NOFORN" not in str(info.value)
    assert info.value.suggestion == "SECRET//REL TO USA, GBR"
    assert "must include the originating nation USA" in str(info.value)


def test_rel_to_several_partners_without_the_originator_adds_it() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("TOP SECRET//ORCON/REL TO AUS, GBR", "USA")
    assert info.value.suggestion == "TOP SECRET//ORCON/REL TO USA, AUS, GBR"


def test_rel_to_the_originator_alone_is_advised_noforn() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("SECRET//ORCON/REL TO GBR", "GBR")
    assert info.value.suggestion == "SECRET//ORCON/NOFORN"
    assert parse_banner(info.value.suggestion, "GBR").noforn


def test_advice_keeps_the_portion_and_foreign_forms() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("(//GBR S//REL TO GBR)")
    assert info.value.suggestion == "(//GBR S//NF)"
    with pytest.raises(MarkingError) as info:
        parse_banner("(S//REL TO AUS)", "JPN")
    assert info.value.suggestion == "(S//REL TO JPN, AUS)"


def test_single_nation_without_an_originator_gets_conditional_advice() -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner("SECRET//REL TO GBR")
    text = str(info.value)
    assert info.value.suggestion is None
    assert "if GBR originated it" in text and "REL TO <originator>, GBR" in text


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(NATIONS),
    st.lists(st.sampled_from([*NATIONS, "FRA", "FVEY", "TEYE", "NATO"]), min_size=1, max_size=4),
    st.lists(st.sampled_from(["ORCON", "RELIDO", "PROPIN", "FOUO"]), unique=True, max_size=2),
)
def test_advice_never_withholds_from_a_named_nation(
    orig: str, named: list[str], controls: list[str]
) -> None:
    text = "SECRET//" + "/".join([*controls, "REL TO " + ", ".join(named)])
    try:
        parse_banner(text, orig)
    except MarkingError as exc:
        if exc.suggestion is None:
            assert "contradicts" in str(exc)
            return
        advised = parse_banner(exc.suggestion, orig)
        intended = expand_rel_to(named) | {orig}
        readers = advised.releasable_to() if advised.rel_to else frozenset({orig})
        assert readers == intended
        assert advised.noforn == (intended == {orig})


def test_cli_parse_advises_rel_to_with_the_originator(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["label", "parse", "SECRET//REL TO GBR", "--originator", "USA"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "REL TO USA, GBR" in err and "NOFORN" not in err


# -- read_marking: the same grammar and meaning, for decisions ---------------------------


@st.composite
def accepted(draw: st.DrawFn) -> tuple[str, str]:
    orig = draw(st.sampled_from(NATIONS))
    controls = draw(
        st.lists(
            st.sampled_from(sorted(set(DISSEMINATION_CONTROLS) - {"REL TO"})),
            unique=True,
            max_size=3,
        )
    )
    if draw(st.booleans()) and "NOFORN" not in controls:
        others = draw(st.lists(st.sampled_from(NATIONS), min_size=1, max_size=3))
        controls.append("REL TO " + ", ".join(dict.fromkeys([orig, *others])))
    controls = list(draw(st.permutations(controls)))
    seps = [draw(st.sampled_from(["/", "//"])) for _ in controls]
    text = draw(st.sampled_from(["SECRET", "TS", "C", "U"]))
    for i, c in enumerate(controls):
        text += ("//" if i == 0 else seps[i]) + c
    return text, orig


@settings(max_examples=300, deadline=None)
@given(accepted())
def test_read_marking_means_what_parse_banner_means(case: tuple[str, str]) -> None:
    text, orig = case
    try:
        b = parse_banner(text, orig)
    except MarkingError:
        m = None
    else:
        m = read_marking(text, orig)
        assert m == Marking(b, frozenset())
    if m is None:  # what parse_banner refuses, read_marking refuses too, unless it is
        try:  # REL TO of the originator alone, which it reads as NOFORN
            got = read_marking(text, orig)
        except MarkingError:
            return
        assert got.banner.noforn and got.banner.originator == orig


def test_read_marking_collects_categories_and_refuses_garbage() -> None:
    m = read_marking("TOP SECRET//si/TK//atomal//NOFORN", "USA")
    assert m.categories == {"SI", "TK", "ATOMAL"} and m.banner.noforn
    with pytest.raises(MarkingError):
        read_marking("SECRET//S!@#", "USA")
    with pytest.raises(MarkingError):
        parse_banner("SECRET//SI//NOFORN", "USA")  # the canonical parser knows no SCI


# -- JPN-KOR GSOMIA Art. 4 (research notes section 1a, [V]) ------------------------------


def test_jpn_kor_gsomia_pairs_gokuhi_with_class_ii_and_hi_with_class_iii() -> None:
    assert map_level("JPN", "GOKUHI", "KOR") == "CLASS II SECRET"  # 極秘 = 군사II급비밀
    assert map_level("KOR", "CLASS II SECRET", "JPN") == "GOKUHI"
    assert map_level("JPN", "HI", "KOR") == "CLASS III SECRET"  # 秘 = 군사III급비밀
    assert map_level("KOR", "CLASS III SECRET", "JPN") == "HI"
    # no TOP SECRET tier in the JPN-KOR agreement
    assert map_level("JPN", "KIMITSU", "KOR") is None
    assert map_level("KOR", "CLASS I SECRET", "JPN") is None
