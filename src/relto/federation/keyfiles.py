"""This node's federation keys on disk: the node key and an attestation key.

Each is a private JWK in a file readable by its owner only (mode 0600, created
complete or not at all by :mod:`relto.fsatomic`; loading refuses a file others can
read, like ssh and ``relto.audit.keys``). Default place: ``<data_dir>/federation/``.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from relto.errors import ConfigError
from relto.federation._keys import KeyKind, SigningKey
from relto.fsatomic import create_new

__all__ = ["load_or_create_key"]


def _load(path: Path) -> SigningKey:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others; chmod 600 it")
    try:
        return SigningKey.from_private_jwk(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise ConfigError(f"key file {path} does not hold a private Ed25519 or P-256 JWK") from None


def load_or_create_key(path: Path, kind: KeyKind = "Ed25519") -> SigningKey:
    """The key in ``path``, generated there first if the file does not exist."""
    path = Path(path)
    if not path.exists():
        key = SigningKey.generate(kind)
        if create_new(path, (json.dumps(key.private_jwk()) + "\n").encode(), 0o600):
            return key
        # created concurrently by another worker: use theirs
    return _load(path)
