"""The export-control office's REST API (``/api/v1/export``).

Stops: export facts written by someone without the role, or by an officer of
another nation; bad or oversized facts half-written; a change without a
justification, or by a cookie session without its CSRF token; a path naming one
fact and a body another; a regulator's export that misses transfers, shows
another nation's, or reads a window wrongly.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from relto.config import Settings
from relto.events import MemorySink
from relto.export_control.records import COLUMNS, TransferRecord
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE

WHY = "Recorded for the export API test of this node."
DOC = "ai-sensor-fusion"  # USA, SECRET//REL TO USA, AUS, CAN, GBR, JPN, ai-autonomy
OFFICER = "usa-so-bennett"  # USA's security officer and export-control officer
API = "/api/v1/export"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the demo loaded once; each test starts from a copy."""
    folder = tmp_path_factory.mktemp("export-api-template")
    app = create_app(Settings(demo=True, data_dir=folder), sink=MemorySink())
    app.state.node.db.dispose()
    return folder


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def client(tmp_path: Path, template: Path, sink: MemorySink) -> Iterator[TestClient]:
    data = tmp_path / "data"
    shutil.copytree(template, data)
    app = create_app(Settings(demo=True, data_dir=data), sink=sink)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c
    app.state.node.db.dispose()


def sign_in(client: TestClient, person_id: str) -> dict[str, str]:
    """Sign in as a demo person; the headers a change needs (the CSRF token)."""
    client.cookies.clear()
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/login").text)
    assert found
    r = client.post("/login", data={"person_id": person_id, "csrf": found.group(1)})
    assert r.status_code == 303, r.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    signer = client.app.state.edge.auth.signer  # type: ignore[attr-defined]
    return {"x-csrf-token": signer.csrf(cookie)}


PARTIES: list[dict[str, Any]] = [
    {"id": "us-darpa", "kind": "organisation", "location": "USA", "ddtc_registered": True},
    {"id": "usa-eng-ramirez", "location": "USA", "nationalities": ["USA"],
     "organisation": "us-darpa", "ddtc_registered": True},
    {"id": "jpn-eng-sato", "location": "JPN", "nationalities": ["JPN"],
     "organisation": "jp-atla"},
]  # fmt: skip
LICENCE: dict[str, Any] = {
    "number": "DSP5-JPN-1",
    "regime": "ITAR",
    "kind": "DSP-5",
    "items": ["USML XI"],
    "organisations": ["us-darpa", "jp-atla"],
    "nationalities": ["JPN"],
    "end_use": "sensor fusion evaluation",
    "valid_from": "2026-01-01",
    "valid_until": "2030-01-01",
    "value_ceiling": "100",
}
LIST: dict[str, Any] = {
    "regime": "ITAR",
    "name": "Example excluded list",
    "version": "1",
    "source": "example data, not regulatory content",
    "entries": [{"pattern": "USML IV", "source": "example data"}],
}
BLOCK: dict[str, Any] = {
    "controlled": True,
    "kind": "technical_data",
    "regime": "ITAR",
    "usml_category": "XI",
    "usml_paragraph": "(a)(1)",
    "sender": "us-darpa",
    "value": "10",
}


UNCONTROLLED = {"controlled": False, "kind": "technical_data"}


def record_facts(client: TestClient) -> dict[str, str]:
    """USA's officer records, through the API, the facts under which Ramirez (ITAR
    126.7) and Sato (the DSP-5) may receive the document; the officer's headers."""
    h = sign_in(client, OFFICER)
    for party in PARTIES:
        r = client.put(f"{API}/parties/{party['id']}", json={"party": party, "justification": WHY},
                       headers=h)  # fmt: skip
        assert r.status_code == 200 and r.json() == {"id": party["id"]}, r.text
    r = client.post(f"{API}/lists", json={"list": LIST, "justification": WHY}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json() == {"regime": "ITAR", "name": "Example excluded list", "version": "1"}
    r = client.put(
        f"{API}/licences/DSP5-JPN-1", json={"licence": LICENCE, "justification": WHY}, headers=h
    )
    assert r.status_code == 200 and r.json() == {"number": "DSP5-JPN-1"}, r.text
    # a stated value needs the §123.15 amount for ITAR 126.7 (example figure)
    r = client.put(
        f"{API}/rules/ITAR",
        json={"rules": {"value_threshold": "1000"}, "justification": WHY},
        headers=h,
    )
    assert r.status_code == 200 and r.json() == {"regime": "ITAR"}, r.text
    r = client.put(
        f"{API}/items/{DOC}", json={"classification": BLOCK, "justification": WHY}, headers=h
    )
    assert r.status_code == 200 and r.json() == {"object_id": DOC, "version": 1}, r.text
    return h


def download(client: TestClient, person_id: str) -> int:
    """``person_id`` downloads the document through the node; the status."""
    sign_in(client, person_id)
    return client.get(f"/api/v1/objects/{DOC}/content").status_code


def facts(client: TestClient) -> dict[str, Any]:
    sign_in(client, OFFICER)
    r = client.get(f"{API}/facts")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_officer_records_every_fact_audited_and_reads_them_back(
    client: TestClient, sink: MemorySink
) -> None:
    record_facts(client)
    got = facts(client)
    assert got["items"][DOC]["usml_category"] == "XI"
    assert {p["id"] for p in got["parties"]} == {p["id"] for p in PARTIES}
    (lic,) = got["licences"]
    assert (lic["number"], lic["value_consumed"], lic["quantity_consumed"]) == (
        "DSP5-JPN-1",
        "0",
        0,
    )
    (lst,) = got["lists"]
    assert (lst["name"], lst["version"], lst["active"], lst["loaded_by"]) == (
        "Example excluded list",
        "1",
        True,
        OFFICER,
    )
    assert got["rules"]["ITAR"] == {"value_threshold": "1000"}
    assert got["pending"] == {}
    changes = [e.payload for e in sink.events if e.kind.startswith("export.")]
    assert [e["justification"] for e in changes] == [WHY] * 7
    assert {e["by"] for e in changes} == {OFFICER}
    kinds = [e.kind for e in sink.events if e.kind.startswith("export.")]
    assert kinds == [
        *["export.party.recorded"] * 3,
        "export.list.loaded",
        "export.licence.recorded",
        "export.rules.recorded",
        "export.classified",
    ]


def _written(sink: MemorySink) -> int:
    return sum(
        1 for e in sink.events if e.kind.startswith("export.") and "justification" in e.payload
    )


BAD_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    # the office's strict loaders refuse these: 422, nothing written
    ("PUT", f"/items/{DOC}", {"classification": {"controlled": True, "kind": "technical_data"}}),
    ("PUT", f"/items/{DOC}", {"classification": {"controlled": False, "kind": "weapon"}}),
    ("PUT", f"/items/{DOC}", {"classification": {**BLOCK, "colour": "red"}}),
    ("PUT", f"/items/{DOC}", {"classification": {**BLOCK, "sender": "nobody-recorded"}}),
    ("PUT", "/parties/x-1", {"party": {"id": "x-1", "location": "Atlantis"}}),
    ("PUT", "/parties/x-1", {"party": {"id": "x-1", "location": "USA", "debarred": "no"}}),
    ("PUT", "/licences/DSP5-JPN-1", {"licence": {**LICENCE, "valid_until": "2025-01-01"}}),
    ("PUT", "/licences/DSP5-JPN-1", {"licence": {**LICENCE, "value_consumed": "0"}}),
    ("PUT", "/licences/DSP5-JPN-1", {"licence": {**LICENCE, "value_ceiling": 1.5}}),
    ("POST", "/lists", {"list": LIST}),  # version 1 is loaded already
    ("POST", "/lists", {"list": {**LIST, "version": "2", "entries": [{"pattern": "x"}]}}),
    ("PUT", "/rules/ITAR", {"rules": {"value_threshold": "-1"}}),
    ("PUT", "/rules/ITAR", {"rules": {"colour": "red"}}),
    # the request's own shape: 422 before the office is asked
    ("PUT", "/rules/NOPE", {"rules": {}}),
    ("PUT", f"/items/{DOC}", {"classification": ["not", "a", "mapping"]}),
    ("PUT", f"/items/{DOC}", {"classification": BLOCK, "extra": 1}),
    ("POST", "/lists", {"list": LIST, "justification": "short"}),
    ("POST", "/lists", {"list": {**LIST, "version": "3"}, "justification": None}),
    # a path naming one fact, a body another
    ("PUT", "/parties/someone-else", {"party": PARTIES[0]}),
    ("PUT", "/parties/us-darpa", {"party": {k: v for k, v in PARTIES[0].items() if k != "id"}}),
    ("PUT", "/licences/OTHER-1", {"licence": LICENCE}),
]


def test_bad_facts_are_refused_with_422_and_nothing_is_written(
    client: TestClient, sink: MemorySink
) -> None:
    record_facts(client)
    before, written = facts(client), _written(sink)
    h = sign_in(client, OFFICER)
    for method, path, body in BAD_BODIES:
        r = client.request(method, API + path, json={"justification": WHY, **body}, headers=h)
        assert r.status_code == 422, (method, path, r.text)
        assert r.json()["error"]["code"] in ("invalid_input", "invalid_request"), r.text
    assert facts(client) == before
    assert _written(sink) == written


def test_a_fact_nested_too_deep_or_too_large_is_refused_before_the_office(
    client: TestClient, sink: MemorySink
) -> None:
    h = sign_in(client, OFFICER)
    deep: Any = "x"
    for _ in range(7):
        deep = [deep]
    for party in (
        {"id": "x-1", "location": "USA", "name": deep},
        {"id": "x-1", "location": "USA", "nationalities": ["USA"] * 50_001},
    ):
        r = client.put(f"{API}/parties/x-1", json={"party": party, "justification": WHY}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_request"
    assert _written(sink) == 0


def test_a_body_over_the_node_limit_is_refused_unread(client: TestClient) -> None:
    h = sign_in(client, OFFICER)
    big = {"id": "x-1", "location": "USA", "name": "x" * (2 << 20)}
    r = client.put(f"{API}/parties/x-1", json={"party": big, "justification": WHY}, headers=h)
    assert r.status_code == 413


@pytest.mark.parametrize(
    "person",
    [
        "usa-eng-ramirez",  # an engineer of the regime's nation
        "gbr-so-whitfield",  # another nation's security officer
        "gbr-aud-patel",  # another nation's auditor
    ],
)
def test_a_person_without_the_role_of_the_facts_nation_gets_not_found(
    client: TestClient, sink: MemorySink, person: str
) -> None:
    record_facts(client)
    before, written = facts(client), _written(sink)
    h = sign_in(client, person)
    changes = [
        ("PUT", f"/items/{DOC}", {"classification": UNCONTROLLED}),
        ("PUT", "/parties/usa-eng-ramirez", {"party": {**PARTIES[1], "debarred": True}}),
        ("PUT", "/licences/DSP5-JPN-1", {"licence": {**LICENCE, "value_ceiling": "1000000"}}),
        ("POST", "/lists", {"list": {**LIST, "version": "2", "entries": []}}),
        ("PUT", "/rules/ITAR", {"rules": {"value_threshold": "999999"}}),
    ]  # fmt: skip
    for method, path, body in changes:
        r = client.request(method, API + path, json={**body, "justification": WHY}, headers=h)
        assert r.status_code == 404, (path, r.text)
        error = r.json()["error"]
        assert (error["code"], error["message"]) == ("not_found", "not found")
    r = client.post(f"{API}/check", json={"person_id": "jpn-eng-sato", "object_id": DOC}, headers=h)
    assert r.status_code == 404
    assert facts(client) == before
    assert _written(sink) == written


def test_an_engineer_reads_no_facts_and_no_records(client: TestClient) -> None:
    sign_in(client, "usa-eng-ramirez")
    assert client.get(f"{API}/facts").status_code == 404
    assert client.get(f"{API}/records").status_code == 404


def test_signed_out_callers_are_asked_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    assert client.get(f"{API}/facts").status_code == 401
    assert client.get(f"{API}/records").status_code == 401
    r = client.put(f"{API}/rules/ITAR", json={"rules": {}, "justification": WHY})
    assert r.status_code == 401


def test_a_cookie_session_change_without_its_csrf_token_is_refused(
    client: TestClient, sink: MemorySink
) -> None:
    sign_in(client, OFFICER)
    r = client.put(f"{API}/parties/us-darpa", json={"party": PARTIES[0], "justification": WHY})
    assert r.status_code == 403
    assert _written(sink) == 0


def test_a_change_without_a_justification_is_refused(client: TestClient, sink: MemorySink) -> None:
    h = sign_in(client, OFFICER)
    r = client.put(f"{API}/parties/us-darpa", json={"party": PARTIES[0]}, headers=h)
    assert r.status_code == 422
    assert [p["loc"] for p in r.json()["error"]["problems"]] == [["body", "justification"]]
    assert _written(sink) == 0


def test_check_gives_the_legal_basis_or_every_missing_condition(client: TestClient) -> None:
    h = record_facts(client)
    r = client.post(
        f"{API}/check", json={"person_id": "usa-eng-ramirez", "object_id": DOC}, headers=h
    )
    assert r.status_code == 200, r.text
    ok = r.json()
    assert (ok["allowed"], ok["legal_basis"], ok["reasons"]) == (True, "ITAR 126.7", [])
    r = client.post(
        f"{API}/check",
        json={"person_id": "jpn-eng-sato", "object_id": DOC, "action": "download"},
        headers=h,
    )
    assert r.json()["legal_basis"] == "licence DSP-5 DSP5-JPN-1"
    assert r.json()["licence_number"] == "DSP5-JPN-1"
    # Whitfield is recorded nowhere: every missing condition is named
    r = client.post(
        f"{API}/check", json={"person_id": "gbr-so-whitfield", "object_id": DOC}, headers=h
    )
    denied = r.json()
    assert denied["allowed"] is False and denied["legal_basis"] is None
    codes = {x["code"] for x in denied["reasons"]}
    assert "party_not_recorded" in codes and len(codes) > 1
    assert all(x["sentence"] for x in denied["reasons"])
    for body in (
        {"person_id": "nobody-at-all", "object_id": DOC},
        {"person_id": "jpn-eng-sato", "object_id": "no-such-document"},
    ):
        assert client.post(f"{API}/check", json=body, headers=h).status_code == 404
    bad = {"person_id": "jpn-eng-sato", "object_id": DOC, "action": "steal"}
    assert client.post(f"{API}/check", json=bad, headers=h).status_code == 422


def test_an_unclassified_object_is_not_export_controlled(client: TestClient) -> None:
    h = sign_in(client, OFFICER)
    r = client.post(f"{API}/check", json={"person_id": "jpn-eng-sato", "object_id": DOC}, headers=h)
    assert r.status_code == 200
    assert [x["code"] for x in r.json()["reasons"]] == ["not_classified"]


def _records(client: TestClient, fmt: str, **window: str) -> tuple[Any, list[TransferRecord]]:
    sign_in(client, OFFICER)
    r = client.get(f"{API}/records", params={"format": fmt, **window})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    if fmt == "csv":
        return r, []
    return r, [TransferRecord.from_dict(d, d["record_id"]) for d in r.json()["records"]]


def test_records_export_as_csv_and_json_for_a_regulator(client: TestClient) -> None:
    record_facts(client)
    assert download(client, "usa-eng-ramirez") == 200
    assert download(client, "jpn-eng-sato") == 200
    assert download(client, "gbr-eng-harper") == 404  # not cleared for it: no record
    r, records = _records(client, "json")
    assert r.headers["content-type"] == "application/json"
    assert [x.recipient for x in records] == ["usa-eng-ramirez", "jpn-eng-sato"]
    assert [x.legal_basis for x in records] == ["ITAR 126.7", "licence DSP-5 DSP5-JPN-1"]
    assert all(x.document_id == DOC and x.decision_id for x in records)
    assert list(r.json()["records"][0]) == list(COLUMNS)
    r, _ = _records(client, "csv")
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="export-records\.csv"', r.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["recipient"] for x in rows] == ["usa-eng-ramirez", "jpn-eng-sato"]
    assert rows[1]["licence_number"] == "DSP5-JPN-1" and rows[1]["value"] == "10"
    assert rows[1]["recipient_nationalities"] == "JPN" and rows[0]["sme"] == "false"
    assert [int(x["record_id"]) for x in rows] == [x.record_id for x in records]
    # the licence counts the transfer made under it
    (lic,) = facts(client)["licences"]
    assert (lic["value_consumed"], lic["quantity_consumed"]) == ("10", 1)
    # another nation's auditor sees none of USA's records
    sign_in(client, "gbr-aud-patel")
    r = client.get(f"{API}/records", params={"format": "json"})
    assert r.status_code == 200 and json.loads(r.text) == {"records": []}


def test_records_window_includes_from_and_excludes_to(client: TestClient) -> None:
    record_facts(client)
    download(client, "usa-eng-ramirez")
    download(client, "jpn-eng-sato")
    _, (first, second) = _records(client, "json")
    a, b = first.at.isoformat(), second.at.isoformat()
    tick = timedelta(microseconds=1)
    windows = {
        (a, b): ["usa-eng-ramirez"],  # to is exclusive
        (b, (second.at + tick).isoformat()): ["jpn-eng-sato"],  # from is inclusive
        ((first.at + tick).isoformat(), ""): ["jpn-eng-sato"],
        ("", a): [],
        ((second.at + tick).isoformat(), ""): [],
        ("2026-01-01", "2100-01-01"): ["usa-eng-ramirez", "jpn-eng-sato"],
    }
    for (since, until), want in windows.items():
        r, got = _records(client, "json", **{"from": since, "to": until})
        assert [x.recipient for x in got] == want, (since, until)
    r, _ = _records(client, "csv", **{"from": "2026-01-01", "to": "2100-01-01"})
    assert (
        'filename="export-records-from-20260101T000000Z-to-21000101T000000Z.csv"'
        in (r.headers["content-disposition"])
    )


@pytest.mark.parametrize(
    "window",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01"},
        {"from": "2026-06-01T09:00:00"},  # no timezone
        {"from": "2026-06-02", "to": "2026-06-01"},
        {"from": "2026-06-01", "to": "2026-06-01"},
        {"format": "xml"},
    ],
)
def test_a_bad_records_window_or_format_is_refused(
    client: TestClient, window: dict[str, str]
) -> None:
    sign_in(client, OFFICER)
    r = client.get(f"{API}/records", params=window)
    assert r.status_code == 422, r.text
    assert "Traceback" not in r.text


def test_an_officer_of_another_nation_cannot_classify_its_object(
    client: TestClient, sink: MemorySink
) -> None:
    """Bennett is USA's officer; a GBR object's classification is GBR's to record."""
    h = sign_in(client, OFFICER)
    r = client.put(
        f"{API}/items/hyp-thermal-protection",
        json={"classification": UNCONTROLLED, "justification": WHY},
        headers=h,
    )
    assert r.status_code == 404
    assert _written(sink) == 0


def test_the_routes_are_in_the_openapi_document_with_their_permissions(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    want = {
        ("get", "/api/v1/export/facts"): "export:facts:read",
        ("put", "/api/v1/export/items/{object_id}"): "export:facts:write",
        ("put", "/api/v1/export/parties/{party_id}"): "export:facts:write",
        ("put", "/api/v1/export/licences/{number}"): "export:facts:write",
        ("post", "/api/v1/export/lists"): "export:facts:write",
        ("put", "/api/v1/export/rules/{regime}"): "export:facts:write",
        ("post", "/api/v1/export/check"): "export:check",
        ("get", "/api/v1/export/records"): "export:records:read",
    }
    got = {
        (m, p): op["x-relto-permission"]
        for p, ops in spec["paths"].items()
        if p.startswith(API)
        for m, op in ops.items()
    }
    assert got == want
    content = spec["paths"][f"{API}/records"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "application/json"} <= set(content)


def test_facts_never_name_an_object_the_reader_may_not_know_of(client: TestClient) -> None:
    """A USA-only object's classification is not shown to another nation's auditor."""
    h = sign_in(client, "usa-eng-ramirez")
    r = client.post(
        "/api/v1/objects",
        data={"title": "US only", "project_id": "hypersonic", "classification": "SECRET",
              "rel_to": []},
        files={"file": ("us.txt", b"us only", "text/plain")},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    secret_id = r.json()["id"]
    h = record_facts(client)
    r = client.put(
        f"{API}/items/{secret_id}",
        json={"classification": {**BLOCK, "value": None}, "justification": WHY},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert secret_id in client.get(f"{API}/facts").json()["items"]
    sign_in(client, "gbr-aud-patel")
    seen = client.get(f"{API}/facts")
    assert seen.status_code == 200, seen.text
    assert secret_id not in seen.text
