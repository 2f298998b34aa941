"""relto protect / open / inspect: exit codes, no output on failure, interop through the CLI."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from relto.cli.main import main
from relto.ztdf.online import KasUnavailable, fetch_kas_public_key


@pytest.fixture()
def keys(tmp_path: Path, rsa_kas: tuple[str, str]) -> tuple[Path, Path]:
    priv, pub = tmp_path / "kas.key", tmp_path / "kas.pub"
    priv.write_text(rsa_kas[0])
    pub.write_text(rsa_kas[1])
    return priv, pub


def _protect(src: Path, out: Path, pub: Path, *extra: str) -> int:
    return main(
        [
            "protect",
            str(src),
            "--label",
            "SECRET//REL TO USA, GBR",
            "--project",
            "QUANTUM",
            "-o",
            str(out),
            "--kas-public-key",
            str(pub),
            "--kid",
            "r1",
            "--kas-url",
            "https://kas.gbr.example/kas",
            *extra,
        ]
    )


def test_protect_inspect_open_round_trip(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"design notes" * 1000)
    tdf, out = tmp_path / "doc.tdf", tmp_path / "doc.out"
    assert _protect(src, tdf, keys[1]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tdf)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["verified"] is False
    assert info["keyAccess"][0]["url"] == "https://kas.gbr.example/kas"
    assert info["keyAccess"][0]["kid"] == "r1"
    assert (
        "https://relto.example/attr/project/value/quantum"
        in info["unverified_policy"]["attributes"]
    )
    assert "<Classification>SECRET</Classification>" in info["unverified_label_xml"]
    assert main(["open", str(tdf), "-o", str(out), "--private-key", str(keys[0])]) == 0
    assert out.read_bytes() == src.read_bytes()


def test_open_tampered_container_fails_without_output(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x" * 5000)
    tdf, out = tmp_path / "doc.tdf", tmp_path / "doc.out"
    assert _protect(src, tdf, keys[1]) == 0
    data = bytearray(tdf.read_bytes())
    data[100] ^= 1
    tdf.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["open", str(tdf), "-o", str(out), "--private-key", str(keys[0])]) == 1
    err = capsys.readouterr().err
    assert "invalid container" in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "doc.tdf",
        "doc.txt",
        "kas.key",
        "kas.pub",
    ]


def test_open_with_wrong_key_fails(tmp_path: Path, keys: tuple[Path, Path], rsa_kas2) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    tdf = tmp_path / "doc.tdf"
    assert _protect(src, tdf, keys[1]) == 0
    other = tmp_path / "other.key"
    other.write_text(rsa_kas2[0])
    assert main(["open", str(tdf), "-o", str(tmp_path / "o"), "--private-key", str(other)]) == 1
    assert not (tmp_path / "o").exists()


def test_bad_marking_fails_without_output(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    tdf = tmp_path / "doc.tdf"
    rc = main(
        [
            "protect",
            str(src),
            "--label",
            "SECRET//REL TO XXQ",
            "-o",
            str(tdf),
            "--kas-public-key",
            str(keys[1]),
        ]
    )
    assert rc != 0
    assert not tdf.exists()


def test_protect_needs_a_kas(tmp_path: Path) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    assert main(["protect", str(src), "--label", "SECRET", "-o", str(tmp_path / "o.tdf")]) != 0
    assert not (tmp_path / "o.tdf").exists()


def test_inspect_garbage_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tdf"
    bad.write_bytes(b"not a zip at all")
    assert main(["inspect", str(bad)]) == 1


def test_cli_container_decrypts_in_otdf_python(
    tmp_path: Path, keys: tuple[Path, Path], rsa_kas
) -> None:
    from otdf_python.tdf import TDF, TDFReaderConfig

    src = tmp_path / "doc.bin"
    src.write_bytes(bytes(range(256)) * 9000)
    tdf = tmp_path / "doc.tdf"
    assert _protect(src, tdf, keys[1]) == 0
    reader = TDF().load_tdf(tdf.read_bytes(), TDFReaderConfig(kas_private_key=rsa_kas[0]))
    assert reader.payload == src.read_bytes()


def test_otdf_python_container_opens_through_cli(
    tmp_path: Path, keys: tuple[Path, Path], rsa_kas
) -> None:
    from otdf_python.config import KASInfo, TDFConfig
    from otdf_python.tdf import TDF

    cfg = TDFConfig(
        kas_info_list=[KASInfo(url="https://kas", public_key=rsa_kas[1])], autoconfigure=False
    )
    _m, _s, buf = TDF().create_tdf(b"from otdf-python", cfg)
    tdf = tmp_path / "py.tdf"
    tdf.write_bytes(buf.getvalue())
    out = tmp_path / "py.out"
    assert main(["open", str(tdf), "-o", str(out), "--private-key", str(keys[0])]) == 0
    assert out.read_bytes() == b"from otdf-python"


# ------------------------------------------------------------- online public key


def _kas_transport(pub_pem: str, seen: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/kas.AccessService/PublicKey":
            assert json.loads(request.content)["algorithm"] == "rsa:2048"
            return httpx.Response(200, json={"publicKey": pub_pem, "kid": "r7"})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def test_fetch_public_key_tries_kas_path_then_root(rsa_kas) -> None:
    seen: list[str] = []
    pem, kid = fetch_kas_public_key(
        "https://kas.example/kas", transport=_kas_transport(rsa_kas[1], seen)
    )
    assert pem == rsa_kas[1] and kid == "r7"
    assert seen == [
        "https://kas.example/kas/kas.AccessService/PublicKey",
        "https://kas.example/kas.AccessService/PublicKey",
    ]


def test_fetch_public_key_rejects_garbage_key() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"publicKey": "nope"}))
    with pytest.raises(KasUnavailable):
        fetch_kas_public_key("https://kas.example", transport=transport)


def test_relto_zip_is_plain_stored_zip(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"abc")
    tdf = tmp_path / "doc.tdf"
    assert _protect(src, tdf, keys[1]) == 0
    with zipfile.ZipFile(tdf) as z:
        assert z.namelist() == ["0.payload", "0.manifest.json"]


def test_open_without_key_or_kas_is_a_usage_error(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELTO_KAS_URL", raising=False)
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    tdf = tmp_path / "doc.tdf"
    assert _protect(src, tdf, keys[1]) == 0
    assert main(["open", str(tdf), "-o", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_online_protect_fetches_the_kas_public_key(
    tmp_path: Path, keys: tuple[Path, Path], rsa_kas, capsys: pytest.CaptureFixture[str]
) -> None:
    """`relto protect --kas-url` asks the KAS for its key (a stub KAS on 127.0.0.1)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Kas(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            if self.path != "/kas.AccessService/PublicKey":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"publicKey": rsa_kas[1], "kid": "srv-1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Kas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kas_url = f"http://127.0.0.1:{server.server_address[1]}/kas"
        src = tmp_path / "doc.txt"
        src.write_bytes(b"online")
        tdf = tmp_path / "doc.tdf"
        rc = main(["protect", str(src), "--label", "SECRET", "-o", str(tdf), "--kas-url", kas_url])
        assert rc == 0
    finally:
        server.shutdown()
        server.server_close()
    capsys.readouterr()
    assert main(["inspect", str(tdf)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["keyAccess"][0] == {
        "type": "wrapped",
        "url": kas_url,
        "kid": "srv-1",
        "sid": "",
        "protocol": "kas",
    }
    out = tmp_path / "o"
    assert main(["open", str(tdf), "-o", str(out), "--private-key", str(keys[0])]) == 0
    assert out.read_bytes() == b"online"


def _protect_offline(src: Path, out: Path, pub: Path, *extra: str) -> int:
    label = "SECRET//REL TO USA, GBR"
    return main(
        [
            "protect",
            str(src),
            "--label",
            label,
            "-o",
            str(out),
            "--kas-public-key",
            str(pub),
            *extra,
        ]
    )


def test_offline_protect_without_kas_url_refused_not_pointed_at_a_placeholder(
    tmp_path: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container naming a made-up KAS (``http://localhost:8080/kas``) could never be
    opened online, and nobody would notice until it mattered."""
    monkeypatch.delenv("RELTO_KAS_URL", raising=False)
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    capsys.readouterr()
    assert _protect_offline(src, tmp_path / "o.tdf", keys[1]) == 2
    err = capsys.readouterr().err
    assert "--kas-public-key needs --kas-url (or RELTO_KAS_URL)" in err
    assert not (tmp_path / "o.tdf").exists()


def test_offline_protect_names_the_configured_kas(
    tmp_path: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELTO_KAS_URL", "https://kas.gbr.example/kas")
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    assert _protect_offline(src, tmp_path / "o.tdf", keys[1]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "o.tdf")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [ka["url"] for ka in info["keyAccess"]] == ["https://kas.gbr.example/kas"]


def test_offline_protect_refuses_an_ambiguous_kas_setting(
    tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_KAS_URL", "https://a.example/kas,https://b.example/kas")
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    assert _protect_offline(src, tmp_path / "o.tdf", keys[1]) == 2
    assert not (tmp_path / "o.tdf").exists()


def test_inspect_prints_the_readable_marking(
    tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    assert _protect(src, tmp_path / "o.tdf", keys[1], "--originator", "USA") == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "o.tdf")]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["unverified_marking"] == "SECRET//REL TO USA, GBR"
    assert "marking (unverified): SECRET//REL TO USA, GBR" in captured.err


def test_inspect_of_a_foreign_label_says_why_there_is_no_marking(tmp_path: Path) -> None:
    """A label in a scheme relto does not ship is shown as XML, with the reason."""
    from relto.cli.ztdf import _unverified_marking

    foreign = (
        '<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:'
        'confidentialitymetadatalabel:1:0"><ConfidentialityInformation>'
        "<PolicyIdentifier>ACME</PolicyIdentifier><Classification>SECRET</Classification>"
        "</ConfidentialityInformation></originatorConfidentialityLabel>"
    )
    marking, why_not = _unverified_marking(foreign)
    assert marking is None
    assert why_not is not None and "ACME" in why_not


@pytest.mark.parametrize("encoding", ["raw", "hex"])
def test_both_integrity_encodings_round_trip(
    encoding: str, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(bytes(range(256)) * 300)
    tdf, out = tmp_path / "doc.tdf", tmp_path / "doc.out"
    assert _protect(src, tdf, keys[1], "--integrity-encoding", encoding) == 0
    with zipfile.ZipFile(tdf) as z:
        m = json.loads(z.read("0.manifest.json"))
    ii = m["encryptionInformation"]["integrityInformation"]
    seg_hash = base64.b64decode(ii["segments"][0]["hash"])
    root_sig = base64.b64decode(ii["rootSignature"]["sig"])
    if encoding == "hex":
        assert "schemaVersion" not in m
        assert len(seg_hash) == 32 and bytes.fromhex(seg_hash.decode())  # hex of a GCM tag
        assert len(root_sig) == 64 and bytes.fromhex(root_sig.decode())  # hex of HMAC-SHA256
    else:
        assert m["schemaVersion"] == "4.3.0"
        assert (len(seg_hash), len(root_sig)) == (16, 32)
    assert main(["open", str(tdf), "-o", str(out), "--private-key", str(keys[0])]) == 0
    assert out.read_bytes() == src.read_bytes()


def test_unknown_integrity_encoding_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    src = tmp_path / "doc.txt"
    src.write_bytes(b"x")
    assert _protect(src, tmp_path / "o.tdf", keys[1], "--integrity-encoding", "b64") == 2
    assert not (tmp_path / "o.tdf").exists()
