"""Random export worlds for the differential tests (seeded ``random``, no I/O).

A world is a set of parties, items and loaded facts; transfers are drawn from it.
Draws are biased so that every legal basis and every reason code turns up: most
parties are in AUS/GBR/USA, most places are the recipient's location, and so on.
Invented patterns and lists only; relto ships no regulatory content.

The bounds (nationalities, statuses, lists, licences, §126.18 rules) are the slots
of the Cedar model in ``export.cedarschema``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
)

MAX_NATIONALITIES = 3
MAX_STATUSES = 2
MAX_LISTS = 2
MAX_ENTRIES = 3
MAX_LICENCES = 3
MAX_RULES = 2

BASE = datetime(2026, 1, 1, tzinfo=UTC)
AUKUS = ("AUS", "GBR", "USA")
OTHERS = ("JPN", "KOR", "NZL", "CAN", "FRA", "IRN")
ORGS = ("us-prime", "uk-lab", "au-yard", "jp-lab")
CATEGORIES = ("I", "IV", "XI", "XII")
PARAGRAPHS = (None, "(a)", "(a)(1)", "(h)", "(c)")
#: Written the way an officer might mistype them; excluded lists cannot see these.
ODD_CATEGORIES = ("iv", "XI ", " IV", "XXII", "")
ODD_PARAGRAPHS = ("h", "(H)", " (a)", "(a) (1)")
PATTERNS = (
    "USML XI",
    "USML XI(a)",
    "USML XI(",
    "USML IV",
    "USML IV(h)",
    "USML I",
    "USML X",
    "USML XII(c)",
    "ECCN 3A001",
    "ECCN 3A001.a",
    "DSGL ML11",
    "DSGL ML1",
)


def day(n: int) -> datetime:
    return BASE + timedelta(days=n)


def _window(rng: random.Random, longest: int = 700) -> tuple[datetime, datetime]:
    start = rng.randint(-400, 300)
    return day(start), day(start + rng.randint(1, longest))


def _nations(rng: random.Random) -> frozenset[str]:
    n = rng.choices((0, 1, 2, 3), (1, 12, 5, 2))[0]
    return frozenset(
        rng.choice(AUKUS) if rng.random() < 0.6 else rng.choice(OTHERS) for _ in range(n)
    )


def random_party(rng: random.Random, pid: str, person: bool = True) -> Party:
    """A person, or (``person=False``) the organisation ``pid``."""
    statuses = tuple(
        AuthorizedUserStatus(
            rng.choices((Regime.ITAR, Regime.UK_STRATEGIC, Regime.AUS_DSGL), (6, 1, 1))[0],
            f"AU-{pid}-{i}",
            *_window(rng),
        )
        for i in range(rng.choices((0, 1, 2), (3, 5, 2))[0])
    )
    return Party(
        id=pid,
        kind=PartyKind.PERSON if person else PartyKind.ORGANISATION,
        location=rng.choice(AUKUS) if rng.random() < 0.75 else rng.choice(OTHERS),
        nationalities=_nations(rng) if person else frozenset(),
        organisation_id=rng.choice((*ORGS, None)) if person else None,
        ddtc_registered=rng.random() < 0.45,
        debarred=rng.random() < 0.06,
        government_body_of=rng.choice((*AUKUS, "JPN")) if rng.random() < 0.12 else None,
        authorized=statuses,
    )


def random_item(rng: random.Random) -> ItemClassification | None:
    if rng.random() < 0.03:
        return None
    controlled = rng.random() < 0.9
    regime: object = rng.choices(list(Regime), (8, 2, 1, 1))[0]
    if rng.random() < 0.03:
        regime = rng.choice((None, "MARS"))
    kind: object = rng.choice(list(ItemKind))
    if rng.random() < 0.02:
        kind = "blob"
    odd = rng.random() < 0.08
    category = rng.choice(ODD_CATEGORIES if odd else CATEGORIES)
    paragraph = rng.choice(ODD_PARAGRAPHS if odd and rng.random() < 0.5 else PARAGRAPHS)
    blank = rng.random() < 0.05  # a controlled item without its designator
    return ItemClassification(
        controlled=controlled,
        kind=kind,  # type: ignore[arg-type]
        regime=regime,  # type: ignore[arg-type]
        usml_category=None if blank else category,
        usml_paragraph=paragraph,
        sme=rng.random() < 0.2,
        eccn=None if blank else rng.choice(("3A001", "3A001.a", "5D002")),
        dsgl_item=None if blank else rng.choice(("ML11", "ML1", "ML4")),
    )


def _pick(rng: random.Random, pool: tuple[str, ...], k: int) -> frozenset[str]:
    return frozenset(rng.sample(pool, min(k, len(pool))))


def _pattern(rng: random.Random, items: tuple[ItemClassification | None, ...]) -> str:
    """Half the time a pattern aimed at one of the world's items (its designator or
    the part before its first paragraph), else one from PATTERNS."""
    designators = [i.designator for i in items if i is not None and i.designator]
    if designators and rng.random() < 0.5:
        d = rng.choice(designators)
        return d if rng.random() < 0.5 else d.split("(")[0].split(".")[0]
    return rng.choice(PATTERNS)


def random_facts(
    rng: random.Random, items: tuple[ItemClassification | None, ...] = ()
) -> ExportFacts:
    lists = tuple(
        ExcludedList(
            rng.choices((Regime.ITAR, Regime.UK_STRATEGIC), (5, 1))[0],
            f"list {i}",
            str(rng.randint(1, 9)),
            "test data, not regulatory content",
            tuple(
                ExcludedEntry(_pattern(rng, items), "test data")
                for _ in range(rng.randint(0, MAX_ENTRIES))
            ),
        )
        for i in range(rng.choices(range(MAX_LISTS + 1), (1, 6, 2))[0])
    )
    licences = []
    for i in range(rng.choices(range(MAX_LICENCES + 1), (2, 4, 3, 1))[0]):
        ceiling = rng.choice((None, Decimal(rng.randint(0, 300))))
        licences.append(
            Licence(
                number=f"LIC-{i}",
                regime=rng.choices(list(Regime), (6, 2, 1, 1))[0],
                kind=rng.choice(("DSP-5", "TAA", "BIS licence")),
                items=tuple(_pattern(rng, items) for _ in range(rng.randint(1, 2))),
                organisations=_pick(rng, ORGS, rng.choice((1, 3, 4, 4))),
                nationalities=_pick(rng, AUKUS + OTHERS, rng.choice((1, 4, 7, 9))),
                end_use="test",
                valid_from=(w := _window(rng, 1200))[0],
                valid_until=w[1],
                value_ceiling=ceiling,
                value_consumed=Decimal(rng.randint(0, 200)),
            )
        )
    rules = tuple(
        DualNationalRule(
            f"rule {i}",
            "test data, not regulatory content",
            _pick(rng, AUKUS, rng.randint(1, 3)),
            _pick(rng, OTHERS, rng.randint(1, 3)),
            requires_authorized_user=rng.random() < 0.6,
        )
        for i in range(rng.choices(range(MAX_RULES + 1), (3, 3, 1))[0])
    )
    thresholds = {Regime.ITAR: Decimal(rng.choice((50, 100, 150)))} if rng.random() < 0.7 else {}
    return ExportFacts(tuple(licences), lists, rules, thresholds)


@dataclass(frozen=True)
class World:
    parties: tuple[Party, ...]
    items: tuple[ItemClassification | None, ...]
    facts: ExportFacts


def random_world(rng: random.Random, n_people: int = 10, n_items: int = 10) -> World:
    orgs = tuple(random_party(rng, org, person=False) for org in rng.sample(ORGS, 2))
    parties = tuple(random_party(rng, f"p{i}") for i in range(n_people)) + orgs
    items = tuple(random_item(rng) for _ in range(n_items))
    return World(parties, items, random_facts(rng, items))


def random_transfer(rng: random.Random, w: World) -> Transfer:
    recipient = rng.choice(w.parties)
    return Transfer(
        item=rng.choice(w.items),
        sender=rng.choice(w.parties),
        recipient=recipient,
        action=rng.choices(list(Action), (5, 2, 2, 1, 2))[0],
        place=recipient.location if rng.random() < 0.85 else rng.choice(AUKUS + OTHERS),
        at=day(rng.randint(-200, 500)) + timedelta(hours=rng.randint(0, 23)),
        value=None if rng.random() < 0.5 else Decimal(rng.randint(0, 200)),
    )
