"""ContainerWriter: plaintext encrypted as it arrives, never written in the clear."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relto.errors import InvalidInput
from relto.ztdf import ContainerWriter, KasTarget, open_container, private_key_unwrapper
from relto.ztdf._zip import read_zip_index

AT = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
SEG = 16 * 1024
MARKER = b"PLAINTEXT-MARKER-7f3a"


def _stream(data: bytes, chunk: int, kas: list[KasTarget], **finish: object) -> bytes:
    out = io.BytesIO()
    with ContainerWriter(out, kas=kas, at=AT, max_size=len(data), segment_size=SEG) as w:
        for i in range(0, len(data), chunk):
            w.write(data[i : i + chunk])
        w.finish(**finish)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5])
@pytest.mark.parametrize("chunk", [1000, SEG, 3 * SEG])
def test_streamed_container_opens_to_the_same_bytes(
    size: int, chunk: int, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    data = os.urandom(size)
    label = b"<label>SECRET</label>"
    blob = _stream(
        data,
        chunk,
        [KasTarget("https://kas", rsa_kas[1])],
        attributes=["https://a.example/attr/c/value/secret"],
        label_xml=label,
        mime_type="text/plain",
    )
    src = tmp_path / "c.tdf"
    src.write_bytes(blob)
    with zipfile.ZipFile(src) as z:  # a plain zip reader agrees
        assert z.testzip() is None
    out = tmp_path / "out"
    res = open_container(src, out, unwrap=private_key_unwrapper(rsa_kas[0]))
    assert out.read_bytes() == data
    assert res.label_xml == label
    assert res.manifest.payload.mime_type == "text/plain"
    assert res.policy.attributes == ("https://a.example/attr/c/value/secret",)
    with src.open("rb") as f:
        index = read_zip_index(
            f,
            expected=frozenset({"0.payload", "0.manifest.json"}),
            max_sizes={"0.payload": 1 << 30, "0.manifest.json": 1 << 20},
        )
    assert index["0.payload"].size == size + max(1, -(-size // SEG)) * 28


def test_split_key_needs_every_split(
    rsa_kas: tuple[str, str], ec_kas: tuple[str, str], tmp_path: Path
) -> None:
    kas = [KasTarget("https://a", rsa_kas[1], sid="1"), KasTarget("https://b", ec_kas[1], sid="2")]
    src = tmp_path / "c.tdf"
    src.write_bytes(_stream(os.urandom(5 * SEG), 7000, kas))
    open_container(src, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0], ec_kas[0]))
    with pytest.raises(Exception):
        open_container(src, tmp_path / "o2", unwrap=private_key_unwrapper(rsa_kas[0]))


def test_plaintext_never_reaches_the_output(rsa_kas: tuple[str, str]) -> None:
    """What the writer writes while the upload is in flight is ciphertext only."""
    out = io.BytesIO()
    data = MARKER * (10 * SEG // len(MARKER))
    with ContainerWriter(
        out, kas=[KasTarget("https://kas", rsa_kas[1])], at=AT, max_size=len(data), segment_size=SEG
    ) as w:
        for i in range(0, len(data), 4096):
            w.write(data[i : i + 4096])
            assert MARKER not in out.getvalue()
        w.finish()
    assert MARKER not in out.getvalue()


def test_oversized_stream_refused(rsa_kas: tuple[str, str]) -> None:
    w = ContainerWriter(
        io.BytesIO(), kas=[KasTarget("https://kas", rsa_kas[1])], at=AT, max_size=10
    )
    with w:
        w.write(b"x" * 10)
        with pytest.raises(InvalidInput):
            w.write(b"x")


def test_a_streamed_payload_cannot_need_zip64(rsa_kas: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="4 GiB"):
        ContainerWriter(
            io.BytesIO(), kas=[KasTarget("https://kas", rsa_kas[1])], at=AT, max_size=1 << 32
        )
