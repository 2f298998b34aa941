"""Errors raised by :mod:`relto.labels`.

Every error here is bad external data (a SPIF, a label, a clearance or a marking),
so all of them derive from :class:`relto.errors.InvalidInput`::

    ReltoError
    └── InvalidInput
        └── LabelsError              anything relto.labels refuses
            ├── XmlRefused           not well-formed, too big, too deep, DTD/entities
            ├── SpifError            a SPIF that fails the schema or breaks its own rules
            │   └── SpifUnreadable   a SPIF that cannot be read at all (I/O, bad XML)
            ├── LabelError           a label or clearance that cannot be read or resolved
            │   ├── UnknownPolicy    no loaded SPIF has the label's policy id or name
            │   └── PolicyMismatch   label, clearance and SPIF name different policies
            ├── TranslationError     no equivalence into the requested policy
            └── MarkingError         a banner or portion marking that cannot be parsed

A caller's misuse (a wrong type, an unknown built-in policy name asked for in code)
raises ``ValueError``/``TypeError`` as usual. Messages say what is wrong and where
(element, attribute, token, character offset) and never carry secrets.
"""

from __future__ import annotations

from relto.errors import InvalidInput

__all__ = [
    "LabelError",
    "LabelsError",
    "MarkingError",
    "PolicyMismatch",
    "SpifError",
    "SpifUnreadable",
    "TranslationError",
    "UnknownPolicy",
    "XmlRefused",
]


class LabelsError(InvalidInput):
    """Base of every error relto.labels raises on bad external data."""

    code = "labels_error"


class XmlRefused(LabelsError):
    """XML that is not well-formed, too large or deep, or carries a DTD or entities."""

    code = "xml_refused"


class SpifError(LabelsError):
    """A SPIF that cannot be read, fails the schema, or breaks its own rules."""

    code = "spif_error"


class SpifUnreadable(SpifError):
    """A SPIF that cannot be read at all: missing file, not XML, refused XML."""

    code = "spif_unreadable"


class LabelError(LabelsError):
    """A label or clearance that cannot be read or resolved against its policy."""

    code = "label_error"


class UnknownPolicy(LabelError):
    """No loaded SPIF carries the policy a label or clearance names."""

    code = "unknown_policy"


class PolicyMismatch(LabelError):
    """A label, clearance or SPIF name different security policies."""

    code = "policy_mismatch"


class TranslationError(LabelsError):
    """A label cannot be translated: the SPIF gives no equivalence for part of it."""

    code = "translation_error"


class MarkingError(LabelsError):
    """A banner or portion marking that cannot be parsed; says what and where.

    ``suggestion``, when set, is a valid marking with the meaning the refused one
    evidently intended (the same nations may read it); the message quotes it.
    """

    code = "marking_error"

    def __init__(self, message: str, *, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion
