"""The target story in a real browser (Playwright + Debian's Chromium) against
``relto serve --demo``: a partner is refused until a security officer admits it,
and every step is visible to the people who need to see it.

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


@pytest.mark.timeout(120)
def test_security_officer_admits_partner_in_browser(live_server: str, browser: Any) -> None:
    page = _page(browser, live_server)
    page.goto("/console")
    page.wait_for_url("**/login**")
    _shot(page, "01-login")
    _sign_in(page, "gbr-so-whitfield")
    cell = page.locator('tr[data-project="hypersonic"] td[data-nation="JPN"]')
    assert cell.inner_text().strip() == "—"
    _shot(page, "02-dashboard-before")
    page.get_by_label("Project", exact=True).select_option("hypersonic")
    page.get_by_label("Nation", exact=True).select_option("JPN")
    page.locator("#admit-ceiling").select_option("SECRET")
    page.locator("#admit-note").fill("JPN joins hypersonics flight test analysis")
    page.get_by_role("button", name="Admit").click()
    page.wait_for_load_state()
    assert "JPN admitted to hypersonic up to SECRET" in page.get_by_role("status").inner_text()
    assert cell.inner_text().strip() == "SECRET"
    _shot(page, "03-dashboard-after-admission")
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
