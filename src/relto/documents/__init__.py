"""Sharing: protect on upload, open through the KAS, relabel, list and explain
protected documents, decided on this node's facts (see ``docs/console.md`` and
``docs/authz.md``).

:class:`DocumentService` is the capability; :class:`DecisionFacts` holds the
per-process decision caches (ADR 0078) and :class:`ProductDecider` lets this
node's key access service decide with them. Keys come only through a
:class:`KeyAccessPort` (this node's KAS, in-process: :class:`InProcessKas`).
"""

from relto.documents._copies import CopyMaker, Release, ReleasedCopy
from relto.documents._custody import (
    CUSTODY_REASONS,
    CustodianKas,
    CustodyDecider,
    CustodyUnavailable,
    PinnedCustodians,
)
from relto.documents._decider import ProductDecider
from relto.documents._facts import ENGINE_MAX_USES, DecisionFacts, SharedEngine, document_view
from relto.documents._keys import InProcessKas, KeyAccessPort
from relto.documents._labels import ProductLevelMapper, common_level, compose_banner
from relto.documents._model import MAX_DOCUMENT_BYTES, DocumentView, LabelChoice
from relto.documents.errors import ActionDenied
from relto.documents.service import DocumentService, Incoming, WhatIfView

__all__ = [
    "CUSTODY_REASONS",
    "ENGINE_MAX_USES",
    "MAX_DOCUMENT_BYTES",
    "ActionDenied",
    "CopyMaker",
    "CustodianKas",
    "CustodyDecider",
    "CustodyUnavailable",
    "DecisionFacts",
    "DocumentService",
    "DocumentView",
    "InProcessKas",
    "Incoming",
    "KeyAccessPort",
    "LabelChoice",
    "PinnedCustodians",
    "ProductDecider",
    "ProductLevelMapper",
    "Release",
    "ReleasedCopy",
    "SharedEngine",
    "WhatIfView",
    "common_level",
    "compose_banner",
    "document_view",
]
