"""ZTDF containers, OpenTDF-compatible (manifest schema 4.3.0 and the legacy hex format).

Recipes: :func:`protect` encrypts a file into a container, :class:`ContainerWriter`
encrypts chunks as they arrive (uploads: no plaintext file at any moment),
:func:`open_container` verifies and decrypts one (the ``unwrap`` callback is where an
online KAS or an offline private key, :func:`private_key_unwrapper`, plugs in),
:func:`inspect` summarises one without decrypting (everything it returns is unverified).

Raw primitives are in :mod:`relto.ztdf.hazmat` (dangerous to use directly); the
manifest codec is :mod:`relto.ztdf.manifest`.
"""

from __future__ import annotations

from relto.ztdf.container import (
    DEFAULT_SEGMENT_SIZE,
    LABEL_ASSERTION_ID,
    LABEL_SCHEMA,
    KasTarget,
    OpenResult,
    ProtectResult,
    Unwrap,
    inspect,
    open_container,
    private_key_unwrapper,
    protect,
)
from relto.ztdf.errors import CryptoError, InvalidContainer, KeyAccessDenied, ZtdfError
from relto.ztdf.manifest import KeyAccess, Manifest, Policy, parse_manifest, parse_policy
from relto.ztdf.stream import ContainerWriter

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "LABEL_ASSERTION_ID",
    "LABEL_SCHEMA",
    "ContainerWriter",
    "CryptoError",
    "InvalidContainer",
    "KasTarget",
    "KeyAccess",
    "KeyAccessDenied",
    "Manifest",
    "OpenResult",
    "Policy",
    "ProtectResult",
    "Unwrap",
    "ZtdfError",
    "inspect",
    "open_container",
    "parse_manifest",
    "parse_policy",
    "private_key_unwrapper",
    "protect",
]
