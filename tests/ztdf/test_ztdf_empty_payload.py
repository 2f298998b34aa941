"""Empty payloads: both forms OpenTDF writers use open, and neither lets a non-empty
payload be truncated to nothing.

The Go SDK (``sdk/tdf.go``: "empty payload we still want to create a payload")
writes one segment of 0 plaintext bytes (IV and tag, 28 bytes); the Java SDK does the
same; the JavaScript client and otdf-python write ``segments: []``. relto writes the
Go form and reads both. Either way the root signature (HMAC over the concatenated
segment hashes, here one hash or none) is checked with the key whose policy binding
verified.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relto.ztdf import InvalidContainer, KasTarget, open_container, private_key_unwrapper, protect

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _relto_container(src: Path, dst: Path, public_pem: str) -> Path:
    protect(src, dst, kas=[KasTarget("https://kas.example/kas", public_pem, kid="r1")], at=AT)
    return dst


def _parts(container: Path) -> tuple[dict[str, Any], bytes]:
    with zipfile.ZipFile(container) as z:
        return json.loads(z.read("0.manifest.json")), z.read("0.payload")


def _write(dst: Path, manifest: dict[str, Any], payload: bytes) -> Path:
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("0.payload", payload)
        z.writestr("0.manifest.json", json.dumps(manifest).encode())
    return dst


def test_relto_writes_an_empty_file_as_one_empty_segment_like_the_go_sdk(
    make_file: Any, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    c = _relto_container(make_file(b""), tmp_path / "e.tdf", rsa_kas[1])
    m, payload = _parts(c)
    segments = m["encryptionInformation"]["integrityInformation"]["segments"]
    assert len(segments) == 1
    assert segments[0]["segmentSize"] == 0
    assert segments[0]["encryptedSegmentSize"] == 28
    assert len(payload) == 28
    out = tmp_path / "out"
    result = open_container(c, out, unwrap=private_key_unwrapper(rsa_kas[0]))
    assert out.read_bytes() == b""
    assert result.plaintext_size == 0


def test_otdf_python_empty_container_with_no_segments_opens(
    rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    from otdf_python.config import KASInfo, TDFConfig
    from otdf_python.tdf import TDF

    logging.getLogger("otdf_python").setLevel(logging.CRITICAL)
    buf = io.BytesIO()
    config = TDFConfig(
        kas_info_list=[KASInfo(url="https://kas.example/kas", public_key=rsa_kas[1], kid="r1")]
    )
    TDF(services=None).create_tdf(b"", config, output_stream=buf)
    c = tmp_path / "py.tdf"
    c.write_bytes(buf.getvalue())
    m, payload = _parts(c)
    assert m["encryptionInformation"]["integrityInformation"]["segments"] == []
    assert payload == b""
    out = tmp_path / "out"
    assert open_container(c, out, unwrap=private_key_unwrapper(rsa_kas[0])).plaintext_size == 0
    assert out.read_bytes() == b""


def test_non_empty_payload_truncated_to_no_segments_rejected(
    make_file: Any, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    c = _relto_container(make_file(b"x" * 40_000), tmp_path / "c.tdf", rsa_kas[1])
    m, _payload = _parts(c)
    m["encryptionInformation"]["integrityInformation"]["segments"] = []
    forged = _write(tmp_path / "forged.tdf", m, b"")
    with pytest.raises(InvalidContainer) as exc:
        open_container(forged, tmp_path / "out", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert exc.value.reason == "root signature does not verify"
    assert not (tmp_path / "out").exists()


def test_non_empty_payload_truncated_to_one_empty_segment_rejected(
    make_file: Any, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    """The empty segment of another container (same key is impossible; here: a fresh
    one) does not carry over: its hash is not under this container's root signature."""
    c = _relto_container(make_file(b"y" * 40_000), tmp_path / "c.tdf", rsa_kas[1])
    empty = _relto_container(make_file(b""), tmp_path / "e.tdf", rsa_kas[1])
    m, _ = _parts(c)
    em, epayload = _parts(empty)
    m["encryptionInformation"]["integrityInformation"]["segments"] = em["encryptionInformation"][
        "integrityInformation"
    ]["segments"]
    forged = _write(tmp_path / "forged.tdf", m, epayload)
    with pytest.raises(InvalidContainer):
        open_container(forged, tmp_path / "out", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert not (tmp_path / "out").exists()


def test_no_segments_but_payload_bytes_rejected(
    make_file: Any, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    """Zero segments promise an empty payload entry: bytes there are not ignored."""
    c = _relto_container(make_file(b""), tmp_path / "e.tdf", rsa_kas[1])
    m, payload = _parts(c)
    m["encryptionInformation"]["integrityInformation"]["segments"] = []
    forged = _write(tmp_path / "forged.tdf", m, payload)
    with pytest.raises(InvalidContainer) as exc:
        open_container(forged, tmp_path / "out", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert exc.value.reason == "segment sizes do not add up to the payload size"


def test_empty_root_signature_rejected(
    make_file: Any, rsa_kas: tuple[str, str], tmp_path: Path
) -> None:
    c = _relto_container(make_file(b""), tmp_path / "e.tdf", rsa_kas[1])
    m, _ = _parts(c)
    m["encryptionInformation"]["integrityInformation"]["segments"] = []
    m["encryptionInformation"]["integrityInformation"]["rootSignature"]["sig"] = ""
    forged = _write(tmp_path / "forged.tdf", m, b"")
    with pytest.raises(InvalidContainer) as exc:
        open_container(forged, tmp_path / "out", unwrap=private_key_unwrapper(rsa_kas[0]))
    assert exc.value.reason == "rootSignature.sig is empty"
