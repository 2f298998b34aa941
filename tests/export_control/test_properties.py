"""Properties: junk facts raise only ExportFactsError; no controlled transfer is
allowed without a legal basis; an excluded item never passes under ITAR 126.7."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from relto.export_control import (
    Action,
    AuthorizedUserStatus,
    ExcludedEntry,
    ExcludedList,
    ExportFacts,
    ExportFactsError,
    ItemClassification,
    ItemKind,
    Licence,
    Party,
    PartyKind,
    Regime,
    Transfer,
    decide_transfer,
    load_facts,
)

NATIONS = st.sampled_from(["AUS", "GBR", "USA", "JPN", "KOR", "NZL", "CAN", "FRA", "IRN"])
BASE = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = st.integers(-800, 800).map(lambda d: BASE + timedelta(days=d))
CATEGORIES = st.sampled_from(["I", "IV", "XI", "XII"])
PARAGRAPHS = st.sampled_from([None, "(a)", "(a)(1)", "(h)"])
PATTERNS = st.builds(lambda c, p: f"USML {c}{p or ''}", CATEGORIES, PARAGRAPHS)

junk_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["ITAR", "EAR", "2026-01-01", "2026-01-01T00:00:00+00:00", "USA", "1e9"]),
)
junk = st.recursive(
    junk_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "licences",
                        "excluded_lists",
                        "dual_national_rules",
                        "value_thresholds",
                        "number",
                        "regime",
                        "kind",
                        "items",
                        "organisations",
                        "nationalities",
                        "end_use",
                        "valid_from",
                        "valid_until",
                        "value_ceiling",
                        "entries",
                        "pattern",
                        "source",
                        "name",
                        "version",
                        "locations",
                        "ITAR",
                    ]
                ),
                st.text(max_size=5),
                st.integers(),
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(junk)
def test_junk_facts_raise_only_export_facts_error(data: object) -> None:
    try:
        facts = load_facts(data)
    except ExportFactsError:
        return
    assert isinstance(facts, ExportFacts)


@st.composite
def parties(draw: st.DrawFn, pid: str) -> Party:
    auth = ()
    if draw(st.booleans()):
        start = draw(TIMES)
        auth = (
            AuthorizedUserStatus(
                draw(st.sampled_from(list(Regime))), "AU", start, start + timedelta(days=400)
            ),
        )
    return Party(
        id=pid,
        kind=draw(st.sampled_from(list(PartyKind))),
        location=draw(NATIONS),
        nationalities=frozenset(draw(st.sets(NATIONS, max_size=3))),
        organisation_id=draw(st.sampled_from([None, "org-a", "org-b"])),
        ddtc_registered=draw(st.booleans()),
        debarred=draw(st.booleans()),
        government_body_of=draw(st.none() | NATIONS),
        authorized=auth,
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Transfer, ExportFacts]:
    regime = draw(st.sampled_from(list(Regime)))
    item = ItemClassification(
        controlled=draw(st.booleans()),
        kind=draw(st.sampled_from(list(ItemKind))),
        regime=draw(st.none() | st.just(regime)),
        usml_category=draw(st.none() | CATEGORIES),
        usml_paragraph=draw(PARAGRAPHS),
        sme=draw(st.booleans()),
        eccn=draw(st.none() | st.just("3A001")),
        dsgl_item=draw(st.none() | st.just("ML11")),
    )
    licences = []
    for i in range(draw(st.integers(0, 2))):
        start = draw(TIMES)
        licences.append(
            Licence(
                number=f"L{i}",
                regime=draw(st.sampled_from(list(Regime))),
                kind="DSP-5",
                items=tuple(draw(st.lists(PATTERNS | st.just("ECCN 3A001"), max_size=2))),
                organisations=frozenset(draw(st.sets(st.sampled_from(["org-a", "org-b", "p1"])))),
                nationalities=frozenset(draw(st.sets(NATIONS, max_size=4))),
                end_use="test",
                valid_from=start,
                valid_until=start + timedelta(days=draw(st.integers(1, 900))),
                value_ceiling=draw(st.none() | st.integers(0, 100).map(Decimal)),
                value_consumed=Decimal(draw(st.integers(0, 100))),
            )
        )
    lists = [
        ExcludedList(
            Regime.ITAR,
            "test list",
            "1",
            "test data",
            tuple(ExcludedEntry(p, "test data") for p in draw(st.lists(PATTERNS, max_size=3))),
        )
        for _ in range(draw(st.integers(0, 1)))
    ]
    facts = ExportFacts(
        licences=tuple(licences),
        excluded_lists=tuple(lists),
        value_thresholds=draw(st.sampled_from([{}, {Regime.ITAR: Decimal(50)}])),
    )
    t = Transfer(
        item=draw(st.none() | st.just(item)),
        sender=draw(parties("p1")),
        recipient=draw(parties("p2")),
        action=draw(st.sampled_from(list(Action))),
        place=draw(NATIONS),
        at=draw(TIMES),
        value=draw(st.none() | st.integers(0, 100).map(Decimal)),
    )
    return t, facts


@settings(max_examples=600, deadline=None)
@given(worlds())
def test_no_controlled_transfer_allowed_without_legal_basis(
    world: tuple[Transfer, ExportFacts],
) -> None:
    t, facts = world
    d = decide_transfer(t, facts)
    if not d.allowed:
        assert d.reasons and all(r.sentence and r.code for r in d.reasons)
        return
    assert d.legal_basis
    if t.item is None or t.item.controlled:
        assert t.item is not None and d.legal_basis != "not controlled"
        assert not t.sender.debarred and not t.recipient.debarred
    if d.legal_basis == "ITAR 126.7":
        designator = t.item.designator if t.item else None
        assert designator is not None
        assert facts.excluded_lists
        assert all(lst.match(designator) is None for lst in facts.excluded_lists)
        assert t.place in {"AUS", "GBR", "USA"}
    if d.legal_basis.startswith("licence"):
        assert t.item is not None and t.item.regime is not None
        lic = next(x for x in facts.licences if x.number == d.licence_number)
        assert lic.regime is t.item.regime and lic.valid_from <= t.at < lic.valid_until


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_excluded_item_never_passes_under_126_7(world: tuple[Transfer, ExportFacts]) -> None:
    t, facts = world
    item = ItemClassification(
        controlled=True,
        kind=ItemKind.TECHNICAL_DATA,
        regime=Regime.ITAR,
        usml_category="XI",
        usml_paragraph="(a)(1)",
    )
    lst = ExcludedList(Regime.ITAR, "etl", "1", "test", (ExcludedEntry("USML XI", "test"),))
    facts = replace(facts, excluded_lists=(*facts.excluded_lists, lst))
    d = decide_transfer(replace(t, item=item), facts)
    assert d.legal_basis != "ITAR 126.7"
