"""Load :class:`ExportFacts` from a YAML/JSON-shaped mapping, strictly.

Unknown keys, wrong types, naive datetimes, floats for money and anything over the
size bounds raise :class:`ExportFactsError`; nothing is silently kept or guessed.
A date (or ``YYYY-MM-DD``) means 00:00 UTC of that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from relto.export_control.errors import ExportFactsError
from relto.export_control.model import (
    DualNationalRule,
    ExcludedEntry,
    ExcludedList,
    ExportFacts,
    Licence,
    Regime,
)
from relto.export_control.rules import canonical_usml_pattern

__all__ = ["MAX_ENTRIES", "MAX_STRING", "load_facts"]

MAX_ENTRIES = 10_000
MAX_STRING = 4_000
MAX_AMOUNT_DIGITS = 30


def _mapping(v: object, where: str, required: set[str], optional: set[str]) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ExportFactsError(f"{where}: expected a mapping")
    keys = set(v)
    if not all(isinstance(k, str) for k in keys):
        raise ExportFactsError(f"{where}: keys must be strings")
    unknown = keys - required - optional
    if unknown:
        raise ExportFactsError(f"{where}: unknown keys {sorted(unknown)[:5]}")
    missing = required - keys
    if missing:
        raise ExportFactsError(f"{where}: missing keys {sorted(missing)}")
    return v


def _list(v: object, where: str) -> list[Any]:
    if not isinstance(v, list | tuple):
        raise ExportFactsError(f"{where}: expected a list")
    if len(v) > MAX_ENTRIES:
        raise ExportFactsError(f"{where}: more than {MAX_ENTRIES} entries")
    return list(v)


def _str(v: object, where: str, *, empty: bool = False) -> str:
    if not isinstance(v, str):
        raise ExportFactsError(f"{where}: expected a string")
    if len(v) > MAX_STRING:
        raise ExportFactsError(f"{where}: longer than {MAX_STRING} characters")
    if not empty and not v.strip():
        raise ExportFactsError(f"{where}: must not be empty")
    return v


def _nation(v: object, where: str) -> str:
    s = _str(v, where)
    if len(s) != 3 or not s.isascii() or not s.isupper() or not s.isalpha():
        raise ExportFactsError(f"{where}: expected an ISO 3166 alpha-3 code")
    return s


def _nations(v: object, where: str) -> frozenset[str]:
    return frozenset(_nation(x, f"{where}[{i}]") for i, x in enumerate(_list(v, where)))


def _strs(v: object, where: str) -> tuple[str, ...]:
    return tuple(_str(x, f"{where}[{i}]") for i, x in enumerate(_list(v, where)))


def _regime(v: object, where: str) -> Regime:
    s = _str(v, where)
    try:
        return Regime(s)
    except ValueError:
        raise ExportFactsError(f"{where}: unknown regime") from None


def _time(v: object, where: str) -> datetime:
    if isinstance(v, str):
        if len(v) > 64:
            raise ExportFactsError(f"{where}: not a date")
        try:
            v = datetime.fromisoformat(v) if "T" in v else date.fromisoformat(v)
        except ValueError:
            raise ExportFactsError(f"{where}: not an ISO date or datetime") from None
    if isinstance(v, datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            raise ExportFactsError(f"{where}: a datetime needs a timezone")
        return v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    raise ExportFactsError(f"{where}: expected a date")


def _amount(v: object, where: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ExportFactsError(f"{where}: expected an integer or a decimal string")
    if isinstance(v, str) and len(v) > MAX_AMOUNT_DIGITS:
        raise ExportFactsError(f"{where}: too long")
    try:
        d = Decimal(v)
    except (InvalidOperation, ValueError):
        raise ExportFactsError(f"{where}: not a decimal amount") from None
    if not d.is_finite() or d < 0 or len(d.as_tuple().digits) > MAX_AMOUNT_DIGITS:
        raise ExportFactsError(f"{where}: not a finite, non-negative amount")
    return d


def _window(m: Mapping[str, Any], where: str) -> tuple[datetime, datetime]:
    start = _time(m["valid_from"], f"{where}.valid_from")
    end = _time(m["valid_until"], f"{where}.valid_until")
    if end <= start:
        raise ExportFactsError(f"{where}: valid_until is not after valid_from")
    return start, end


_LICENCE_REQUIRED = {
    "number",
    "regime",
    "kind",
    "items",
    "organisations",
    "nationalities",
    "end_use",
    "valid_from",
    "valid_until",
}


def _licence(v: object, where: str) -> Licence:
    m = _mapping(v, where, _LICENCE_REQUIRED, {"value_ceiling", "value_consumed", "provisos"})
    start, end = _window(m, where)
    ceiling = m.get("value_ceiling")
    return Licence(
        number=_str(m["number"], f"{where}.number"),
        regime=_regime(m["regime"], f"{where}.regime"),
        kind=_str(m["kind"], f"{where}.kind"),
        items=_strs(m["items"], f"{where}.items"),
        organisations=frozenset(_strs(m["organisations"], f"{where}.organisations")),
        nationalities=_nations(m["nationalities"], f"{where}.nationalities"),
        end_use=_str(m["end_use"], f"{where}.end_use"),
        valid_from=start,
        valid_until=end,
        value_ceiling=None if ceiling is None else _amount(ceiling, f"{where}.value_ceiling"),
        value_consumed=_amount(m.get("value_consumed", 0), f"{where}.value_consumed"),
        provisos=_str(m.get("provisos", ""), f"{where}.provisos", empty=True),
    )


def _excluded_list(v: object, where: str) -> ExcludedList:
    m = _mapping(v, where, {"regime", "name", "version", "source", "entries"}, set())
    entries = []
    for i, e in enumerate(_list(m["entries"], f"{where}.entries")):
        em = _mapping(e, f"{where}.entries[{i}]", {"pattern", "source"}, set())
        entries.append(
            ExcludedEntry(
                pattern=_str(em["pattern"], f"{where}.entries[{i}].pattern"),
                source=_str(em["source"], f"{where}.entries[{i}].source"),
            )
        )
    regime = _regime(m["regime"], f"{where}.regime")
    if regime is Regime.ITAR:
        for i, e in enumerate(entries):
            if not canonical_usml_pattern(e.pattern):
                raise ExportFactsError(
                    f"{where}.entries[{i}].pattern: an ITAR entry is written like 'USML IV' "
                    "or 'USML XI(a)(1)' (category I to XXI, lower-case paragraphs), "
                    "else it matches no item"
                )
    return ExcludedList(
        regime=regime,
        name=_str(m["name"], f"{where}.name"),
        version=_str(m["version"], f"{where}.version"),
        source=_str(m["source"], f"{where}.source"),
        entries=tuple(entries),
    )


def _dual_rule(v: object, where: str) -> DualNationalRule:
    m = _mapping(
        v, where, {"name", "source", "locations", "nationalities"}, {"requires_authorized_user"}
    )
    req = m.get("requires_authorized_user", True)
    if not isinstance(req, bool):
        raise ExportFactsError(f"{where}.requires_authorized_user: expected true or false")
    return DualNationalRule(
        name=_str(m["name"], f"{where}.name"),
        source=_str(m["source"], f"{where}.source"),
        locations=_nations(m["locations"], f"{where}.locations"),
        nationalities=_nations(m["nationalities"], f"{where}.nationalities"),
        requires_authorized_user=req,
    )


def load_facts(data: object) -> ExportFacts:
    """Build :class:`ExportFacts` from ``data`` or raise :class:`ExportFactsError`."""
    m = _mapping(
        data,
        "facts",
        set(),
        {"licences", "excluded_lists", "dual_national_rules", "value_thresholds"},
    )
    thresholds_raw = m.get("value_thresholds", {})
    if not isinstance(thresholds_raw, Mapping) or len(thresholds_raw) > len(Regime):
        raise ExportFactsError("facts.value_thresholds: expected a mapping of regime to amount")
    thresholds = {
        _regime(k, "facts.value_thresholds"): _amount(v, f"facts.value_thresholds.{k}")
        for k, v in thresholds_raw.items()
    }
    licences = tuple(
        _licence(x, f"licences[{i}]")
        for i, x in enumerate(_list(m.get("licences", []), "licences"))
    )
    numbers = [lic.number for lic in licences]
    if len(set(numbers)) != len(numbers):
        raise ExportFactsError("licences: a licence number appears twice")
    return ExportFacts(
        licences=licences,
        excluded_lists=tuple(
            _excluded_list(x, f"excluded_lists[{i}]")
            for i, x in enumerate(_list(m.get("excluded_lists", []), "excluded_lists"))
        ),
        dual_national_rules=tuple(
            _dual_rule(x, f"dual_national_rules[{i}]")
            for i, x in enumerate(_list(m.get("dual_national_rules", []), "dual_national_rules"))
        ),
        value_thresholds=thresholds,
    )
