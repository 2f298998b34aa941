"""The REST API: authentication required, officers of the issuing nation only, refusals
look like "not found", status as of the server clock, bounded pages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relto.config import Settings
from relto.events import MemorySink
from relto.server import create_app
from relto.server.auth import SESSION_COOKIE

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(tmp_path: Path, sink: MemorySink, clock: Clock) -> Iterator[TestClient]:
    app = create_app(Settings(demo=True, data_dir=tmp_path), sink=sink)
    app.state.edge.clock = clock
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def _login_token(client: TestClient) -> str:
    """The sign-in form's token (its cookie stays in ``client``)."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/login").text)
    assert found
    return found.group(1)


def as_(client: TestClient, person_id: str) -> dict[str, str]:
    client.cookies.clear()
    token = _login_token(client)
    r = client.post("/login", data={"person_id": person_id, "next": "/console", "csrf": token})
    assert r.status_code == 303, r.text
    cookie = client.cookies.get(SESSION_COOKIE)
    signer = client.app.state.edge.auth.signer  # type: ignore[attr-defined]
    return {"X-CSRF-Token": signer.csrf(cookie)}


PERSON = {
    "id": "gbr-test-harper",
    "name": "Olivia Harper",
    "nationalities": ["GBR", "JPN"],
    "organisation": "Dstl",
    "home_nation": "GBR",
    "roles": ["engineer"],
    "projects": [{"project": "quantum-x", "role": "member"}],
}


def granted_sc(
    client: TestClient, clock: Clock, person_id: str = "gbr-test-harper"
) -> dict[str, str]:
    h = as_(client, "gbr-vo-okafor")
    if client.get(f"/api/v1/people/{person_id}").status_code == 404:
        r = client.post("/api/v1/people", json=dict(PERSON, id=person_id), headers=h)
        assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/clearances",
        json={
            "id": "c-sc-1",
            "person_id": person_id,
            "nation": "GBR",
            "level": "SC",
            "sponsor": "Dstl",
            "reason": "project needs SECRET",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "sponsored" and r.json()["classification"] == "SECRET"
    for to in ("investigating", "adjudicating", "granted"):
        clock.now += dt.timedelta(days=1)
        r = client.post(
            "/api/v1/clearances/c-sc-1/transitions",
            json={"to": to, "reason": f"to {to}"},
            headers=h,
        )
        assert r.status_code == 200, r.text
    return h


def test_unauthenticated_caller_refused(client: TestClient) -> None:
    assert client.get("/api/v1/people").status_code == 401
    assert client.post("/api/v1/people", json=PERSON).status_code == 401
    assert client.get("/api/v1/clearances/anything").status_code == 401


def test_vetting_officer_grants_and_status_is_computed(client: TestClient, clock: Clock) -> None:
    granted_sc(client, clock)
    body = client.get("/api/v1/clearances/c-sc-1").json()
    assert body["current"] is True and body["status"] == "granted"
    assert body["valid_until"].startswith("2036-03-05T00:00:00")
    later = client.get("/api/v1/clearances/c-sc-1", params={"at": "2036-03-05T00:00:00Z"})
    assert later.json()["status"] == "expired"
    assert later.json()["reason"] == "the GBR SC clearance expired on 2036-03-05 00:00 UTC"
    person = client.get("/api/v1/people/gbr-test-harper").json()
    assert person["nationalities"] == ["GBR", "JPN"]


def test_holder_cannot_grant_or_change_own_clearance(client: TestClient, clock: Clock) -> None:
    granted_sc(client, clock, person_id="gbr-eng-harper")  # a demo person who can sign in
    h = as_(client, "gbr-eng-harper")
    assert client.get("/api/v1/clearances/c-sc-1").status_code == 200
    r = client.post(
        "/api/v1/clearances/c-sc-1/transitions", json={"to": "granted", "reason": "me"}, headers=h
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/clearances/c-sc-1/reports",
        json={"kind": "foreign_travel", "occurred_on": "2026-03-04", "reason": "Tokyo trip"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["current"] is True


def test_other_nations_officer_sees_nothing(client: TestClient, clock: Clock) -> None:
    granted_sc(client, clock)
    h = as_(client, "aus-so-campbell")
    assert client.get("/api/v1/clearances/c-sc-1").status_code == 404
    assert client.get("/api/v1/clearances/no-such").status_code == 404
    mine = client.get("/api/v1/clearances", params={"person_id": "gbr-test-harper"})
    assert mine.json()["items"] == []
    r = client.post(
        "/api/v1/clearances/c-sc-1/transitions", json={"to": "revoked", "reason": "x"}, headers=h
    )
    assert r.status_code == 404


def test_security_officer_suspension_effective_immediately(
    client: TestClient, clock: Clock, sink: MemorySink
) -> None:
    granted_sc(client, clock)
    h = as_(client, "gbr-so-whitfield")
    clock.now += dt.timedelta(days=3)
    r = client.post(
        "/api/v1/clearances/c-sc-1/transitions",
        json={"to": "suspended", "reason": "pending inquiry"},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["current"] is False
    assert client.get("/api/v1/clearances/c-sc-1").json()["reason_code"] == "suspended"
    # A security officer may restrict, but not grant.
    r = client.post(
        "/api/v1/clearances/c-sc-1/transitions", json={"to": "granted", "reason": "x"}, headers=h
    )
    assert r.status_code == 404
    events = client.get("/api/v1/clearances/c-sc-1/history").json()["events"]
    assert [e["to_status"] for e in events] == [
        "sponsored",
        "investigating",
        "adjudicating",
        "granted",
        "suspended",
    ]
    assert events[-1]["actor"] == "gbr-so-whitfield"
    # the officer's refused grant is recorded too, after the suspension
    assert sink.kinds()[-2:] == ["vetting.clearance.transition", "authz.decision"]


def test_incident_puts_clearance_under_review(client: TestClient, clock: Clock) -> None:
    granted_sc(client, clock)
    h = as_(client, "gbr-so-whitfield")
    r = client.post(
        "/api/v1/clearances/c-sc-1/incidents",
        json={"kind": "violation", "reason": "copied material home"},
        headers=h,
    )
    assert r.status_code == 200
    assert r.json()["status"] == "under_review" and r.json()["current"] is False


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/clearances/c-sc-1/transitions", {"to": "investigating", "reason": "x"}),
        ("/api/v1/clearances/c-sc-1/transitions", {"to": "expired", "reason": "x"}),
        (
            "/api/v1/clearances/c-sc-1/transitions",
            {"to": "granted", "reason": "x", "valid_until": "2030-01-01T00:00:00"},
        ),
        ("/api/v1/clearances/c-sc-1/transitions", {"to": "granted", "reason": ""}),
        ("/api/v1/clearances/c-sc-1/transitions", {"to": "granted", "reason": "x", "extra": 1}),
        ("/api/v1/clearances/c-sc-1/incidents", {"kind": "mishap", "reason": "x"}),
        (
            "/api/v1/clearances",
            {
                "person_id": "gbr-test-harper",
                "nation": "GBR",
                "level": "NV1",
                "sponsor": "x",
                "reason": "x",
            },
        ),
    ],
)
def test_bad_requests_rejected_and_nothing_changes(
    client: TestClient, clock: Clock, path: str, body: dict[str, object]
) -> None:
    h = granted_sc(client, clock)
    before = client.get("/api/v1/clearances/c-sc-1/history").json()
    r = client.post(path, json=body, headers=h)
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/clearances/c-sc-1/history").json() == before


def test_pages_are_bounded(client: TestClient, clock: Clock) -> None:
    h = as_(client, "gbr-vo-okafor")
    for i in range(3):
        p = dict(PERSON, id=f"gbr-zz-{i}")
        assert client.post("/api/v1/people", json=p, headers=h).status_code == 201
    r = client.get("/api/v1/people", params={"limit": 2, "after": "gbr-zz"}).json()
    assert [p["id"] for p in r["items"]] == ["gbr-zz-0", "gbr-zz-1"]
    assert r["next_after"] == "gbr-zz-1"
    assert client.get("/api/v1/people", params={"limit": 201}).status_code == 422


def test_state_change_by_cookie_needs_csrf(client: TestClient, clock: Clock) -> None:
    as_(client, "gbr-vo-okafor")
    assert client.post("/api/v1/people", json=PERSON).status_code == 403
