"""Hostile XML: external entities, DTD tricks, entity expansion, size and depth."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relto.cli.main import main
from relto.labels import load_spif, read_clearance, read_label, read_label_any
from relto.labels._xml import MAX_XML_BYTES, MAX_XML_DEPTH, parse_xml
from relto.labels.errors import LabelsError, SpifError, XmlRefused

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE l [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0">
<ConfidentialityInformation><PolicyIdentifier>&xxe;</PolicyIdentifier>
<Classification>SECRET</Classification></ConfidentialityInformation>
</originatorConfidentialityLabel>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<SPIF>&lol4;</SPIF>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE SPIF SYSTEM "http://127.0.0.1:9/evil.dtd">
<SPIF/>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>
<x/>"""

UTF16_DTD = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'.encode(
        "utf-16"
    )
)


@pytest.mark.parametrize(
    "payload",
    [XXE, LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY, UTF16_DTD],
    ids=["xxe", "billion-laughs", "external-dtd", "parameter-entity", "utf16-dtd"],
)
def test_dtd_and_entity_tricks_refused(payload: bytes) -> None:
    with pytest.raises(XmlRefused):
        parse_xml(payload, what="test")
    with pytest.raises(LabelsError):
        read_label(payload, lenient=True)
    with pytest.raises(SpifError):
        load_spif(payload, strict=False)


def test_external_entity_content_never_reaches_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label = tmp_path / "xxe.xml"
    label.write_bytes(XXE)
    code = main(["label", "marking", "--spif", "NATO", "--label", str(label)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "root:" not in out + err
    assert "DTD" in err


def test_oversized_document_refused() -> None:
    big = b"<x>" + b"a" * (MAX_XML_BYTES + 1) + b"</x>"
    with pytest.raises(XmlRefused, match="byte limit"):
        parse_xml(big, what="test")


def test_deep_nesting_refused() -> None:
    depth = MAX_XML_DEPTH + 1
    doc = b"<a>" * depth + b"</a>" * depth
    with pytest.raises(XmlRefused, match="nests deeper"):
        parse_xml(doc, what="test")
    ok = b"<a>" * (MAX_XML_DEPTH - 1) + b"</a>" * (MAX_XML_DEPTH - 1)
    assert parse_xml(ok, what="test").root is not None


def test_malformed_label_refused_with_position() -> None:
    with pytest.raises(XmlRefused, match="line"):
        read_label(b"<originatorConfidentialityLabel><oops></originatorConfidentialityLabel>")


def test_empty_input_refused() -> None:
    with pytest.raises(XmlRefused, match="no data to parse"):
        read_label(b"   ")


def test_strict_spif_load_refuses_malformed_xml(conformance_dir: Path) -> None:
    with pytest.raises(SpifError, match="not well-formed"):
        load_spif(conformance_dir / "spiffing" / "food-policy.xml", strict=True)
    lenient = load_spif(conformance_dir / "spiffing" / "food-policy.xml", strict=False)
    assert any("recovered" in w for w in lenient.warnings)


# -- arbitrary input only ever raises the domain error -----------------------------------


XMLISH = st.lists(
    st.sampled_from(
        [
            "<",
            ">",
            "/",
            "=",
            '"',
            "'",
            "&",
            ";",
            "<!DOCTYPE",
            "<!ENTITY",
            "<?xml",
            "?>",
            "originatorConfidentialityLabel",
            "ConfidentialityInformation",
            "Category",
            'xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"',
            "PolicyIdentifier",
            "Classification",
            "GenericValue",
            "TagName",
            "Type",
            "PERMISSIVE",
            "SPIF",
            "securityClassification",
            "lacv",
            "1",
            " ",
            "\n",
            "é",
        ]
    ),
    max_size=40,
).map(lambda parts: "".join(parts).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | XMLISH)
def test_readers_only_raise_domain_errors(data: bytes) -> None:
    for reader in (
        lambda d: read_label(d, lenient=True),
        lambda d: read_label_any(d, {}),
        lambda d: read_clearance(d, {}),
        lambda d: load_spif(d, strict=False),
    ):
        with contextlib.suppress(LabelsError):
            reader(data)
