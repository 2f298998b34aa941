"""Parsers of external input never crash and round-trip what they accept."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from relto.audit.checkpoint import Checkpoint, parse_checkpoint_body
from relto.audit.errors import InvalidNote, InvalidProof
from relto.audit.note import parse_verifier
from relto.audit.tiles import TilePath, format_tile_path, parse_tile_path


@given(st.text(max_size=60))
def test_tile_path_parser_never_crashes(path: str) -> None:
    with contextlib.suppress(InvalidProof):
        t = parse_tile_path(path)
        assert format_tile_path(t) == "tile/" + path.strip("/")


@given(st.one_of(st.none(), st.integers(0, 63)), st.integers(0, 10**12), st.integers(1, 256))
def test_tile_paths_round_trip(level: int | None, index: int, width: int) -> None:
    t = TilePath(level, index, width)
    assert parse_tile_path(format_tile_path(t).removeprefix("tile/")) == t


@given(st.text(max_size=120))
def test_checkpoint_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidNote):
        cp = parse_checkpoint_body(text)
        assert cp.body() == text


@given(
    st.text(st.characters(blacklist_categories=("Cc", "Zs", "Zl", "Zp", "Cs")), min_size=1,
            max_size=30).filter(lambda s: "+" not in s and not any(c.isspace() for c in s)),
    st.integers(0, 2**62),
    st.binary(min_size=32, max_size=32),
)  # fmt: skip
def test_checkpoint_round_trip(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert parse_checkpoint_body(cp.body()) == cp


@given(st.text(max_size=100))
def test_verifier_key_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidNote):
        parse_verifier(text)
