"""The export-control office of a node: officers' facts, checks and transfer
records (issue 16). The rules themselves are the pure core,
:mod:`relto.export_control`; this package stores, authorises, audits and records."""

from __future__ import annotations

from relto.export_office.service import (
    REGIME_NATION,
    ExportOffice,
    FactsSummary,
    TransferRefused,
    proposed_classification,
)

__all__ = [
    "REGIME_NATION",
    "ExportOffice",
    "FactsSummary",
    "TransferRefused",
    "proposed_classification",
]
