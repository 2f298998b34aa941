"""Canonical entry encoding: the fast path equals the rfc8785 package, byte for byte."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.audit.entries import canonical_json, decode_entry, encode_entry
from relto.audit.errors import InvalidProof

from .conftest import T0

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_fast_canonical_json_equals_rfc8785(value: Any) -> None:
    try:
        want = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError):
            canonical_json(value)
        return
    assert canonical_json(value) == want


def test_key_order_is_utf16_not_code_points() -> None:
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index(
        "\ue000".encode()
    )


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=5), st.integers(0, 2**40))
def test_entry_round_trip(payload: dict[str, Any], index: int) -> None:
    try:
        body = encode_entry(index, "decision", payload, T0)
    except ValueError:
        return
    entry = decode_entry(body)
    assert entry.index == index and entry.kind == "decision"
    assert rfc8785.dumps(entry.payload) == rfc8785.dumps(payload)


@given(st.binary(max_size=200))
def test_entry_decoder_never_crashes(data: bytes) -> None:
    with contextlib.suppress(InvalidProof):
        decode_entry(data)
