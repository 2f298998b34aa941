"""relto.labels: security policies (Open XML SPIF 2.1), STANAG 4774 confidentiality
labels, SPIF markings, CAPCO-style banner and portion markings, and the equivalences
between national classification schemes. See docs/labels.md.
"""

from relto.labels.banner import Banner, Marking, expand_rel_to, parse_banner, read_marking
from relto.labels.engine import (
    ValidationResult,
    access_check,
    clearance_marking,
    dominant_label,
    marking,
    translate,
    validate_label,
)
from relto.labels.errors import MarkingError
from relto.labels.label import (
    Clearance,
    Label,
    LabelCategory,
    LabelKind,
    read_clearance,
    read_label,
    read_label_any,
    write_clearance,
    write_label,
)
from relto.labels.national import (
    NATIONS,
    banner_to_label,
    builtin_policy,
    builtin_registry,
    label_to_banner,
    level_rank,
    map_level,
)
from relto.labels.spif import Classification, Spif, load_spif

__all__ = [
    "NATIONS",
    "Banner",
    "Classification",
    "Clearance",
    "Label",
    "LabelCategory",
    "LabelKind",
    "Marking",
    "MarkingError",
    "Spif",
    "ValidationResult",
    "access_check",
    "banner_to_label",
    "builtin_policy",
    "builtin_registry",
    "clearance_marking",
    "dominant_label",
    "expand_rel_to",
    "label_to_banner",
    "level_rank",
    "load_spif",
    "map_level",
    "marking",
    "parse_banner",
    "read_clearance",
    "read_label",
    "read_label_any",
    "read_marking",
    "translate",
    "validate_label",
    "write_clearance",
    "write_label",
]
