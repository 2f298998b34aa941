"""Export control on a node: officers record facts, the KAS decides on them, and
every allowed release of a controlled item leaves a transfer record.

Stops: a controlled item released with no legal basis or no record kept; a
licence's value ceiling overrun (by consecutive or concurrent transfers); an
officer of one nation changing another nation's export facts; a regulator's
export that misses records or shows another nation's; bad facts half-written.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.errors import AccessDenied, InvalidInput
from relto.events import MemorySink
from relto.export_control.errors import TransferRefused
from relto.export_control.records import TransferRecord, to_csv, to_json
from relto.export_office import ExportOffice

from .conftest import node_of, principal, sign_in

WHY = "Recorded for the export-control test of this node."
DOC = "ai-sensor-fusion"  # USA, SECRET//REL TO USA, AUS, CAN, GBR, JPN, ai-autonomy


def _office(client: TestClient) -> ExportOffice:
    office = node_of(client).exports
    assert office is not None
    return office


def _now() -> datetime:
    return datetime.now(UTC)


def _setup(
    client: TestClient,
    *,
    value: str | None = None,
    ceiling: str | None = None,
    partner: bool = True,
) -> None:
    """USA's export-control officer records the parties (Japan's engineer when
    ``partner``), a list, a licence for Japan, and classifies the document as ITAR
    technical data."""
    office = _office(client)
    bennett = principal(client, "usa-so-bennett")
    at = _now()
    for party in (
        {"id": "us-darpa", "kind": "organisation", "location": "USA", "ddtc_registered": True},
        {
            "id": "usa-eng-ramirez",
            "location": "USA",
            "nationalities": ["USA"],
            "organisation": "us-darpa",
            "ddtc_registered": True,
        },
    ):
        office.put_party(bennett, party, justification=WHY, at=at)
    if partner:
        office.put_party(
            bennett,
            {"id": "jpn-eng-sato", "location": "JPN", "nationalities": ["JPN"],
             "organisation": "jp-atla"},
            justification=WHY,
            at=at,
        )  # fmt: skip
    office.load_list(
        bennett,
        {
            "regime": "ITAR",
            "name": "Example excluded list",
            "version": "1",
            "source": "example data, not regulatory content",
            "entries": [{"pattern": "USML IV", "source": "example data"}],
        },
        justification=WHY,
        at=at,
    )
    licence: dict[str, Any] = {
        "number": "DSP5-JPN-1",
        "regime": "ITAR",
        "kind": "DSP-5",
        "items": ["USML XI"],
        "organisations": ["us-darpa", "jp-atla"],
        "nationalities": ["JPN"],
        "end_use": "sensor fusion evaluation",
        "valid_from": "2026-01-01",
        "valid_until": "2030-01-01",
    }
    if ceiling is not None:
        licence["value_ceiling"] = ceiling
    office.put_licence(bennett, licence, justification=WHY, at=at)
    block: dict[str, Any] = {
        "controlled": True,
        "kind": "technical_data",
        "regime": "ITAR",
        "usml_category": "XI",
        "usml_paragraph": "(a)(1)",
        "sender": "us-darpa",
    }
    if value is not None:
        block["value"] = value
    office.classify(bennett, DOC, block, justification=WHY, at=at)


def _open(client: TestClient, person: str, action: str = "download") -> Any:
    """The person downloads the document: their own copy (issue 17), or ``None``."""
    node = node_of(client)
    return node.documents.download(principal(client, person), DOC, _now(), action=action)


def test_allowed_release_of_a_controlled_item_is_recorded_with_its_legal_basis(
    demo_app: TestClient, sink: MemorySink
) -> None:
    _setup(demo_app)
    doc, decision, plain = _open(demo_app, "usa-eng-ramirez")
    assert decision.allowed and plain is not None
    assert decision.legal_basis == "ITAR 126.7"
    records = _office(demo_app).records(principal(demo_app, "usa-so-bennett"))
    assert len(records) == 1
    r = records[0]
    assert (r.document_id, r.recipient, r.legal_basis) == (DOC, "usa-eng-ramirez", "ITAR 126.7")
    assert (r.sender, r.sender_organisation, r.recipient_organisation) == (
        "us-darpa",
        "us-darpa",
        "us-darpa",
    )
    assert r.designator == "USML XI(a)(1)" and r.regime == "ITAR"
    assert r.recipient_nationalities == ("USA",) and r.recipient_location == "USA"
    assert r.item_description == doc.title and r.decision_id
    kinds = sink.kinds()
    assert "export.transfer" in kinds and "export.classified" in kinds
    rewrap = [e.payload for e in sink.events if e.kind == "kas.rewrap"][-1]
    assert rewrap["object"] == DOC
    assert rewrap["legal_basis"] == "ITAR 126.7"
    assert rewrap["export_transfer"] == r.decision_id


def test_partner_without_licence_or_record_is_denied_with_every_missing_condition(
    demo_app: TestClient,
) -> None:
    _setup(demo_app, partner=False)
    office = _office(demo_app)
    bennett = principal(demo_app, "usa-so-bennett")
    # Japan is admitted and in Releasable To, but Sato has no party record
    _, decision, plain = _open(demo_app, "jpn-eng-sato")
    assert not decision.allowed and plain is None
    assert decision.codes == ("EXPORT_CONTROLLED",)
    text = decision.reasons[0].sentence
    assert "party_not_recorded" in text and "place_outside_aukus_territory" in text
    assert "recipient_organisation_not_covered" in text
    checked = office.check(bennett, "jpn-eng-sato", DOC, at=_now())
    assert not checked.allowed
    assert "party_not_recorded" in {r.code for r in checked.reasons}
    assert office.records(bennett) == []


def test_licence_value_ceiling_stops_the_transfer_that_would_overrun_it(
    demo_app: TestClient,
) -> None:
    _setup(demo_app, value="60", ceiling="100")
    _, first, _ = _open(demo_app, "jpn-eng-sato")
    assert first.allowed and first.legal_basis == "licence DSP-5 DSP5-JPN-1"
    summary = _office(demo_app).summary(principal(demo_app, "usa-so-bennett"))
    (lic,) = summary.licences
    assert (Decimal(lic["value_consumed"]), lic["quantity_consumed"]) == (Decimal(60), 1)
    _, second, plain = _open(demo_app, "jpn-eng-sato")
    assert not second.allowed and plain is None
    assert "licence_value_ceiling_reached" in second.reasons[0].sentence
    records = _office(demo_app).records(principal(demo_app, "usa-so-bennett"))
    assert [r.licence_number for r in records] == ["DSP5-JPN-1"]


def test_a_transfer_whose_licence_room_was_taken_meanwhile_is_refused_and_not_recorded(
    demo_app: TestClient,
) -> None:
    _setup(demo_app, value="60", ceiling="100")
    office = _office(demo_app)
    rec = TransferRecord(
        at=_now(),
        decision_id="race:1",
        action="read",
        document_id=DOC,
        item_description="x",
        regime="ITAR",
        designator="USML XI(a)(1)",
        item_kind="technical_data",
        sme=False,
        sender="us-darpa",
        sender_organisation="us-darpa",
        recipient="jpn-eng-sato",
        recipient_organisation="jp-atla",
        recipient_nationalities=("JPN",),
        recipient_location="JPN",
        legal_basis="licence DSP-5 DSP5-JPN-1",
        licence_number="DSP5-JPN-1",
        value=Decimal(60),
    )
    office.record_transfers([(rec, "USA")])  # the decision that took the room
    with pytest.raises(TransferRefused):
        office.record_transfers([(rec, "USA")])  # decided on the old consumption
    bennett = principal(demo_app, "usa-so-bennett")
    assert len(office.records(bennett)) == 1
    (lic,) = office.summary(bennett).licences
    assert Decimal(lic["value_consumed"]) == Decimal(60)


def test_officer_of_another_nation_cannot_change_usa_export_facts(demo_app: TestClient) -> None:
    _setup(demo_app)
    office = _office(demo_app)
    whitfield = principal(demo_app, "gbr-so-whitfield")
    ramirez = principal(demo_app, "usa-eng-ramirez")
    block = {"controlled": False, "kind": "technical_data"}
    for who in (whitfield, ramirez):
        with pytest.raises(AccessDenied):
            office.classify(who, DOC, block, justification=WHY, at=_now())
    with pytest.raises(AccessDenied):
        office.put_party(
            whitfield,
            {"id": "usa-eng-ramirez", "location": "USA", "debarred": True},
            justification=WHY,
            at=_now(),
        )
    item = office.summary(principal(demo_app, "usa-so-bennett")).items[DOC]
    assert item["controlled"] is True


def test_bad_facts_are_refused_and_nothing_is_written(demo_app: TestClient) -> None:
    _setup(demo_app)
    office = _office(demo_app)
    bennett = principal(demo_app, "usa-so-bennett")
    before = office.summary(bennett)
    bad_blocks: list[dict[str, Any]] = [
        {"controlled": True, "kind": "technical_data"},  # no regime
        {"controlled": True, "kind": "technical_data", "regime": "ITAR"},  # no category
        {"controlled": True, "kind": "weapon", "regime": "ITAR", "usml_category": "XI"},
        {"controlled": False, "kind": "technical_data", "colour": "red"},
        {"controlled": True, "kind": "technical_data", "regime": "ITAR", "usml_category": "xi"},
        {"controlled": True, "kind": "technical_data", "regime": "ITAR", "usml_category": "XI",
         "usml_paragraph": "a"},
        {"controlled": True, "kind": "hardware", "regime": "ITAR", "usml_category": "XI",
         "sender": "nobody-recorded"},
    ]  # fmt: skip
    for block in bad_blocks:
        with pytest.raises(InvalidInput):
            office.classify(bennett, DOC, block, justification=WHY, at=_now())
    with pytest.raises(InvalidInput):
        office.put_licence(
            bennett,
            {"number": "X", "regime": "ITAR", "kind": "DSP-5", "items": [], "organisations": [],
             "nationalities": [], "end_use": "x", "valid_from": "2026-01-01",
             "valid_until": "2025-01-01"},
            justification=WHY,
            at=_now(),
        )  # fmt: skip
    with pytest.raises(InvalidInput):  # a version is loaded once
        office.load_list(
            bennett,
            {"regime": "ITAR", "name": "Example excluded list", "version": "1",
             "source": "x", "entries": []},
            justification=WHY,
            at=_now(),
        )  # fmt: skip
    assert office.summary(bennett) == before


def test_records_export_for_a_regulator_in_csv_and_json(demo_app: TestClient) -> None:
    _setup(demo_app, value="10")
    bennett = principal(demo_app, "usa-so-bennett")
    # a stated value needs the §123.15 amount for ITAR 126.7 (example figure)
    _office(demo_app).put_rules(
        bennett, "ITAR", {"value_threshold": "1000"}, justification=WHY, at=_now()
    )
    _open(demo_app, "usa-eng-ramirez")
    _open(demo_app, "jpn-eng-sato")
    office = _office(demo_app)
    records = office.records(principal(demo_app, "usa-so-bennett"))
    assert [r.recipient for r in records] == ["usa-eng-ramirez", "jpn-eng-sato"]
    rows = list(csv.DictReader(io.StringIO(to_csv(records))))
    assert [r["legal_basis"] for r in rows] == ["ITAR 126.7", "licence DSP-5 DSP5-JPN-1"]
    assert rows[1]["licence_number"] == "DSP5-JPN-1" and rows[1]["value"] == "10"
    assert rows[1]["recipient_nationalities"] == "JPN"
    data = json.loads(to_json(records))["records"]
    assert [TransferRecord.from_dict(d, d["record_id"]) for d in data] == records
    # a time window
    later = office.records(principal(demo_app, "usa-so-bennett"), since=_now())
    assert later == []
    # another nation's auditor sees none of USA's records
    assert office.records(principal(demo_app, "gbr-aud-patel")) == []


def test_csv_cells_cannot_run_as_spreadsheet_formulas() -> None:
    rec = TransferRecord(
        at=datetime(2026, 6, 1, tzinfo=UTC),
        decision_id="d",
        action="read",
        document_id="doc",
        item_description='=HYPERLINK("http://x")',
        regime="ITAR",
        designator="USML XI",
        item_kind="technical_data",
        sme=False,
        sender="s",
        sender_organisation="o",
        recipient="-r",
        recipient_organisation="o",
        recipient_nationalities=("USA",),
        recipient_location="USA",
        legal_basis="ITAR 126.7",
    )
    row = next(csv.DictReader(io.StringIO(to_csv([rec]))))
    assert row["item_description"].startswith("'=") and row["recipient"] == "'-r"


def test_what_if_on_the_stored_export_facts(demo_app: TestClient) -> None:
    _setup(demo_app)
    node = node_of(demo_app)
    bennett = principal(demo_app, "usa-so-bennett")
    expiring = node.documents.what_if(bennett, ["licence-expire:DSP5-JPN-1"], _now())
    assert expiring.lost_elsewhere == {"JPN": 1} and expiring.gained_elsewhere == {}
    excluded = node.documents.what_if(bennett, ["exclude:ITAR:USML XI"], _now())
    assert ("usa-eng-ramirez", DOC) in excluded.lost  # 126.7 no longer applies
    assert excluded.lost_elsewhere == {}  # Japan's licence still covers it
    with pytest.raises(InvalidInput):
        node.documents.what_if(bennett, ["licence-expire:NO-SUCH"], _now())


def test_api_upload_to_an_export_relevant_project_is_refused_and_stores_nothing(
    demo_app: TestClient,
) -> None:
    """The REST route cannot ask for a classification, so an object of an
    export-relevant project never enters through it unclassified."""
    csrf = sign_in(demo_app, "gbr-eng-harper")
    before = demo_app.get("/api/v1/objects", params={"limit": 200}).json()["total"]
    r = demo_app.post(
        "/api/v1/objects",
        data={"title": "Hull drawing", "project_id": "undersea", "classification": "SECRET",
              "rel_to": ["USA", "AUS"]},
        files={"file": ("hull.txt", b"hull drawing", "text/plain")},
        headers={"x-csrf-token": csrf},
    )  # fmt: skip
    assert r.status_code == 422, r.text
    assert "export relevant" in r.json()["error"]["message"]
    assert demo_app.get("/api/v1/objects", params={"limit": 200}).json()["total"] == before
