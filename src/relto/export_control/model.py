"""The export-control model: regimes, items, parties, licences, lists, transfers.

Plain frozen dataclasses; they know nothing of YAML, JSON or SQL (``_loader``
turns a mapping into them). Validity windows are half-open ``[valid_from,
valid_until)`` in timezone-aware datetimes. Nations are ISO 3166 alpha-3 codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "AUKUS_MEMBERS",
    "Action",
    "AuthorizedUserStatus",
    "DualNationalRule",
    "ExcludedEntry",
    "ExcludedList",
    "ExportFacts",
    "ItemClassification",
    "ItemKind",
    "Licence",
    "Party",
    "PartyKind",
    "Regime",
    "Transfer",
    "pattern_matches",
]

#: 22 CFR §126.7(b)(1): "to or within the physical territory of Australia, the
#: United Kingdom, or the United States" (https://www.law.cornell.edu/cfr/text/22/126.7).
AUKUS_MEMBERS: frozenset[str] = frozenset({"AUS", "GBR", "USA"})


class Regime(StrEnum):
    """An export-control regime relto knows; anything else is refused."""

    ITAR = "ITAR"
    EAR = "EAR"
    AUS_DSGL = "AUS_DSGL"
    UK_STRATEGIC = "UK_STRATEGIC"


class ItemKind(StrEnum):
    TECHNICAL_DATA = "technical_data"
    HARDWARE = "hardware"
    SERVICE = "service"


class Action(StrEnum):
    """What the recipient does. ``share`` is a re-transfer: a new Transfer whose
    sender is the earlier recipient, judged like any other."""

    READ = "read"
    DOWNLOAD = "download"
    SHARE = "share"
    SHIP = "ship"
    MANUFACTURE = "manufacture"


class PartyKind(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


def _active(valid_from: datetime, valid_until: datetime, at: datetime) -> bool:
    return valid_from <= at < valid_until


def pattern_matches(pattern: str, designator: str) -> bool:
    """True if ``pattern`` names ``designator`` or a prefix of it ending at a
    paragraph boundary: ``USML XI`` covers ``USML XI(a)(1)`` but not ``USML XII``;
    ``ECCN 3A001`` covers ``ECCN 3A001.a``. An empty pattern covers nothing."""
    if not pattern or not designator.startswith(pattern):
        return False
    rest = designator[len(pattern) :]
    return rest == "" or rest[0] in "(." or pattern[-1] in "(."


@dataclass(frozen=True, slots=True)
class ItemClassification:
    """The export classification of one object.

    ``controlled=False`` is a positive finding ("not controlled"), never a default.
    For a controlled item the regime's designator must be present: USML category
    (and paragraph, e.g. ``(a)(1)``) for ITAR, ECCN for EAR, DSGL item for AUS_DSGL
    and UK_STRATEGIC."""

    controlled: bool
    kind: ItemKind
    regime: Regime | None = None
    usml_category: str | None = None
    usml_paragraph: str | None = None
    sme: bool = False
    eccn: str | None = None
    dsgl_item: str | None = None

    @property
    def designator(self) -> str | None:
        """``USML XI(a)(1)``, ``ECCN 3A001.a``, ``DSGL ML11``; None if missing."""
        if self.regime is Regime.ITAR and self.usml_category:
            return f"USML {self.usml_category}{self.usml_paragraph or ''}"
        if self.regime is Regime.EAR and self.eccn:
            return f"ECCN {self.eccn}"
        if self.regime in (Regime.AUS_DSGL, Regime.UK_STRATEGIC) and self.dsgl_item:
            return f"DSGL {self.dsgl_item}"
        return None


@dataclass(frozen=True, slots=True)
class AuthorizedUserStatus:
    """Authorized-user status under one regime (DDTC list for ITAR, UK AUC, ...)."""

    regime: Regime
    identifier: str
    valid_from: datetime
    valid_until: datetime

    def active_at(self, at: datetime) -> bool:
        return _active(self.valid_from, self.valid_until, at)


@dataclass(frozen=True, slots=True)
class Party:
    """A person or an organisation taking part in a transfer.

    ``nationalities`` holds every nationality (dual and third-country nationals are
    judged on all of them); ``location`` is the country the party is in.
    ``ddtc_registered`` means: a U.S. person registered with DDTC and eligible under
    §120.16, as the officer recorded it. ``government_body_of`` names the nation
    whose national-level government department or agency this party is."""

    id: str
    kind: PartyKind
    location: str
    nationalities: frozenset[str] = frozenset()
    organisation_id: str | None = None
    ddtc_registered: bool = False
    debarred: bool = False
    government_body_of: str | None = None
    authorized: tuple[AuthorizedUserStatus, ...] = ()

    @property
    def organisation(self) -> str | None:
        """The organisation that answers for this party (itself, if one)."""
        return self.id if self.kind is PartyKind.ORGANISATION else self.organisation_id

    def authorized_user(self, regime: Regime, at: datetime) -> bool:
        return any(s.regime is regime and s.active_at(at) for s in self.authorized)


@dataclass(frozen=True, slots=True)
class Licence:
    """A licence or agreement (DSP-5, TAA, MLA, ...) naming items, parties, end use."""

    number: str
    regime: Regime
    kind: str
    items: tuple[str, ...]
    organisations: frozenset[str]
    nationalities: frozenset[str]
    end_use: str
    valid_from: datetime
    valid_until: datetime
    value_ceiling: Decimal | None = None
    value_consumed: Decimal = Decimal(0)
    provisos: str = ""

    def covers(self, designator: str) -> bool:
        return any(pattern_matches(p, designator) for p in self.items)


@dataclass(frozen=True, slots=True)
class ExcludedEntry:
    pattern: str
    source: str


@dataclass(frozen=True, slots=True)
class ExcludedList:
    """An excluded technology list as loaded by an officer; relto ships none."""

    regime: Regime
    name: str
    version: str
    source: str
    entries: tuple[ExcludedEntry, ...]

    def match(self, designator: str) -> ExcludedEntry | None:
        return next((e for e in self.entries if pattern_matches(e.pattern, designator)), None)


@dataclass(frozen=True, slots=True)
class DualNationalRule:
    """One §126.18 rule as data: a recipient located in one of ``locations`` who
    also holds one of ``nationalities`` (beyond AUS/GBR/USA) is covered, provided
    they are an authorized user when ``requires_authorized_user``."""

    name: str
    source: str
    locations: frozenset[str]
    nationalities: frozenset[str]
    requires_authorized_user: bool = True


@dataclass(frozen=True, slots=True)
class ExportFacts:
    """Everything the officer loaded. ``value_thresholds`` holds the §123.15
    amounts per regime as data; relto ships none."""

    licences: tuple[Licence, ...] = ()
    excluded_lists: tuple[ExcludedList, ...] = ()
    dual_national_rules: tuple[DualNationalRule, ...] = ()
    value_thresholds: dict[Regime, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer. ``place`` is the country the recipient receives it in."""

    item: ItemClassification | None
    sender: Party
    recipient: Party
    action: Action
    place: str
    at: datetime
    value: Decimal | None = None
