"""REST API for partnerships, projects and admissions: authentication required,
unknown and forbidden look the same, pages are bounded, changes are audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app

WHY = "JPN joins the flight-test analysis"


def test_demo_partnership_loaded_once(
    login: Callable[[TestClient, str], str], demo_app: TestClient, tmp_path: Path
) -> None:
    login(demo_app, "gbr-eng-harper")
    r = demo_app.get("/api/v1/projects", params={"limit": 200})
    assert r.status_code == 200
    ids = {p["id"] for p in r.json()["items"]}
    assert ids == {
        "undersea", "quantum", "ai-autonomy", "advanced-cyber", "hypersonic",
        "electronic-warfare", "innovation", "information-sharing",
    }  # fmt: skip
    # a second start on the same data folder adds nothing
    again = create_app(Settings(demo=True, data_dir=tmp_path / "data"), sink=MemorySink())
    report = again.state.demo_report
    assert (report.partnerships, report.projects, report.admissions) == (0, 0, 0)


def test_anonymous_caller_gets_401(
    login: Callable[[TestClient, str], str], demo_app: TestClient
) -> None:
    r = demo_app.get("/api/v1/partnerships")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_forged_session_cookie_rejected(
    login: Callable[[TestClient, str], str], demo_app: TestClient
) -> None:
    login(demo_app, "jpn-eng-sato")
    cookie = demo_app.cookies.get("relto_session")
    assert cookie
    body, _, mac = cookie.rpartition(".")
    demo_app.cookies.clear()
    demo_app.cookies.set("relto_session", body + "." + "0" * len(mac))
    assert demo_app.get("/api/v1/partnerships").status_code == 401


def test_matrix_shows_ceilings(
    login: Callable[[TestClient, str], str], demo_app: TestClient
) -> None:
    login(demo_app, "gbr-so-whitfield")
    r = demo_app.get("/api/v1/partnerships/aukus-p2/matrix")
    assert r.status_code == 200
    m = r.json()["ceilings"]
    assert m["hypersonic"]["GBR"] == "TOP SECRET"
    assert m["hypersonic"]["JPN"] is None
    assert m["ai-autonomy"]["JPN"] == "SECRET"


def test_unknown_and_forbidden_look_the_same(
    login: Callable[[TestClient, str], str], demo_app: TestClient
) -> None:
    login(demo_app, "jpn-eng-sato")
    missing = demo_app.get("/api/v1/partnerships/no-such-thing")
    assert missing.status_code == 404
    csrf = login(demo_app, "jpn-eng-sato")
    forbidden = demo_app.post(
        "/api/v1/admissions",
        json={
            "project_id": "hypersonic",
            "nation": "JPN",
            "ceiling": "SECRET",
            "justification": WHY,
        },
        headers={"x-csrf-token": csrf},
    )
    assert forbidden.status_code == 404
    assert forbidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert forbidden.json()["error"]["message"] == missing.json()["error"]["message"]


def test_cookie_session_without_csrf_cannot_change_state(
    login: Callable[[TestClient, str], str], demo_app: TestClient
) -> None:
    login(demo_app, "gbr-so-whitfield")
    r = demo_app.post(
        "/api/v1/admissions",
        json={
            "project_id": "hypersonic",
            "nation": "JPN",
            "ceiling": "SECRET",
            "justification": WHY,
        },
    )
    assert r.status_code == 403


def test_security_officer_admits_and_ends(
    login: Callable[[TestClient, str], str], demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    h = {"x-csrf-token": csrf}
    r = demo_app.post(
        "/api/v1/admissions",
        json={
            "project_id": "hypersonic",
            "nation": "JPN",
            "ceiling": "SECRET",
            "justification": WHY,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    adm = r.json()
    assert adm["status"] == "active"
    assert sink.kinds()[-1] == "partnership.admitted"
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["hypersonic"]["JPN"] == "SECRET"
    dup = demo_app.post(
        "/api/v1/admissions",
        json={
            "project_id": "hypersonic",
            "nation": "JPN",
            "ceiling": "SECRET",
            "justification": WHY,
        },
        headers=h,
    )
    assert dup.status_code == 400
    assert dup.json()["error"]["code"] == "admission_conflict"
    r = demo_app.post(f"/api/v1/admissions/{adm['id']}/end", json={"justification": WHY}, headers=h)
    assert r.status_code == 200
    assert r.json()["status"] in ("ended", "expired")
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["hypersonic"]["JPN"] is None


def test_pages_are_bounded(login: Callable[[TestClient, str], str], demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    assert demo_app.get("/api/v1/admissions", params={"limit": 100000}).status_code == 422
    r = demo_app.get("/api/v1/admissions", params={"limit": 5, "offset": 3})
    body = r.json()
    assert len(body["items"]) == 5 and body["offset"] == 3 and body["total"] > 5


def test_login_not_mounted_outside_demo(tmp_path: Path) -> None:
    secret = SecretStr("a-real-looking-secret-0123456789")
    app = create_app(
        Settings(data_dir=tmp_path, secret_key=secret, keystore_passphrase=secret),
        sink=MemorySink(),
    )
    client = TestClient(app, follow_redirects=False)
    assert client.get("/login").status_code == 404
    assert client.post("/login", data={"person_id": "gbr-so-whitfield"}).status_code in (404, 405)
    assert client.get("/console").status_code == 401
    assert client.get("/api/v1/projects").status_code == 401


def test_objects_api_story(login: Callable[[TestClient, str], str], demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-eng-harper")
    r = demo_app.post(
        "/api/v1/objects",
        data={
            "title": "Flight 8 plan",
            "project_id": "hypersonic",
            "classification": "SECRET",
            "rel_to": ["USA", "AUS"],
        },
        files={"file": ("plan.txt", b"flight 8 plan", "text/plain")},
        headers={"x-csrf-token": csrf},
    )
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["banner"] == "SECRET//REL TO GBR, AUS, USA"
    mine = demo_app.get(f"/api/v1/objects/{obj['id']}/content")  # Harper's own copy
    assert mine.status_code == 200 and mine.headers["x-relto-copy"] == "1"
    assert b"flight 8 plan" not in mine.content

    login(demo_app, "jpn-eng-sato")
    # not releasable to JPN: for Sato it does not exist, on every route
    for path in ("", "/content", "/decision"):
        hidden = demo_app.get(f"/api/v1/objects/{obj['id']}{path}")
        missing = demo_app.get(f"/api/v1/objects/nope{path}")
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]
        assert "Flight 8" not in hidden.text
    listed = demo_app.get("/api/v1/objects").json()
    assert obj["id"] not in {o["id"] for o in listed["items"]}
    # released to JPN but JPN is not admitted to undersea: visible, denied, explained
    why = demo_app.get("/api/v1/objects/undersea-autonomy-icd/decision").json()
    assert not why["allowed"]
    assert {"NATION_NOT_ADMITTED", "NO_NEED_TO_KNOW"} <= {r["code"] for r in why["reasons"]}

    csrf = login(demo_app, "gbr-so-whitfield")
    h = {"x-csrf-token": csrf}
    gain = demo_app.post(
        "/api/v1/what-if",
        json={"changes": ["admit:JPN:hypersonic:SECRET", f"rel-to:{obj['id']}:JPN"]},
        headers=h,
    ).json()
    # JPN people gain: a GBR officer sees them as a count, not by name
    assert gain["gained_elsewhere"]["JPN"] >= 1
    assert "jpn-eng-sato" not in json.dumps(gain)
    demo_app.post(
        "/api/v1/admissions",
        json={
            "project_id": "hypersonic",
            "nation": "JPN",
            "ceiling": "SECRET",
            "justification": WHY,
        },
        headers=h,
    )
    r = demo_app.put(
        f"/api/v1/objects/{obj['id']}/rel-to",
        json={"rel_to": ["USA", "AUS", "JPN"], "justification": WHY},
        headers=h,
    )
    assert r.status_code == 200 and "JPN" in r.json()["rel_to"]

    login(demo_app, "jpn-eng-sato")
    copy = demo_app.get(f"/api/v1/objects/{obj['id']}/content")  # Sato's own copy
    assert copy.status_code == 200 and copy.headers["x-relto-copy"] == "2"


def test_unjustified_admission_refused_and_nothing_changes(
    login: Callable[[TestClient, str], str], demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    h = {"x-csrf-token": csrf}
    body = {"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET"}
    for extra in ({}, {"justification": "because"}, {"justification": "x" * 501}):
        r = demo_app.post("/api/v1/admissions", json={**body, **extra}, headers=h)
        assert r.status_code == 422, (extra, r.text)
    assert "partnership.admitted" not in sink.kinds()
    m = demo_app.get("/api/v1/partnerships/aukus-p2/matrix").json()["ceilings"]
    assert m["hypersonic"]["JPN"] is None


def test_justification_recorded_with_admission_end_and_relabel(
    login: Callable[[TestClient, str], str], demo_app: TestClient, sink: MemorySink
) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    h = {"x-csrf-token": csrf}
    r = demo_app.post(
        "/api/v1/admissions",
        json={"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET",
              "justification": "  Trilateral flight-test analysis  "},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    admitted = sink.events[-1]
    assert admitted.kind == "partnership.admitted"
    assert admitted.payload["justification"] == "Trilateral flight-test analysis"
    r = demo_app.post(
        f"/api/v1/admissions/{r.json()['id']}/end",
        json={"justification": "Analysis done"},
        headers=h,
    )
    assert r.status_code == 200
    assert sink.events[-1].payload["justification"] == "Analysis done"
    r = demo_app.put(
        "/api/v1/objects/hyp-thermal-protection/rel-to",
        json={"rel_to": ["USA", "AUS"], "justification": "Narrowed after the release review"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    relabelled = [e for e in sink.events if e.kind == "document.relabelled"][-1]
    assert relabelled.payload["justification"] == "Narrowed after the release review"
    r = demo_app.put(
        "/api/v1/objects/hyp-thermal-protection/rel-to", json={"rel_to": ["USA"]}, headers=h
    )
    assert r.status_code == 422
