# ruff: noqa: E501
"""STANAG 4774 labels: codec round trips, required times, validation, ACDF, combination."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.labels import (
    Clearance,
    Label,
    LabelCategory,
    LabelKind,
    access_check,
    banner_to_label,
    builtin_policy,
    dominant_label,
    load_spif,
    marking,
    parse_banner,
    read_clearance,
    read_label,
    read_label_any,
    validate_label,
    write_clearance,
    write_label,
)
from relto.labels.errors import LabelError, PolicyMismatch, UnknownPolicy
from relto.labels.label import label_from_refs

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def nato(conformance_dir: Path) -> object:
    return load_spif(conformance_dir / "spiffing" / "nato-4774-policy.xml")


def test_written_label_always_carries_creation_and_review_times() -> None:
    label = Label("USA", "SECRET")
    xml = write_label(label, AT)
    assert b"<CreationDateTime>2026-11-29T12:00:00Z</CreationDateTime>" in xml
    assert b"<ReviewDateTime>" in xml
    back = read_label(xml)
    assert back.creation_time == AT
    assert back.review_time == AT


def test_write_label_refuses_naive_time() -> None:
    with pytest.raises(ValueError):
        write_label(Label("USA", "SECRET"), datetime(2026, 1, 1))


def test_label_without_creation_time_needs_lenient_mode(
    conformance_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (conformance_dir / "spiffing" / "nato-4774-17-1.nato").read_bytes()
    with pytest.raises(LabelError, match="CreationDateTime"):
        read_label(data)
    with caplog.at_level(logging.WARNING, logger="relto.labels.label"):
        label = read_label(data, lenient=True)
    assert "without CreationDateTime" in caplog.text
    assert label.policy == "NATO" and label.policy_id == "1.3.26.1.3.1"
    assert label.classification == "UNCLASSIFIED"
    assert label.categories[1] == LabelCategory(
        "Releasable To", "PERMISSIVE", ("NATO", "ISAF", "KFOR", "RESOLUTE SUPPORT")
    )


def test_review_time_attribute_form_is_read() -> None:
    xml = (
        b'<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"'
        b' ReviewDateTime="2020-08-02T14:06:20.9873126Z"><ConfidentialityInformation>'
        b"<PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification>"
        b"</ConfidentialityInformation>"
        b"<CreationDateTime>2015-08-02T14:06:20.9873126Z</CreationDateTime>"
        b"</originatorConfidentialityLabel>"
    )
    label = read_label(xml)
    assert label.review_time == datetime(2020, 8, 2, 14, 6, 20, 987312, tzinfo=UTC)


@pytest.mark.parametrize("kind", list(LabelKind))
def test_alternative_and_metadata_labels_round_trip(kind: LabelKind) -> None:
    label = Label("GBR", "SECRET", kind=kind, originator_id="alice", originator_id_type="uid")
    back = read_label(write_label(label, AT))
    assert back.kind is kind
    assert back.without_times() == label


def test_not_a_label_refused() -> None:
    with pytest.raises(LabelError, match="not a STANAG 4774"):
        read_label(b"<label xmlns='urn:other'/>")


NAMES = (
    st.text(
        alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -:"),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)


@st.composite
def labels(draw: st.DrawFn) -> Label:
    cats = draw(
        st.lists(
            st.builds(
                LabelCategory,
                NAMES,
                st.sampled_from(["PERMISSIVE", "RESTRICTIVE", "INFORMATIVE"]),
                st.lists(NAMES, min_size=1, max_size=4).map(tuple),
                st.none() | st.just("urn:oid:1.2.3.4"),
            ),
            max_size=4,
        )
    )
    return Label(
        policy=draw(NAMES),
        classification=draw(NAMES),
        categories=tuple(cats),
        policy_id=draw(
            st.none() | st.from_regex(r"[12]\.[0-9]{1,3}(\.[0-9]{1,5}){1,4}", fullmatch=True)
        ),
        privacy_mark=draw(st.none() | NAMES),
        creation_time=AT - timedelta(days=draw(st.integers(0, 1000))),
        review_time=AT + timedelta(days=draw(st.integers(0, 1000))),
        kind=draw(st.sampled_from(list(LabelKind))),
    )


@settings(max_examples=150)
@given(labels())
def test_read_write_round_trip(label: Label) -> None:
    assert read_label(write_label(label, AT)) == label


@settings(max_examples=100)
@given(
    st.sampled_from(
        [
            "SECRET//REL TO USA, GBR",
            "TOP SECRET//NOFORN",
            "CONFIDENTIAL//ORCON/REL TO USA, CAN, FVEY",
            "UNCLASSIFIED//FOUO",
        ]
    )
)
def test_banner_label_xml_round_trip(text: str) -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner(text, "USA"), usa)
    again = read_label(write_label(label, AT))
    assert again.without_times() == label


def test_validation_lists_every_reason(conformance_dir: Path) -> None:
    spif = load_spif(conformance_dir / "spiffing" / "food-policy.xml", strict=False)
    reg = {spif.policy_id: spif}
    label = read_label_any(
        (conformance_dir / "spiffing" / "food-label-meaty-milk-chocolate.xml").read_bytes(), reg
    )
    result = validate_label(label, spif)
    assert not result.valid
    assert any("Meaty" in r and "Animal Rights" in r for r in result.reasons)
    assert any("Chocolate" in r and "Meaty" in r for r in result.reasons)


def test_unknown_category_is_invalid_not_a_crash() -> None:
    usa = builtin_policy("USA")
    label = Label(
        "USA",
        "SECRET",
        (LabelCategory("Releasable To", "PERMISSIVE", ("ATLANTIS",)),),
        usa.policy_id,
    )
    result = validate_label(label, usa)
    assert not result.valid and "ATLANTIS" in result.reasons[0]


def test_label_for_another_policy_is_invalid() -> None:
    result = validate_label(Label("GBR", "SECRET"), builtin_policy("USA"))
    assert not result.valid and "policy" in result.reasons[0]


def test_spiffy_label_with_unknown_policy_refused(conformance_dir: Path) -> None:
    data = (conformance_dir / "spiffing" / "food-label-water.xml").read_bytes()
    with pytest.raises(UnknownPolicy, match=r"Unknown policy id: 1\.2\.826\.0\.1\.6726289\.0\.0"):
        read_label_any(data, {})


def _clearance(
    levels: tuple[str, ...], rel: tuple[str, ...] = (), restrictive: tuple[str, ...] = ()
) -> Clearance:
    usa = builtin_policy("USA")
    cats = []
    if rel:
        cats.append(LabelCategory("Releasable To", "PERMISSIVE", rel))
    if restrictive:
        cats.append(LabelCategory("Dissemination Controls", "RESTRICTIVE", restrictive))
    return Clearance("USA", levels, tuple(cats), usa.policy_id)


def test_clearance_must_hold_the_classification() -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner("SECRET//REL TO USA, GBR"), usa)
    assert access_check(_clearance(("SECRET",), ("GBR",)), label, usa)
    assert not access_check(_clearance(("CONFIDENTIAL",), ("GBR",)), label, usa)


def test_nationality_outside_rel_to_denied() -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner("SECRET//REL TO USA, GBR"), usa)
    assert not access_check(_clearance(("SECRET",), ("JPN",)), label, usa)


def test_noforn_needs_the_restrictive_category() -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner("SECRET//NOFORN"), usa)
    assert not access_check(_clearance(("SECRET",), ("GBR",)), label, usa)
    assert access_check(_clearance(("SECRET",), ("USA",), ("NOFORN",)), label, usa)


def test_clearance_for_other_policy_without_equivalence_raises() -> None:
    usa = builtin_policy("USA")
    label = banner_to_label(parse_banner("SECRET//REL TO USA, GBR"), usa)
    gbr_clearance = Clearance("GBR", ("SECRET",), (), builtin_policy("GBR").policy_id)
    with pytest.raises(PolicyMismatch):
        access_check(gbr_clearance, label, usa)


def test_clearance_codec_round_trip() -> None:
    c = _clearance(("SECRET", "CONFIDENTIAL"), ("GBR", "USA"), ("NOFORN",))
    assert read_clearance(write_clearance(c)) == c


def test_dominant_label_intersects_permissive_unions_restrictive() -> None:
    usa = builtin_policy("USA")
    a = banner_to_label(parse_banner("SECRET//REL TO USA, GBR, AUS"), usa)
    b = banner_to_label(parse_banner("CONFIDENTIAL//ORCON/REL TO USA, GBR, CAN"), usa)
    c = banner_to_label(parse_banner("TOP SECRET//REL TO USA, GBR, AUS, CAN"), usa)
    d = dominant_label([a, b, c], usa)
    assert marking(d, usa) == "TOP SECRET//REL TO USA, GBR//ORCON"
    n = banner_to_label(parse_banner("UNCLASSIFIED//NOFORN"), usa)
    assert marking(dominant_label([a, n], usa), usa) == "SECRET//NOFORN"


def test_label_from_refs_refuses_unknown_lacv() -> None:
    with pytest.raises(LabelError):
        label_from_refs(builtin_policy("USA"), 99, [])


def test_marking_in_spif_language(nato: object) -> None:
    from relto.labels.spif import Spif

    assert isinstance(nato, Spif)
    label = Label("NATO", "TOP SECRET", policy_id=nato.policy_id)
    assert marking(label, nato) == "COSMIC TOP SECRET"
    assert marking(label, nato, "fr") == "NATO TRES SECRET"
