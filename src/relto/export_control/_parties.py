"""Load export parties and per-object item classifications, strictly.

The same rules as :func:`load_facts`: unknown keys, wrong types and naive
datetimes raise :class:`ExportFactsError` naming the path (``where``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from relto.export_control._loader import (
    _amount,
    _list,
    _mapping,
    _nation,
    _nations,
    _regime,
    _str,
    _time,
)
from relto.export_control.errors import ExportFactsError
from relto.export_control.model import (
    AuthorizedUserStatus,
    ItemClassification,
    ItemKind,
    Party,
    PartyKind,
)

__all__ = ["ITEM_KEYS", "ObjectExport", "load_item", "load_parties"]

_PARTY_OPTIONAL = {
    "kind",
    "nationalities",
    "organisation",
    "ddtc_registered",
    "debarred",
    "government_body_of",
    "authorized",
    "name",
}

#: Keys of an object's ``export`` block that carry the full classification.
ITEM_KEYS = frozenset(
    {
        "controlled",
        "kind",
        "usml_category",
        "usml_paragraph",
        "sme",
        "eccn",
        "dsgl_item",
        "sender",
        "value",
    }
)


@dataclass(frozen=True, slots=True)
class ObjectExport:
    """One object's export data: its item classification, the party that sends it
    (``None``: not recorded, which fails closed) and the stated value, if any."""

    item: ItemClassification | None
    sender: str | None = None
    value: Decimal | None = None


def _bool(m: Mapping[str, object], key: str, where: str, default: bool = False) -> bool:
    v = m.get(key, default)
    if not isinstance(v, bool):
        raise ExportFactsError(f"{where}.{key}: expected true or false")
    return v


def _opt_str(m: Mapping[str, object], key: str, where: str) -> str | None:
    v = m.get(key)
    return None if v is None else _str(v, f"{where}.{key}")


def _party(v: object, where: str) -> Party:
    m = _mapping(v, where, {"id", "location"}, _PARTY_OPTIONAL)
    kind_raw = _str(m.get("kind", "person"), f"{where}.kind")
    try:
        kind = PartyKind(kind_raw)
    except ValueError:
        raise ExportFactsError(f"{where}.kind: expected person or organisation") from None
    statuses = []
    for i, s in enumerate(_list(m.get("authorized", []), f"{where}.authorized")):
        sw = f"{where}.authorized[{i}]"
        sm = _mapping(s, sw, {"regime", "identifier", "valid_from", "valid_until"}, set())
        start = _time(sm["valid_from"], f"{sw}.valid_from")
        end = _time(sm["valid_until"], f"{sw}.valid_until")
        if end <= start:
            raise ExportFactsError(f"{sw}: valid_until is not after valid_from")
        statuses.append(
            AuthorizedUserStatus(
                _regime(sm["regime"], f"{sw}.regime"),
                _str(sm["identifier"], f"{sw}.identifier"),
                start,
                end,
            )
        )
    gov = m.get("government_body_of")
    return Party(
        id=_str(m["id"], f"{where}.id"),
        kind=kind,
        location=_nation(m["location"], f"{where}.location"),
        nationalities=_nations(m.get("nationalities", []), f"{where}.nationalities"),
        organisation_id=_opt_str(m, "organisation", where),
        ddtc_registered=_bool(m, "ddtc_registered", where),
        debarred=_bool(m, "debarred", where),
        government_body_of=None if gov is None else _nation(gov, f"{where}.government_body_of"),
        authorized=tuple(statuses),
    )


def load_parties(data: object, where: str = "export_parties") -> dict[str, Party]:
    """Parties by id from a list of mappings, or raise :class:`ExportFactsError`."""
    out: dict[str, Party] = {}
    for i, v in enumerate(_list(data, where)):
        p = _party(v, f"{where}[{i}]")
        if p.id in out:
            raise ExportFactsError(f"{where}[{i}]: party {p.id!r} is listed twice")
        out[p.id] = p
    return out


def load_item(data: object, where: str) -> ObjectExport:
    """An object's ``export`` block with the full classification (``regime`` and the
    free-text ``classification`` of the older form are accepted and not used here)."""
    m = _mapping(data, where, {"controlled", "kind"}, set(ITEM_KEYS) | {"regime", "classification"})
    controlled = _bool(m, "controlled", where)
    kind_raw = _str(m["kind"], f"{where}.kind")
    try:
        kind = ItemKind(kind_raw)
    except ValueError:
        raise ExportFactsError(
            f"{where}.kind: expected technical_data, hardware or service"
        ) from None
    regime = m.get("regime")
    if controlled and regime is None:
        raise ExportFactsError(f"{where}.regime: a controlled item needs its regime")
    value = m.get("value")
    item = ItemClassification(
        controlled=controlled,
        kind=kind,
        regime=None if regime is None else _regime(regime, f"{where}.regime"),
        usml_category=_opt_str(m, "usml_category", where),
        usml_paragraph=_opt_str(m, "usml_paragraph", where),
        sme=_bool(m, "sme", where),
        eccn=_opt_str(m, "eccn", where),
        dsgl_item=_opt_str(m, "dsgl_item", where),
    )
    return ObjectExport(
        item=item,
        sender=_opt_str(m, "sender", where),
        value=None if value is None else _amount(value, f"{where}.value"),
    )
