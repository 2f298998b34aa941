"""Export control in a real browser (Playwright + Debian's Chromium) against
``relto serve --demo``: an upload to an export-relevant project asks for the
export classification in the label picker and is withheld; USA's export-control
officer finds it on the Export control page and classifies it.

Screenshots go to ``test-artifacts/product/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .test_browser_story import _page, _shot, _sign_in


@pytest.mark.timeout(120)
def test_upload_to_an_export_relevant_project_waits_for_the_officer(
    live_server: str, browser: Any, tmp_path: Path
) -> None:
    page = _page(browser, live_server)
    _sign_in(page, "usa-eng-ramirez")
    assert page.locator('a[href="/console/export"]').count() == 0  # not an officer's menu
    page.goto("/console/documents/new")
    page.get_by_label("Title", exact=True).fill("Towed array beam patterns")
    page.get_by_label("Project", exact=True).select_option("undersea")
    page.locator("#doc-class").select_option("SECRET")
    page.get_by_role("checkbox", name="GBR", exact=True).check()
    page.get_by_label("Export controlled").select_option("yes")
    page.get_by_label("Regime").select_option("ITAR")
    page.get_by_label("USML category").fill("XI")
    page.get_by_label("USML paragraph").fill("(a)(1)")
    source = tmp_path / "beams.txt"
    source.write_text("Main lobe 3 dB at 40 degrees.")
    page.locator("#doc-file").set_input_files(str(source))
    _shot(page, "20-upload-export-classification")
    page.get_by_role("button", name="Protect and upload").click()
    page.wait_for_url("**/console/documents/*")
    assert "withheld until a USA export-control officer" in page.get_by_role("status").inner_text()
    doc_id = page.url.split("?")[0].rsplit("/", 1)[1]

    _sign_in(page, "usa-so-bennett")
    page.get_by_role("link", name="Export control").click()
    row = page.locator(f'#export-pending tr[data-object="{doc_id}"]')
    assert "USML XI(a)(1)" in row.inner_text()
    _shot(page, "21-export-awaiting-classification")
    row.get_by_role("link", name="Classify…").click()
    assert page.locator("#cl-doc").input_value() == doc_id
    page.locator("#classify-preview").click()
    page.wait_for_load_state()
    assert "usml_category: XI" in page.locator("#export-record").inner_text()
    page.get_by_label("Justification").fill("Confirmed: ITAR XI(a)(1) technical data")
    page.get_by_role("button", name="Record").click()
    page.wait_for_load_state()
    assert f"Classified {doc_id}" in page.get_by_role("status").inner_text()
    assert page.locator(f'#export-pending tr[data-object="{doc_id}"]').count() == 0
    _shot(page, "22-export-classified")
