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

Every condition is a formula in :mod:`relto.export_control.rules`, compiled once
and called here, and proved in ``tests/export_control/test_proofs.py`` with z3;
this module turns the conditions that hold into a decision and its sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relto.export_control import rules
from relto.export_control.model import ExportFacts, Licence, Transfer, pattern_matches
from relto.export_control.rules import COMPILED as R
from relto.export_control.rules import FactsView, TransferView

__all__ = ["Reason", "TransferDecision", "decide_transfer"]

NOT_CONTROLLED = rules.NOT_CONTROLLED
ITAR_126_7 = rules.ITAR_126_7


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


def _fired(conditions: rules.Rules) -> list[str]:
    return [name for name, holds in conditions.items() if holds]


def _shape_reasons(transfer: Transfer, fired: list[str]) -> list[Reason]:
    item, out = transfer.item, []
    for name in fired:
        if name == rules.FACTS_MALFORMED:
            out.append(Reason(name, "The export facts could not be read."))
        elif name == rules.CLASSIFICATION_MISSING:
            out.append(Reason(name, "The item has no export classification."))
        elif name == rules.CLASSIFICATION_MALFORMED:
            out.append(Reason(name, "The item's kind is not known."))
        elif name == rules.REGIME_UNKNOWN:
            regime = None if item is None else item.regime
            out.append(Reason(name, f"The item's regime {regime!r} is not one relto knows."))
        elif name == rules.CLASSIFICATION_INCOMPLETE:
            regime = None if item is None else item.regime
            out.append(
                Reason(
                    name,
                    f"The item is controlled under {regime} but has no "
                    "category, ECCN or DSGL item.",
                )
            )
        else:  # pragma: no cover - every condition of the table has a sentence
            raise AssertionError(name)
    return out


def _itar_126_7(
    transfer: Transfer, t: TransferView, f: FactsView, fired: list[str]
) -> list[Reason]:
    """A sentence for each unmet condition of §126.7(b)(1)-(4), in table order."""
    designator, r, out = t.item.designator, transfer.recipient, []
    for name in fired:
        if name == rules.PLACE_OUTSIDE:
            out.append(
                Reason(
                    name,
                    f"The transfer to {transfer.place} is not to or within "
                    "the territory of Australia, the United Kingdom or the United States "
                    "(§126.7(b)(1)).",
                )
            )
        elif name in (rules.SENDER_NOT_ELIGIBLE, rules.RECIPIENT_NOT_ELIGIBLE):
            role, party = (
                ("Sender", transfer.sender)
                if name == rules.SENDER_NOT_ELIGIBLE
                else ("Recipient", r)
            )
            out.append(
                Reason(
                    name,
                    f"{role} {party.id} is not a registered U.S. person, an AUS/GBR/USA "
                    "government body, or an ITAR Authorized User at that time "
                    "(§126.7(b)(2)).",
                )
            )
        elif name == rules.LIST_NOT_LOADED:
            out.append(
                Reason(
                    name,
                    "No ITAR excluded technology list (Supplement No. 2 to Part 126) is "
                    "loaded, so §126.7(b)(3) cannot be checked.",
                )
            )
        elif name == rules.ON_LIST:
            for lst in f.lists:
                if not R.on_excluded_list(lst, designator):
                    continue
                hit = next(e for e in lst.entries if pattern_matches(e.pattern, designator))
                out.append(
                    Reason(
                        name,
                        f"{designator} is on {lst.name} version {lst.version} ({lst.source}) "
                        f"as {hit.pattern} ({hit.source}) (§126.7(b)(3)).",
                    )
                )
        elif name == rules.NOT_CANONICAL:
            out.append(
                Reason(
                    name,
                    f"{designator} is not written as a USML category (I to XXI) followed by "
                    "paragraphs such as (a)(1), so no excluded list can be checked against "
                    "it (§126.7(b)(3)).",
                )
            )
        elif name == rules.THRESHOLD_NOT_LOADED:
            out.append(
                Reason(
                    name,
                    f"The transfer states a value of {transfer.value} but no §123.15 amount "
                    "is loaded, so §126.7(b)(4) cannot be checked.",
                )
            )
        elif name == rules.OVER_THRESHOLD:
            out.append(
                Reason(
                    name,
                    f"The value {transfer.value} exceeds the loaded §123.15 amount "
                    f"{f.threshold} (§126.7(b)(4)).",
                )
            )
        elif name == rules.SME_MANUFACTURE:
            out.append(
                Reason(
                    name,
                    f"Manufacturing {designator}, significant military equipment, abroad is "
                    "outside §126.7 (§126.7(b)(4), §124.11).",
                )
            )
        elif name == rules.DUAL_NATIONAL:
            for nat in sorted(r.nationalities):
                if R.nationality_uncovered_126_18(nat, t, f):
                    out.append(
                        Reason(
                            name,
                            f"Recipient {r.id} holds {nat} nationality, which no loaded "
                            f"§126.18 rule covers for a recipient in {r.location}.",
                        )
                    )
        elif name == rules.NATIONALITY_UNKNOWN:
            out.append(Reason(name, f"Recipient {r.id} has no recorded nationality."))
        else:  # pragma: no cover - every condition of the table has a sentence
            raise AssertionError(name)
    return out


def _licence_reasons(lic: Licence, transfer: Transfer, t: TransferView) -> list[Reason]:
    """A sentence for each condition ``lic`` fails, in table order."""
    name, r, out = f"Licence {lic.kind} {lic.number}", transfer.recipient, []
    for cond in _fired(R.licence_rules(lic, t)):
        code = rules.CODE_OF.get(cond, cond)
        if cond == rules.LICENCE_EXPIRED:
            out.append(Reason(code, f"{name} expired on {_day(lic.valid_until)}."))
        elif cond == rules.LICENCE_NOT_YET_VALID:
            out.append(Reason(code, f"{name} is not valid before {_day(lic.valid_from)}."))
        elif cond == rules.CEILING_USED:
            out.append(Reason(code, f"{name} has used its value ceiling of {lic.value_ceiling}."))
        elif cond == rules.CEILING_EXCEEDED:
            assert lic.value_ceiling is not None  # the rule tested it
            left = lic.value_ceiling - lic.value_consumed
            out.append(
                Reason(code, f"The value {transfer.value} exceeds the {left} left under {name}.")
            )
        elif cond in (rules.SENDER_ORG, rules.RECIPIENT_ORG):
            role, party = (
                ("sender", transfer.sender) if cond == rules.SENDER_ORG else ("recipient", r)
            )
            out.append(
                Reason(
                    code,
                    f"{name} does not name the {role}'s organisation "
                    f"({party.organisation or 'none'}).",
                )
            )
        elif cond == rules.NATIONALITY_UNKNOWN:
            out.append(Reason(code, f"Recipient {r.id} has no nationality."))
        elif cond == rules.LICENCE_NATIONALITY:
            for nat in sorted(r.nationalities):
                if R.licence_nationality_uncovered(nat, lic):
                    out.append(
                        Reason(code, f"{name} does not cover the recipient's {nat} nationality.")
                    )
        else:  # pragma: no cover - every condition of the table has a sentence
            raise AssertionError(cond)
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
    t, f = rules.transfer_view(transfer), rules.facts_view(facts)
    basis = R.bases(t, f)  # no basis applies when a shape rule fires
    if basis[rules.NOT_CONTROLLED]:
        return TransferDecision(allowed=True, legal_basis=NOT_CONTROLLED)
    if basis[rules.ITAR_126_7]:
        return TransferDecision(allowed=True, legal_basis=ITAR_126_7)
    if basis[rules.LICENCE]:
        lic = next(lic for lic in f.licences if R.licence_allows(lic, t))
        return TransferDecision(
            allowed=True, legal_basis=f"licence {lic.kind} {lic.number}", licence_number=lic.number
        )
    shape = _fired(R.shape_rules(t, f))
    if shape:
        return _deny(_shape_reasons(transfer, shape))
    return _deny(_denial(transfer, t, f))


def _denial(transfer: Transfer, t: TransferView, f: FactsView) -> list[Reason]:
    """Every reason a controlled transfer with a readable classification is denied."""
    item = transfer.item
    assert item is not None and item.regime is not None  # the shape rules held
    debarred = R.debarment_rules(t)
    out = [
        Reason(name, f"{role} {party.id} is debarred.")
        for name, role, party in (
            (rules.SENDER_DEBARRED, "Sender", transfer.sender),
            (rules.RECIPIENT_DEBARRED, "Recipient", transfer.recipient),
        )
        if debarred[name]
    ]
    exemption = _fired(R.exemption_rules(t, f))
    if rules.NO_LICENCE_FREE_BASIS in exemption:
        out.append(
            Reason(
                rules.NO_LICENCE_FREE_BASIS,
                f"relto implements no licence-free basis under {item.regime}; "
                f"{t.item.designator} needs a covering licence.",
            )
        )
    else:
        out += _itar_126_7(transfer, t, f, exemption)
    candidates = [lic for lic in f.licences if R.licence_candidate(lic, t)]
    for lic in candidates:
        out += _licence_reasons(lic, transfer, t)
    if not candidates:
        out.append(
            Reason(
                rules.NO_COVERING_LICENCE,
                f"No loaded {item.regime} licence covers {t.item.designator}.",
            )
        )
    return out
