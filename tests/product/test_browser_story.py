"""The target story in a real browser (Playwright + Debian's Chromium) against
``relto serve --demo``: a partner does not even learn that a document exists until
it is released to them, is refused (with reasons) what it is not admitted to, and
every step is visible to the people who need to see it.

Screenshots go to ``test-artifacts/product/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "product"


def _page(browser: Any, base: str) -> Any:
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    return context.new_page()


def _sign_in(page: Any, person_id: str) -> None:
    page.goto("/login")
    page.locator(f'button[data-person="{person_id}"]').click()
    page.wait_for_url("**/console")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.timeout(150)
def test_partner_story_end_to_end(live_server: str, browser: Any, tmp_path: Path) -> None:
    """GBR engineer protects SECRET//REL TO USA, AUS, GBR on hypersonics; for the JPN
    engineer it does not exist, and a document released to JPN on a project JPN is
    not admitted to is denied with reasons; a GBR security officer admits JPN and
    adds JPN to Releasable To; the JPN engineer opens it; the audit log shows it."""
    page = _page(browser, live_server)
    page.goto("/console")
    page.wait_for_url("**/login**")
    _shot(page, "01-login")

    # 1. a GBR engineer protects a document on the hypersonics project
    _sign_in(page, "gbr-eng-harper")
    page.goto("/console/documents/new")
    page.get_by_label("Title", exact=True).fill("Flight 7 thermal protection results")
    page.get_by_label("Project", exact=True).select_option("hypersonic")
    page.locator("#doc-class").select_option("SECRET")
    page.get_by_role("checkbox", name="USA", exact=True).check()
    page.get_by_role("checkbox", name="AUS", exact=True).check()
    assert page.get_by_role(
        "checkbox", name="GBR", exact=True
    ).is_checked()  # the originator, always included
    source = tmp_path / "flight7.txt"
    source.write_text("Leading-edge ablation 0.21 mm/s at Mach 7.2; flight 8 matrix attached.")
    page.locator("#doc-file").set_input_files(str(source))
    _shot(page, "02-upload-label-picker")
    page.get_by_role("button", name="Protect and upload").click()
    page.wait_for_url("**/console/documents/*")
    top = page.locator("#banner-top").inner_text()
    bottom = page.locator("#banner-bottom").inner_text()
    # one marking, the document's own, at the very top and the very bottom of the page
    assert top == bottom == page.locator("#doc-banner").inner_text()
    assert top.startswith("SECRET//REL TO ")
    for nation in ("USA", "AUS", "GBR"):
        assert nation in top
    assert "JPN" not in top
    edges = page.evaluate(
        """() => [document.body.firstElementChild.id, document.body.lastElementChild.id]"""
    )
    assert edges == ["banner-top", "banner-bottom"]
    doc_url = page.url.split("?")[0]
    _shot(page, "03-document-protected")

    # 2. for the JPN engineer the document does not exist (not even its title) ...
    _sign_in(page, "jpn-eng-sato")
    response = page.goto(doc_url)
    assert response is not None and response.status == 404
    assert "Flight 7" not in page.content()
    page.goto("/console/documents")
    assert "Flight 7" not in page.content()
    _shot(page, "04a-jpn-does-not-see-it")
    # ... and a document released to JPN on a project JPN is not admitted to is denied
    page.goto("/console/documents/undersea-autonomy-icd")
    page.get_by_role("button", name="Open document").click()
    page.locator("#decision-denied").wait_for()
    codes = page.locator("#reasons li").evaluate_all("els => els.map(e => e.dataset.code)")
    assert "NATION_NOT_ADMITTED" in codes and "NO_NEED_TO_KNOW" in codes
    assert "payload bay" not in page.content()
    _shot(page, "04-jpn-denied-with-reasons")

    # 3. a GBR security officer admits JPN to hypersonics and adds JPN to Releasable To
    _sign_in(page, "gbr-so-whitfield")
    page.get_by_label("Project", exact=True).select_option("hypersonic")
    page.get_by_label("Nation", exact=True).select_option("JPN")
    page.locator("#admit-ceiling").select_option("SECRET")
    page.locator("#admit-note").fill("JPN joins flight-test analysis")
    page.get_by_role("button", name="Preview the effect").click()
    page.wait_for_load_state()
    # nothing changes yet: the effect first, then a justification to confirm
    assert "person–document pair(s)" in page.locator("#effect-summary").inner_text()
    assert "Haruto Sato" not in page.content()  # JPN people are counts for a GBR officer
    _shot(page, "05a-admission-preview")
    page.get_by_label("Justification").fill("JPN joins the flight-test analysis")
    page.get_by_role("button", name="Admit").click()
    page.wait_for_load_state()
    assert "JPN admitted to hypersonic up to SECRET" in page.get_by_role("status").inner_text()
    cell = page.locator('tr[data-project="hypersonic"] td[data-nation="JPN"]')
    assert cell.inner_text().strip() == "SECRET"
    _shot(page, "05-jpn-admitted")
    page.goto(doc_url)
    page.get_by_role("checkbox", name="JPN", exact=True).check()
    page.get_by_role("button", name="Preview the effect").click()
    page.wait_for_load_state()
    assert page.locator('#gained-elsewhere tr[data-nation="JPN"]').count() == 1
    _shot(page, "05b-relabel-preview")
    page.get_by_label("Justification").fill("Flight 7 results for the JPN analysts")
    page.get_by_role("button", name="Save Releasable To").click()
    page.wait_for_load_state()
    assert "JPN" in page.locator("#banner-top").inner_text()
    _shot(page, "06-releasable-to-jpn")

    # 4. the JPN engineer opens it
    _sign_in(page, "jpn-eng-sato")
    page.goto(doc_url)
    page.get_by_role("button", name="Open document").click()
    page.locator("#decision-allowed").wait_for()
    assert "ablation 0.21 mm/s" in page.locator("#doc-content").inner_text()
    _shot(page, "07-jpn-opens")

    # 5. the audit page shows all of it, under a verified checkpoint
    _sign_in(page, "gbr-aud-patel")
    page.goto("/console/audit?size=100")
    assert "verified" in page.locator("#verification").inner_text()
    kinds = page.locator("#audit-entries tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)"
    )
    for kind in ("document.protected", "partnership.admitted", "document.relabelled"):
        assert kind in kinds, kinds
    assert kinds.count("decision") >= 2 and "kas.rewrap" in kinds
    table = page.locator("#audit-entries").inner_text()
    assert "denied" in table and "allowed" in table
    # each change with its justification, people and documents by name
    assert "JPN joins the flight-test analysis" in table
    assert "Flight 7 results for the JPN analysts" in table
    assert "James Whitfield (gbr-so-whitfield)" in table
    _shot(page, "08-audit-log")
    page.context.close()


@pytest.mark.timeout(60)
def test_copied_session_cookie_dies_with_sign_out(live_server: str, browser: Any) -> None:
    """Sign in, copy the session cookie, sign out: the copy signs nobody in, neither
    in the console nor on the API."""
    page = _page(browser, live_server)
    _sign_in(page, "gbr-so-whitfield")
    assert "James Whitfield" in page.locator(".who").inner_text()
    copied = [c for c in page.context.cookies() if c["name"].endswith("relto_session")]
    assert len(copied) == 1 and copied[0]["httpOnly"] and copied[0]["sameSite"] == "Lax"
    page.locator("#sign-out").click()
    page.wait_for_url("**/login**")
    assert not [c for c in page.context.cookies() if c["name"].endswith("relto_session")]
    _shot(page, "09-signed-out")

    replay = browser.new_context(base_url=live_server)
    replay.add_cookies(copied)
    other = replay.new_page()
    other.goto("/console")
    assert "/login" in other.url
    api = replay.request.get("/api/v1/projects")
    assert api.status == 401
    replay.close()
    page.context.close()


@pytest.mark.timeout(60)
def test_console_is_keyboard_navigable(live_server: str, browser: Any) -> None:
    page = _page(browser, live_server)
    _sign_in(page, "jpn-eng-sato")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert "Skip to main content" in focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # every form control has an accessible label
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name)"""
    )
    assert unlabeled == []
    page.context.close()


@pytest.mark.timeout(90)
def test_every_page_is_labelled_and_headed(live_server: str, browser: Any) -> None:
    """One h1 per page, every form control labelled, images none, main landmark."""
    page = _page(browser, live_server)
    _sign_in(page, "gbr-so-whitfield")
    pages = {
        "10-people": "/console/people",
        "11-person": "/console/people/gbr-eng-lowe",
        "12-documents": "/console/documents",
        "13-decision-explorer": "/console/decisions?person_id=gbr-eng-lowe"
        "&doc_id=hyp-thermal-protection&action=read",
        "14-what-if": "/console/what-if?nation=JPN&project=undersea&ceiling=SECRET",
        "15-new-document": "/console/documents/new",
    }
    for name, path in pages.items():
        page.goto(path)
        assert page.locator("h1").count() == 1, path
        assert page.locator("main#main").count() == 1, path
        unlabeled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.name)"""
        )
        assert unlabeled == [], (path, unlabeled)
        _shot(page, name)
    # a GBR officer sees JPN people who would gain access as a count, not by name
    page.goto(pages["14-what-if"])
    assert page.locator('#gained-elsewhere tr[data-nation="JPN"]').count() == 1
    assert "Ren Yamamoto" not in page.content()
    page.context.close()
