"""The shipped SPIFs state each equivalence once (sources merged into one comment)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

DATA = Path(__file__).resolve().parents[2] / "src" / "relto" / "labels" / "data"
NS = {"s": "http://www.xmlspif.org/spif"}


@pytest.mark.parametrize("spif", sorted(p.name for p in DATA.glob("*.xml") if p.name != "xml.xsd"))
def test_no_equivalence_repeated(spif: str) -> None:
    tree = etree.parse(str(DATA / spif))
    for cls in tree.iterfind(".//s:securityClassification", NS):
        pairs = [
            (e.get("policyRef"), e.get("lacv"))
            for e in cls.iterfind("s:equivalentClassification", NS)
        ]
        assert len(pairs) == len(set(pairs)), (spif, cls.get("name"), pairs)
