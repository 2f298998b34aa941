"""Leak tracing, first slice: the collusion-secure code (issue 17). Pure, no I/O.

Symmetric Tardos codes with Nuida's discrete bias distribution, derived from a
per-object secret, and an accusation that reads erasures and accuses nobody when the
evidence is too weak. Embedding the codeword in copies and extracting it from leaked
files are later slices. See ``docs/tracing.md``.
"""

from relto.tracing.code import (
    MIN_SECRET_BYTES,
    Accusation,
    TracingCode,
    accuse,
    biases,
    codeword,
    scores,
    unpack,
)
from relto.tracing.params import CodeParameters, code_parameters, theoretical_length

__all__ = [
    "MIN_SECRET_BYTES",
    "Accusation",
    "CodeParameters",
    "TracingCode",
    "accuse",
    "biases",
    "code_parameters",
    "codeword",
    "scores",
    "theoretical_length",
    "unpack",
]
