"""Containers the OpenTDF JavaScript client wrote (tests/data/ztdf-js) open byte for byte.

These run without npm; ``tests/interop/test_js_client.py`` writes fresh ones with the
live client. What the client writes that relto must accept: ``payload.schemaVersion``
(an unknown field in an open object), ``segments: []`` for an empty input, the legacy
hex integrity encoding and the bare-string policy binding.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from relto.ztdf import InvalidContainer, inspect, open_container, private_key_unwrapper

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "ztdf-js"
SIZES = {"empty": 0, "one-byte": 1, "one-segment": 16384, "multi-segment": 3 * 16384 + 100}


def plaintext(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


@pytest.fixture(scope="module")
def private_pem() -> str:
    return (FIXTURES / "kas-rsa-private.pem").read_text()


def _rebuild(src: Path, dst: Path, edit: Any, payload: bytes | None = None) -> Path:
    with zipfile.ZipFile(src) as z:
        m = json.loads(z.read("0.manifest.json"))
        original = z.read("0.payload")
    edit(m)
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("0.payload", original if payload is None else payload)
        z.writestr("0.manifest.json", json.dumps(m).encode())
    return dst


@pytest.mark.parametrize("name", sorted(SIZES))
def test_js_client_container_opens_byte_for_byte(
    name: str, private_pem: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{name}.out"
    result = open_container(
        FIXTURES / f"{name}.tdf", out, unwrap=private_key_unwrapper(private_pem)
    )
    assert out.read_bytes() == plaintext(SIZES[name])
    assert result.plaintext_size == SIZES[name]
    assert result.manifest.legacy  # the JS client writes the hex (legacy) encoding


def test_js_client_writes_what_the_fixtures_say(private_pem: str) -> None:
    with zipfile.ZipFile(FIXTURES / "empty.tdf") as z:
        m = json.loads(z.read("0.manifest.json"))
    assert m["payload"]["schemaVersion"] == "3.0.0"
    assert m["encryptionInformation"]["integrityInformation"]["segments"] == []
    assert inspect(FIXTURES / "empty.tdf")["segments"] == 0


def test_empty_js_container_with_forged_root_signature_rejected(
    private_pem: str, tmp_path: Path
) -> None:
    """Zero segments are still bound: the root signature over no segment hashes is
    checked with the policy-bound key, so it cannot be made up."""

    def forge(m: dict[str, Any]) -> None:
        ii = m["encryptionInformation"]["integrityInformation"]
        ii["rootSignature"]["sig"] = "QUFBQQ=="

    c = _rebuild(FIXTURES / "empty.tdf", tmp_path / "c.tdf", forge)
    with pytest.raises(InvalidContainer) as exc:
        open_container(c, tmp_path / "out", unwrap=private_key_unwrapper(private_pem))
    assert exc.value.reason == "root signature does not verify"
    assert not (tmp_path / "out").exists()


def test_js_container_truncated_to_empty_rejected(private_pem: str, tmp_path: Path) -> None:
    """An attacker drops every segment (and the payload) of a non-empty container,
    keeping its valid root signature: that signature covers the dropped hashes."""

    def truncate(m: dict[str, Any]) -> None:
        m["encryptionInformation"]["integrityInformation"]["segments"] = []

    c = _rebuild(FIXTURES / "multi-segment.tdf", tmp_path / "c.tdf", truncate, payload=b"")
    with pytest.raises(InvalidContainer) as exc:
        open_container(c, tmp_path / "out", unwrap=private_key_unwrapper(private_pem))
    assert exc.value.reason == "root signature does not verify"
    assert not (tmp_path / "out").exists()
