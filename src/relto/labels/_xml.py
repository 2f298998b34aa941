"""Hardened XML parsing for everything relto.labels reads.

All XML in this package goes through :func:`parse_xml`: no DTD (a document type
declaration is refused outright), no entity expansion, no network, ``huge_tree``
off, and a bound on size and element depth. Recovery from well-formedness errors is
opt-in (spiffing-compatible lenient SPIF loading) and reported as warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from relto.labels.errors import XmlRefused

__all__ = ["MAX_XML_BYTES", "MAX_XML_DEPTH", "ParsedXml", "local_name", "parse_xml"]

#: Largest XML document accepted (bytes). SPIFs with every country are ~100 KiB.
MAX_XML_BYTES = 4 * 1024 * 1024
#: Deepest element nesting accepted. SPIFs nest about 8 deep.
MAX_XML_DEPTH = 48

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedXml:
    root: etree._Element
    warnings: tuple[str, ...]


def local_name(el: etree._Element) -> str:
    """The element's name without namespace (``''`` for comments and PIs)."""
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(el: etree._Element) -> str:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return ""


def parse_xml(
    data: bytes,
    *,
    what: str,
    recover: bool = False,
    max_bytes: int = MAX_XML_BYTES,
    max_depth: int = MAX_XML_DEPTH,
) -> ParsedXml:
    """Parse ``data`` safely; raise :class:`XmlRefused` naming ``what`` on any problem."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml expects bytes")
    data = bytes(data)
    if not data.strip():
        raise XmlRefused(f"{what}: no data to parse (empty input)")
    if len(data) > max_bytes:
        raise XmlRefused(f"{what}: {len(data)} bytes is over the {max_bytes} byte limit")
    if _DTD_RE.search(data):
        raise XmlRefused(f"{what}: DTDs and entity declarations are refused")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        recover=recover,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        msg = (exc.msg or "syntax error").split(",")[0]
        raise XmlRefused(
            f"{what}: not well-formed XML: {msg} (line {line}, column {col})"
        ) from None
    if root is None:
        raise XmlRefused(f"{what}: not well-formed XML: no root element")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRefused(f"{what}: DTDs and entity declarations are refused")
    depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if isinstance(el, etree._Entity) or el.tag is etree.Entity:
            raise XmlRefused(f"{what}: entity references are refused")
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise XmlRefused(
                    f"{what}: element <{local_name(el)}> nests deeper than {max_depth} levels"
                )
        else:
            depth -= 1
    warnings: tuple[str, ...] = ()
    if recover and len(parser.error_log):
        warnings = tuple(
            f"{what}: recovered from malformed XML: {e.message} (line {e.line}, column {e.column})"
            for e in parser.error_log
        )
    return ParsedXml(root=root, warnings=warnings)
