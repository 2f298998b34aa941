"""Export control, the pure core: may this transfer happen, and on what legal basis.

No I/O. :func:`decide_transfer` takes a :class:`Transfer` and the loaded
:class:`ExportFacts` and returns a :class:`TransferDecision` (data). Regulatory
content (excluded lists, §123.15 amounts, §126.18 rules) is data an officer loads
with :func:`load_facts`; relto ships none. See ``docs/export_control.md``.
"""

from __future__ import annotations

from relto.export_control._loader import load_facts
from relto.export_control.decide import Reason, TransferDecision, decide_transfer
from relto.export_control.errors import ExportFactsError
from relto.export_control.model import (
    AUKUS_MEMBERS,
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

__all__ = [
    "AUKUS_MEMBERS",
    "Action",
    "AuthorizedUserStatus",
    "DualNationalRule",
    "ExcludedEntry",
    "ExcludedList",
    "ExportFacts",
    "ExportFactsError",
    "ItemClassification",
    "ItemKind",
    "Licence",
    "Party",
    "PartyKind",
    "Reason",
    "Regime",
    "Transfer",
    "TransferDecision",
    "decide_transfer",
    "load_facts",
]
