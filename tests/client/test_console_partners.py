"""The USA node's console shows what GBR releases to its signed-in engineer, next to
its own documents, and opens it: the USA node vouches for the engineer with a key
it holds for the console, GBR decides and records. Two real nodes
(tests/client/conftest.py); the console is used with the engineer's DPoP-bound
access token (the browser's own sign-in is played in tests/product)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from relto.audit.entries import decode_entry
from relto.client import DpopKey
from relto.node import Node

from .conftest import Federation

pytestmark = pytest.mark.xdist_group("client-federation")

THERMAL = "Leading-edge ablation rates for flight 7, with the test matrix for flight 8."


class Console:
    """A console client presenting a DPoP-bound token, a fresh proof per request."""

    def __init__(self, federation: Federation, person: str) -> None:
        self.key = DpopKey.generate()
        self.token = federation.token(person, self.key)
        self.base = federation.usa.url

    def request(self, method: str, path: str, **kw: object) -> httpx.Response:
        url = self.base + path
        headers = {
            "Authorization": f"DPoP {self.token}",
            "DPoP": self.key.proof(method, url, access_token=self.token),
        }
        return httpx.request(method, url, headers=headers, timeout=20, **kw)  # type: ignore[arg-type]


def _kinds(node: Node, kind: str) -> list[dict[str, object]]:
    log = node.log
    entries = [decode_entry(e.body) for e in log.entries(0, log.size())]
    return [dict(e.payload) for e in entries if e.kind == kind]


def test_home_console_lists_partner_documents_next_to_its_own_naming_the_holder(
    federation: Federation,
) -> None:
    page = Console(federation, "usa-eng-ramirez").request("GET", "/console/documents")
    assert page.status_code == 200, page.text[:500]
    own = re.findall(r'data-document="([^"]+)"', page.text)
    partner = re.findall(r'data-partner-document="([^"]+)" data-held-by="([A-Z]+)"', page.text)
    assert "ai-sensor-fusion" in own  # USA's own
    assert ("hyp-thermal-protection", "GBR") in partner
    assert all(held == "GBR" for _, held in partner)
    # the page carries the highest marking it shows, partner documents included
    assert "SECRET" in re.search(r'class="banner[^"]*"[^>]*>([^<]+)<', page.text).group(1)  # type: ignore[union-attr]


def test_engineer_opens_a_gbr_document_from_the_usa_console(federation: Federation) -> None:
    me = Console(federation, "usa-eng-ramirez")
    doc = me.request("GET", "/console/partners/GBR/documents/hyp-thermal-protection")
    assert doc.status_code == 200 and "Held by the <strong>GBR</strong> node" in doc.text
    opened = me.request("POST", "/console/partners/GBR/documents/hyp-thermal-protection/open")
    assert opened.status_code == 200, opened.text[:500]
    assert 'id="decision-allowed"' in opened.text and THERMAL in opened.text
    release = _kinds(federation.gbr.node, "kas.rewrap")[-1]
    assert release["allowed"] is True and release["subject"] == "usa-eng-ramirez@USA"
    got = me.request("POST", "/console/partners/GBR/documents/hyp-thermal-protection/download")
    assert got.status_code == 200 and got.content.decode() == THERMAL
    assert got.headers["x-relto-marking"].startswith("SECRET//REL TO")


def test_denial_from_the_partner_shows_its_reasons_in_the_home_console(
    federation: Federation,
) -> None:
    officer = Console(federation, "usa-so-bennett")  # cleared, in no project
    r = officer.request("POST", "/console/partners/GBR/documents/hyp-thermal-protection/open")
    assert r.status_code == 403 and 'id="decision-denied"' in r.text
    codes = re.findall(r'<li data-code="([A-Z_a-z]+)">', r.text)
    assert "NO_NEED_TO_KNOW" in codes
    assert THERMAL not in r.text


def test_object_unknown_at_the_partner_is_not_found(federation: Federation) -> None:
    me = Console(federation, "usa-eng-ramirez")
    for path in (
        "/console/partners/GBR/documents/no-such-thing",
        "/console/partners/JPN/documents/hyp-thermal-protection",  # JPN is not pinned
        "/console/partners/gbr/documents/hyp-thermal-protection",
        "/console/partners/GBR/documents/%2E%2E%2Fapi",  # not an object id: never sent on
        "/console/partners/GBR/documents/" + "x" * 300,
    ):
        assert me.request("GET", path).status_code == 404, path


def test_joint_custody_object_opens_from_the_usa_console_only_with_both_keys(
    federation: Federation,
) -> None:
    """A GBR object in joint custody of GBR and USA: the USA console opens it with
    GBR's share (released by GBR to the attested engineer) and the USA share from
    its own KAS in-process; each KAS decided and recorded."""
    harper = federation.gbr.node.directory.principal("gbr-eng-harper", via="node")
    assert harper is not None
    doc = federation.gbr.node.documents.upload(
        harper, title="Jointly developed inlet", project_id="hypersonic",
        classification="SECRET", rel_to=["USA"], filename="joint.txt",
        media_type="text/plain", data=b"joint custody content", at=datetime.now(UTC),
        custody=["GBR", "USA"],
    )  # fmt: skip
    assert set(doc.custody) == {"GBR", "USA"}
    me = Console(federation, "usa-eng-ramirez")
    page = me.request("GET", f"/console/partners/GBR/documents/{doc.id}")
    custody = re.search(r'<dd id="doc-custody">([^<]+)</dd>', page.text)
    assert custody is not None and custody.group(1).startswith("GBR, USA")
    opened = me.request("POST", f"/console/partners/GBR/documents/{doc.id}/open")
    assert opened.status_code == 200, opened.text[:800]
    assert "joint custody content" in opened.text
    usa_release = _kinds(federation.usa.node, "kas.rewrap")[-1]
    assert usa_release["allowed"] is True and usa_release.get("custody") is True
    gbr_release = _kinds(federation.gbr.node, "kas.rewrap")[-1]
    assert gbr_release["allowed"] is True and gbr_release["subject"] == "usa-eng-ramirez@USA"


def test_dashboard_shows_the_pinned_partners_with_fingerprints(federation: Federation) -> None:
    page = Console(federation, "usa-eng-ramirez").request("GET", "/console")
    assert page.status_code == 200
    assert federation.gbr.node.federation is not None
    fingerprint = federation.gbr.node.federation.descriptors.fingerprint
    row = re.search(r'<tr data-pin="GBR">(.*?)</tr>', page.text, re.DOTALL)
    assert row is not None and fingerprint in row.group(1) and federation.gbr.url in row.group(1)


def test_person_refused_by_the_partner_sees_its_reasons_not_an_outage(
    federation: Federation,
) -> None:
    """Kim's clearance is under review at home: GBR refuses her attestation before
    any document; the console says so with GBR's reason, not "unavailable"."""
    kim = Console(federation, "usa-eng-kim")
    r = kim.request("GET", "/console/partners/GBR/documents/hyp-thermal-protection")
    assert r.status_code == 403 and 'id="decision-denied"' in r.text
    assert re.findall(r'<li data-code="([a-z_]+)">', r.text) == ["attestation_revoked"]
    listing = kim.request("GET", "/console/documents")
    assert 'data-partner-error="GBR"' in listing.text and "attestation_revoked" in listing.text


def test_partner_down_makes_only_its_documents_unavailable(federation: Federation) -> None:
    """Last in this module: the USA console then remembers GBR as down for 20 s."""
    me = Console(federation, "usa-eng-ramirez")
    federation.gbr.server.stop()
    try:
        page = me.request("GET", "/console/documents")
        assert page.status_code == 200
        assert 'data-partner-error="GBR"' in page.text and "GBR node unreachable" in page.text
        assert 'data-document="ai-sensor-fusion"' in page.text  # USA's own still listed
        r = me.request("POST", "/console/partners/GBR/documents/hyp-thermal-protection/open")
        assert r.status_code == 502 and "GBR key access service unreachable" in r.text
        # a dead partner is not asked again for a while: the page does not wait on it
        again = me.request("GET", "/console/documents")
        assert 'data-partner-error="GBR"' in again.text
    finally:
        federation.gbr.server.start()
