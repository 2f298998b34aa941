"""ZTDF containers, OpenTDF-compatible (manifest schema 4.3.0 and the legacy hex format).

Recipes for callers live here; raw primitives are in :mod:`relto.ztdf.hazmat`
(dangerous to use directly) and the manifest codec in :mod:`relto.ztdf.manifest`.
"""

from __future__ import annotations

from relto.ztdf.errors import CryptoError, InvalidContainer, KeyAccessDenied, ZtdfError
from relto.ztdf.manifest import KeyAccess, Manifest, Policy, parse_manifest, parse_policy

__all__ = [
    "CryptoError",
    "InvalidContainer",
    "KeyAccess",
    "KeyAccessDenied",
    "Manifest",
    "Policy",
    "ZtdfError",
    "parse_manifest",
    "parse_policy",
]
