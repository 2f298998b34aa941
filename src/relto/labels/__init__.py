"""relto.labels: security policies (SPIF), STANAG 4774 labels, markings, equivalences."""

from relto.labels.engine import (
    ValidationResult,
    access_check,
    clearance_marking,
    dominant_label,
    marking,
    translate,
    validate_label,
)
from relto.labels.label import (
    Clearance,
    Label,
    LabelCategory,
    LabelKind,
    read_clearance,
    read_label,
    read_label_any,
    write_label,
)
from relto.labels.spif import Classification, Spif, load_spif

__all__ = [
    "Classification",
    "Clearance",
    "Label",
    "LabelCategory",
    "LabelKind",
    "Spif",
    "ValidationResult",
    "access_check",
    "clearance_marking",
    "dominant_label",
    "load_spif",
    "marking",
    "read_clearance",
    "read_label",
    "read_label_any",
    "translate",
    "validate_label",
    "write_label",
]
