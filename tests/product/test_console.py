"""The web console: sign-in is demo-only, pages need a person, forms need CSRF,
redirects after sign-in stay on this site."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from httpx import Response

from .console_steps import confirm_change, went_back_bad

Login = Callable[[TestClient, str], str]


def flashed_bad(client: TestClient, r: Response) -> bool:
    """Whether the page a form sent the browser back to shows its message as a failure."""
    assert r.status_code == 303, r.status_code
    page = client.get(r.headers["location"]).text
    assert 'class="flash' in page, "no message on the page the form went back to"
    return 'class="flash bad"' in page


def login_form_token(client: TestClient) -> str:
    """The sign-in form's token (its cookie stays in ``client``)."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/login").text)
    assert found
    return found.group(1)


def test_console_redirects_to_demo_login(demo_app: TestClient) -> None:
    r = demo_app.get("/console/people")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/console/people"
    page = demo_app.get("/login")
    assert page.status_code == 200
    assert "Olivia Harper" in page.text and "Haruto Sato" in page.text


def test_sign_in_never_redirects_off_site(demo_app: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/console\\..\\x", "/api/v1"):
        form = {"person_id": "gbr-eng-harper", "next": target, "csrf": login_form_token(demo_app)}
        r = demo_app.post("/login", data=form)
        assert r.status_code == 303
        assert r.headers["location"] == "/console"


def test_unknown_demo_person_not_signed_in(demo_app: TestClient) -> None:
    r = demo_app.post("/login", data={"person_id": "mallory", "csrf": login_form_token(demo_app)})
    assert r.headers["location"] == "/login"
    assert "relto_session" not in demo_app.cookies


def test_dashboard_shows_matrix(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-eng-harper")
    r = demo_app.get("/console")
    assert r.status_code == 200
    assert 'id="matrix"' in r.text
    assert "Hypersonic and counter-hypersonic capabilities" in r.text
    # an engineer gets no admission form
    assert 'action="/console/admissions"' not in r.text
    assert "<h1>" in r.text and 'lang="en"' in r.text


def test_console_admission_needs_csrf(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    form = {"project_id": "undersea", "nation": "JPN", "ceiling": "SECRET"}
    r = demo_app.post("/console/admissions", data=form)
    assert r.status_code == 403
    csrf = login(demo_app, "gbr-so-whitfield")
    assert demo_app.post("/console/admissions/preview", data=form).status_code == 403
    r = confirm_change(demo_app, "/console/admissions/preview", form, csrf, "JPN joins the trials")
    assert not went_back_bad(demo_app, r)
    page = demo_app.get("/console")
    assert 'data-project="undersea"' in page.text
    row = page.text.split('data-project="undersea"')[1].split("</tr>")[0]
    assert 'data-nation="JPN"><span class="level level-SECRET">SECRET' in row


def test_partner_engineer_cannot_admit_via_console(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "jpn-eng-sato")
    r = demo_app.post(
        "/console/admissions",
        data={"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET", "csrf": csrf},
    )
    assert flashed_bad(demo_app, r)
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["hypersonic"]["JPN"] is None


def test_every_console_page_renders(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    for path in (
        "/console",
        "/console/people",
        "/console/documents",
        "/console/decisions",
        "/console/what-if",
        "/console/audit",
    ):
        r = demo_app.get(path)
        assert r.status_code == 200, path
        assert "<h1>" in r.text
    assert demo_app.get("/static/console.css").status_code == 200


def test_people_page_shows_every_clearance_state(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    r = demo_app.get("/console/people")
    assert r.status_code == 200
    # a GBR security officer sees GBR people, with their clearances' status
    assert "Daniel Lowe" in r.text and "status-suspended" in r.text
    assert "Olivia Harper" in r.text and "status-granted" in r.text
    # but not another nation's vetting records
    assert "Haruto Sato" not in r.text
    detail = demo_app.get("/console/people/gbr-eng-lowe")
    assert detail.status_code == 200
    assert "granted → suspended" in detail.text and "is suspended" in detail.text


def test_person_outside_your_remit_is_not_found(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "jpn-eng-sato")
    assert demo_app.get("/console/people/gbr-eng-lowe").status_code == 404
    assert demo_app.get("/console/people/no-such-person").status_code == 404
    mine = demo_app.get("/console/people/jpn-eng-sato")
    assert mine.status_code == 200 and "SDS" in mine.text


def test_upcoming_revalidations_listed(login: Login, demo_app: TestClient) -> None:
    # the demo file dates some expiries relative to the day it is loaded
    login(demo_app, "gbr-so-whitfield")
    r = demo_app.get("/console/people")
    upcoming = r.text.split('id="upcoming"')[1].split("</table>")[0]
    assert "Grace Okafor" in upcoming  # GBR SC, expires in 45 days
    assert "Marie Tremblay" not in upcoming  # CAN: not a GBR officer's record


def _upload(client: TestClient, csrf: str, rel_to: list[str]) -> str:
    r = client.post(
        "/console/documents/new",
        data={
            "csrf": csrf,
            "title": "Thermal protection results",
            "project_id": "hypersonic",
            "classification": "SECRET",
            "rel_to": rel_to,
        },
        files={"file": ("results.txt", b"ablation rate 0.2 mm/s", "text/plain")},
    )
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"].split("?")[0].rsplit("/", 1)[1]


def test_partner_denied_until_admitted_and_released(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    doc_id = _upload(demo_app, csrf, ["USA", "AUS"])
    page = demo_app.get(f"/console/documents/{doc_id}")
    # the page carries the document's marking, top and bottom, in the form lists use
    assert 'id="banner-top">SECRET//REL TO GBR, AUS, USA<' in page.text
    assert 'id="banner-bottom">SECRET//REL TO GBR, AUS, USA<' in page.text

    csrf = login(demo_app, "jpn-eng-sato")
    hidden = demo_app.post(f"/console/documents/{doc_id}/open", data={"csrf": csrf})
    assert hidden.status_code == 404  # not releasable to JPN: it does not exist for Sato
    assert "Flight" not in hidden.text and "ablation" not in hidden.text
    assert demo_app.get(f"/console/documents/{doc_id}").status_code == 404
    denied = demo_app.post("/console/documents/undersea-autonomy-icd/open", data={"csrf": csrf})
    assert 'id="decision-denied"' in denied.text
    assert 'data-code="NATION_NOT_ADMITTED"' in denied.text
    assert 'data-code="NO_NEED_TO_KNOW"' in denied.text
    assert "payload bay" not in denied.text

    csrf = login(demo_app, "gbr-so-whitfield")
    admit = {"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET"}
    r = confirm_change(
        demo_app, "/console/admissions/preview", admit, csrf, "JPN joins the flight-test analysis"
    )
    assert not went_back_bad(demo_app, r)
    r = confirm_change(
        demo_app,
        f"/console/documents/{doc_id}/relabel/preview",
        {"rel_to": ["USA", "AUS", "JPN"]},
        csrf,
        "Release flight 7 to JPN for the analysis",
    )
    assert not went_back_bad(demo_app, r)

    csrf = login(demo_app, "jpn-eng-sato")
    opened = demo_app.post(f"/console/documents/{doc_id}/open", data={"csrf": csrf})
    assert 'id="decision-allowed"' in opened.text
    assert "ablation rate 0.2 mm/s" in opened.text


def test_engineer_cannot_relabel(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    doc_id = _upload(demo_app, csrf, ["USA", "AUS"])
    r = demo_app.post(
        f"/console/documents/{doc_id}/relabel", data={"csrf": csrf, "rel_to": ["JPN"]}
    )
    assert flashed_bad(demo_app, r)
    assert "REL TO GBR, AUS, USA" in demo_app.get(f"/console/documents/{doc_id}").text


def test_upload_above_own_clearance_refused(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-eng-harper")  # SC: SECRET, not TOP SECRET
    r = demo_app.post(
        "/console/documents/new",
        data={
            "csrf": csrf,
            "title": "Too high",
            "project_id": "hypersonic",
            "classification": "TOP SECRET",
        },
        files={"file": ("x.txt", b"x", "text/plain")},
    )
    assert r.status_code == 422
    assert "you cannot protect a document at that classification" in r.text
    # the picker never offered it
    form = demo_app.get("/console/documents/new").text
    picker = form.split('id="doc-class"')[1].split("</select>")[0]
    assert "<option>SECRET</option>" in picker or "selected>SECRET" in picker
    assert "TOP SECRET" not in picker


def test_suspended_engineer_offered_no_label(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-eng-lowe")
    page = demo_app.get("/console/documents/new").text
    assert "Your clearance does not count now" in page and 'id="doc-class"' not in page


def test_audit_page_shows_signed_checkpoint_and_changes(login: Login, tmp_path: Path) -> None:
    from relto.config import Settings
    from relto.server import create_app

    app = create_app(Settings(demo=True, data_dir=tmp_path))  # no sink: the transparency log
    with TestClient(app, follow_redirects=False) as client:
        csrf = login(client, "gbr-so-whitfield")
        client.post(
            "/console/admissions",
            data={"project_id": "undersea", "nation": "JPN", "ceiling": "SECRET", "csrf": csrf},
        )
        page = client.get("/console/audit")
        assert page.status_code == 200
        assert "verified" in page.text and "ok: the stored log matches" in page.text
        assert 'data-kind="partnership.admitted"' in page.text
        assert "— " in page.text or "\n\n" in page.text  # the checkpoint note
        login(client, "gbr-eng-harper")
        assert "shown to auditors and security officers" in client.get("/console/audit").text


def test_decision_explorer_explains(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "jpn-eng-sato")
    r = demo_app.get(
        "/console/decisions",
        params={"person_id": "jpn-eng-sato", "doc_id": "undersea-autonomy-icd", "action": "read"},
    )
    assert r.status_code == 200
    assert 'data-code="NATION_NOT_ADMITTED"' in r.text and "Denied" in r.text
    # a document not releasable to JPN cannot even be asked about
    r = demo_app.get(
        "/console/decisions",
        params={"person_id": "jpn-eng-sato", "doc_id": "hyp-thermal-protection"},
    )
    assert 'id="decision"' not in r.text and "Thermal protection" not in r.text
    # an engineer may not ask about someone else
    r = demo_app.get(
        "/console/decisions",
        params={"person_id": "usa-eng-ramirez", "doc_id": "undersea-autonomy-icd"},
    )
    assert "you may not see that person" in r.text and 'id="decision"' not in r.text


def test_what_if_admitting_partner_shows_gains(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    r = demo_app.get(
        "/console/what-if", params={"nation": "JPN", "project": "undersea", "ceiling": "SECRET"}
    )
    assert r.status_code == 200
    # JPN people would gain: a GBR officer sees how many, not who
    elsewhere = r.text.split('id="gained-elsewhere"')[1].split("</table>")[0]
    assert 'data-nation="JPN"' in elsewhere
    assert "Ren Yamamoto" not in r.text
    # nothing was changed
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["undersea"]["JPN"] is None
    login(demo_app, "jpn-eng-sato")
    r = demo_app.get("/console/what-if", params={"nation": "JPN", "project": "undersea"})
    assert "for security officers" in r.text and 'id="gained"' not in r.text


def test_console_pages_cannot_be_framed_or_cached(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-eng-harper")
    r = demo_app.get("/console/documents/hyp-thermal-protection")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none'
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"


def test_security_officer_ends_admission_in_console(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "aus-so-campbell")
    page = demo_app.get("/console").text
    action = page.split('action="/console/admissions/demo-innovation-kor/end/preview"')
    assert len(action) == 2  # the End button of KOR's innovation admission
    preview = "/console/admissions/demo-innovation-kor/end/preview"
    r = confirm_change(demo_app, preview, {}, csrf, "The innovation challenge is over")
    assert not went_back_bad(demo_app, r)
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["innovation"]["KOR"] is None
    again = confirm_change(demo_app, preview, {}, csrf, "The innovation challenge is over")
    assert went_back_bad(demo_app, again)  # already ended
