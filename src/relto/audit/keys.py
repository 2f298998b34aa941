"""Key files for the log node and witnesses: a signer key (C2SP note format) in a
file readable by its owner only.

:func:`load_or_create_signer` creates the key on first use (complete or not at all,
mode 0600, see :mod:`relto.fsatomic`)
and writes the public verifier key next to it (``<file>.pub``). Loading refuses a
key file that group or others can read, like ssh does.
"""

from __future__ import annotations

import stat
from pathlib import Path

from relto.audit.errors import InvalidNote, KeyFileError
from relto.audit.note import NoteSigner
from relto.fsatomic import create_new, replace_file

__all__ = ["load_or_create_signer", "load_signer", "write_new_signer"]


def write_new_signer(path: Path, name: str) -> NoteSigner:
    """Generate a key named ``name`` into ``path`` (which must not exist)."""
    signer = NoteSigner.generate(name)
    path = Path(path)
    if not create_new(path, (signer.skey + "\n").encode("ascii"), 0o600):
        raise KeyFileError(f"key file {path} already exists")
    replace_file(path.with_name(path.name + ".pub"), (signer.verifier().vkey + "\n").encode())
    return signer


def load_signer(path: Path) -> NoteSigner:
    """Load a signer key; refuses files that others may read or that are malformed."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(f"key file {path} is readable by others; chmod 600 it")
    try:
        return NoteSigner.from_skey(path.read_text(encoding="ascii").strip())
    except (InvalidNote, UnicodeDecodeError):
        raise KeyFileError(f"key file {path} does not hold a valid signer key") from None


def load_or_create_signer(path: Path, name: str) -> NoteSigner:
    """Load the key at ``path``, creating it (named ``name``) if it does not exist."""
    path = Path(path)
    if not path.exists():
        try:
            return write_new_signer(path, name)
        except KeyFileError:
            pass  # created concurrently: load it
    signer = load_signer(path)
    if signer.name != name:
        raise KeyFileError(f"key file {path} holds a key for {signer.name!r}, not {name!r}")
    return signer
