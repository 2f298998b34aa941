"""examples/client_open.py, the program docs/client.md points to, run as a person
would run it after ``relto login``, against the two real nodes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relto.client import DpopKey, SavedSession

from .conftest import Federation

pytestmark = pytest.mark.xdist_group("client-federation")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "client_open.py"
THERMAL = "Leading-edge ablation rates for flight 7, with the test matrix for flight 8."


def _signed_in(federation: Federation, tmp_path: Path, person: str) -> Path:
    key = DpopKey.generate()
    token = federation.token(person, key)
    path = tmp_path / f"{person}.json"
    SavedSession(
        federation.usa.url, "USA", federation.usa_issuer, token,
        datetime.now(UTC) + timedelta(minutes=5), key,
    ).save(path)  # fmt: skip
    return path


def _example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=60
    )


def test_example_lists_and_opens_a_gbr_object(federation: Federation, tmp_path: Path) -> None:
    session = _signed_in(federation, tmp_path, "usa-eng-ramirez")
    listed = _example("--nation", "GBR", "--session", str(session))
    assert listed.returncode == 0, listed.stderr
    assert "hyp-thermal-protection\tSECRET//REL TO" in listed.stdout
    opened = _example(
        "--nation", "GBR", "--open", "hyp-thermal-protection", "--session", str(session)
    )
    assert opened.returncode == 0 and opened.stdout == THERMAL


def test_example_prints_the_holding_nodes_reasons_on_denial(
    federation: Federation, tmp_path: Path
) -> None:
    session = _signed_in(federation, tmp_path, "usa-so-bennett")
    r = _example("--nation", "GBR", "--open", "hyp-thermal-protection", "--session", str(session))
    assert r.returncode == 3 and "NO_NEED_TO_KNOW" in r.stderr and THERMAL not in r.stdout
