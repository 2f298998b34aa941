"""Errors raised by :mod:`relto.export_control`.

The only external data this package reads is the export facts an officer loads
(licences, excluded lists, §126.18 rules, value thresholds), so there is one
error, and it is bad external data::

    ReltoError
    └── InvalidInput
        └── ExportFactsError     export facts that cannot be read: unknown key,
                                 wrong type, bad date or amount, over a size bound

A transfer that was allowed but cannot be recorded (a licence whose ceiling a
concurrent transfer used up) raises :class:`TransferRefused`: it must not happen.

A refused transfer is not an error: :func:`decide_transfer` returns a denied
:class:`TransferDecision`. A caller's misuse (a wrong Python type handed to the
model) raises ``ValueError``/``TypeError`` as usual.
"""

from __future__ import annotations

from relto.errors import InvalidInput

__all__ = ["ExportFactsError", "TransferRefused"]


class ExportFactsError(InvalidInput):
    """Export facts that cannot be read; the message says which field and why."""


class TransferRefused(Exception):
    """An allowed transfer could not be recorded, so it must not happen; the
    message is safe to show."""
