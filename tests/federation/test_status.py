"""Token Status List ``lst`` codec (draft-ietf-oauth-status-list-20)."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.federation import StatusList
from relto.federation._keys import b64url_encode
from relto.federation.errors import InvalidStatusList
from relto.federation.status import MAX_STATUS_LIST_BYTES


def test_status_list_known_answer_from_the_draft() -> None:
    lst = StatusList.decode("eNrbuRgAAhcBXQ", bits=1)
    assert lst.packed == bytes.fromhex("b9a3")
    assert [lst.status(i) for i in range(16)] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    assert StatusList.of([1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]).encode() == (
        "eNrbuRgAAhcBXQ"
    )


def test_index_outside_the_list_refused() -> None:
    with pytest.raises(InvalidStatusList):
        StatusList.of([0, 1]).status(8)


def test_decompression_bomb_refused() -> None:
    bomb = b64url_encode(zlib.compress(bytes(MAX_STATUS_LIST_BYTES + 1), 9))
    with pytest.raises(InvalidStatusList, match="larger"):
        StatusList.decode(bomb, bits=1)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2, 4, 8]), st.data())
def test_status_list_round_trips(bits: int, data: st.DataObject) -> None:
    statuses = data.draw(st.lists(st.integers(0, (1 << bits) - 1), max_size=200))
    back = StatusList.decode(StatusList.of(statuses, bits).encode(), bits)
    assert [back.status(i) for i in range(len(statuses))] == statuses


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_status_list_parser_refuses_garbage_with_its_error(text: str) -> None:
    with contextlib.suppress(InvalidStatusList):
        StatusList.decode(text, bits=2)
