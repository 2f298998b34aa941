"""Tampered containers never yield a byte: one opaque InvalidContainer, nothing written."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relto.ztdf import (
    InvalidContainer,
    KasTarget,
    KeyAccessDenied,
    inspect,
    open_container,
    private_key_unwrapper,
    protect,
)
from relto.ztdf._zip import MAX_ENTRIES

GOLDEN = "xstext-java-v0.9.0-2de6a49-DSP2.0.5.1_and_2.0.6.tdf"
GOLDEN_LEGACY = "small-java-4.3.0-e0f8caf.tdf"
GOLDEN_ASSERTIONS = "with-json-object-assertions-java.tdf"


def rebuild(
    src: Path,
    dst: Path,
    *,
    manifest: Callable[[dict[str, Any]], None] | None = None,
    payload: Callable[[bytearray], None] | None = None,
    raw_manifest: bytes | None = None,
    extra: list[tuple[str, bytes]] | None = None,
    compress: bool = False,
) -> Path:
    with zipfile.ZipFile(src) as z:
        m = json.loads(z.read("0.manifest.json"))
        p = bytearray(z.read("0.payload"))
    if manifest:
        manifest(m)
    if payload:
        payload(p)
    mbytes = raw_manifest if raw_manifest is not None else json.dumps(m).encode()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(dst, "w", compression=method) as z:
        z.writestr("0.payload", bytes(p))
        z.writestr("0.manifest.json", mbytes)
        for name, data in extra or []:
            z.writestr(name, data)
    return dst


def assert_refused(container: Path, private_pem: str, tmp_path: Path) -> InvalidContainer:
    out = tmp_path / "plain.out"
    before = set(tmp_path.iterdir())
    with pytest.raises(InvalidContainer) as exc:
        open_container(container, out, unwrap=private_key_unwrapper(private_pem))
    assert str(exc.value) == "invalid container"  # opaque outward
    assert not out.exists()
    assert set(tmp_path.iterdir()) == before  # no temp file left behind
    return exc.value


@pytest.fixture()
def golden(golden_dir: Path) -> Path:
    return golden_dir / GOLDEN


def test_untampered_rebuild_still_opens(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    c = rebuild(golden, tmp_path / "c.tdf")
    open_container(c, tmp_path / "ok", unwrap=private_key_unwrapper(golden_private_pem))


def _set_policy(m: dict[str, Any]) -> None:
    pol = json.loads(base64.b64decode(m["encryptionInformation"]["policy"]))
    pol["body"]["dissem"] = ["attacker@example.org"]
    m["encryptionInformation"]["policy"] = base64.b64encode(json.dumps(pol).encode()).decode()


def test_tampered_policy_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    exc = assert_refused(
        rebuild(golden, tmp_path / "c.tdf", manifest=_set_policy), golden_private_pem, tmp_path
    )
    assert "binding" in exc.reason


def test_tampered_policy_binding_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        pb = m["encryptionInformation"]["keyAccess"][0]["policyBinding"]
        h = bytearray(base64.b64decode(pb["hash"]))
        h[0] ^= 1
        pb["hash"] = base64.b64encode(bytes(h)).decode()

    assert_refused(rebuild(golden, tmp_path / "c.tdf", manifest=edit), golden_private_pem, tmp_path)


def test_tampered_segment_hash_in_manifest_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        seg = m["encryptionInformation"]["integrityInformation"]["segments"][0]
        seg["hash"] = base64.b64encode(bytes(16)).decode()

    exc = assert_refused(
        rebuild(golden, tmp_path / "c.tdf", manifest=edit), golden_private_pem, tmp_path
    )
    assert "root signature" in exc.reason


def test_tampered_root_signature_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["encryptionInformation"]["integrityInformation"]["rootSignature"]["sig"] = (
            base64.b64encode(bytes(32)).decode()
        )

    assert_refused(rebuild(golden, tmp_path / "c.tdf", manifest=edit), golden_private_pem, tmp_path)


@pytest.mark.parametrize("where", [0, 12, 40, -1])
def test_tampered_payload_byte_rejected(
    where: int, golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def flip(p: bytearray) -> None:
        p[where] ^= 0x80

    assert_refused(rebuild(golden, tmp_path / "c.tdf", payload=flip), golden_private_pem, tmp_path)


def test_tampered_legacy_payload_rejected(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def flip(p: bytearray) -> None:
        p[100] ^= 1

    assert_refused(
        rebuild(golden_dir / GOLDEN_LEGACY, tmp_path / "c.tdf", payload=flip),
        golden_private_pem,
        tmp_path,
    )


def test_tampered_assertion_statement_rejected(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["assertions"][0]["statement"]["value"]["ocl"]["cls"] = "UNCLASSIFIED"

    exc = assert_refused(
        rebuild(golden_dir / GOLDEN_ASSERTIONS, tmp_path / "c.tdf", manifest=edit),
        golden_private_pem,
        tmp_path,
    )
    assert "hash mismatch" in exc.reason


def test_tampered_assertion_signature_rejected(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        sig = m["assertions"][1]["binding"]["signature"]
        m["assertions"][1]["binding"]["signature"] = (
            sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
        )

    assert_refused(
        rebuild(golden_dir / GOLDEN_ASSERTIONS, tmp_path / "c.tdf", manifest=edit),
        golden_private_pem,
        tmp_path,
    )


def test_assertion_moved_from_another_container_rejected(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    with zipfile.ZipFile(golden_dir / GOLDEN_LEGACY) as z:
        foreign = json.loads(z.read("0.manifest.json"))["assertions"]

    def edit(m: dict[str, Any]) -> None:
        m["assertions"] = foreign

    assert_refused(
        rebuild(golden_dir / GOLDEN, tmp_path / "c.tdf", manifest=edit),
        golden_private_pem,
        tmp_path,
    )


def test_unbound_assertion_rejected(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        del m["assertions"][0]["binding"]

    assert_refused(
        rebuild(golden_dir / GOLDEN_ASSERTIONS, tmp_path / "c.tdf", manifest=edit),
        golden_private_pem,
        tmp_path,
    )


def test_unknown_manifest_field_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["encryptionInformation"]["keyAccess"][0]["note"] = "trust me"

    assert_refused(rebuild(golden, tmp_path / "c.tdf", manifest=edit), golden_private_pem, tmp_path)


def test_segment_sizes_disagreeing_with_payload_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        seg = m["encryptionInformation"]["integrityInformation"]["segments"][0]
        seg["segmentSize"] -= 1
        seg["encryptedSegmentSize"] -= 1

    assert_refused(rebuild(golden, tmp_path / "c.tdf", manifest=edit), golden_private_pem, tmp_path)


def test_oversized_manifest_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    big = b"{" + b" " * (10 * 1024 * 1024 + 1) + b"}"
    assert_refused(
        rebuild(golden, tmp_path / "c.tdf", raw_manifest=big), golden_private_pem, tmp_path
    )


def test_deeply_nested_manifest_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_refused(
        rebuild(golden, tmp_path / "c.tdf", raw_manifest=deep), golden_private_pem, tmp_path
    )


@pytest.mark.parametrize("name", ["../0.payload", "/etc/passwd", "0.payload.extra", "1.payload"])
def test_path_tricks_and_extra_entries_rejected(
    name: str, golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    c = rebuild(golden, tmp_path / "c.tdf", extra=[(name, b"x")])
    exc = assert_refused(c, golden_private_pem, tmp_path)
    assert "unexpected entry" in exc.reason


def test_duplicate_entry_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        c = rebuild(golden, tmp_path / "c.tdf", extra=[("0.manifest.json", b"{}")])
    exc = assert_refused(c, golden_private_pem, tmp_path)
    assert "duplicate" in exc.reason


def test_too_many_entries_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    c = rebuild(golden, tmp_path / "c.tdf", extra=[(f"x{i}", b"") for i in range(MAX_ENTRIES)])
    exc = assert_refused(c, golden_private_pem, tmp_path)
    assert "too many" in exc.reason


def test_compressed_entries_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    assert_refused(rebuild(golden, tmp_path / "c.tdf", compress=True), golden_private_pem, tmp_path)


def test_zip_bomb_declared_size_rejected(
    golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    """A central directory claiming a huge manifest is refused before anything is read."""
    c = rebuild(golden, tmp_path / "c.tdf")
    data = bytearray(c.read_bytes())
    cd = data.index(
        b"PK\x01\x02" + data[data.index(b"PK\x01\x02") + 4 : data.index(b"PK\x01\x02") + 6]
    )
    # second central directory entry is the manifest; patch its sizes to 4 GiB - 2
    second = data.index(b"PK\x01\x02", cd + 4)
    struct.pack_into("<II", data, second + 20, 0xFFFFFFFE, 0xFFFFFFFE)
    c.write_bytes(bytes(data))
    assert_refused(c, golden_private_pem, tmp_path)


@pytest.mark.parametrize("keep", [0, 10, 100, 400, -23, -1])
def test_truncated_container_rejected(
    keep: int, golden: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    c = tmp_path / "c.tdf"
    data = golden.read_bytes()
    c.write_bytes(data[:keep])
    assert_refused(c, golden_private_pem, tmp_path)


def test_trailing_junk_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    c = tmp_path / "c.tdf"
    c.write_bytes(golden.read_bytes() + b"junk")
    assert_refused(c, golden_private_pem, tmp_path)


def test_payload_crc_tamper_rejected(golden: Path, golden_private_pem: str, tmp_path: Path) -> None:
    c = tmp_path / "c.tdf"
    shutil.copy(golden, c)
    data = bytearray(c.read_bytes())
    cd = data.index(b"PK\x01\x02")
    data[cd + 16] ^= 1  # CRC-32 of the first central directory entry (0.payload)
    c.write_bytes(bytes(data))
    assert_refused(c, golden_private_pem, tmp_path)


def test_inspect_refuses_tampered_structure(golden: Path, tmp_path: Path) -> None:
    c = rebuild(golden, tmp_path / "c.tdf", extra=[("../evil", b"x")])
    with pytest.raises(InvalidContainer):
        inspect(c)


# ---------------------------------------------------------- relto's own containers


@pytest.fixture()
def relto_container(make_file, rsa_kas: tuple[str, str], tmp_path: Path) -> Path:
    src = make_file(bytes(range(256)) * 300)
    dst = tmp_path / "r.tdf"
    protect(
        src,
        dst,
        kas=[KasTarget("https://kas.example", rsa_kas[1], kid="r1")],
        at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        label_xml=b"<ConfidentialityLabel><Classification>SECRET</Classification></ConfidentialityLabel>",
        segment_size=16 * 1024,
    )
    src.unlink()
    return dst


def test_tampered_label_rejected(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    def edit(m: dict[str, Any]) -> None:
        m["assertions"][0]["statement"]["value"] = m["assertions"][0]["statement"]["value"].replace(
            "SECRET", "UNCLASSIFIED"
        )

    c = rebuild(relto_container, tmp_path / "t.tdf", manifest=edit)
    exc = assert_refused(c, rsa_kas[0], tmp_path)
    assert "hash mismatch" in exc.reason


def test_removed_segment_rejected(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    seg = 16 * 1024 + 28

    def drop_payload(p: bytearray) -> None:
        del p[seg : 2 * seg]

    def drop_manifest(m: dict[str, Any]) -> None:
        del m["encryptionInformation"]["integrityInformation"]["segments"][1]

    c = rebuild(relto_container, tmp_path / "t.tdf", manifest=drop_manifest, payload=drop_payload)
    assert_refused(c, rsa_kas[0], tmp_path)


def test_reordered_segments_rejected(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    seg = 16 * 1024 + 28

    def swap_payload(p: bytearray) -> None:
        a, b = bytes(p[:seg]), bytes(p[seg : 2 * seg])
        p[:seg], p[seg : 2 * seg] = b, a

    def swap_manifest(m: dict[str, Any]) -> None:
        s = m["encryptionInformation"]["integrityInformation"]["segments"]
        s[0], s[1] = s[1], s[0]

    c = rebuild(relto_container, tmp_path / "t.tdf", manifest=swap_manifest, payload=swap_payload)
    exc = assert_refused(c, rsa_kas[0], tmp_path)
    assert "root signature" in exc.reason


def test_segment_swapped_in_payload_only_rejected(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    seg = 16 * 1024 + 28

    def swap_payload(p: bytearray) -> None:
        a, b = bytes(p[:seg]), bytes(p[seg : 2 * seg])
        p[:seg], p[seg : 2 * seg] = b, a

    exc = assert_refused(
        rebuild(relto_container, tmp_path / "t.tdf", payload=swap_payload), rsa_kas[0], tmp_path
    )
    assert "segment 0" in exc.reason


def test_tamper_in_last_segment_leaves_no_partial_output(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    """Earlier segments verify, the last does not: still no byte reaches the output."""

    def flip_last(p: bytearray) -> None:
        p[-20] ^= 1

    c = rebuild(relto_container, tmp_path / "t.tdf", payload=flip_last)
    exc = assert_refused(c, rsa_kas[0], tmp_path)
    assert "segment" in exc.reason


def test_existing_output_is_kept_when_container_is_tampered(
    relto_container: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    def flip(p: bytearray) -> None:
        p[50] ^= 1

    c = rebuild(relto_container, tmp_path / "t.tdf", payload=flip)
    out = tmp_path / "keep.txt"
    out.write_bytes(b"previous")
    with pytest.raises(InvalidContainer):
        open_container(c, out, unwrap=private_key_unwrapper(rsa_kas[0]), overwrite=True)
    assert out.read_bytes() == b"previous"


def test_kas_refusal_is_access_denied(relto_container: Path, tmp_path: Path) -> None:
    from relto.errors import AccessDenied

    def refuse(ka, policy):  # type: ignore[no-untyped-def]
        raise AccessDenied("no")

    with pytest.raises(KeyAccessDenied):
        open_container(relto_container, tmp_path / "o", unwrap=refuse)
    assert not (tmp_path / "o").exists()


def test_kas_returning_wrong_share_is_invalid(relto_container: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidContainer):
        open_container(relto_container, tmp_path / "o", unwrap=lambda ka, p: bytes(32))


def test_precise_reason_is_logged_not_returned(
    golden: Path, golden_private_pem: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def flip(p: bytearray) -> None:
        p[20] ^= 1

    c = rebuild(golden, tmp_path / "c.tdf", payload=flip)
    with caplog.at_level("WARNING", logger="relto.ztdf"):
        exc = assert_refused(c, golden_private_pem, tmp_path)
    assert "segment 0" in exc.reason
    assert "segment 0" not in str(exc)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "segment 0" in logged
    assert "PRIVATE KEY" not in logged
