"""Interop tests with other OpenTDF clients. The KAS test helpers live beside the
KAS tests (``tests/kas/kas_testing.py``, imported by name), so that folder goes on
``sys.path`` here as it does for the tests in it."""

from __future__ import annotations

import sys
from pathlib import Path

_KAS_TESTS = str(Path(__file__).resolve().parents[1] / "kas")
if _KAS_TESTS not in sys.path:
    sys.path.insert(0, _KAS_TESTS)
