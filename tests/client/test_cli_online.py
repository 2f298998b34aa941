"""The command line's online commands go through relto.client: ``relto login``
signs in at the USA provider in "the browser" (``$BROWSER``: a script that fills
the provider's form) with a loopback redirect, keeps a DPoP-bound token with its
key (mode 0600), and ``relto remote`` lists, decides and opens across the USA and
GBR nodes (tests/client/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CLI_CLIENT, Federation

pytestmark = pytest.mark.xdist_group("client-federation")

RELTO = str(Path(sys.executable).with_name("relto"))
THERMAL = "Leading-edge ablation rates for flight 7, with the test matrix for flight 8."

BROWSER = """\
import sys
import httpx
from relto.launcher.idp import demo_sign_in

with httpx.Client(follow_redirects=False, timeout=10) as browser:
    back = demo_sign_in(browser, sys.argv[1], sys.argv[2])
httpx.get(back, timeout=10).raise_for_status()  # the redirect to relto's loopback listener
"""


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELTO, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_login_then_list_decide_and_open_across_nodes(
    federation: Federation, tmp_path: Path
) -> None:
    script = tmp_path / "browser.py"
    script.write_text(BROWSER)
    session = tmp_path / "session.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELTO_")}
    env["BROWSER"] = f"{sys.executable} {script} %s usa-eng-ramirez"
    env["RELTO_CLIENT_SESSION"] = str(session)

    done = _run(
        env, "login", "--node", federation.usa.url, "--issuer", federation.usa_issuer,
        "--client-id", CLI_CLIENT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signed in for the USA node" in done.stdout
    assert session.stat().st_mode & 0o077 == 0  # the token and its private key: owner only

    listed = _run(env, "remote", "objects")
    assert listed.returncode == 0, listed.stderr
    assert "hyp-thermal-protection" in listed.stdout and "GBR" in listed.stdout

    decided = _run(env, "remote", "decide", "GBR", "hyp-thermal-protection")
    assert decided.returncode == 0 and decided.stdout.startswith("allowed"), decided.stdout

    out = tmp_path / "thermal.txt"
    opened = _run(env, "remote", "open", "GBR", "hyp-thermal-protection", "-o", str(out))
    assert opened.returncode == 0, opened.stderr
    assert out.read_text() == THERMAL

    other = tmp_path / "other.txt"
    refused = _run(env, "remote", "open", "JPN", "hyp-thermal-protection", "-o", str(other))
    assert refused.returncode != 0 and "JPN" in refused.stderr  # no JPN node is known
    assert not other.exists()

    assert _run(env, "logout").stdout.strip() == "signed out"
    after = _run(env, "remote", "objects")
    assert after.returncode != 0 and "relto login" in after.stderr
