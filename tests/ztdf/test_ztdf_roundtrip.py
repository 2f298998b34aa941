"""Round trips: sizes, key splits, EC and RSA KAS keys, zip64, labels, otdf-python interop."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relto.ztdf import (
    InvalidContainer,
    KasTarget,
    KeyAccessDenied,
    inspect,
    open_container,
    parse_policy,
    private_key_unwrapper,
    protect,
)
from relto.ztdf._zip import ZipStreamWriter, read_zip_index

AT = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
SEG = 16 * 1024


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 5])
def test_round_trip_sizes(size: int, make_file, rsa_kas, tmp_path: Path) -> None:
    data = os.urandom(size)
    c = tmp_path / "c.tdf"
    r = protect(
        make_file(data), c, kas=[KasTarget("https://kas", rsa_kas[1])], at=AT, segment_size=SEG
    )
    assert r.plaintext_size == size
    n = len(r.manifest.encryption_information.integrity_information.segments)
    assert n == max(1, -(-size // SEG))
    out = tmp_path / "out"
    res = open_container(c, out, unwrap=private_key_unwrapper(rsa_kas[0]))
    assert out.read_bytes() == data
    assert res.plaintext_size == size


def test_ec_wrapped_round_trip(make_file, ec_kas, tmp_path: Path) -> None:
    data = b"ec secret"
    c = tmp_path / "c.tdf"
    r = protect(make_file(data), c, kas=[KasTarget("https://kas", ec_kas[1], kid="e1")], at=AT)
    ka = r.manifest.encryption_information.key_access[0]
    assert ka.type == "ec-wrapped"
    assert ka.ephemeral_public_key.startswith("-----BEGIN PUBLIC KEY-----")
    open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(ec_kas[0]))
    assert (tmp_path / "o").read_bytes() == data


def test_split_key_needs_every_split(make_file, rsa_kas, rsa_kas2, ec_kas, tmp_path: Path) -> None:
    """Different sids are all required: one nation's KAS alone cannot open it."""
    data = b"split between nations"
    c = tmp_path / "c.tdf"
    r = protect(
        make_file(data),
        c,
        kas=[
            KasTarget("https://kas.gbr", rsa_kas[1], kid="g", sid="gbr"),
            KasTarget("https://kas.usa", ec_kas[1], kid="u", sid="usa"),
        ],
        at=AT,
    )
    kas = r.manifest.encryption_information.key_access
    assert [k.sid for k in kas] == ["gbr", "usa"]
    with pytest.raises(KeyAccessDenied):
        open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0]))
    with pytest.raises(KeyAccessDenied):
        open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(ec_kas[0]))
    open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0], ec_kas[0]))
    assert (tmp_path / "o").read_bytes() == data


def test_same_sid_entries_are_alternatives(make_file, rsa_kas, rsa_kas2, tmp_path: Path) -> None:
    c = tmp_path / "c.tdf"
    protect(
        make_file(b"either"),
        c,
        kas=[
            KasTarget("https://a", rsa_kas[1], sid="s"),
            KasTarget("https://b", rsa_kas2[1], sid="s"),
        ],
        at=AT,
    )
    for key in (rsa_kas[0], rsa_kas2[0]):
        out = tmp_path / "o"
        open_container(c, out, unwrap=private_key_unwrapper(key), overwrite=True)
        assert out.read_bytes() == b"either"


def test_policy_and_label_carried(make_file, rsa_kas, tmp_path: Path) -> None:
    label = (
        b'<?xml version="1.0"?><originatorConfidentialityLabel>'
        b"SECRET &amp; REL TO GBR</originatorConfidentialityLabel>"
    )
    c = tmp_path / "c.tdf"
    r = protect(
        make_file(b"x"),
        c,
        kas=[KasTarget("https://kas", rsa_kas[1])],
        at=AT,
        attributes=["https://relto.example/attr/classification/value/secret"],
        dissem=["alice@example.org"],
        label_xml=label,
    )
    pol = parse_policy(r.manifest.encryption_information.policy)
    assert pol.attributes == ("https://relto.example/attr/classification/value/secret",)
    assert pol.dissem == ("alice@example.org",)
    res = open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert res.label_xml == label
    info = inspect(c)
    assert info["unverified_label_xml"] == label.decode()
    assert info["unverified_policy"]["dissem"] == ["alice@example.org"]
    with zipfile.ZipFile(c) as z:
        raw = z.read("0.manifest.json")
    assert b"\\u0026amp;" in raw and b"\\u003c" in raw  # Go json.Marshal escaping


def test_existing_output_not_overwritten_by_default(make_file, rsa_kas, tmp_path: Path) -> None:
    from relto.errors import InvalidInput

    c = tmp_path / "c.tdf"
    c.write_bytes(b"keep")
    with pytest.raises(InvalidInput):
        protect(make_file(b"x"), c, kas=[KasTarget("https://kas", rsa_kas[1])], at=AT)
    assert c.read_bytes() == b"keep"


def test_misuse_raises_value_error(make_file, rsa_kas, tmp_path: Path) -> None:
    src = make_file(b"x")
    with pytest.raises(ValueError):
        protect(src, tmp_path / "a", kas=[], at=AT)
    with pytest.raises(ValueError):
        protect(src, tmp_path / "a", kas=[KasTarget("u", rsa_kas[1])], at=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        protect(src, tmp_path / "a", kas=[KasTarget("u", rsa_kas[1])], at=AT, segment_size=100)
    assert not (tmp_path / "a").exists()


def test_bad_kas_public_key_is_invalid_input(make_file, tmp_path: Path) -> None:
    from relto.errors import InvalidInput

    with pytest.raises(InvalidInput):
        protect(make_file(b"x"), tmp_path / "a", kas=[KasTarget("u", "not a pem")], at=AT)
    assert list(tmp_path.glob("a*")) == [] and list(tmp_path.glob(".a*")) == []


# ------------------------------------------------------------------------ zip64


def test_zip64_container_round_trip(make_file, rsa_kas, tmp_path: Path) -> None:
    """The zip64 layout (used from 4 GiB) on a small container: written, read by
    Python's zipfile and by relto's strict reader, and decrypted."""
    data = os.urandom(3 * SEG)
    c = tmp_path / "c.tdf"
    protect(
        make_file(data),
        c,
        kas=[KasTarget("https://kas", rsa_kas[1])],
        at=AT,
        segment_size=SEG,
        force_zip64=True,
    )
    raw = c.read_bytes()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw  # zip64 end record and locator
    with zipfile.ZipFile(c) as z:
        assert z.testzip() is None
    open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert (tmp_path / "o").read_bytes() == data


def test_zip_writer_switches_to_zip64_above_4gib_declared() -> None:
    """An entry declared larger than 4 GiB makes the archive zip64 before a byte is written."""

    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.head = bytearray()
            self.n = 0

        def write(self, b) -> int:  # type: ignore[no-untyped-def]
            if len(self.head) < 200:
                self.head += bytes(b)[: 200 - len(self.head)]
            self.n += len(b)
            return len(b)

    sink = Sink()
    w = ZipStreamWriter(sink, at=AT)  # type: ignore[arg-type]
    w.begin("0.payload", 5 * 1024**3)
    assert w.zip64
    # local header: sizes 0xFFFFFFFF, a zip64 extra carrying the 5 GiB size
    assert sink.head[18:26] == b"\xff" * 8
    assert int.from_bytes(sink.head[30 + 9 + 4 : 30 + 9 + 12], "little") == 5 * 1024**3


def test_zip64_index_reads_offsets_beyond_4gib() -> None:
    """Craft a zip64 central directory whose values only fit in the zip64 extra."""
    buf = io.BytesIO()
    w = ZipStreamWriter(buf, at=AT, force_zip64=True)
    w.begin("0.payload", 3)
    w.write(b"abc")
    w.end()
    w.begin("0.manifest.json", 2)
    w.write(b"{}")
    w.end()
    w.finish()
    idx = read_zip_index(
        io.BytesIO(buf.getvalue()),
        expected=frozenset({"0.payload", "0.manifest.json"}),
        max_sizes={"0.payload": 10, "0.manifest.json": 10},
    )
    assert idx["0.payload"].size == 3
    assert buf.getvalue()[idx["0.payload"].data_offset : idx["0.payload"].data_offset + 3] == b"abc"


# ------------------------------------------------------------------ otdf-python


def test_otdf_python_container_opens_in_relto(rsa_kas, tmp_path: Path) -> None:
    from otdf_python.config import KASInfo, TDFConfig
    from otdf_python.tdf import TDF

    data = os.urandom(2 * 1024 * 1024 + 333)
    cfg = TDFConfig(
        kas_info_list=[KASInfo(url="https://kas.example/kas", public_key=rsa_kas[1], kid="r1")],
        autoconfigure=False,
        attributes=["https://example.com/attr/a/value/b"],
    )
    _m, _size, out = TDF().create_tdf(data, cfg)
    c = tmp_path / "py.tdf"
    c.write_bytes(out.getvalue())
    res = open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert (tmp_path / "o").read_bytes() == data
    assert res.policy.attributes == ("https://example.com/attr/a/value/b",)


def test_relto_container_opens_in_otdf_python(make_file, rsa_kas, tmp_path: Path) -> None:
    from otdf_python.tdf import TDF, TDFReaderConfig

    data = os.urandom(2 * 1024 * 1024 + 77)
    c = tmp_path / "c.tdf"
    protect(
        make_file(data),
        c,
        kas=[KasTarget("https://kas", rsa_kas[1], kid="r1")],
        at=AT,
        label_xml=b"<l/>",
    )
    reader = TDF().load_tdf(c.read_bytes(), TDFReaderConfig(kas_private_key=rsa_kas[0]))
    assert reader.payload == data


def test_otdf_python_container_tampered_is_refused(rsa_kas, tmp_path: Path) -> None:
    from otdf_python.config import KASInfo, TDFConfig
    from otdf_python.tdf import TDF

    cfg = TDFConfig(
        kas_info_list=[KASInfo(url="https://kas", public_key=rsa_kas[1])], autoconfigure=False
    )
    _m, _s, out = TDF().create_tdf(b"hello from python", cfg)
    data = bytearray(out.getvalue())
    data[45] ^= 1  # inside the first segment's ciphertext
    c = tmp_path / "py.tdf"
    c.write_bytes(bytes(data))
    with pytest.raises(InvalidContainer):
        open_container(c, tmp_path / "o", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert not (tmp_path / "o").exists()


def test_zip64_offsets_beyond_4gib_with_a_sparse_file(tmp_path: Path) -> None:
    """A real >4 GiB archive, written as a sparse file in milliseconds: the payload's
    bytes are a hole, so only headers, descriptors and directories hit the disk."""

    class SparseOut:
        def __init__(self, f: io.BufferedRandom) -> None:
            self.f = f

        def write(self, b: bytes | memoryview) -> int:
            if len(b) >= 1 << 20:
                self.f.seek(len(b), io.SEEK_CUR)  # a hole of zeros
            else:
                self.f.write(b)
            return len(b)

    size = 5 * 1024**3
    chunk = memoryview(bytes(64 * 1024 * 1024))
    path = tmp_path / "sparse.tdf"
    with path.open("w+b") as f:
        w = ZipStreamWriter(SparseOut(f), at=AT)  # type: ignore[arg-type]
        w.begin("0.payload", size)
        assert w.zip64
        for _ in range(size // len(chunk)):
            w.write(chunk, crc_done=True)  # CRC of the hole is not the point here
        w.end()
        w.begin("0.manifest.json", 2)
        w.write(b"{}")
        w.end()
        total = w.finish()
        f.truncate(total)
    assert path.stat().st_size == total > 4 * 1024**3
    with path.open("rb") as f:
        idx = read_zip_index(
            f,
            expected=frozenset({"0.payload", "0.manifest.json"}),
            max_sizes={"0.payload": size, "0.manifest.json": 10},
        )
        assert idx["0.payload"].size == size
        manifest = idx["0.manifest.json"]
        assert manifest.data_offset > 4 * 1024**3
        f.seek(manifest.data_offset)
        assert f.read(2) == b"{}"
    with zipfile.ZipFile(path) as z:  # Python's reader agrees on the zip64 layout
        infos = {i.filename: i for i in z.infolist()}
        assert infos["0.payload"].file_size == size
        assert infos["0.manifest.json"].header_offset > 4 * 1024**3
        assert z.read("0.manifest.json") == b"{}"
