"""Log entries: canonical JSON (RFC 8785) bodies that the leaf hashes commit to.

Every entry body is ``{"v": 1, "index": i, "kind": ..., "time": ..., "payload": ...}``
in RFC 8785 canonical form. The index inside the body ties the entry to its
position, so a row that is moved, dropped or inserted no longer matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from relto.audit.errors import InvalidProof

__all__ = [
    "ENTRY_VERSION",
    "MAX_ENTRY_BYTES",
    "Entry",
    "canonical_json",
    "check_kind",
    "decode_entry",
    "encode_entry",
    "format_time",
]

ENTRY_VERSION = 1
#: Largest canonical body the log accepts.
MAX_ENTRY_BYTES = 65535  # fits the uint16 length prefix of tlog-tiles entry bundles

_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Entry:
    """A decoded, canonical log entry."""

    index: int
    kind: str
    time: str
    payload: Mapping[str, Any]


def check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError("event kind must be 1-100 characters of a-z, 0-9, '.', '_' or '-'")
    return kind


def format_time(at: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-29T15:05:36.000000Z``."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_MAX_SAFE_INT = (1 << 53) - 1


def _fast_ok(value: Any) -> bool:
    """True when ``json.dumps`` gives exactly RFC 8785's bytes for ``value``.

    That holds for strings, I-JSON-safe integers, booleans, null, arrays and objects
    whose keys use only code points below U+D800 (where UTF-16 and code-point key
    order agree). Floats (ECMAScript number formatting) and anything else go to the
    ``rfc8785`` package.
    """
    stack = [value]
    budget = 100_000
    while stack:
        budget -= 1
        if budget < 0:
            return False
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                return False
        elif t is dict:
            for k in v:
                if type(k) is not str:
                    return False
            keys = "".join(v)
            if keys and max(keys) >= "\ud800":
                return False
            stack.extend(v.values())
        elif t is list or t is tuple:
            stack.extend(v)
        else:
            return False
    return True


def canonical_json(value: Any, *, checked: bool | None = None) -> bytes:
    """RFC 8785 canonical JSON: a proven-equal fast path, else the ``rfc8785`` package.

    The fast path is checked against ``rfc8785`` by property tests; verification
    (:func:`decode_entry`) always uses ``rfc8785`` itself. ``checked`` lets a caller
    that has already run the eligibility check on the parts that need it skip it.
    """
    if checked if checked is not None else _fast_ok(value):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: let rfc8785 refuse them
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"payload is not canonical JSON: {type(exc).__name__}") from None


def encode_entry(index: int, kind: str, payload: Mapping[str, Any], at: datetime) -> bytes:
    """The canonical body of entry ``index``. Raises ``ValueError``/``TypeError`` on bad input."""
    check_kind(kind)
    if not isinstance(payload, Mapping):
        raise TypeError("payload must be a mapping")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= _MAX_SAFE_INT:
        raise ValueError("entry index out of range")
    doc: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "index": index,
        "kind": kind,
        "time": format_time(at),
        "payload": dict(payload),
    }
    # The envelope (ASCII kind and time, safe integers) is always on the fast path,
    # so only the payload needs checking.
    body = canonical_json(doc, checked=_fast_ok(doc["payload"]))
    if len(body) > MAX_ENTRY_BYTES:
        raise ValueError(f"entry is larger than {MAX_ENTRY_BYTES} bytes")
    return body


def _parse_int(text: str) -> int | float:
    # RFC 8785 writes a large float such as 1e16 as "10000000000000000"; read it
    # back as the number it was, so re-encoding gives the same bytes.
    value = int(text)
    return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else float(value)


def decode_entry(body: bytes) -> Entry:
    """Parse a stored body; raises :class:`InvalidProof` unless it is canonical and well formed."""
    if len(body) > MAX_ENTRY_BYTES:
        raise InvalidProof("entry is too large")
    try:
        doc = json.loads(body.decode("utf-8"), parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError):
        raise InvalidProof("entry is not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"v", "index", "kind", "time", "payload"}:
        raise InvalidProof("entry does not have exactly the fields v, index, kind, time, payload")
    try:
        canonical = rfc8785.dumps(doc)
    except rfc8785.CanonicalizationError:
        raise InvalidProof("entry is not canonical JSON") from None
    if canonical != body:
        raise InvalidProof("entry is not in canonical (RFC 8785) form")
    index, kind, time, payload = doc["index"], doc["kind"], doc["time"], doc["payload"]
    if doc["v"] != ENTRY_VERSION or isinstance(index, bool) or not isinstance(index, int):
        raise InvalidProof("entry has an unknown version or a bad index")
    if not isinstance(kind, str) or not _KIND.match(kind) or not isinstance(time, str):
        raise InvalidProof("entry has a bad kind or time")
    if not isinstance(payload, dict):
        raise InvalidProof("entry payload is not an object")
    return Entry(index, kind, time, payload)
