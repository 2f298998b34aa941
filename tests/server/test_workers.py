"""Several server workers starting at once on one fresh data folder and database:
migrations and the demo load happen exactly once, and no worker crashes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

_WORKER = r"""
import json, os, sys, time
from pathlib import Path
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.005)
from relto.config import load_settings
from relto.server import create_app
app = create_app(load_settings())
report = app.state.demo_report
print(json.dumps({"people": report.people, "partnerships": report.partnerships,
                  "documents": report.documents}))
"""


def _start_together(tmp_path: Path, database_url: str, n: int = 3) -> list[dict[str, int]]:
    go = tmp_path / "go"
    env = {
        "RELTO_DATA_DIR": str(tmp_path / "data"),
        "RELTO_DEMO": "true",
        "RELTO_DATABASE_URL": database_url,
        "RELTO_LOG_LEVEL": "WARNING",
        "PATH": "/usr/bin:/bin",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    time.sleep(1.0)  # let every interpreter reach the starting line
    go.touch()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        assert "Traceback" not in err, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_workers_starting_together_load_the_demo_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'relto.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    reports = _start_together(tmp_path, url)
    assert sum(r["partnerships"] for r in reports) == 1
    assert sum(r["people"] for r in reports) == 17
    assert sum(r["documents"] for r in reports) == 6
    assert sorted(r["people"] for r in reports) == [0, 0, 17]
