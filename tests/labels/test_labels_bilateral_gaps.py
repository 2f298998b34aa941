"""Threat: a Japanese clearance reads British or Australian material (or the reverse)
through a level equivalence that no readable public source states.

Japan's security-of-information agreements with Australia (Tokyo, 17 May 2012, in
force 22 Mar 2013) and the United Kingdom (London, July 2013, in force January 2014)
carry classification correspondence articles, but their text could not be read
from the stored sources when this was checked (2026-11-29; docs/labels.md,
"Pairs with no equivalence"). Until a security officer adds a set citing the
article, every pair must stay unmapped and every translation refused: these tests
fail the day a set appears without the test being updated alongside its source.
"""

from __future__ import annotations

import build_spifs
import pytest

from relto.labels import builtin_policy, map_level, parse_banner, translate
from relto.labels.errors import TranslationError
from relto.labels.national import banner_to_label

#: Nations with no equivalence to Japan's scheme (docs/labels.md).
UNMAPPED_WITH_JPN = ("GBR", "AUS", "CAN", "NZL", "NATO")


def _levels(nation: str) -> list[str]:
    return [c.name for c in builtin_policy(nation).classifications]


@pytest.mark.parametrize("other", UNMAPPED_WITH_JPN)
def test_no_japanese_level_maps_to_or_from_an_unsourced_scheme(other: str) -> None:
    for jpn_level in _levels("JPN"):
        assert map_level("JPN", jpn_level, other) is None, (jpn_level, other)
    for level in _levels(other):
        assert map_level(other, level, "JPN") is None, (other, level)


@pytest.mark.parametrize("other", UNMAPPED_WITH_JPN)
def test_no_partnership_set_holds_japan_and_an_unsourced_scheme(other: str) -> None:
    for name, _h, members, _src in build_spifs.CLASSES:
        assert not {"JPN", other} <= set(members), name


@pytest.mark.parametrize(
    ("nation", "banner"),
    [("GBR", "SECRET//REL TO GBR, JPN"), ("AUS", "SECRET//REL TO AUS, JPN")],
)
def test_british_and_australian_labels_do_not_translate_into_japans_scheme(
    nation: str, banner: str
) -> None:
    src, jpn = builtin_policy(nation), builtin_policy("JPN")
    label = banner_to_label(parse_banner(banner, nation), src)
    with pytest.raises(TranslationError, match="No equivalent classification"):
        translate(label, src, jpn.policy_id)


def test_japanese_label_does_not_translate_into_british_or_australian_scheme() -> None:
    jpn = builtin_policy("JPN")
    label = banner_to_label(parse_banner("GOKUHI//REL TO JPN, GBR, AUS", "JPN"), jpn)
    for nation in ("GBR", "AUS"):
        with pytest.raises(TranslationError, match="No equivalent classification"):
            translate(label, jpn, builtin_policy(nation).policy_id)


def test_decision_engine_mapper_fails_closed_for_japan() -> None:
    from relto.decisions.adapters import LabelsLevelMapper

    mapper = LabelsLevelMapper()
    # "SECRET" is read as the CAPCO level mapped into JPN (GOKUHI); it still has no
    # British or Australian equivalent, so the engine gets None and denies.
    for other in ("GBR", "AUS"):
        assert mapper.map_level("JPN", "SECRET", other) is None
        assert mapper.map_level("JPN", "KIMITSU", other) is None
        assert mapper.map_level(other, "SECRET", "JPN") is None
        assert mapper.map_level(other, "TOP SECRET", "JPN") is None
    # the sourced pair still maps (Japan-USA GSOMIA 2007)
    assert mapper.map_level("JPN", "GOKUHI", "USA") == "SECRET"
