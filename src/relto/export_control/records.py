"""Transfer records: what a regulator asks of every allowed transfer of a controlled
item (22 CFR §126.7(b)(5) makes keeping them a condition of the exemption).

A :class:`TransferRecord` is plain data; :func:`to_csv` and :func:`to_json` write a
sequence of them in one fixed column order, so two exports of the same records
are byte for byte the same.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from relto.export_control.errors import ExportFactsError

__all__ = ["COLUMNS", "TransferRecord", "to_csv", "to_json"]


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """One allowed transfer of a controlled item.

    ``decision_id`` names the decision that allowed it (the key access request and
    policy it released a key for); ``record_id`` is the row's number once stored
    (0 before). ``recipient_nationalities`` holds every nationality, in order."""

    at: datetime
    decision_id: str
    action: str
    document_id: str
    item_description: str
    regime: str
    designator: str
    item_kind: str
    sme: bool
    sender: str
    sender_organisation: str
    recipient: str
    recipient_organisation: str
    recipient_nationalities: tuple[str, ...]
    recipient_location: str
    legal_basis: str
    licence_number: str | None = None
    value: Decimal | None = None
    record_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601, money as a decimal string."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, datetime):
                v = v.isoformat()
            elif isinstance(v, Decimal):
                v = str(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], record_id: int = 0) -> TransferRecord:
        """Read back what :meth:`as_dict` wrote; anything else raises ExportFactsError."""
        try:
            value = data.get("value")
            return cls(
                at=datetime.fromisoformat(str(data["at"])),
                decision_id=str(data["decision_id"]),
                action=str(data["action"]),
                document_id=str(data["document_id"]),
                item_description=str(data["item_description"]),
                regime=str(data["regime"]),
                designator=str(data["designator"]),
                item_kind=str(data["item_kind"]),
                sme=bool(data["sme"]),
                sender=str(data["sender"]),
                sender_organisation=str(data["sender_organisation"]),
                recipient=str(data["recipient"]),
                recipient_organisation=str(data["recipient_organisation"]),
                recipient_nationalities=tuple(str(n) for n in data["recipient_nationalities"]),
                recipient_location=str(data["recipient_location"]),
                legal_basis=str(data["legal_basis"]),
                licence_number=None
                if data.get("licence_number") is None
                else str(data["licence_number"]),
                value=None if value is None else Decimal(str(value)),
                record_id=record_id,
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ExportFactsError(f"a stored transfer record is malformed ({exc})") from None


#: The column order of every export.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TransferRecord))


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return " ".join(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    text = str(v)
    # a spreadsheet must not run a cell as a formula (CSV injection)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(records: Iterable[TransferRecord]) -> str:
    """RFC 4180 CSV with a header row; nationalities space-separated."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in records:
        d = r.as_dict()
        w.writerow([_cell(d[c]) for c in COLUMNS])
    return out.getvalue()


def to_json(records: Iterable[TransferRecord]) -> str:
    """A JSON document: ``{"records": [...]}`` in the column order."""
    return json.dumps({"records": [r.as_dict() for r in records]}, indent=2) + "\n"
