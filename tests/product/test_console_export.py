"""The export-control office in the console (issue 16): officers classify, record
parties, licences, lists and rules through ExportOffice (previewed, confirmed with
a justification, audited there); uploads to an export-relevant project are
withheld until an officer classifies them; the document page names the legal
basis a reader got it under.

Stops: an engineer or another nation's officer classifying an object; an object
of an export-relevant project released before an officer classified it; a
confirm form altered after its preview; bad facts half-written; YAML expansion
bombs; a reader of export facts getting the forms that change them.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from relto.cli.main import app
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.events import MemorySink
from relto.export_office import ExportOffice
from relto.partnership import NotPermitted
from relto.server.console._confirm import confirm_tokens
from relto.server.console.export import read_text

from .conftest import node_of, principal
from .console_steps import confirm_change, confirm_form

Login = Callable[[TestClient, str], str]
WHY = "Recorded for the export-control console test."
CLASSIFIED = {
    "controlled": "yes",
    "kind": "technical_data",
    "regime": "ITAR",
    "usml_category": "XI",
    "usml_paragraph": "(a)(1)",
}
LIST_YAML = """\
regime: ITAR
name: Example excluded list
version: "1"
source: example data, not regulatory content
entries:
  - {pattern: USML IV, source: example data}
"""


def _office(client: TestClient) -> ExportOffice:
    office = node_of(client).exports
    assert office is not None
    return office


def _flash(client: TestClient, r: Response) -> tuple[bool, str]:
    """Whether the page a form went back to shows a failure, and its message."""
    assert r.status_code == 303, (r.status_code, r.text[:300])
    page = client.get(r.headers["location"]).text
    found = re.search(r'<div class="flash (ok|bad)" role="status">(.*?)</div>', page, re.S)
    assert found, "no message on the page the form went back to"
    return found.group(1) == "bad", html.unescape(found.group(2))


def _record(client: TestClient, csrf: str, fact: str, form: dict[str, object]) -> Response:
    return confirm_change(client, f"/console/export/{fact}/preview", form, csrf, WHY)


def _upload(client: TestClient, csrf: str, project: str = "undersea", **export: object) -> Response:
    return client.post(
        "/console/documents/new",
        data={
            "csrf": csrf,
            "title": "Sonar array beam patterns",
            "project_id": project,
            "classification": "SECRET",
            "rel_to": ["GBR"],
            **{f"export_{k}": v for k, v in export.items()},
        },
        files={"file": ("beams.txt", b"beam pattern 3 dB at 40 degrees", "text/plain")},
    )


def _doc_id(r: Response) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return r.headers["location"].rsplit("/", 1)[1]


def _record_usa_facts(client: TestClient, csrf: str) -> None:
    """Bennett (USA's export-control officer) records DARPA, Ramirez and a list."""
    for party in (
        {"id": "us-darpa", "kind": "organisation", "location": "USA", "ddtc_registered": "on"},
        {"id": "usa-eng-ramirez", "kind": "person", "location": "usa", "nationalities": "USA",
         "organisation": "us-darpa", "ddtc_registered": "on"},
    ):  # fmt: skip
        bad, message = _flash(client, _record(client, csrf, "party", party))
        assert not bad, message
    bad, message = _flash(client, _record(client, csrf, "list", {"text": LIST_YAML}))
    assert not bad, message


def test_upload_to_an_export_relevant_project_is_never_released_before_an_officer_classifies_it(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "usa-eng-ramirez")
    form = demo_app.get("/console/documents/new").text
    assert 'id="export-classification"' in form  # the label picker asks for it
    assert "Undersea capabilities (export relevant)" in form
    r = _upload(demo_app, csrf, **CLASSIFIED)
    doc_id = _doc_id(r)
    bad, message = _flash(demo_app, r)
    assert not bad and "withheld until a USA export-control officer classifies it" in message
    # withheld from everyone, the uploader included, whatever the rest of the label says
    for person in ("usa-eng-ramirez", "gbr-eng-harper"):
        csrf = login(demo_app, person)
        opened = demo_app.post(f"/console/documents/{doc_id}/open", data={"csrf": csrf})
        assert 'id="decision-denied"' in opened.text and "3 dB at 40" not in opened.text
        assert 'data-code="EXPORT_CONTROLLED"' in opened.text
    proposed = [e.payload for e in sink.events if e.kind == "export.classification.proposed"]
    assert proposed and proposed[-1]["object"] == doc_id
    assert proposed[-1]["proposed"]["usml_category"] == "XI"

    # the officer sees the proposal, confirms it (adding the sender), and then it opens
    csrf = login(demo_app, "usa-so-bennett")
    _record_usa_facts(demo_app, csrf)
    page = demo_app.get("/console/export").text
    pending = page.split('id="export-pending"')[1].split("</table>")[0]
    assert f'data-object="{doc_id}"' in pending and "USML XI(a)(1)" in pending
    prefilled = demo_app.get(f"/console/export?confirm={doc_id}").text
    assert f'name="document_id" required maxlength="64" value="{doc_id}"' in prefilled
    assert 'name="usml_category" maxlength="10" value="XI"' in prefilled
    r = _record(
        demo_app,
        csrf,
        "classification",
        {**CLASSIFIED, "document_id": doc_id, "sender": "us-darpa"},
    )
    bad, message = _flash(demo_app, r)
    assert not bad and f"Classified {doc_id} (version 2)" in message
    assert _office(demo_app).summary(principal(demo_app, "usa-so-bennett")).pending == {}

    csrf = login(demo_app, "usa-eng-ramirez")
    opened = demo_app.post(f"/console/documents/{doc_id}/open", data={"csrf": csrf})
    assert 'id="decision-allowed"' in opened.text and "3 dB at 40" in opened.text
    assert "Released to you under <strong>ITAR 126.7</strong>" in opened.text


def test_upload_to_an_export_relevant_project_without_its_classification_stores_nothing(
    login: Login, demo_app: TestClient
) -> None:
    before = len(node_of(demo_app).documents.all_visible(principal(demo_app, "usa-eng-ramirez")))
    csrf = login(demo_app, "usa-eng-ramirez")
    missing = _upload(demo_app, csrf)
    assert missing.status_code == 422
    assert "undersea is export relevant: give the document&#39;s export classification" in (
        missing.text
    )
    no_designator = _upload(demo_app, csrf, controlled="yes", kind="technical_data", regime="ITAR")
    assert no_designator.status_code == 422 and "needs its USML category" in no_designator.text
    misspelt = _upload(demo_app, csrf, **{**CLASSIFIED, "usml_category": "xi"})
    assert misspelt.status_code == 422 and "write the USML category" in misspelt.text
    after = node_of(demo_app).documents.all_visible(principal(demo_app, "usa-eng-ramirez"))
    assert len(after) == before
    # a project that is not export relevant asks nothing and withholds nothing
    plain = _doc_id(_upload(demo_app, csrf, project="hypersonic"))
    assert plain not in _office(demo_app).summary(principal(demo_app, "usa-so-bennett")).items


def test_only_the_owner_marks_a_new_object_pending_and_never_over_an_officers_classification(
    login: Login, demo_app: TestClient
) -> None:
    office = _office(demo_app)
    csrf = login(demo_app, "usa-eng-ramirez")
    plain = _doc_id(_upload(demo_app, csrf, project="hypersonic"))
    block = {"controlled": False, "kind": "technical_data"}
    now = datetime.now(UTC)
    ramirez, kim = principal(demo_app, "usa-eng-ramirez"), principal(demo_app, "usa-eng-kim")
    with pytest.raises(InvalidInput, match="not export relevant"):
        office.mark_pending(ramirez, plain, block, at=now)
    doc_id = _doc_id(_upload(demo_app, csrf, controlled="no", kind="technical_data"))
    with pytest.raises(AccessDenied):
        office.mark_pending(kim, doc_id, block, at=now)
    with pytest.raises(InvalidInput, match="has an export classification already"):
        office.mark_pending(ramirez, doc_id, block, at=now)  # only once
    with pytest.raises(NotFound):
        office.mark_pending(ramirez, "no-such-object", block, at=now)
    bennett = principal(demo_app, "usa-so-bennett")
    office.classify(bennett, doc_id, block, justification=WHY, at=now)
    with pytest.raises(InvalidInput, match="has an export classification already"):
        office.mark_pending(ramirez, doc_id, block, at=now)
    assert doc_id not in office.summary(bennett).pending


def test_engineer_cannot_classify_even_with_a_confirm_form(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    page = demo_app.get("/console/export")
    assert page.status_code == 200 and 'id="classify-form"' not in page.text
    assert "shown to export-control officers" in page.text
    assert 'href="/console/export"' not in demo_app.get("/console").text  # no menu entry
    form = {**CLASSIFIED, "document_id": "hyp-thermal-protection", "csrf": csrf}
    bad, _ = _flash(demo_app, demo_app.post("/console/export/classification/preview", data=form))
    assert bad
    # a confirm form signed by this node still goes through the office, which refuses
    params = {
        "fact": "classification",
        "target": "hyp-thermal-protection",
        "record": json.dumps({"controlled": False, "kind": "technical_data"}),
    }
    token = confirm_tokens(node_of(demo_app).settings).issue("export.classification", params)
    r = demo_app.post(
        "/console/export/classification",
        data={**params, "confirm": token, "justification": WHY, "csrf": csrf},
    )
    bad, message = _flash(demo_app, r)
    assert bad and message == "Not found, or you may not make this change."
    assert "export.classified" not in sink.kinds()


def test_officer_of_another_nation_cannot_classify_an_object_it_did_not_originate(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "usa-so-bennett")  # USA's export-control officer
    form = {"document_id": "hyp-thermal-protection", "controlled": "no", "kind": "hardware"}
    bad, message = _flash(
        demo_app,
        demo_app.post("/console/export/classification/preview", data={**form, "csrf": csrf}),
    )
    assert bad and message == "Not found, or you may not make this change."
    assert "export.classified" not in sink.kinds()


def test_confirm_form_altered_after_its_preview_is_refused(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "usa-so-bennett")
    party = {"id": "us-darpa", "kind": "organisation", "location": "USA"}
    page = demo_app.post("/console/export/party/preview", data={**party, "csrf": csrf})
    assert page.status_code == 200 and "id: us-darpa" in page.text
    action, fields = confirm_form(page.text)
    data = dict(fields)
    record = json.loads(data["record"])
    data["record"] = json.dumps({**record, "ddtc_registered": True}, sort_keys=True)
    r = demo_app.post(action, data={**data, "justification": WHY})
    bad, message = _flash(demo_app, r)
    assert bad and "not previewed here" in message
    assert "export.party.recorded" not in sink.kinds()


def test_bad_facts_show_the_offices_message_and_write_nothing(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "usa-so-bennett")
    licence = {
        "number": "DSP5-BAD", "regime": "ITAR", "kind": "DSP-5", "items": "USML XI",
        "organisations": "us-darpa", "nationalities": "JPN", "end_use": "evaluation",
        "valid_from": "2027-01-01", "valid_until": "2026-01-01",
    }  # fmt: skip
    r = _record(demo_app, csrf, "licence", licence)
    assert r.status_code == 422 and 'id="preview-error"' in r.text
    assert "valid_until is not after valid_from" in r.text
    # a short justification is the office's refusal too, with the record kept to retry
    rules = {"regime": "ITAR", "value_threshold": "100", "csrf": csrf}
    page = demo_app.post("/console/export/rules/preview", data=rules)
    action, fields = confirm_form(page.text)
    r = demo_app.post(action, data={**dict(fields), "justification": "short"})
    assert r.status_code == 422 and 'id="confirm-form"' in r.text
    summary = _office(demo_app).summary(principal(demo_app, "usa-so-bennett"))
    assert summary.licences == [] and summary.rules == {}
    assert not {"export.licence.recorded", "export.rules.recorded"} & set(sink.kinds())


def test_lists_load_as_text_or_file_and_every_version_stays_on_record(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "usa-so-bennett")
    bad, message = _flash(demo_app, _record(demo_app, csrf, "list", {"text": LIST_YAML}))
    assert not bad and "version 1" in message
    v2 = json.dumps({
        "regime": "ITAR", "name": "Example excluded list", "version": "2",
        "source": "example data", "entries": [{"pattern": "USML XV", "source": "example"}],
    })  # fmt: skip
    page = demo_app.post(
        "/console/export/list/preview",
        data={"csrf": csrf, "text": ""},
        files={"file": ("list-v2.json", v2.encode(), "application/json")},
    )
    assert page.status_code == 200 and 'id="export-replaced"' in page.text  # replaces v1
    action, fields = confirm_form(page.text)
    bad, message = _flash(
        demo_app, demo_app.post(action, data={**dict(fields), "justification": WHY})
    )
    assert not bad and "version 2" in message
    table = demo_app.get("/console/export").text.split('id="export-lists"')[1]
    assert 'data-list="ITAR Example excluded list 1">' in table  # replaced, still listed
    assert 'data-list="ITAR Example excluded list 2" data-active="true"' in table
    again = _record(demo_app, csrf, "list", {"text": LIST_YAML})
    assert again.status_code == 422 and "version 1 of Example excluded list is already" in (
        again.text
    )


def test_yaml_with_anchors_and_aliases_is_refused_before_it_expands() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    with pytest.raises(InvalidInput, match="anchors and aliases"):
        read_text(bomb, "list")
    deep = "[" * 10 + "]" * 10
    with pytest.raises(InvalidInput, match="nested deeper"):
        read_text(deep, "list")
    with pytest.raises(InvalidInput, match="longer than"):
        read_text("x" * (300 * 1024), "list")


def test_readers_of_export_facts_see_them_without_the_forms(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "usa-so-bennett")
    _record_usa_facts(demo_app, csrf)
    login(demo_app, "gbr-aud-patel")  # a GBR auditor: reads facts and records
    page = demo_app.get("/console/export").text
    assert 'href="/console/export"' in page and 'id="export-items"' in page
    assert 'data-party="us-darpa"' in page and 'data-active="true"' in page
    assert 'id="classify-form"' not in page and 'id="export-check-form"' not in page
    assert 'id="records-link"' in page
    login(demo_app, "gbr-so-whitfield")  # a GBR security officer: reads facts, checks
    page = demo_app.get("/console/export").text
    assert 'id="export-check-form"' in page and 'id="classify-form"' not in page
    assert 'id="records-link"' not in page


def test_check_a_transfer_names_the_basis_or_every_missing_condition(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "usa-eng-ramirez")
    doc_id = _doc_id(_upload(demo_app, csrf, **CLASSIFIED))
    csrf = login(demo_app, "usa-so-bennett")
    _record_usa_facts(demo_app, csrf)
    _record(demo_app, csrf, "classification",
            {**CLASSIFIED, "document_id": doc_id, "sender": "us-darpa"})  # fmt: skip
    ask = {"document_id": doc_id, "action": "read", "csrf": csrf}
    allowed = demo_app.post("/console/export/check", data={**ask, "person_id": "usa-eng-ramirez"})
    assert '<strong id="export-check-basis">ITAR 126.7</strong>' in allowed.text
    denied = demo_app.post("/console/export/check", data={**ask, "person_id": "jpn-eng-sato"})
    reasons = denied.text.split('id="export-check-reasons"')[1].split("</ul>")[0]
    assert "party_not_recorded" in reasons and "place_outside_aukus_territory" in reasons
    # GBR's officer may not ask about a USA object: told nothing
    csrf = login(demo_app, "gbr-so-whitfield")
    refused = demo_app.post(
        "/console/export/check", data={**ask, "person_id": "usa-eng-ramirez", "csrf": csrf}
    )
    assert 'id="export-check-error"' in refused.text and "ITAR 126.7" not in refused.text


def test_records_page_filters_by_time_and_downloads_csv_and_json(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "usa-eng-ramirez")
    doc_id = _doc_id(_upload(demo_app, csrf, **CLASSIFIED))
    csrf = login(demo_app, "usa-so-bennett")
    _record_usa_facts(demo_app, csrf)
    _record(demo_app, csrf, "classification",
            {**CLASSIFIED, "document_id": doc_id, "sender": "us-darpa"})  # fmt: skip
    csrf = login(demo_app, "usa-eng-ramirez")
    got = demo_app.post(f"/console/documents/{doc_id}/download", data={"csrf": csrf})
    # released as Ramirez's own copy (issue 17), never the plaintext as uploaded
    assert got.status_code == 200 and got.headers["x-relto-copy"] == "1"
    assert b"beam pattern 3 dB at 40 degrees" not in got.content

    login(demo_app, "usa-so-bennett")
    page = demo_app.get("/console/export/records").text
    rows = page.split('id="export-records"')[1]
    assert doc_id in rows and "ITAR 126.7" in rows and "usa-eng-ramirez" in rows
    later = demo_app.get("/console/export/records", params={"since": "2999-01-01"}).text
    assert doc_id not in later.split('id="export-records"')[1]
    bad = demo_app.get("/console/export/records", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    as_csv = demo_app.get("/console/export/records/download", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    (record,) = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert (record["document_id"], record["legal_basis"]) == (doc_id, "ITAR 126.7")
    as_json = demo_app.get("/console/export/records/download", params={"format": "json"})
    assert [r["document_id"] for r in as_json.json()["records"]] == [doc_id]
    login(demo_app, "usa-eng-ramirez")  # not a reader of records
    assert demo_app.get("/console/export/records/download").status_code == 404


def test_document_page_shows_officers_the_classification_and_nobody_else(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "usa-eng-ramirez")
    doc_id = _doc_id(_upload(demo_app, csrf, **CLASSIFIED))
    assert 'id="doc-export"' not in demo_app.get(f"/console/documents/{doc_id}").text
    login(demo_app, "usa-so-bennett")
    shown = demo_app.get(f"/console/documents/{doc_id}").text
    facts = shown.split('id="doc-export"')[1].split("</dd>")[0]
    assert "awaiting classification" in facts and "USML XI(a)(1)" in facts


def test_only_a_security_officer_sets_a_project_export_relevant(
    login: Login, demo_app: TestClient
) -> None:
    registry = node_of(demo_app).partnerships
    now = datetime.now(UTC)
    harper = principal(demo_app, "gbr-eng-harper")
    assert registry.project(harper, "undersea").export_relevant  # from the demo file
    assert not registry.project(harper, "quantum").export_relevant
    with pytest.raises(NotPermitted):
        registry.set_export_relevant(harper, "quantum", True, now, justification=WHY)
    whitfield = principal(demo_app, "gbr-so-whitfield")
    changed = registry.set_export_relevant(whitfield, "quantum", True, now, justification=WHY)
    assert changed.export_relevant and registry.project(harper, "quantum").export_relevant
    login(demo_app, "gbr-eng-harper")
    out = demo_app.get("/api/v1/projects/quantum")
    assert out.status_code == 200 and out.json()["export_relevant"] is True


def test_cli_sets_export_relevance_only_for_a_security_officer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELTO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RELTO_DEMO", "true")
    runner = CliRunner()
    assert runner.invoke(app, ["partnership", "load-demo"]).exit_code == 0
    assert "export relevant: undersea" in runner.invoke(app, ["partnership", "show"]).output
    base = ["partnership", "export-relevant", "quantum", "--justification", WHY]
    refused = runner.invoke(app, [*base, "--actor", "gbr-eng-harper"])
    assert refused.exit_code != 0
    r = runner.invoke(app, [*base, "--actor", "gbr-so-whitfield"])
    assert r.exit_code == 0 and "quantum is export relevant" in r.output, r.output
    r = runner.invoke(app, [*base, "--off", "--actor", "gbr-so-whitfield"])
    assert r.exit_code == 0 and "quantum is not export relevant" in r.output, r.output


def test_export_page_never_names_an_object_the_reader_may_not_know_of(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    r = demo_app.post(
        "/console/documents/new",
        data={"csrf": csrf, "title": "Seabed cable survey", "project_id": "undersea",
              "classification": "SECRET", "export_controlled": "no",
              "export_kind": "technical_data"},  # GBR eyes only
        files={"file": ("survey.txt", b"survey", "text/plain")},
    )  # fmt: skip
    doc_id = _doc_id(r)
    login(demo_app, "gbr-so-whitfield")
    assert f'data-object="{doc_id}"' in demo_app.get("/console/export").text
    login(demo_app, "usa-so-bennett")  # a USA officer: not releasable to USA
    page = demo_app.get("/console/export")
    assert doc_id not in page.text and "Seabed cable survey" not in page.text
    assert doc_id not in demo_app.get(f"/console/export?confirm={doc_id}").text
