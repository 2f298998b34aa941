"""Every golden container written by OpenTDF's Java and Go SDKs reads in relto."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relto.ztdf import (
    InvalidContainer,
    KasTarget,
    inspect,
    open_container,
    private_key_unwrapper,
    protect,
)
from relto.ztdf.manifest import parse_manifest

DECRYPTABLE = {
    "key-management-no-split-golden.tdf": b"hello\n",
    "no-splitids-java.tdf": bytes(5120),
    "small-java-4.3.0-e0f8caf.tdf": bytes(5120),
    "with-json-object-assertions-java.tdf": b"text",
    "xstext-java-v0.7.5-94b161d53-DSP2.0.2_and_2.0.3.tdf": None,
    "xstext-java-v0.7.8-7f487c2-DSP2.0.4.tdf": None,
    "xstext-java-v0.9.0-2de6a49-DSP2.0.5.1_and_2.0.6.tdf": None,
}
LEGACY = {
    "no-splitids-java.tdf",
    "small-java-4.3.0-e0f8caf.tdf",
    "xstext-java-v0.7.5-94b161d53-DSP2.0.2_and_2.0.3.tdf",
}


def test_all_golden_files_are_covered(golden_dir: Path) -> None:
    assert {p.name for p in golden_dir.glob("*.tdf")} == set(DECRYPTABLE)


@pytest.mark.parametrize("name", sorted(DECRYPTABLE))
def test_golden_container_opens_and_verifies(
    name: str, golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = open_container(
        golden_dir / name, out, unwrap=private_key_unwrapper(golden_private_pem)
    )
    data = out.read_bytes()
    assert result.plaintext_size == len(data)
    expected = DECRYPTABLE[name]
    if expected is not None:
        assert data == expected
    else:
        assert data.startswith(b"test secret data to encrypt by the Java ")
    assert result.manifest.legacy == (name in LEGACY)


@pytest.mark.parametrize("name", sorted(DECRYPTABLE))
def test_golden_manifest_inspects_without_keys(name: str, golden_dir: Path) -> None:
    info = inspect(golden_dir / name)
    assert info["verified"] is False
    assert info["format"] == ("legacy" if name in LEGACY else "4.3.0")
    assert info["keyAccess"]
    assert info["unverified_label_xml"] is None


def test_no_split_ids_alternatives_skip_the_dead_kas(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    """Three entries without sid are alternatives; the bogus ones are tried and skipped."""
    tried: list[str] = []
    inner = private_key_unwrapper(golden_private_pem)

    def unwrap(ka, policy):  # type: ignore[no-untyped-def]
        tried.append(ka.url)
        return inner(ka, policy)

    open_container(golden_dir / "no-splitids-java.tdf", tmp_path / "o", unwrap=unwrap)
    assert tried[0] == "http://doesnotexist.example.org:8080/kas"
    assert tried[-1] == "http://localhost:8080/kas"


def test_old_java_capitalised_isstreamable_is_read(golden_dir: Path) -> None:
    name = "xstext-java-v0.7.5-94b161d53-DSP2.0.2_and_2.0.3.tdf"
    with zipfile.ZipFile(golden_dir / name) as z:
        raw = z.read("0.manifest.json")
    assert b'"IsStreamable"' in raw
    assert parse_manifest(raw).encryption_information.method.is_streamable


def test_golden_object_valued_assertions_verify(
    golden_dir: Path, golden_private_pem: str, tmp_path: Path
) -> None:
    r = open_container(
        golden_dir / "with-json-object-assertions-java.tdf",
        tmp_path / "o",
        unwrap=private_key_unwrapper(golden_private_pem),
    )
    assert len(r.manifest.assertions) == 2
    assert '"cls":"SECRET"' in r.manifest.assertions[0].statement.value


def test_golden_with_wrong_key_is_denied_not_invalid(
    golden_dir: Path, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    from relto.ztdf import KeyAccessDenied

    with pytest.raises(KeyAccessDenied):
        open_container(
            golden_dir / "small-java-4.3.0-e0f8caf.tdf",
            tmp_path / "o",
            unwrap=private_key_unwrapper(rsa_kas[0]),
        )
    assert not (tmp_path / "o").exists()
    assert list(tmp_path.iterdir()) == []


def test_relto_container_layout_matches_go_sdk(
    make_file, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    src = make_file(b"x" * 100)
    dst = tmp_path / "c.tdf"
    protect(src, dst, kas=[KasTarget("https://kas", rsa_kas[1], kid="k1")], at=datetime.now(UTC))
    with zipfile.ZipFile(dst) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == ["0.payload", "0.manifest.json"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert all(i.flag_bits & 0x08 for i in infos)
        assert z.testzip() is None
        raw = z.read("0.manifest.json")
    assert raw.startswith(b'{"encryptionInformation":{"type":"split","policy":"')
    assert raw.endswith(b',"schemaVersion":"4.3.0"}')
    assert b'"method":{"algorithm":"AES-256-GCM","iv":"","isStreamable":true}' in raw
    assert (
        b'"keyAccess":[{"type":"wrapped","url":"https://kas","protocol":"kas","wrappedKey":' in raw
    )
    assert b'"kid":"k1","schemaVersion":"1.0"}' in raw


def test_garbage_is_invalid_container(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tdf"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidContainer) as exc:
        inspect(bad)
    assert str(exc.value) == "invalid container"
