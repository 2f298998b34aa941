"""Cedar entities and requests for export transfers (the PIP of the Cedar oracle).

Written from docs/export_control.md, not from relto.export_control.rules. It only
carries data across and does what Cedar cannot: build designators, match
patterns against them (``excludedBy``, ``coveredBy``) and read the spelling of a
USML paragraph (``usmlParagraphsWellFormed``). Every decision is made by the
policies in export_basis.cedar and export_reasons.cedar.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from relto.export_control import ExportFacts, ItemClassification, Party, Transfer

from .export_testing import (
    MAX_LICENCES,
    MAX_LISTS,
    MAX_NATIONALITIES,
    MAX_RULES,
    MAX_STATUSES,
    World,
)

HERE = Path(__file__).resolve().parent
SCHEMA_TEXT = (HERE / "export.cedarschema").read_text()
BASIS_TEXT = (HERE / "export_basis.cedar").read_text()
REASONS_TEXT = (HERE / "export_reasons.cedar").read_text()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FACTS_UID = {"type": "Facts", "id": "facts"}
PARAGRAPH_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")


def designator(item: ItemClassification) -> str | None:
    """``USML XI(a)(1)``, ``ECCN 3A001.a``, ``DSGL ML11``, as the docs write them."""
    regime = str(item.regime) if item.regime is not None else None
    if regime == "ITAR" and item.usml_category:
        return "USML " + item.usml_category + (item.usml_paragraph or "")
    if regime == "EAR" and item.eccn:
        return "ECCN " + item.eccn
    if regime in ("AUS_DSGL", "UK_STRATEGIC") and item.dsgl_item:
        return "DSGL " + item.dsgl_item
    return None


def covers(pattern: str, des: str) -> bool:
    """The docs: a pattern covers a designator when it equals it, or is a prefix of
    it that ends at a paragraph boundary. Written as: the designator's prefixes
    that end just before or just after a '(' or '.', and the designator itself."""
    boundaries = {des}
    for i, ch in enumerate(des):
        if ch in "(.":
            boundaries.update((des[:i], des[: i + 1]))
    return pattern != "" and pattern in boundaries


def paragraphs_well_formed(paragraph: str | None) -> bool:
    """Empty, or one or more groups of lower-case letters and digits in
    parentheses: ``(a)``, ``(a)(1)(i)``."""
    rest = paragraph or ""
    while rest:
        close = rest.find(")")
        inner = rest[1:close]
        if not rest.startswith("(") or close < 2 or not set(inner) <= PARAGRAPH_CHARS:
            return False
        rest = rest[close + 1 :]
    return True


def micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def whole(x: Decimal) -> int:
    assert x == x.to_integral_value(), x
    return int(x)


def party_entity(p: Party) -> dict[str, Any]:
    nats = sorted(p.nationalities)
    assert len(nats) <= MAX_NATIONALITIES and len(p.authorized) <= MAX_STATUSES
    attrs: dict[str, Any] = {
        "id": p.id,
        "kind": str(p.kind),
        "location": p.location,
        "nationalities": nats,
        "ddtcRegistered": p.ddtc_registered,
        "debarred": p.debarred,
    }
    for i, n in enumerate(nats):
        attrs[f"n{i}"] = n
    if p.organisation_id is not None:
        attrs["organisationId"] = p.organisation_id
    if p.government_body_of is not None:
        attrs["governmentBodyOf"] = p.government_body_of
    for i, s in enumerate(p.authorized):
        attrs[f"au{i}"] = {
            "regime": str(s.regime),
            "validFrom": micros(s.valid_from),
            "validUntil": micros(s.valid_until),
        }
    return {"uid": {"type": "Party", "id": p.id}, "attrs": attrs, "parents": []}


def item_entity(uid: str, item: ItemClassification | None, facts: ExportFacts) -> dict[str, Any]:
    attrs: dict[str, Any]
    if item is None:
        attrs = {"classified": False, "kind": "", "controlled": False, "sme": False}
        attrs["usmlParagraphsWellFormed"] = False
        attrs |= {"excludedBy": [], "coveredBy": []}
        return {"uid": {"type": "Item", "id": uid}, "attrs": attrs, "parents": []}
    des = designator(item)
    attrs = {
        "classified": True,
        "kind": str(item.kind),
        "controlled": item.controlled,
        "sme": item.sme,
        "usmlParagraphsWellFormed": paragraphs_well_formed(item.usml_paragraph),
        "excludedBy": sorted(
            f"l{i}"
            for i, lst in enumerate(facts.excluded_lists)
            if des is not None and any(covers(e.pattern, des) for e in lst.entries)
        ),
        "coveredBy": sorted(
            f"lic{i}"
            for i, lic in enumerate(facts.licences)
            if des is not None and any(covers(p, des) for p in lic.items)
        ),
    }
    for key, value in (
        ("regime", item.regime),
        ("usmlCategory", item.usml_category),
        ("usmlParagraph", item.usml_paragraph),
        ("eccn", item.eccn),
        ("dsglItem", item.dsgl_item),
    ):
        if value is not None:
            attrs[key] = str(value)
    return {"uid": {"type": "Item", "id": uid}, "attrs": attrs, "parents": []}


def facts_entity(facts: ExportFacts) -> dict[str, Any]:
    assert len(facts.excluded_lists) <= MAX_LISTS
    assert len(facts.licences) <= MAX_LICENCES and len(facts.dual_national_rules) <= MAX_RULES
    attrs: dict[str, Any] = {}
    for i, lst in enumerate(facts.excluded_lists):
        attrs[f"l{i}"] = {"id": f"l{i}", "regime": str(lst.regime)}
    for i, lic in enumerate(facts.licences):
        slot: dict[str, Any] = {
            "id": f"lic{i}",
            "regime": str(lic.regime),
            "validFrom": micros(lic.valid_from),
            "validUntil": micros(lic.valid_until),
            "consumed": whole(lic.value_consumed),
            "organisations": sorted(lic.organisations),
            "nationalities": sorted(lic.nationalities),
        }
        if lic.value_ceiling is not None:
            slot["ceiling"] = whole(lic.value_ceiling)
        attrs[f"lic{i}"] = slot
    for i, rule in enumerate(facts.dual_national_rules):
        attrs[f"r{i}"] = {
            "locations": sorted(rule.locations),
            "nationalities": sorted(rule.nationalities),
            "requiresAuthorizedUser": rule.requires_authorized_user,
        }
    threshold = {str(k): v for k, v in facts.value_thresholds.items()}.get("ITAR")
    if threshold is not None:
        attrs["itarThreshold"] = whole(threshold)
    return {"uid": FACTS_UID, "attrs": attrs, "parents": []}


def item_ids(w: World) -> dict[int, str]:
    """Each item object's entity id (items are told apart by identity)."""
    return {id(item): f"i{k}" for k, item in enumerate(w.items)}


def entities(w: World) -> list[dict[str, Any]]:
    ids = item_ids(w)
    out = [party_entity(p) for p in w.parties]
    out += [item_entity(ids[id(item)], item, w.facts) for item in w.items]
    out.append(facts_entity(w.facts))
    return out


def request(t: Transfer, item_id: str, facts_ok: bool) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "sender": {"__entity": {"type": "Party", "id": t.sender.id}},
        "place": t.place,
        "now": micros(t.at),
        "facts": {"__entity": FACTS_UID},
        "factsOk": facts_ok,
    }
    if t.value is not None:
        ctx["value"] = whole(t.value)
    return {
        "principal": {"type": "Party", "id": t.recipient.id},
        "action": {"type": "Action", "id": str(t.action)},
        "resource": {"type": "Item", "id": item_id},
        "context": ctx,
    }
