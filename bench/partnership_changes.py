"""Moved: ``bench/federation.py --mode changes`` measures the time from the last
approval of a partnership change to it being in force, now on all four nodes of the
launcher (AUS, GBR, USA members; JPN partner), against one replication hop measured
in the same run. This file runs it for old command lines.

Run: ``.venv/bin/python bench/federation.py --mode changes [--changes 50] [--interval 1]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    bench = Path(__file__).resolve().parent / "federation.py"
    os.execv(sys.executable, [sys.executable, str(bench), "--mode", "changes", *sys.argv[1:]])
