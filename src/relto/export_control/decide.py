"""Decide one transfer: allowed with its legal basis, or denied with every reason.

Legal bases this slice can give, and why only these:

- ``not controlled``: the item's classification says so (a positive finding).
- ``ITAR 126.7``: every condition of 22 CFR §126.7(b)(1)-(4) holds, as quoted in
  ``docs/export_control.md`` from https://www.law.cornell.edu/cfr/text/22/126.7.
  Partners (JPN, KOR, NZL, CAN) fail (b)(1) and (b)(2) by construction.
- ``licence <kind> <number>``: a loaded licence of the item's regime covers the
  item, is valid at the time, has value left, and names the sender's and the
  recipient's organisations and every nationality of a recipient person.

``EAR NLR`` is never given: the verified text of the April 2024 EAR rule (FR Doc
2024-08446) says it removes licence requirements "to or within Australia and the
United Kingdom" without the per-ECCN detail that grounding NLR would need, so an
EAR-controlled item needs a covering licence here. The same holds for AUS_DSGL
(the licence-free environment and its excluded list) and UK_STRATEGIC (the AUKUS
OGL): no licence-free basis is implemented yet, so each needs a licence.

Fail closed: a missing or incomplete classification of a controlled item, an
unknown regime or malformed facts deny with a sentence. Debarment of either party
denies whatever else holds. Recordkeeping (§126.7(b)(5)) is the caller's duty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relto.export_control.model import (
    AUKUS_MEMBERS,
    Action,
    ExportFacts,
    ItemKind,
    Licence,
    Party,
    PartyKind,
    Regime,
    Transfer,
)

__all__ = ["Reason", "TransferDecision", "decide_transfer"]

NOT_CONTROLLED = "not controlled"
ITAR_126_7 = "ITAR 126.7"


@dataclass(frozen=True, slots=True)
class Reason:
    """One missing condition: a stable code and a sentence for a person."""

    code: str
    sentence: str


@dataclass(frozen=True, slots=True)
class TransferDecision:
    """``allowed`` is True only with a non-empty ``legal_basis``."""

    allowed: bool
    legal_basis: str | None
    reasons: tuple[Reason, ...] = ()
    licence_number: str | None = None

    def __post_init__(self) -> None:
        if self.allowed and not self.legal_basis:
            raise ValueError("an allowed transfer needs a legal basis")
        if not self.allowed and not self.reasons:
            raise ValueError("a denied transfer needs at least one reason")


def _deny(reasons: list[Reason]) -> TransferDecision:
    return TransferDecision(allowed=False, legal_basis=None, reasons=tuple(reasons))


def _day(at: datetime) -> str:
    return at.date().isoformat()


def _eligible_126_7(party: Party, at: datetime) -> bool:
    """§126.7(b)(2)(i)-(iii)."""
    return (
        party.ddtc_registered
        or party.government_body_of in AUKUS_MEMBERS
        or party.authorized_user(Regime.ITAR, at)
    )


def _nationality_reasons(transfer: Transfer, facts: ExportFacts) -> list[Reason]:
    """A recipient person's every nationality beyond AUS/GBR/USA must be covered by
    a loaded §126.18 rule for where they are."""
    r = transfer.recipient
    if r.kind is not PartyKind.PERSON:
        return []
    out = []
    for nat in sorted(r.nationalities - AUKUS_MEMBERS):
        covered = any(
            nat in rule.nationalities
            and r.location in rule.locations
            and (not rule.requires_authorized_user or r.authorized_user(Regime.ITAR, transfer.at))
            for rule in facts.dual_national_rules
        )
        if not covered:
            out.append(
                Reason(
                    "dual_national_not_covered",
                    f"Recipient {r.id} holds {nat} nationality, which no loaded §126.18 "
                    f"rule covers for a recipient in {r.location}.",
                )
            )
    if not r.nationalities:
        out.append(Reason("nationality_unknown", f"Recipient {r.id} has no recorded nationality."))
    return out


def _itar_126_7(transfer: Transfer, designator: str, facts: ExportFacts) -> list[Reason]:
    """Every unmet condition of §126.7(b)(1)-(4); empty means the exemption applies."""
    t, out = transfer, []
    if t.place not in AUKUS_MEMBERS:
        out.append(
            Reason(
                "place_outside_aukus_territory",
                f"The transfer to {t.place} is not to or within "
                "the territory of Australia, the United Kingdom or the United States "
                "(§126.7(b)(1)).",
            )
        )
    for role, party in (("Sender", t.sender), ("Recipient", t.recipient)):
        if not _eligible_126_7(party, t.at):
            code = "sender_not_eligible" if role == "Sender" else "recipient_not_authorized_user"
            out.append(
                Reason(
                    code,
                    f"{role} {party.id} is not a registered U.S. person, an AUS/GBR/USA "
                    "government body, or an ITAR Authorized User at that time "
                    "(§126.7(b)(2)).",
                )
            )
    lists = [x for x in facts.excluded_lists if x.regime is Regime.ITAR]
    if not lists:
        out.append(
            Reason(
                "excluded_list_not_loaded",
                "No ITAR excluded technology list (Supplement No. 2 to Part 126) is "
                "loaded, so §126.7(b)(3) cannot be checked.",
            )
        )
    for lst in lists:
        hit = lst.match(designator)
        if hit is not None:
            out.append(
                Reason(
                    "item_on_excluded_list",
                    f"{designator} is on {lst.name} version {lst.version} ({lst.source}) "
                    f"as {hit.pattern} ({hit.source}) (§126.7(b)(3)).",
                )
            )
    if t.value is not None:
        threshold = facts.value_thresholds.get(Regime.ITAR)
        if threshold is None:
            out.append(
                Reason(
                    "value_threshold_not_loaded",
                    f"The transfer states a value of {t.value} but no §123.15 amount is "
                    "loaded, so §126.7(b)(4) cannot be checked.",
                )
            )
        elif t.value > threshold:
            out.append(
                Reason(
                    "value_over_123_15",
                    f"The value {t.value} exceeds the loaded §123.15 amount {threshold} "
                    "(§126.7(b)(4)).",
                )
            )
    if t.item is not None and t.item.sme and t.action is Action.MANUFACTURE:
        out.append(
            Reason(
                "sme_manufacture_abroad",
                f"Manufacturing {designator}, significant military equipment, abroad is "
                "outside §126.7 (§126.7(b)(4), §124.11).",
            )
        )
    return out + _nationality_reasons(t, facts)


def _licence_reasons(lic: Licence, transfer: Transfer) -> list[Reason]:
    t, out = transfer, []
    name = f"Licence {lic.kind} {lic.number}"
    if t.at >= lic.valid_until:
        out.append(Reason("licence_expired", f"{name} expired on {_day(lic.valid_until)}."))
    elif t.at < lic.valid_from:
        out.append(
            Reason("licence_not_yet_valid", f"{name} is not valid before {_day(lic.valid_from)}.")
        )
    if lic.value_ceiling is not None:
        if lic.value_consumed >= lic.value_ceiling:
            out.append(
                Reason(
                    "licence_value_ceiling_reached",
                    f"{name} has used its value ceiling of {lic.value_ceiling}.",
                )
            )
        elif t.value is not None and lic.value_consumed + t.value > lic.value_ceiling:
            left = lic.value_ceiling - lic.value_consumed
            out.append(
                Reason(
                    "licence_value_ceiling_reached",
                    f"The value {t.value} exceeds the {left} left under {name}.",
                )
            )
    for role, party in (("sender", t.sender), ("recipient", t.recipient)):
        org = party.organisation
        if org is None or org not in lic.organisations:
            out.append(
                Reason(
                    f"{role}_organisation_not_covered",
                    f"{name} does not name the {role}'s organisation ({org or 'none'}).",
                )
            )
    if t.recipient.kind is PartyKind.PERSON:
        if not t.recipient.nationalities:
            out.append(
                Reason("nationality_unknown", f"Recipient {t.recipient.id} has no nationality.")
            )
        for nat in sorted(t.recipient.nationalities - lic.nationalities):
            out.append(
                Reason(
                    "recipient_nationality_not_covered",
                    f"{name} does not cover the recipient's {nat} nationality.",
                )
            )
    return out


def _shape_reasons(transfer: Transfer, facts: object) -> list[Reason]:
    out = []
    if not isinstance(facts, ExportFacts):
        out.append(Reason("facts_malformed", "The export facts could not be read."))
    item = transfer.item
    if item is None:
        out.append(Reason("classification_missing", "The item has no export classification."))
    elif not isinstance(item.kind, ItemKind):
        out.append(Reason("classification_malformed", "The item's kind is not known."))
    elif item.controlled and not isinstance(item.regime, Regime):
        out.append(
            Reason("regime_unknown", f"The item's regime {item.regime!r} is not one relto knows.")
        )
    elif item.controlled and item.designator is None:
        out.append(
            Reason(
                "classification_incomplete",
                f"The item is controlled under {item.regime} but has no "
                "category, ECCN or DSGL item.",
            )
        )
    return out


def decide_transfer(transfer: Transfer, facts: ExportFacts) -> TransferDecision:
    """Decide ``transfer`` against ``facts``; never raises for bad data, denies.

    A re-transfer (``share``) is decided the same way: the caller builds a new
    Transfer whose sender is the earlier recipient.
    """
    try:
        return _decide(transfer, facts)
    except Exception:  # fail closed: an engine error denies
        return _deny([Reason("engine_error", "The export check failed; the transfer is denied.")])


def _decide(transfer: Transfer, facts: ExportFacts) -> TransferDecision:
    shape = _shape_reasons(transfer, facts)
    if shape:
        return _deny(shape)
    item = transfer.item
    assert item is not None  # checked by _shape_reasons
    if not item.controlled:
        return TransferDecision(allowed=True, legal_basis=NOT_CONTROLLED)
    designator = item.designator
    assert designator is not None and item.regime is not None
    regime = item.regime

    debarred = [
        Reason(f"{role}_debarred", f"{role.capitalize()} {p.id} is debarred.")
        for role, p in (("sender", transfer.sender), ("recipient", transfer.recipient))
        if p.debarred
    ]
    exemption: list[Reason] = []
    if regime is Regime.ITAR:
        exemption = _itar_126_7(transfer, designator, facts)
        if not exemption and not debarred:
            return TransferDecision(allowed=True, legal_basis=ITAR_126_7)
    else:
        exemption = [
            Reason(
                "no_licence_free_basis",
                f"relto implements no licence-free basis under {regime}; "
                f"{designator} needs a covering licence.",
            )
        ]

    candidates = [lic for lic in facts.licences if lic.regime is regime and lic.covers(designator)]
    licence_reasons: list[Reason] = []
    for lic in candidates:
        missing = _licence_reasons(lic, transfer)
        if not missing and not debarred:
            return TransferDecision(
                allowed=True,
                legal_basis=f"licence {lic.kind} {lic.number}",
                licence_number=lic.number,
            )
        licence_reasons.extend(missing)
    if not candidates:
        licence_reasons.append(
            Reason("no_covering_licence", f"No loaded {regime} licence covers {designator}.")
        )
    return _deny(debarred + exemption + licence_reasons)
