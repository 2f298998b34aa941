"""relto: provably controlled sharing of sensitive technology between allied nations.

Every object carries a standard label, is encrypted on its own with keys held by each
nation's key access service, and is released only after the decision engine says so,
with every decision appended to a transparency log that every partner can verify.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("relto")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
