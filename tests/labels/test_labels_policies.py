"""SPIF loading, the built-in national schemes and the partnership equivalences."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import build_spifs
import pytest
from lxml import etree

from relto.labels import (
    NATIONS,
    Label,
    builtin_policy,
    level_rank,
    load_spif,
    map_level,
    marking,
    parse_banner,
    read_label,
    translate,
    validate_label,
    write_label,
)
from relto.labels.errors import LabelError, MarkingError, SpifError, TranslationError
from relto.labels.national import POLICIES, banner_to_label, label_to_banner

DATA = Path(__file__).resolve().parents[2] / "src" / "relto" / "labels" / "data"


def test_builtin_spifs_match_their_source() -> None:
    for fname, text in build_spifs.render_all().items():
        assert (DATA / fname).read_text(encoding="utf-8") == text, (
            f"{fname} drifted: run python tests/labels/build_spifs.py"
        )


@pytest.mark.parametrize("name", POLICIES)
def test_builtin_policy_is_schema_valid_with_stable_id(name: str) -> None:
    spif = builtin_policy(name)
    assert spif.name == name
    assert spif.warnings == ()
    assert spif.policy_id == build_spifs.POLICY_IDS[name]
    assert re.fullmatch(r"\d+(\.\d+)+", spif.policy_id)
    strict = load_spif(DATA / f"{name.lower()}.xml", strict=True)
    assert [c.name for c in strict.classifications] == [c.name for c in spif.classifications]


def test_builtin_policy_ids_are_distinct() -> None:
    ids = [builtin_policy(n).policy_id for n in POLICIES]
    assert len(set(ids)) == len(ids)


def test_every_level_and_equivalence_cites_a_source() -> None:
    for name in POLICIES:
        root = etree.parse(str(DATA / f"{name.lower()}.xml")).getroot()
        for el in root.iter(
            "{http://www.xmlspif.org/spif}securityClassification",
            "{http://www.xmlspif.org/spif}equivalentClassification",
        ):
            prev = el.getprevious()
            assert isinstance(prev, etree._Comment), (
                f"{name}: {el.get('name') or el.get('policyRef')} has no source comment"
            )
            assert len(prev.text.strip()) > 20


def test_levels_rank_in_each_scheme() -> None:
    assert (
        level_rank("USA", "TOP SECRET")
        > level_rank("USA", "SECRET")
        > level_rank("USA", "CONFIDENTIAL")
    )
    assert level_rank("GBR", "SECRET") > level_rank("GBR", "OFFICIAL")
    assert level_rank("AUS", "PROTECTED") > level_rank("AUS", "OFFICIAL: Sensitive")
    assert level_rank("JPN", "KIMITSU") > level_rank("JPN", "GOKUHI") > level_rank("JPN", "HI")
    assert level_rank("KOR", "CLASS I SECRET") > level_rank("KOR", "CLASS III SECRET")
    with pytest.raises(LabelError):
        level_rank("USA", "OFFICIAL")
    with pytest.raises(LabelError):
        level_rank("FRA", "SECRET")


@pytest.mark.parametrize(
    ("src", "level", "dst", "expected"),
    [
        ("USA", "SECRET", "GBR", "SECRET"),
        ("GBR", "TOP SECRET", "AUS", "TOP SECRET"),
        ("NZL", "SECRET", "CAN", "SECRET"),
        ("USA", "CONFIDENTIAL", "CAN", "CONFIDENTIAL"),
        ("NATO", "TOP SECRET", "GBR", "TOP SECRET"),
        ("USA", "SECRET", "JPN", "GOKUHI"),
        ("JPN", "KIMITSU", "USA", "TOP SECRET"),
        ("KOR", "CLASS II SECRET", "JPN", "GOKUHI"),
        ("USA", "CONFIDENTIAL", "KOR", "CLASS III SECRET"),
        ("USA", "SECRET", "USA", "SECRET"),
    ],
)
def test_map_level_uses_public_equivalences(src: str, level: str, dst: str, expected: str) -> None:
    assert map_level(src, level, dst) == expected


@pytest.mark.parametrize(
    ("src", "level", "dst"),
    [
        ("USA", "CONFIDENTIAL", "GBR"),  # GBR has no CONFIDENTIAL since 2014
        ("USA", "CONFIDENTIAL", "AUS"),  # AUS has no CONFIDENTIAL since 2018
        ("KOR", "CLASS I SECRET", "JPN"),  # JPN-KOR GSOMIA does not cover it
        ("JPN", "GOKUHI", "GBR"),  # no public JPN-GBR table relied on
        ("AUS", "SECRET", "NATO"),
        ("GBR", "OFFICIAL", "USA"),
        ("NZL", "RESTRICTED", "NATO"),
    ],
)
def test_no_invented_equivalence(src: str, level: str, dst: str) -> None:
    assert map_level(src, level, dst) is None


def test_map_level_unknown_level_raises() -> None:
    with pytest.raises(LabelError):
        map_level("USA", "COSMIC", "GBR")


def test_map_level_and_level_rank_are_cached() -> None:
    map_level("USA", "SECRET", "GBR")
    level_rank("GBR", "SECRET")
    hits_map, hits_rank = map_level.cache_info().hits, level_rank.cache_info().hits
    for _ in range(100):
        map_level("USA", "SECRET", "GBR")
        level_rank("GBR", "SECRET")
    assert map_level.cache_info().hits == hits_map + 100
    assert level_rank.cache_info().hits == hits_rank + 100


def test_equivalences_are_symmetric() -> None:
    for a in NATIONS:
        for cls in builtin_policy(a).classifications:
            for b in NATIONS:
                other = map_level(a, cls.name, b)
                if other is not None:
                    assert map_level(b, other, a) == cls.name


def test_banner_to_label_and_back() -> None:
    b = parse_banner("SECRET//REL TO USA, GBR, AUS//ORCON", "USA")
    usa = builtin_policy("USA")
    label = banner_to_label(b, usa)
    assert validate_label(label, usa).valid
    assert label_to_banner(label, usa) == b
    assert marking(label, usa) == "SECRET//REL TO USA, AUS, GBR//ORCON"
    xml = write_label(label, datetime(2026, 1, 1, tzinfo=UTC))
    assert label_to_banner(read_label(xml), usa) == b


def test_nato_top_secret_is_marked_cosmic() -> None:
    nato = builtin_policy("NATO")
    label = Label("NATO", "TOP SECRET", policy_id=nato.policy_id)
    assert marking(label, nato) == "COSMIC TOP SECRET"
    assert marking(Label("NATO", "SECRET", policy_id=nato.policy_id), nato) == "NATO SECRET"
    assert marking(Label("NATO", "SECRET", policy_id=nato.policy_id), nato, "fr") == "NATO SECRET"
    assert marking(Label("NATO", "RESTRICTED", policy_id=nato.policy_id), nato, "fr-BE") == (
        "NATO DIFFUSION RESTREINTE"
    )


def test_noforn_label_excludes_rel_to() -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner("TOP SECRET//NOFORN"), usa)
    assert marking(label, usa) == "TOP SECRET//NOFORN"
    assert validate_label(label, usa).valid


def test_banner_country_outside_scheme_is_refused() -> None:
    with pytest.raises(MarkingError, match="BRA"):
        banner_to_label(parse_banner("SECRET//REL TO USA, BRA"), builtin_policy("USA"))


def test_translate_between_national_schemes() -> None:
    usa, jpn = builtin_policy("USA"), builtin_policy("JPN")
    label = banner_to_label(parse_banner("SECRET//REL TO USA, JPN", "USA"), usa)
    out = translate(label, usa, jpn.policy_id)
    assert out.classification == "GOKUHI"
    assert marking(out, jpn, "ja") == "極秘//REL TO JPN, USA"
    assert label_to_banner(out, jpn).render() == "GOKUHI//REL TO JPN, USA"


def test_noforn_never_translates_to_a_foreign_scheme() -> None:
    usa, gbr = builtin_policy("USA"), builtin_policy("GBR")
    label = banner_to_label(parse_banner("SECRET//NOFORN"), usa)
    with pytest.raises(TranslationError, match="NOFORN"):
        translate(label, usa, gbr.policy_id)


def test_translation_without_equivalence_refused() -> None:
    usa, gbr = builtin_policy("USA"), builtin_policy("GBR")
    label = banner_to_label(parse_banner("CONFIDENTIAL//REL TO USA, GBR"), usa)
    with pytest.raises(TranslationError, match="No equivalent classification"):
        translate(label, usa, gbr.policy_id)


def test_spif_breaking_its_own_rules_refused(conformance_dir: Path) -> None:
    with pytest.raises(SpifError, match="Duplicate excluded classification in category"):
        load_spif(conformance_dir / "spiffing" / "food-policy-borked.xml", strict=False)


def test_strict_mode_refuses_schema_invalid_spif(conformance_dir: Path) -> None:
    path = conformance_dir / "spif" / "sparrow-acme.xml"
    with pytest.raises(SpifError, match=r"not valid Open XML SPIF 2\.1"):
        load_spif(path, strict=True)
    lenient = load_spif(path, strict=False)
    assert any("schema" in w for w in lenient.warnings)


def test_nato_sparrow_spif_reads_numeric_rel_to(conformance_dir: Path) -> None:
    spif = load_spif(conformance_dir / "spif" / "sparrow-nato.xml", strict=False)
    rel = spif.tagset_by_name("Releasable To")
    assert rel is not None
    lacvs = {c.name: c.lacv for t in rel.tags for c in t.categories}
    assert lacvs["AUS"] == 36 and lacvs["GBR"] == 826 and lacvs["USA"] == 840


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (('lacv="2" hierarchy="2"', 'lacv="1" hierarchy="2"'), "Duplicate classification lacv"),
        (("<code>replacePolicy</code>", "<code>pageMiddle</code>"), "Unknown marking code"),
        (('policyRef="GBR"', 'policyRef="NOPE"'), "PolicyRef not found"),
        (('tagSetRef="Releasable To"', 'tagSetRef="Nope"'), "unknown tag set name"),
    ],
)
def test_self_contradicting_spif_refused(mutation: tuple[str, str], message: str) -> None:
    text = (DATA / "usa.xml").read_text(encoding="utf-8")
    old, new = mutation
    assert old in text
    with pytest.raises(SpifError, match=message):
        load_spif(text.replace(old, new, 1).encode(), strict=False)
