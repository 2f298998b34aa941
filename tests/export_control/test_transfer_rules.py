"""Threat-named tests for relto.export_control.decide_transfer.

The excluded-list entries, amounts and §126.18 rules below are invented test data
(sources say so); relto ships no regulatory list content.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from relto.export_control import (
    Action,
    AuthorizedUserStatus,
    DualNationalRule,
    ExcludedEntry,
    ExcludedList,
    ExportFacts,
    ItemClassification,
    ItemKind,
    Licence,
    Party,
    PartyKind,
    Regime,
    Transfer,
    TransferDecision,
    decide_transfer,
)

AT = datetime(2026, 6, 1, tzinfo=UTC)
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
TEST_SOURCE = "test data, not regulatory content"


def au(regime: Regime = Regime.ITAR) -> tuple[AuthorizedUserStatus, ...]:
    return (AuthorizedUserStatus(regime, "AU-1", START, END),)


def person(pid: str, nats: set[str], location: str, org: str, **kw: object) -> Party:
    return Party(
        id=pid,
        kind=PartyKind.PERSON,
        location=location,
        nationalities=frozenset(nats),
        organisation_id=org,
        **kw,  # type: ignore[arg-type]
    )


US_SENDER = person("alice", {"USA"}, "USA", "us-prime", ddtc_registered=True)
UK_AU = person("bob", {"GBR"}, "GBR", "uk-lab", authorized=au())
JP_RECIPIENT = person("kenji", {"JPN"}, "JPN", "jp-lab")

ITAR_ITEM = ItemClassification(
    controlled=True,
    kind=ItemKind.TECHNICAL_DATA,
    regime=Regime.ITAR,
    usml_category="XI",
    usml_paragraph="(a)(1)",
)
EXCLUDED = ExcludedList(
    regime=Regime.ITAR,
    name="Test ETL",
    version="2026-01",
    source=TEST_SOURCE,
    entries=(ExcludedEntry("USML IV", TEST_SOURCE),),
)
FACTS = ExportFacts(excluded_lists=(EXCLUDED,), value_thresholds={Regime.ITAR: Decimal(1000)})


def transfer(recipient: Party = UK_AU, **kw: object) -> Transfer:
    base = Transfer(
        item=ITAR_ITEM,
        sender=US_SENDER,
        recipient=recipient,
        action=Action.READ,
        place=recipient.location,
        at=AT,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def codes(d: TransferDecision) -> set[str]:
    return {r.code for r in d.reasons}


def jp_licence(**kw: object) -> Licence:
    base = Licence(
        number="05-123456",
        regime=Regime.ITAR,
        kind="DSP-5",
        items=("USML XI",),
        organisations=frozenset({"us-prime", "jp-lab"}),
        nationalities=frozenset({"JPN"}),
        end_use="radar integration test",
        valid_from=START,
        valid_until=END,
        value_ceiling=Decimal(5000),
        value_consumed=Decimal(0),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_aukus_transfer_between_eligible_parties_allowed_under_126_7() -> None:
    d = decide_transfer(transfer(), FACTS)
    assert d.allowed and d.legal_basis == "ITAR 126.7"


def test_uncontrolled_item_allowed_as_not_controlled() -> None:
    item = ItemClassification(controlled=False, kind=ItemKind.TECHNICAL_DATA)
    d = decide_transfer(transfer(JP_RECIPIENT, item=item), ExportFacts())
    assert d.allowed and d.legal_basis == "not controlled"


def test_excluded_item_never_passes_under_126_7() -> None:
    item = replace(ITAR_ITEM, usml_category="IV", usml_paragraph="(h)")
    d = decide_transfer(transfer(item=item), FACTS)
    assert not d.allowed
    (reason,) = [r for r in d.reasons if r.code == "item_on_excluded_list"]
    assert "Test ETL version 2026-01" in reason.sentence and TEST_SOURCE in reason.sentence


def test_excluded_pattern_does_not_catch_a_longer_category() -> None:
    item = replace(ITAR_ITEM, usml_category="IV")
    lst = replace(EXCLUDED, entries=(ExcludedEntry("USML I", TEST_SOURCE),))
    d = decide_transfer(transfer(item=item), replace(FACTS, excluded_lists=(lst,)))
    assert d.allowed


def test_no_excluded_list_loaded_denies_126_7() -> None:
    d = decide_transfer(transfer(), replace(FACTS, excluded_lists=()))
    assert not d.allowed and "excluded_list_not_loaded" in codes(d)


def test_recipient_not_authorized_user_denied() -> None:
    d = decide_transfer(transfer(replace(UK_AU, authorized=())), FACTS)
    assert not d.allowed and "recipient_not_authorized_user" in codes(d)


def test_lapsed_authorized_user_status_denied() -> None:
    lapsed = (AuthorizedUserStatus(Regime.ITAR, "AU-1", START, AT),)
    d = decide_transfer(transfer(replace(UK_AU, authorized=lapsed)), FACTS)
    assert not d.allowed and "recipient_not_authorized_user" in codes(d)


def test_authorized_user_under_another_regime_does_not_count() -> None:
    d = decide_transfer(transfer(replace(UK_AU, authorized=au(Regime.UK_STRATEGIC))), FACTS)
    assert not d.allowed and "recipient_not_authorized_user" in codes(d)


def test_unregistered_sender_not_eligible() -> None:
    d = decide_transfer(transfer(sender=replace(US_SENDER, ddtc_registered=False)), FACTS)
    assert not d.allowed and "sender_not_eligible" in codes(d)


def test_government_body_is_eligible() -> None:
    mod = Party(id="uk-mod", kind=PartyKind.ORGANISATION, location="GBR", government_body_of="GBR")
    assert decide_transfer(transfer(mod), FACTS).allowed


def test_place_outside_aukus_territory_denied() -> None:
    d = decide_transfer(transfer(place="FRA"), FACTS)
    assert not d.allowed and "place_outside_aukus_territory" in codes(d)


def test_partner_nation_without_licence_denied() -> None:
    d = decide_transfer(transfer(JP_RECIPIENT), FACTS)
    assert not d.allowed
    assert {"place_outside_aukus_territory", "no_covering_licence"} <= codes(d)


def test_partner_authorized_user_still_cannot_use_126_7() -> None:
    d = decide_transfer(transfer(replace(JP_RECIPIENT, authorized=au())), FACTS)
    assert not d.allowed and "place_outside_aukus_territory" in codes(d)


def test_partner_with_covering_licence_allowed_with_its_number() -> None:
    d = decide_transfer(transfer(JP_RECIPIENT), replace(FACTS, licences=(jp_licence(),)))
    assert d.allowed and d.legal_basis == "licence DSP-5 05-123456"
    assert d.licence_number == "05-123456"


def test_expired_licence_denied_with_its_date() -> None:
    lic = jp_licence(valid_until=datetime(2026, 3, 31, tzinfo=UTC))
    d = decide_transfer(transfer(JP_RECIPIENT), replace(FACTS, licences=(lic,)))
    assert not d.allowed
    assert any(r.code == "licence_expired" and "2026-03-31" in r.sentence for r in d.reasons)


def test_licence_value_ceiling_reached_denied() -> None:
    lic = jp_licence(value_consumed=Decimal(5000))
    d = decide_transfer(transfer(JP_RECIPIENT), replace(FACTS, licences=(lic,)))
    assert not d.allowed and "licence_value_ceiling_reached" in codes(d)


def test_transfer_value_over_what_is_left_denied() -> None:
    lic = jp_licence(value_consumed=Decimal(4500))
    d = decide_transfer(transfer(JP_RECIPIENT, value=Decimal(600)), replace(FACTS, licences=(lic,)))
    assert not d.allowed and "licence_value_ceiling_reached" in codes(d)


def test_recipient_nationality_not_covered_by_licence_denied() -> None:
    dual = replace(JP_RECIPIENT, nationalities=frozenset({"JPN", "CHN"}))
    d = decide_transfer(transfer(dual), replace(FACTS, licences=(jp_licence(),)))
    assert not d.allowed
    assert any(
        "CHN" in r.sentence for r in d.reasons if r.code == "recipient_nationality_not_covered"
    )


def test_licence_for_another_item_does_not_cover() -> None:
    lic = jp_licence(items=("USML XII",))
    d = decide_transfer(transfer(JP_RECIPIENT), replace(FACTS, licences=(lic,)))
    assert not d.allowed and "no_covering_licence" in codes(d)


def test_licence_not_naming_recipient_organisation_denied() -> None:
    lic = jp_licence(organisations=frozenset({"us-prime"}))
    d = decide_transfer(transfer(JP_RECIPIENT), replace(FACTS, licences=(lic,)))
    assert not d.allowed and "recipient_organisation_not_covered" in codes(d)


def test_dual_national_not_covered_denied() -> None:
    dual = replace(UK_AU, nationalities=frozenset({"GBR", "IRN"}))
    d = decide_transfer(transfer(dual), FACTS)
    assert not d.allowed
    assert any("IRN" in r.sentence for r in d.reasons if r.code == "dual_national_not_covered")


def test_dual_national_covered_by_loaded_126_18_rule_allowed() -> None:
    rule = DualNationalRule(
        name="test rule",
        source=TEST_SOURCE,
        locations=frozenset({"GBR"}),
        nationalities=frozenset({"FRA"}),
    )
    dual = replace(UK_AU, nationalities=frozenset({"GBR", "FRA"}))
    facts = replace(FACTS, dual_national_rules=(rule,))
    assert decide_transfer(transfer(dual), facts).allowed
    # the rule is for recipients in GBR only: the same person in AUS is not covered
    assert not decide_transfer(transfer(replace(dual, location="AUS"), place="AUS"), facts).allowed


def test_every_nationality_is_judged() -> None:
    triple = replace(UK_AU, nationalities=frozenset({"GBR", "IRN", "PRK"}))
    d = decide_transfer(transfer(triple), FACTS)
    judged = [r.sentence for r in d.reasons if r.code == "dual_national_not_covered"]
    assert len(judged) == 2 and any("IRN" in s for s in judged) and any("PRK" in s for s in judged)


def test_debarred_party_denied_even_with_everything_else() -> None:
    d = decide_transfer(transfer(replace(UK_AU, debarred=True)), FACTS)
    assert not d.allowed and "recipient_debarred" in codes(d)
    lic = jp_licence()
    d = decide_transfer(
        transfer(JP_RECIPIENT, sender=replace(US_SENDER, debarred=True)),
        replace(FACTS, licences=(lic,)),
    )
    assert not d.allowed and "sender_debarred" in codes(d)


def test_value_over_configured_123_15_threshold_denied() -> None:
    d = decide_transfer(transfer(value=Decimal(1001)), FACTS)
    assert not d.allowed and "value_over_123_15" in codes(d)
    assert decide_transfer(transfer(value=Decimal(1000)), FACTS).allowed


def test_stated_value_without_loaded_threshold_denied() -> None:
    d = decide_transfer(transfer(value=Decimal(1)), replace(FACTS, value_thresholds={}))
    assert not d.allowed and "value_threshold_not_loaded" in codes(d)


def test_sme_manufacture_abroad_denied() -> None:
    item = replace(ITAR_ITEM, kind=ItemKind.HARDWARE, sme=True)
    d = decide_transfer(transfer(item=item, action=Action.MANUFACTURE), FACTS)
    assert not d.allowed and "sme_manufacture_abroad" in codes(d)


def test_every_missing_condition_is_reported() -> None:
    item = replace(ITAR_ITEM, usml_category="IV", sme=True)
    stranger = person("x", {"GBR", "IRN"}, "FRA", "none-org")
    d = decide_transfer(
        transfer(
            stranger,
            item=item,
            sender=replace(US_SENDER, ddtc_registered=False, debarred=True),
            action=Action.MANUFACTURE,
            value=Decimal(10**6),
        ),
        FACTS,
    )
    assert not d.allowed
    assert {
        "sender_debarred",
        "place_outside_aukus_territory",
        "sender_not_eligible",
        "recipient_not_authorized_user",
        "item_on_excluded_list",
        "value_over_123_15",
        "sme_manufacture_abroad",
        "dual_national_not_covered",
        "no_covering_licence",
    } <= codes(d)
    assert all(r.sentence.endswith(".") or r.sentence.endswith(")") for r in d.reasons)


def test_retransfer_is_judged_as_a_new_transfer_from_the_recipient() -> None:
    first = transfer()
    assert decide_transfer(first, FACTS).allowed
    onward = transfer(JP_RECIPIENT, sender=first.recipient, action=Action.SHARE)
    d = decide_transfer(onward, FACTS)
    assert not d.allowed and "no_covering_licence" in codes(d)


def test_missing_classification_denied() -> None:
    d = decide_transfer(transfer(item=None), FACTS)
    assert not d.allowed and codes(d) == {"classification_missing"}


def test_controlled_item_without_designator_denied() -> None:
    item = ItemClassification(controlled=True, kind=ItemKind.HARDWARE, regime=Regime.ITAR)
    d = decide_transfer(transfer(item=item), FACTS)
    assert not d.allowed and "classification_incomplete" in codes(d)


def test_unknown_regime_denied() -> None:
    item = replace(ITAR_ITEM, regime="MARS")  # type: ignore[arg-type]
    d = decide_transfer(transfer(item=item), FACTS)
    assert not d.allowed and "regime_unknown" in codes(d)


def test_malformed_facts_denied() -> None:
    d = decide_transfer(transfer(), {"licences": []})  # type: ignore[arg-type]
    assert not d.allowed and "facts_malformed" in codes(d)


def test_ear_item_needs_a_licence_no_nlr_given() -> None:
    item = ItemClassification(
        controlled=True, kind=ItemKind.TECHNICAL_DATA, regime=Regime.EAR, eccn="3A001.a"
    )
    d = decide_transfer(transfer(item=item), FACTS)
    assert not d.allowed and "no_licence_free_basis" in codes(d)
    lic = jp_licence(
        regime=Regime.EAR,
        kind="BIS licence",
        items=("ECCN 3A001",),
        organisations=frozenset({"us-prime", "uk-lab"}),
        nationalities=frozenset({"GBR"}),
    )
    d = decide_transfer(transfer(item=item), replace(FACTS, licences=(lic,)))
    assert d.allowed and d.legal_basis == "licence BIS licence 05-123456"


def test_itar_licence_does_not_cover_an_ear_item() -> None:
    item = ItemClassification(
        controlled=True, kind=ItemKind.TECHNICAL_DATA, regime=Regime.EAR, eccn="3A001"
    )
    lic = jp_licence(items=("ECCN 3A001",))
    d = decide_transfer(transfer(JP_RECIPIENT, item=item), replace(FACTS, licences=(lic,)))
    assert not d.allowed


def test_allowed_decision_without_basis_cannot_be_built() -> None:
    import pytest

    with pytest.raises(ValueError):
        TransferDecision(allowed=True, legal_basis=None)
    with pytest.raises(ValueError):
        TransferDecision(allowed=False, legal_basis=None, reasons=())
