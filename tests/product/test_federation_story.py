"""The federation story in Chromium, across consoles of different nations' nodes,
against the real launcher (``relto federation demo``: four nodes, four
oidc-provider processes, not demo mode):

1. a GBR engineer signs in at the GBR console (through GBR's own provider) and
   protects a SECRET hypersonics document releasable to USA and JPN;
2. a USA engineer signs in at the USA console, finds it among the partner
   documents, held by GBR, and opens it;
3. a JPN engineer at the JPN console is denied by GBR, with GBR's reasons;
4. the USA vetting officer suspends the USA engineer's clearance at home, and the
   GBR node refuses the engineer within 60 s;
5. no nation alone changes the partnership: the GBR officer's admission of JPN to
   hypersonics becomes a proposal; the AUS and USA officers approve it on their
   own dashboards; JPN is admitted nowhere while two have signed, everywhere once
   all three have.

Screenshots go to ``test-artifacts/product/federation-*.png``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "product"
RELTO = str(Path(sys.executable).with_name("relto"))
TEXT = "Flight 9 scramjet inlet pressures, shared with USA and JPN."

pytestmark = pytest.mark.xdist_group("federation-story")


def _free_run(count: int) -> int:
    for _ in range(200):
        base = random.randrange(41000, 60000)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free ports")


@dataclass
class Four:
    urls: dict[str, str]


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Four]:
    root = tmp_path_factory.mktemp("federation-story") / "fed"
    node_base, idp_base = _free_run(4), _free_run(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    launcher = subprocess.Popen(
        [RELTO, "federation", "demo", "--root", str(root),
         "--node-port", str(node_base), "--idp-port", str(idp_base),
         "--replicate-seconds", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    try:
        assert launcher.stdout is not None
        for line in launcher.stdout:
            output.append(line)
            if line.startswith("Ctrl-C stops"):
                break
        else:
            raise AssertionError("".join(output))
        nations = ("AUS", "GBR", "USA", "JPN")
        yield Four({n: f"http://127.0.0.1:{node_base + i}" for i, n in enumerate(nations)})
    finally:
        os.killpg(launcher.pid, signal.SIGINT)
        try:
            launcher.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)


def _console(browser: Any, base: str) -> Any:
    context = browser.new_context(base_url=base, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    return context.new_page()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"federation-{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, person_id: str) -> None:
    """Sign in at the nation's console through its own OpenID provider's form."""
    page.goto("/console")
    page.wait_for_url("**/login**")
    page.locator("#sign-in-oidc").click()
    page.locator('input[name="login"]').fill(person_id)
    page.locator('input[name="password"]').fill("any password")
    page.locator('button[type="submit"]').click()
    consent = page.locator('button[type="submit"]')
    if not page.url.startswith(base):
        consent.click()  # the provider's consent form
    page.wait_for_url(f"{base}/console**")


def _open_partner(page: Any, title: str) -> str:
    """Find ``title`` among the partner documents, open it; the document's path."""
    page.goto("/console/documents")
    row = page.locator("#partner-documents tr", has_text=title)
    if not row.count():
        errors = page.locator("[data-partner-error]").all_inner_texts()
        raise AssertionError(f"{title!r} not among the partner documents; errors: {errors}")
    assert row.get_attribute("data-held-by") == "GBR"
    row.get_by_role("link", name=title).click()
    page.wait_for_url("**/console/partners/GBR/documents/*")
    path = "/" + page.url.split("/", 3)[3]
    page.locator("#open-button").click()
    return path


@pytest.mark.timeout(300)
def test_gbr_protects_usa_opens_jpn_denied_suspension_at_home_denies_abroad(
    four: Four, browser: Any, tmp_path: Path
) -> None:
    gbr, usa, jpn = four.urls["GBR"], four.urls["USA"], four.urls["JPN"]

    # 1. GBR engineer protects at the GBR console
    harper = _console(browser, gbr)
    _sign_in(harper, gbr, "gbr-eng-harper")
    harper.goto("/console/documents/new")
    title = f"Scramjet inlet pressures {random.randrange(10**6)}"
    harper.get_by_label("Title", exact=True).fill(title)
    harper.get_by_label("Project", exact=True).select_option("hypersonic")
    harper.locator("#doc-class").select_option("SECRET")
    harper.get_by_role("checkbox", name="USA", exact=True).check()
    harper.get_by_role("checkbox", name="JPN", exact=True).check()
    source = tmp_path / "inlet.txt"
    source.write_text(TEXT)
    harper.locator("#doc-file").set_input_files(str(source))
    harper.get_by_role("button", name="Protect and upload").click()
    harper.wait_for_url("**/console/documents/*")
    assert harper.locator("#doc-banner").inner_text().startswith("SECRET//REL TO ")
    _shot(harper, "01-gbr-protected")

    # 2. USA engineer opens it from the USA console
    ramirez = _console(browser, usa)
    _sign_in(ramirez, usa, "usa-eng-ramirez")
    doc_path = _open_partner(ramirez, title)
    assert ramirez.locator("#decision-allowed").is_visible()
    assert ramirez.locator("#doc-content").inner_text() == TEXT
    assert "GBR" in ramirez.locator("#held-by").inner_text()
    _shot(ramirez, "02-usa-opens-gbr-document")

    # 3. JPN engineer is denied by GBR, with GBR's reasons
    sato = _console(browser, jpn)
    _sign_in(sato, jpn, "jpn-eng-sato")
    _open_partner(sato, title)
    assert sato.locator("#decision-denied").is_visible()
    codes = sato.locator("#reasons li").evaluate_all("els => els.map(e => e.dataset.code)")
    assert "NATION_NOT_ADMITTED" in codes, codes
    assert TEXT not in sato.content()
    _shot(sato, "03-jpn-denied-with-reasons")

    # 4. the USA vetting officer suspends the engineer at home ...
    officer = _console(browser, usa)
    _sign_in(officer, usa, "usa-vo-federation")
    officer.goto("/console/people/usa-eng-ramirez")
    officer.get_by_label("Reason (recorded)").first.fill("security incident under inquiry")
    officer.locator('button[id^="suspend-"]').first.click()
    officer.wait_for_url("**/console/people/usa-eng-ramirez")
    assert "suspended" in officer.locator(".flash").inner_text()
    suspended_at = time.monotonic()
    _shot(officer, "04-usa-suspends-at-home")

    # ... and GBR refuses the engineer within 60 s (the document, or already its page)
    while True:
        ramirez.goto(doc_path)
        if ramirez.locator("#open-button").count():
            ramirez.locator("#open-button").click()
        if ramirez.locator("#decision-denied").count():
            break
        assert time.monotonic() - suspended_at < 60, "GBR still released the key after 60 s"
        time.sleep(3)
    elapsed = time.monotonic() - suspended_at
    text = ramirez.locator("main").inner_text()
    assert TEXT not in text
    assert re.search(r"attestation_(revoked|suspended)|suspended|revoked", text), text[:500]
    print(f"GBR refused {elapsed:.1f} s after the suspension at home")
    _shot(ramirez, "05-gbr-refuses-after-suspension")


def _jpn_hypersonic(page: Any) -> str:
    page.goto("/console")
    return str(page.locator('tr[data-project="hypersonic"] td[data-nation="JPN"]').inner_text())


def _approve_when_it_arrives(page: Any, base: str, officer: str) -> None:
    _sign_in(page, base, officer)
    deadline = time.monotonic() + 30
    while not page.locator("#pending-changes tr[data-change]").count():
        assert time.monotonic() < deadline, f"the proposal did not reach {base}"
        time.sleep(1)
        page.goto("/console")
    row = page.locator("#pending-changes tr[data-change]").first
    assert "admission.grant" in row.inner_text() and "would gain read access" in row.inner_text()
    row.get_by_label("Justification (signed)").fill("effect checked on this node")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()


@pytest.mark.timeout(240)
def test_no_nation_alone_admits_jpn_every_member_node_signs(four: Four, browser: Any) -> None:
    aus, gbr, usa = four.urls["AUS"], four.urls["GBR"], four.urls["USA"]
    whitfield = _console(browser, gbr)
    _sign_in(whitfield, gbr, "gbr-so-whitfield")
    assert _jpn_hypersonic(whitfield).strip() in ("", "—", "-")
    whitfield.get_by_label("Project", exact=True).select_option("hypersonic")
    whitfield.get_by_label("Nation", exact=True).select_option("JPN")
    whitfield.locator("#admit-ceiling").select_option("SECRET")
    whitfield.get_by_role("button", name="Preview the effect").click()
    whitfield.wait_for_load_state()
    whitfield.get_by_label("Justification").fill("JPN joins the hypersonics flight tests")
    whitfield.get_by_role("button", name="Admit").click()
    whitfield.wait_for_load_state()
    said = whitfield.get_by_role("status").inner_text()
    assert "Proposed to the partnership" in said and "AUS, USA have signed too" in said
    _shot(whitfield, "06-gbr-proposes-admission")

    campbell = _console(browser, aus)
    _approve_when_it_arrives(campbell, aus, "aus-so-campbell")
    assert "2 of 3" in campbell.get_by_role("status").inner_text()
    time.sleep(5)  # two rounds of replication: still nobody admits JPN
    for page in (whitfield, campbell):
        assert _jpn_hypersonic(page).strip() != "SECRET"

    bennett = _console(browser, usa)
    _approve_when_it_arrives(bennett, usa, "usa-so-bennett")
    assert "applied" in bennett.get_by_role("status").inner_text()
    for page in (whitfield, campbell, bennett):
        deadline = time.monotonic() + 30
        while _jpn_hypersonic(page).strip() != "SECRET":
            assert time.monotonic() < deadline, "JPN not admitted on every node"
            time.sleep(1)
    _shot(whitfield, "07-jpn-admitted-by-every-member")
