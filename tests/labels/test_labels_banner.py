# ruff: noqa: E501  (known-answer tables read better unwrapped)
"""Banner and portion markings: canonical form, REL TO order, contradictions."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from relto.errors import InvalidInput
from relto.labels import Banner, MarkingError, builtin_policy, expand_rel_to, parse_banner
from relto.labels.banner import (
    CLASSIFICATION_ABBREVIATIONS,
    DISSEMINATION_CONTROLS,
    TETRAGRAPHS,
    _trigraphs,
    rel_to_order,
)

# -- known answers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "originator", "canonical", "portion"),
    [
        ("SECRET//REL TO USA, AUS, GBR", None, "SECRET//REL TO USA, AUS, GBR", "(S//REL TO USA, AUS, GBR)"),
        ("TOP SECRET//NOFORN", None, "TOP SECRET//NOFORN", "(TS//NF)"),
        ("(S//REL TO USA, GBR)", None, "SECRET//REL TO USA, GBR", "(S//REL TO USA, GBR)"),
        ("secret // rel to gbr,usa , aus", None, "SECRET//REL TO USA, AUS, GBR", "(S//REL TO USA, AUS, GBR)"),
        ("SECRET//REL TO USA, GBR, AUS", "GBR", "SECRET//REL TO GBR, AUS, USA", "(S//REL TO GBR, AUS, USA)"),
        ("S//REL TO FVEY, USA, NATO, JPN", None, "SECRET//REL TO USA, JPN, FVEY, NATO", "(S//REL TO USA, JPN, FVEY, NATO)"),
        ("SECRET//NOFORN//ORCON", None, "SECRET//ORCON/NOFORN", "(S//OC/NF)"),
        ("(C//OC/REL TO USA, CAN)", None, "CONFIDENTIAL//ORCON/REL TO USA, CAN", "(C//OC/REL TO USA, CAN)"),
        ("UNCLASSIFIED", None, "UNCLASSIFIED", "(U)"),
        ("OFFICIAL: Sensitive//REL TO AUS, GBR", "AUS", "OFFICIAL: Sensitive//REL TO AUS, GBR", "(OFFICIAL: Sensitive//REL TO AUS, GBR)"),
    ],
)  # fmt: skip
def test_known_markings_render_canonically(
    text: str, originator: str | None, canonical: str, portion: str
) -> None:
    b = parse_banner(text, originator)
    assert b.render() == canonical
    assert b.render_portion() == portion
    assert parse_banner(b.render(), originator) == b
    assert parse_banner(b.render_portion(), originator) == b


def test_foreign_government_form_names_the_originator() -> None:
    b = parse_banner("//GBR SECRET//REL TO USA, GBR")
    assert b.originator == "GBR"
    assert b.render() == "SECRET//REL TO GBR, USA"
    assert parse_banner("//GBR SECRET//REL TO USA, GBR", "GBR") == b
    with pytest.raises(MarkingError, match="names originator GBR but USA was given"):
        parse_banner("//GBR SECRET//REL TO USA, GBR", "USA")
    with pytest.raises(MarkingError, match="unknown originating country 'QQQ'"):
        parse_banner("//QQQ SECRET")


def test_banner_fields_are_canonical() -> None:
    b = parse_banner("S//REL TO GBR, USA//ORCON", "USA")
    assert b.classification == "SECRET"
    assert b.rel_to == ("USA", "GBR")
    assert b.noforn is False
    assert b.originator == "USA"
    assert b.dissem == ("ORCON",)
    assert b.controls == ("ORCON",)  # the name relto.decisions' adapter reads


def test_usa_rel_to_order_matches_ism_cve_order(conformance_dir: object) -> None:
    """For USA-originated markings the order is exactly the IC-ISM CVEnumISMRelTo order."""
    from pathlib import Path

    path = Path(str(conformance_dir)) / "ism" / "CVEnumISMRelTo.xml"
    tree = etree.parse(str(path))
    ns = "{urn:us:gov:ic:cve}"
    values = [t.find(f"{ns}Value").text.strip() for t in tree.iter(f"{ns}Term")]
    wanted = [v for v in values if (len(v) == 3 and v.isalpha()) or v in TETRAGRAPHS]
    shuffled = sorted(wanted, key=lambda c: c[::-1])
    assert list(rel_to_order(shuffled, "USA")) == wanted


def test_tetragraphs_expand_to_members() -> None:
    assert expand_rel_to(["FVEY"]) == {"AUS", "CAN", "GBR", "NZL", "USA"}
    assert expand_rel_to(["ACGU"]) == {"AUS", "CAN", "GBR", "USA"}
    assert expand_rel_to(["TEYE"]) == {"AUS", "GBR", "USA"}
    assert len(expand_rel_to(["NATO"])) == 32
    assert expand_rel_to(["JPN", "teye"]) == {"AUS", "GBR", "JPN", "USA"}
    with pytest.raises(MarkingError):
        expand_rel_to(["XXX"])  # GENC-only, not ISO 3166


# -- contradictions and errors name what and where ------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("SECRET//NOFORN/REL TO USA, GBR", "NOFORN at offset 8 contradicts REL TO at offset 15"),
        ("SECRET//REL TO USA", "REL TO lists only USA"),
        ("SECRET//REL TO USA, XYZ", "unknown country code 'XYZ' in REL TO at offset 20"),
        ("SECRTE//NOFORN", "unknown classification 'SECRTE' at offset 0"),
        ("SECRET//NOFRON", "unknown dissemination control 'NOFRON' at offset 8"),
        ("SECRET//", "empty control between '//' separators at offset 8"),
        ("(S//NF", "unbalanced '('"),
        ("S//NF)", "unbalanced ')'"),
        ("", "empty marking"),
        ("SECRET//REL TO", "REL TO without any country"),
        ("SECRET//REL TO USA, GBR//REL TO AUS, USA", "REL TO appears twice"),
        ("SECRET//RELIDO/NOFORN", "RELIDO contradicts NOFORN"),
        ("SECRET/NOFORN", "a single '/' after the classification"),
    ],
)
def test_bad_marking_is_a_domain_error_saying_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(MarkingError) as info:
        parse_banner(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, InvalidInput)


def test_rel_to_without_originator_rejected() -> None:
    with pytest.raises(MarkingError, match="must include the originating nation GBR"):
        parse_banner("SECRET//REL TO USA, AUS", "GBR")


def test_unknown_originator_rejected() -> None:
    with pytest.raises(MarkingError, match="originator"):
        parse_banner("SECRET//NOFORN", "XXX")


def test_noforn_banner_cannot_be_built_with_rel_to() -> None:
    with pytest.raises(MarkingError):
        Banner("SECRET", rel_to=("USA", "GBR"), noforn=True)


# -- properties -------------------------------------------------------------------------

TRIGRAPHS = sorted(_trigraphs())
PARTNERS = ["USA", "GBR", "AUS", "CAN", "NZL", "JPN", "KOR"]
CONTROLS = [c for c in DISSEMINATION_CONTROLS if c not in ("REL TO", "NOFORN")]


@st.composite
def banners(draw: st.DrawFn) -> Banner:
    originator = draw(st.none() | st.sampled_from(PARTNERS))
    levels = sorted(CLASSIFICATION_ABBREVIATIONS)
    if originator is not None:
        levels += [c.name for c in builtin_policy(originator).classifications]
    cls = draw(st.sampled_from(levels))
    noforn = draw(st.booleans())
    dissem = draw(st.lists(st.sampled_from(CONTROLS), max_size=4, unique=True))
    if noforn and "RELIDO" in dissem:
        dissem.remove("RELIDO")
    rel: list[str] = []
    if not noforn and draw(st.booleans()):
        rel = draw(
            st.lists(
                st.sampled_from(TRIGRAPHS) | st.sampled_from(sorted(TETRAGRAPHS)),
                min_size=2,
                max_size=8,
                unique=True,
            )
        )
        if originator is not None and originator not in rel:
            rel.append(originator)
    return Banner(cls, tuple(rel), noforn, originator, tuple(dissem))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(banners())
def test_parse_render_round_trip(b: Banner) -> None:
    assert parse_banner(b.render(), b.originator) == b
    assert parse_banner(b.render_portion(), b.originator) == b


@settings(max_examples=200)
@given(banners(), st.randoms(use_true_random=False))
def test_render_is_canonical_whatever_the_spacing_case_and_order(b: Banner, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    controls = list(b.dissem) + (["NOFORN"] if b.noforn else [])
    parts = [c.lower() if rnd.random() < 0.5 else c for c in controls]
    if b.rel_to:
        codes = list(b.rel_to)
        rnd.shuffle(codes)
        parts.append("rel to " + " ,  ".join(codes))
    rnd.shuffle(parts)
    text = (
        "  " + b.classification.lower() + " // " + " // ".join(parts) if parts else b.classification
    )
    again = parse_banner(text, b.originator)
    assert again == b
    assert again.render() == b.render()
    assert parse_banner(again.render(), b.originator).render() == again.render()  # idempotent


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_parser_never_fails_with_anything_but_marking_error(text: str) -> None:
    try:
        b = parse_banner(text)
    except MarkingError:
        return
    assert parse_banner(b.render()) == b


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(
            [
                "SECRET",
                "S",
                "//",
                "/",
                "REL TO",
                "USA",
                "GBR",
                ",",
                " ",
                "NF",
                "(",
                ")",
                "OC",
                "FVEY",
                "TS",
                "XX",
            ]
        ),
        max_size=12,
    )
)
def test_parser_on_marking_like_noise_only_raises_marking_error(tokens: list[str]) -> None:
    text = "".join(tokens)
    with contextlib.suppress(MarkingError):
        parse_banner(text)
