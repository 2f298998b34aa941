"""The engine's export hook remembers its answers (for speed): a remembered answer
must be exactly what a fresh check answers, or a cached allow could reach another
person, another object, another time or another re-transfer recipient."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from relto.decisions import Resource, Subject
from relto.decisions import export_hook as hook_module
from relto.decisions.export_hook import ExportControlCheck
from relto.export_control import (
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
)
from relto.export_control._parties import ObjectExport

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
#: The same instant in another zone, a time after the licences end, one before.
TIMES = (NOW, NOW.astimezone(timezone(timedelta(hours=2))), NOW + 200 * DAY, NOW - 400 * DAY)
ACTIONS = ("read", "download", "share", "relabel", "ship", "manufacture", "frobnicate")
EXAMPLE = "example data, not regulatory content"


def _status(start: datetime, end: datetime) -> tuple[AuthorizedUserStatus, ...]:
    return (AuthorizedUserStatus(Regime.ITAR, "AU-1", start, end),)


FACTS = ExportFacts(
    licences=(
        Licence(
            "TAA-1",
            Regime.ITAR,
            "TAA",
            ("USML XI",),
            frozenset({"us-prime", "jp-lab"}),
            frozenset({"JPN"}),
            "example",
            NOW - 100 * DAY,
            NOW + 100 * DAY,
        ),
        Licence(
            "EAR-2",
            Regime.EAR,
            "BIS licence",
            ("ECCN 3A001",),
            frozenset({"us-prime", "uk-lab", "jp-lab"}),
            frozenset({"USA", "GBR", "JPN"}),
            "example",
            NOW - 100 * DAY,
            NOW + 100 * DAY,
            value_ceiling=Decimal("5000"),
        ),
    ),
    excluded_lists=(
        ExcludedList(
            Regime.ITAR, "Example list", "1", EXAMPLE, (ExcludedEntry("USML IV", EXAMPLE),)
        ),
    ),
    dual_national_rules=(
        DualNationalRule("Example rule", EXAMPLE, frozenset({"GBR"}), frozenset({"IND"})),
    ),
    value_thresholds={Regime.ITAR: Decimal("1000")},
)

PARTIES = {
    p.id: p
    for p in (
        Party("us-prime", PartyKind.ORGANISATION, "USA", ddtc_registered=True),
        Party("uk-lab", PartyKind.ORGANISATION, "GBR", authorized=_status(NOW - DAY, NOW + DAY)),
        Party("jp-lab", PartyKind.ORGANISATION, "JPN"),
        Party("shady", PartyKind.ORGANISATION, "USA", ddtc_registered=True, debarred=True),
        Party("alice", PartyKind.PERSON, "USA", frozenset({"USA"}), "us-prime", True),
        Party(
            "bob",
            PartyKind.PERSON,
            "GBR",
            frozenset({"GBR"}),
            "uk-lab",
            authorized=_status(NOW - 500 * DAY, NOW + 100 * DAY),
        ),
        Party("kenji", PartyKind.PERSON, "JPN", frozenset({"JPN"}), "jp-lab"),
        Party(
            "dana",
            PartyKind.PERSON,
            "GBR",
            frozenset({"GBR", "IND"}),
            "uk-lab",
            authorized=_status(NOW - DAY, NOW + DAY),
        ),
    )
}

#: The same person may come with other nationalities (another scenario record, a
#: new passport); "nobody" has no party record.
SUBJECTS = (
    Subject("alice", frozenset({"USA"})),
    Subject("bob", frozenset({"GBR"})),
    Subject("bob", frozenset({"GBR", "IRN"})),
    Subject("kenji", frozenset({"JPN"})),
    Subject("dana", frozenset({"GBR"})),
    Subject("nobody", frozenset({"AUS"})),
    Subject("nobody", frozenset()),
)


def _itar(cat: str, para: str | None = None, *, sme: bool = False) -> ItemClassification:
    return ItemClassification(True, ItemKind.TECHNICAL_DATA, Regime.ITAR, cat, para, sme=sme)


EAR = ItemClassification(True, ItemKind.TECHNICAL_DATA, Regime.EAR, eccn="3A001.a")
#: Data that compare equal but decide differently: a plain "ITAR" is not the
#: Regime (classification fails), 1500.0 and 1500.00 print differently.
PLAIN_REGIME = ItemClassification(True, ItemKind.TECHNICAL_DATA, "ITAR", "XI", "(a)")  # type: ignore[arg-type]
DATA = (
    ObjectExport(_itar("XI", "(a)"), "us-prime"),
    ObjectExport(_itar("XI", "(a)"), "us-prime"),  # equal, another instance
    ObjectExport(PLAIN_REGIME, "us-prime"),
    ObjectExport(_itar("XI", "(a)"), "uk-lab"),
    ObjectExport(_itar("IV", "(h)", sme=True), "us-prime"),
    ObjectExport(_itar("XV", "(a)", sme=True), "us-prime"),
    ObjectExport(_itar("XI", "(a)"), "us-prime", Decimal("1500.0")),
    ObjectExport(_itar("XI", "(a)"), "us-prime", Decimal("1500.00")),
    ObjectExport(_itar("XI", "(a)"), "us-prime", Decimal("900")),
    ObjectExport(EAR, "us-prime", Decimal("6000")),
    ObjectExport(EAR, "uk-lab"),
    ObjectExport(_itar("XI", "(a)"), "shady"),
    ObjectExport(_itar("XI", "(a)"), "no-such-sender"),
    ObjectExport(_itar("XI", "(a)"), None),
    ObjectExport(ItemClassification(False, ItemKind.TECHNICAL_DATA), "us-prime"),
    ObjectExport(ItemClassification(True, ItemKind.HARDWARE, Regime.ITAR), "us-prime"),
    ObjectExport(None, "us-prime"),
)
ITEMS = {f"o{i}": d for i, d in enumerate(DATA)} | {
    "shared": DATA[0],
    "shared-too": DATA[0],
    "unsent-twin": DATA[13],
}
OBJECTS = tuple(
    Resource(oid, "USA", "UNCLASSIFIED", frozenset({"USA"})) for oid in (*ITEMS, "unlisted")
)
NATIONALITIES = {"nobody": frozenset({"NZL"}), "bob": frozenset({"GBR"})}
RECIPIENTS = (None, "kenji", "bob", "nobody")


def _check(recipient: str | None = None) -> ExportControlCheck:
    return ExportControlCheck(FACTS, PARTIES, ITEMS, NATIONALITIES, recipient)


def _requests() -> list[tuple[Subject, str, Resource, datetime]]:
    out = list(itertools.product(SUBJECTS, ACTIONS, OBJECTS, TIMES))
    random.Random(16).shuffle(out)
    return out


def test_remembered_answers_are_fresh_answers() -> None:
    """Every answer of one long-lived check (asked twice, in shuffled order, for
    direct transfers and re-transfers derived from it) equals a fresh check's."""
    direct = _check()
    for recipient in RECIPIENTS:
        kept = direct if recipient is None else direct.retransfer_to(recipient)
        for _ in range(2):
            for s, a, o, at in _requests():
                fresh = _check(recipient)
                assert kept.decide(s, a, o, at) == fresh.decide(s, a, o, at), (s, a, o.id, at)
                assert kept.check(s, a, o, at) == _check(recipient).check(s, a, o, at)


def test_mix_covers_allow_and_deny() -> None:
    """The cases above are not all one answer: both bases and many reasons occur."""
    check = _check()
    seen = {check.decide(s, a, o, at).legal_basis for s, a, o, at in _requests()}
    codes = {r.code for s, a, o, at in _requests() for r in check.decide(s, a, o, at).reasons}
    assert {"ITAR 126.7", "licence TAA TAA-1", "not controlled", None} <= seen
    assert {
        "item_on_excluded_list",
        "value_over_123_15",
        "dual_national_not_covered",
        "sender_debarred",
        "retransfer_recipient_missing",
        "sender_not_recorded",
        "party_not_recorded",
        "licence_expired",
        "regime_unknown",
    } <= codes


def test_equal_looking_data_not_conflated() -> None:
    """Objects whose export data compare equal but read differently keep their own
    answers: a plain-string regime fails closed even after the real one allowed,
    and a value keeps its own spelling in the sentence."""
    check = _check()
    alice = SUBJECTS[0]
    bob = SUBJECTS[1]
    assert check.decide(bob, "read", OBJECTS[0], NOW).allowed
    assert DATA[2] == DATA[0]
    plain = check.decide(bob, "read", OBJECTS[2], NOW)
    assert not plain.allowed and plain.reasons[0].code == "regime_unknown"
    first = check.check(alice, "read", OBJECTS[6], NOW)
    second = check.check(alice, "read", OBJECTS[7], NOW)
    assert first is not None and "1500.0 exceeds" in first
    assert second is not None and "1500.00 exceeds" in second


def test_other_nationalities_of_same_person_not_reused() -> None:
    """A person asked again with another nationality is judged again."""
    check = _check()
    o = OBJECTS[0]
    assert check.decide(Subject("bob", frozenset({"GBR"})), "read", o, NOW).allowed
    again = check.decide(Subject("bob", frozenset({"GBR", "IRN"})), "read", o, NOW)
    assert not again.allowed
    assert "dual_national_not_covered" in {r.code for r in again.reasons}


def test_later_time_not_reused() -> None:
    """An allow remembered at one time does not outlive the authorization."""
    check = _check()
    dana = Subject("dana", frozenset({"GBR"}))
    assert check.decide(dana, "read", OBJECTS[0], NOW).allowed
    assert not check.decide(dana, "read", OBJECTS[0], NOW + 2 * DAY).allowed


def test_remembered_answers_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory is bounded and forgetting never changes an answer."""
    monkeypatch.setattr(hook_module, "MAX_REMEMBERED", 8)
    check = _check()
    for s, a, o, at in _requests()[:400]:
        assert check.decide(s, a, o, at) == _check().decide(s, a, o, at)
        assert len(check._answers) <= 8 and len(check._signatures) <= 8
        assert len(check._parties) <= 8


def test_replaced_check_starts_afresh() -> None:
    """A check rebuilt with other facts (what-if) never answers from the old one's
    memory."""
    check = _check()
    bob = SUBJECTS[1]
    assert check.decide(bob, "read", OBJECTS[0], NOW).allowed
    excluded = (ExcludedList(Regime.ITAR, "x", "2", EXAMPLE, (ExcludedEntry("USML XI", EXAMPLE),)),)
    stricter = replace(check, facts=replace(FACTS, excluded_lists=excluded))
    assert not stricter.decide(bob, "read", OBJECTS[0], NOW).allowed


def test_unhashable_nationalities_judged_not_unreadable() -> None:
    """A subject whose nationalities come as a set (not frozen) is judged like any
    other, as before the hook remembered anything, not failed as unreadable."""
    check = _check()
    odd = Subject("bob", {"GBR"})  # type: ignore[arg-type]
    for a in ("read", "share"):
        got = check.decide(odd, a, OBJECTS[0], NOW)
        assert got == _check().decide(SUBJECTS[1], a, OBJECTS[0], NOW)
    assert check.retransfer_to("kenji").decide(odd, "share", OBJECTS[0], NOW) == _check(
        "kenji"
    ).decide(SUBJECTS[1], "share", OBJECTS[0], NOW)
