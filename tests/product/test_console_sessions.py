"""Console sessions, sign-in forgery, cookies, flash messages and page banners
(issue 13): each test is named after what it stops."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from starlette.requests import Request

from relto.config import Settings
from relto.documents import DocumentView
from relto.events import MemorySink
from relto.server import create_app
from relto.server.auth import FLASH_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, SessionSigner
from relto.server.console._marking import UNRANKED, page_marking
from relto.sessions import DatabaseSessionStore, MemorySessionStore, SessionStore
from relto.store import create_database
from relto.store.sessions import ConsoleSessionRow

Login = Callable[[TestClient, str], str]

_TOKEN = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_BANNER = re.compile(r'id="banner-(top|bottom)">([^<]*)<')


def _form_token(client: TestClient) -> str:
    found = _TOKEN.search(client.get("/login").text)
    assert found
    return found.group(1)


def _banners(html: str) -> dict[str, str]:
    return dict(_BANNER.findall(html))


def _set_cookies(r: Response) -> list[str]:
    return r.headers.get_list("set-cookie")


# -- 1. sessions the node can revoke --------------------------------------------------


def test_copied_cookie_signs_nobody_in_after_sign_out(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "gbr-so-whitfield")
    copied = demo_app.cookies.get(SESSION_COOKIE)
    assert copied
    assert demo_app.get("/console").status_code == 200
    r = demo_app.post("/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    demo_app.cookies.clear()
    demo_app.cookies.set(SESSION_COOKIE, copied)
    page = demo_app.get("/console")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    api = demo_app.get("/api/v1/projects")
    assert api.status_code == 401
    assert (
        demo_app.put("/api/v1/objects/x/rel-to", headers={"x-csrf-token": csrf}).status_code == 401
    )


def test_sign_out_everywhere_ends_the_other_browsers_sessions(
    login: Login, demo_app: TestClient
) -> None:
    login(demo_app, "gbr-so-whitfield")
    other_browser = demo_app.cookies.get(SESSION_COOKIE)
    csrf = login(demo_app, "gbr-so-whitfield")
    login_elsewhere = demo_app.cookies.get(SESSION_COOKIE)
    assert other_browser and login_elsewhere and other_browser != login_elsewhere
    r = demo_app.post("/logout/everywhere", data={"csrf": csrf})
    assert r.status_code == 303
    for cookie in (other_browser, login_elsewhere):
        demo_app.cookies.clear()
        demo_app.cookies.set(SESSION_COOKIE, cookie)
        assert demo_app.get("/api/v1/projects").status_code == 401


def test_sign_out_without_the_session_token_leaves_the_session(
    login: Login, demo_app: TestClient
) -> None:
    """Another site cannot sign a visitor out (the form needs the session's token)."""
    login(demo_app, "gbr-so-whitfield")
    demo_app.post("/logout", data={"csrf": "0" * 64})
    demo_app.post("/logout/everywhere", data={"csrf": ""})
    assert demo_app.get("/api/v1/projects").status_code == 200


def test_forged_or_unknown_session_cookie_signs_nobody_in(demo_app: TestClient) -> None:
    signer: SessionSigner = demo_app.app.state.edge.auth.signer  # type: ignore[attr-defined]
    for cookie in ("gbr-so-whitfield", "abc.def", signer.sign("never-issued"), "x" * 5000):
        demo_app.cookies.clear()
        demo_app.cookies.set(SESSION_COOKIE, cookie)
        assert demo_app.get("/api/v1/projects").status_code == 401


@pytest.fixture(params=["memory", "database"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore()
        return
    db = create_database(f"sqlite:///{tmp_path / 's.db'}")
    yield DatabaseSessionStore(db)
    db.dispose()


def test_expired_session_refused(store: SessionStore) -> None:
    sid = store.create("gbr-so-whitfield", now=1000.0, lifetime=60)
    assert store.person(sid, now=1059.0) == "gbr-so-whitfield"
    assert store.person(sid, now=1060.0) is None
    assert store.person(sid + "x", now=1000.0) is None


def test_revoked_session_refused_and_others_kept(store: SessionStore) -> None:
    a = store.create("gbr-so-whitfield", now=0.0, lifetime=60)
    b = store.create("gbr-so-whitfield", now=0.0, lifetime=60)
    c = store.create("gbr-eng-harper", now=0.0, lifetime=60)
    store.revoke(a)
    assert store.person(a, now=1.0) is None and store.person(b, now=1.0) is not None
    assert store.revoke_person("gbr-so-whitfield") == 1
    assert store.person(b, now=1.0) is None
    assert store.person(c, now=1.0) == "gbr-eng-harper"


def test_database_holds_no_usable_session_id(tmp_path: Path) -> None:
    """Reading the database (a backup) does not let anyone act as a signed-in person."""
    db = create_database(f"sqlite:///{tmp_path / 's.db'}")
    sid = DatabaseSessionStore(db).create("gbr-so-whitfield", now=0.0, lifetime=60)
    with db.session() as s:
        keys = list(s.execute(select(ConsoleSessionRow.id_hash)).scalars())
    db.dispose()
    assert len(keys) == 1 and sid not in keys[0]


# -- 2. the sign-in form cannot be forged -----------------------------------------------


def test_sign_in_without_form_token_refused(demo_app: TestClient) -> None:
    _form_token(demo_app)  # the form's cookie is there, the token is not sent
    r = demo_app.post("/login", data={"person_id": "gbr-so-whitfield", "next": "/console"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert SESSION_COOKIE not in demo_app.cookies
    assert demo_app.get("/api/v1/projects").status_code == 401


def test_sign_in_with_wrong_or_foreign_form_token_refused(demo_app: TestClient) -> None:
    foreign = _form_token(demo_app)  # the attacker's own form ...
    demo_app.cookies.clear()
    _form_token(demo_app)  # ... and the victim's cookie
    for token in (foreign, "0" * 64, "not-hex"):
        r = demo_app.post("/login", data={"person_id": "gbr-so-whitfield", "csrf": token})
        assert r.headers["location"] == "/login"
        assert SESSION_COOKIE not in demo_app.cookies
    demo_app.cookies.clear()  # a token without its cookie
    r = demo_app.post("/login", data={"person_id": "gbr-so-whitfield", "csrf": foreign})
    assert r.headers["location"] == "/login" and SESSION_COOKIE not in demo_app.cookies


def test_expired_sign_in_form_refused() -> None:
    now = [1_000_000.0]
    signer = SessionSigner("k" * 32, clock=lambda: now[0])
    cookie, token = signer.login_form()
    assert signer.check_login_form(cookie, token)
    now[0] += 1801
    assert not signer.check_login_form(cookie, token)


def test_sign_in_form_cookie_is_single_use(demo_app: TestClient) -> None:
    token = _form_token(demo_app)
    r = demo_app.post("/login", data={"person_id": "gbr-so-whitfield", "csrf": token})
    assert r.headers["location"] == "/console"
    assert any(c.startswith(f"{LOGIN_COOKIE}=") and "Max-Age=0" in c for c in _set_cookies(r))


# -- 3. cookie attributes ------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, demo_template: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    return data


def _client(data: Path, base_url: str = "http://testserver", **settings: object) -> TestClient:
    app = create_app(Settings(demo=True, data_dir=data, **settings), sink=MemorySink())  # type: ignore[arg-type]
    return TestClient(app, base_url=base_url, follow_redirects=False)


def _sign_in_cookies(client: TestClient, headers: dict[str, str] | None = None) -> list[str]:
    page = client.get("/login", headers=headers)
    found = _TOKEN.search(page.text)
    assert found
    cookies = _set_cookies(page)
    r = client.post(
        "/login", data={"person_id": "gbr-eng-harper", "csrf": found.group(1)}, headers=headers
    )
    assert r.headers["location"] == "/console", r.headers["location"]
    return cookies + _set_cookies(r)


def test_cookies_over_plain_http_are_http_only_and_same_site(data_dir: Path) -> None:
    with _client(data_dir) as client:
        cookies = _sign_in_cookies(client)
    session = [c for c in cookies if c.startswith(f"{SESSION_COOKIE}=")]
    assert session and all("__Host-" not in c for c in cookies)
    for c in cookies:
        assert "HttpOnly" in c and "SameSite=lax" in c and "Path=/" in c
        assert "Secure" not in c


def test_cookies_over_https_are_secure_and_host_prefixed(data_dir: Path) -> None:
    with _client(data_dir, base_url="https://testserver") as client:
        cookies = _sign_in_cookies(client)
        assert client.get("/console").status_code == 200  # the prefixed cookie signs in
    assert any(c.startswith(f"__Host-{SESSION_COOKIE}=") for c in cookies)
    for c in cookies:
        assert c.startswith("__Host-") and "Secure" in c and "HttpOnly" in c
        assert "Path=/" in c and "Domain" not in c


def test_public_https_url_makes_cookies_secure(data_dir: Path) -> None:
    with _client(data_dir, public_url="https://relto.gbr.example") as client:
        r = client.get("/login")
    assert all(c.startswith("__Host-") and "Secure" in c for c in _set_cookies(r))


def test_forwarded_proto_counts_only_when_trusted(data_dir: Path) -> None:
    https = {"x-forwarded-proto": "https"}
    with _client(data_dir) as client:
        untrusted = _set_cookies(client.get("/login", headers=https))
    assert untrusted and all("Secure" not in c for c in untrusted)
    with _client(data_dir, trust_forwarded_proto=True) as client:
        trusted = _set_cookies(client.get("/login", headers=https))
        plain = _set_cookies(client.get("/login"))
    assert trusted and all(c.startswith("__Host-") and "Secure" in c for c in trusted)
    assert plain and all("Secure" not in c for c in plain)


def test_cookie_planted_over_http_ignored_over_https(data_dir: Path) -> None:
    """An unprefixed cookie (settable by a network attacker over http) is never read
    when the node is served over https."""
    with _client(data_dir) as plain:
        _sign_in_cookies(plain)
        planted = plain.cookies.get(SESSION_COOKIE)
    assert planted
    with _client(data_dir, base_url="https://testserver") as client:
        client.cookies.set(SESSION_COOKIE, planted)
        assert client.get("/api/v1/projects").status_code == 401


# -- 4. flash messages come only from the node ---------------------------------------------


def test_flash_in_url_not_shown(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    notice = "Your clearance is suspended; call 555-0100"
    page = demo_app.get("/console", params={"flash": notice, "kind": "bad"})
    assert page.status_code == 200
    assert notice not in page.text and 'class="flash' not in page.text


def test_forged_flash_cookie_not_shown(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    demo_app.cookies.set(FLASH_COOKIE, "eyJtIjoiaGkifQ.00")
    page = demo_app.get("/console")
    assert 'class="flash' not in page.text


def _sealed_for(client: TestClient, person_id: str, message: str) -> str:
    """A flash the node would make for the session ``client`` holds now."""
    auth = client.app.state.edge.auth  # type: ignore[attr-defined]
    cookie = client.cookies.get(SESSION_COOKIE)
    header = (b"cookie", f"{SESSION_COOKIE}={cookie}".encode())
    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"", "scheme": "http",
        "server": ("testserver", 80), "headers": [header],
    }  # fmt: skip
    who = auth.directory.principal(person_id, via="session")
    return str(auth.signer.seal_flash(auth.flash_binding(Request(scope), who), message, "ok"))


def test_flash_shown_once_to_its_own_session_only(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "aus-so-campbell")
    sealed = _sealed_for(demo_app, "aus-so-campbell", "Admission of KOR ended.")
    # another session, even the same person's, replaying the message sees nothing
    login(demo_app, "aus-so-campbell")
    demo_app.cookies.set(FLASH_COOKIE, sealed)
    assert "Admission of KOR" not in demo_app.get("/console").text
    # its own session sees it once
    sealed = _sealed_for(demo_app, "aus-so-campbell", "Admission of KOR ended.")
    demo_app.cookies.set(FLASH_COOKIE, sealed)
    first = demo_app.get("/console")
    assert 'class="flash ok" role="status">Admission of KOR ended.<' in first.text
    assert any(c.startswith(f"{FLASH_COOKIE}=") and "Max-Age=0" in c for c in _set_cookies(first))


def test_form_result_travels_in_a_cookie_not_the_url(login: Login, demo_app: TestClient) -> None:
    csrf = login(demo_app, "jpn-eng-sato")
    form = {"project_id": "hypersonic", "nation": "JPN", "ceiling": "SECRET", "csrf": csrf}
    r = demo_app.post("/console/admissions", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    assert any(c.startswith(f"{FLASH_COOKIE}=") for c in _set_cookies(r))
    assert 'class="flash bad"' in demo_app.get("/console").text
    assert 'class="flash' not in demo_app.get("/console").text  # once


# -- 5. banners and who is signed in ----------------------------------------------------------


def test_every_page_carries_the_same_banner_top_and_bottom(
    login: Login, demo_app: TestClient
) -> None:
    login(demo_app, "gbr-so-whitfield")
    paths = [
        "/console",
        "/console/people",
        "/console/people/gbr-eng-lowe",
        "/console/documents",
        "/console/documents/new",
        "/console/documents/hyp-thermal-protection",
        "/console/documents/no-such-document",
        "/console/decisions",
        "/console/what-if",
        "/console/audit",
    ]
    for path in paths:
        page = demo_app.get(path)
        banners = _banners(page.text)
        assert set(banners) == {"top", "bottom"}, path
        assert banners["top"] == banners["bottom"] and banners["top"], path
        top = page.text.index('id="banner-top"')
        assert top < page.text.index("<main") < page.text.index('id="banner-bottom"'), path


def test_page_marked_no_lower_than_the_documents_it_shows(
    login: Login, demo_app: TestClient
) -> None:
    login(demo_app, "gbr-so-whitfield")
    assert _banners(demo_app.get("/console").text)["top"] == "UNCLASSIFIED"
    assert _banners(demo_app.get("/console/people").text)["top"] == "UNCLASSIFIED"
    doc = demo_app.get("/console/documents/hyp-thermal-protection").text
    banner = re.search(r'<code id="doc-banner">([^<]*)<', doc)
    assert banner and _banners(doc)["top"] == banner.group(1)  # one form for one object
    listing = demo_app.get("/console/documents").text
    assert _banners(listing)["top"].startswith("SECRET//REL TO ")
    assert 'class="banner level-SECRET"' in listing


def test_signed_in_person_and_sign_out_on_every_page(login: Login, demo_app: TestClient) -> None:
    login(demo_app, "gbr-so-whitfield")
    for path in ("/console", "/console/documents/hyp-thermal-protection", "/console/audit"):
        page = demo_app.get(path).text
        assert "James Whitfield" in page and "GBR" in page and "security officer" in page
        assert 'action="/logout"' in page and 'action="/logout/everywhere"' in page


def _doc(doc_id: str, originator: str, cls: str, common: str, rel: tuple[str, ...]) -> DocumentView:
    banner = f"{cls}//REL TO {', '.join(rel)}"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return DocumentView(
        doc_id, "t", "p", originator, banner, banner, banner, cls, rel, "o", "f", "m", 1, 1,
        at, at, "u", common_level=common,
    )  # fmt: skip


def test_page_marking_takes_the_highest_level_and_common_releasability() -> None:
    gbr = _doc("a", "GBR", "SECRET", "SECRET", ("AUS", "GBR", "USA"))
    usa = _doc("b", "USA", "CONFIDENTIAL", "CONFIDENTIAL", ("GBR", "JPN", "USA"))
    assert page_marking([], "UNCLASSIFIED").text == "UNCLASSIFIED"
    assert page_marking([gbr], "UNCLASSIFIED").text == gbr.banner
    both = page_marking([usa, gbr], "UNCLASSIFIED")
    assert (both.text, both.level) == ("SECRET//REL TO GBR, USA", "SECRET")
    assert page_marking([usa], "SECRET").text == "SECRET"  # the floor


def test_page_marking_unknown_level_never_marks_lower() -> None:
    """A level with no equivalence on the common scale ranks above everything."""
    known = _doc("a", "GBR", "TOP SECRET", "TOP SECRET", ("GBR", "USA"))
    odd = _doc("b", "JPN", "GOKUHI", "", ("GBR", "JPN", "USA"))
    m = page_marking([known, odd], "UNCLASSIFIED")
    assert m.level == UNRANKED and m.text.startswith("GOKUHI//")
    with pytest.raises(ValueError):
        page_marking([], "OFFICIAL")
