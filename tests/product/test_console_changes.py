"""Admitting, ending an admission and relabelling in the console take two steps:
a preview that shows who would gain or lose access (own people by name, other
nations as counts), then a confirm form with the same, signed parameters and a
required justification, recorded in the audit entry of the change."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from relto.events import MemorySink
from relto.server.console._confirm import CONFIRM_SECONDS, ConfirmTokens

from .console_steps import confirm_change, confirm_form, went_back_bad

Login = Callable[[TestClient, str], str]
ADMIT = {"project_id": "undersea", "nation": "JPN", "ceiling": "SECRET"}
WHY = "JPN joins the undersea sensor trials"


def _ceiling(client: TestClient, project: str, nation: str) -> str | None:
    m = client.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    return m[project][nation]  # type: ignore[no-any-return]


def test_admission_preview_shows_effect_and_changes_nothing(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    page = demo_app.post("/console/admissions/preview", data={**ADMIT, "csrf": csrf})
    assert page.status_code == 200
    assert 'id="change-preview"' in page.text and 'id="confirm-form"' in page.text
    # JPN people gain access: a GBR officer sees them as a count, never by name
    assert 'id="gained-elsewhere"' in page.text and 'data-nation="JPN"' in page.text
    assert "Haruto Sato" not in page.text and "jpn-eng-sato" not in page.text
    assert _ceiling(demo_app, "undersea", "JPN") is None
    assert "partnership.admitted" not in sink.kinds()


def test_admission_not_made_without_preview(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    r = demo_app.post(
        "/console/admissions", data={**ADMIT, "csrf": csrf, "justification": WHY, "confirm": "1.x"}
    )
    assert went_back_bad(demo_app, r)
    assert _ceiling(demo_app, "undersea", "JPN") is None


def test_confirm_with_other_values_than_previewed_refused(
    login: Login, demo_app: TestClient
) -> None:
    """A confirm form edited after the preview (a higher ceiling) changes nothing."""
    csrf = login(demo_app, "gbr-so-whitfield")
    page = demo_app.post("/console/admissions/preview", data={**ADMIT, "csrf": csrf})
    action, fields = confirm_form(page.text)
    data = {**dict(fields), "ceiling": "TOP SECRET", "justification": WHY}
    assert went_back_bad(demo_app, demo_app.post(action, data=data))
    assert _ceiling(demo_app, "undersea", "JPN") is None


def test_unjustified_admission_not_made(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    for why in ("", "too short", " " * 40, "x" * 501):
        r = confirm_change(demo_app, "/console/admissions/preview", ADMIT, csrf, why)
        assert r.status_code == 422, why
        assert 'id="preview-error"' in r.text and 'id="confirm-form"' in r.text
    assert _ceiling(demo_app, "undersea", "JPN") is None


def test_admission_justification_recorded_in_the_log(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    r = confirm_change(demo_app, "/console/admissions/preview", ADMIT, csrf, f"  {WHY}\n")
    assert not went_back_bad(demo_app, r)
    assert _ceiling(demo_app, "undersea", "JPN") == "SECRET"
    entry = [e for e in sink.events if e.kind == "partnership.admitted"][-1]
    assert entry.payload["justification"] == WHY
    assert entry.payload["by"] == "gbr-so-whitfield"


def test_ending_an_admission_shows_losses_and_records_why(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    page = demo_app.get("/console").text
    assert 'action="/console/admissions/demo-innovation-kor/end/preview"' in page
    preview = demo_app.post(
        "/console/admissions/demo-innovation-kor/end/preview", data={"csrf": csrf}
    )
    assert preview.status_code == 200 and "end the admission of KOR to innovation" in preview.text
    assert _ceiling(demo_app, "innovation", "KOR") == "RESTRICTED"  # nothing changed yet
    r = confirm_change(
        demo_app,
        "/console/admissions/demo-innovation-kor/end/preview",
        {},
        csrf,
        "The innovation challenge has closed",
    )
    assert not went_back_bad(demo_app, r)
    assert _ceiling(demo_app, "innovation", "KOR") is None
    entry = [e for e in sink.events if e.kind == "partnership.admission_ended"][-1]
    assert entry.payload["justification"] == "The innovation challenge has closed"


def test_end_token_cannot_end_another_admission(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    preview = demo_app.post(
        "/console/admissions/demo-innovation-kor/end/preview", data={"csrf": csrf}
    )
    _action, fields = confirm_form(preview.text)
    r = demo_app.post(
        "/console/admissions/demo-innovation-nzl/end",
        data={**dict(fields), "justification": "Ending the wrong one"},
    )
    assert went_back_bad(demo_app, r)
    assert _ceiling(demo_app, "innovation", "NZL") == "RESTRICTED"


def test_relabel_preview_counts_other_nations_and_confirm_records_why(
    login: Login, demo_app: TestClient, sink: MemorySink
) -> None:
    """Narrowing Releasable To of a GBR document: USA readers lose it (a count)."""
    csrf = login(demo_app, "gbr-so-whitfield")
    doc = "hyp-thermal-protection"
    preview = demo_app.post(
        f"/console/documents/{doc}/relabel/preview", data={"csrf": csrf, "rel_to": ["AUS"]}
    )
    assert preview.status_code == 200
    assert 'id="lost-elsewhere"' in preview.text and 'data-nation="USA"' in preview.text
    assert "Carlos Ramirez" not in preview.text
    assert "REL TO GBR, AUS, USA" in demo_app.get(f"/api/v1/objects/{doc}").json()["banner"]
    r = confirm_change(
        demo_app,
        f"/console/documents/{doc}/relabel/preview",
        {"rel_to": ["AUS"]},
        csrf,
        "Flight 7 results stay with AUS for now",
    )
    assert not went_back_bad(demo_app, r)
    assert sorted(demo_app.get(f"/api/v1/objects/{doc}").json()["rel_to"]) == ["AUS", "GBR"]
    entry = [e for e in sink.events if e.kind == "document.relabelled"][-1]
    assert entry.payload["justification"] == "Flight 7 results stay with AUS for now"


def test_relabel_confirm_for_other_nations_than_previewed_refused(
    login: Login, demo_app: TestClient
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    doc = "hyp-thermal-protection"
    preview = demo_app.post(
        f"/console/documents/{doc}/relabel/preview", data={"csrf": csrf, "rel_to": ["AUS"]}
    )
    action, fields = confirm_form(preview.text)
    data = {**dict(fields), "rel_to": ["AUS", "KOR"], "justification": "Adding KOR quietly"}
    assert went_back_bad(demo_app, demo_app.post(action, data=data))
    assert "KOR" not in demo_app.get(f"/api/v1/objects/{doc}").json()["rel_to"]


def test_engineer_gets_no_relabel_preview(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    r = demo_app.post(
        "/console/documents/hyp-thermal-protection/relabel/preview",
        data={"csrf": csrf, "rel_to": ["AUS", "USA", "JPN"]},
    )
    assert went_back_bad(demo_app, r)


def test_partner_engineer_gets_no_admission_preview(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "jpn-eng-sato")
    r = demo_app.post(
        "/console/admissions/preview",
        data={"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET", "csrf": csrf},
    )
    assert went_back_bad(demo_app, r)


def test_preview_without_csrf_refused(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    assert demo_app.post("/console/admissions/preview", data=ADMIT).status_code == 403


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "tamper",
    ["other-action", "other-params", "expired", "forged-mac", "other-key", "garbage"],
)
def test_tampered_or_stale_confirm_token_rejected(tamper: str) -> None:
    clock = _Clock()
    tokens = ConfirmTokens("secret", clock=clock)
    params = {"project_id": "undersea", "nation": "JPN", "ceiling": "SECRET"}
    token = tokens.issue("admission.admit", params)
    assert tokens.check("admission.admit", params, token)
    action, checked, value = "admission.admit", dict(params), token
    if tamper == "other-action":
        action = "admission.end"
    elif tamper == "other-params":
        checked["ceiling"] = "TOP SECRET"
    elif tamper == "expired":
        clock.now += CONFIRM_SECONDS + 1
    elif tamper == "forged-mac":
        value = token.split(".")[0] + "." + "0" * 64
    elif tamper == "other-key":
        value = ConfirmTokens("another", clock=clock).issue("admission.admit", params)
    else:
        value = "not a token"
    assert not tokens.check(action, checked, value)
