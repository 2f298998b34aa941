"""Constant memory and size bounds: large inputs never load into memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relto.errors import InvalidInput
from relto.ztdf import KasTarget, protect

ROOT = Path(__file__).resolve().parents[2]

# Peak RSS from /proc/self/status (VmHWM, KiB): unlike getrusage's ru_maxrss it is not
# inherited across fork+exec from a large parent (a pytest-xdist worker).
_CHILD = r"""
import json, sys
from datetime import UTC, datetime
from relto.ztdf import KasTarget, open_container, private_key_unwrapper, protect
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
src, tdf, out, pub, priv = sys.argv[1:6]
protect(src, tdf, kas=[KasTarget("https://kas", open(pub).read())], at=datetime.now(UTC))
after_protect = hwm()
open_container(tdf, out, unwrap=private_key_unwrapper(open(priv).read()))
print(json.dumps([after_protect, hwm()]))
"""


def test_large_file_round_trip_in_constant_memory(tmp_path: Path, rsa_kas) -> None:
    """96 MiB through protect and open in a fresh interpreter stays far below 128 MiB."""
    src = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with src.open("wb") as f:
        for i in range(96):
            f.write(block[i:] + block[:i])
    pub, priv = tmp_path / "k.pub", tmp_path / "k.key"
    pub.write_text(rsa_kas[1])
    priv.write_text(rsa_kas[0])
    tdf, out = tmp_path / "big.tdf", tmp_path / "big.out"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(tdf), str(out), str(pub), str(priv)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rss_protect, rss_open = json.loads(res.stdout.strip().splitlines()[-1])
    assert rss_protect < 128 * 1024  # KiB
    assert rss_open < 128 * 1024
    assert out.stat().st_size == src.stat().st_size
    with src.open("rb") as a, out.open("rb") as b:
        while chunk := a.read(1 << 22):
            assert chunk == b.read(1 << 22)


def test_input_over_64_gib_refused_before_reading(tmp_path: Path, rsa_kas) -> None:
    src = tmp_path / "sparse.bin"
    with src.open("wb") as f:
        f.truncate(64 * 1024**3 + 1)  # sparse: no disk used
    with pytest.raises(InvalidInput):
        protect(
            src,
            tmp_path / "o.tdf",
            kas=[KasTarget("https://kas", rsa_kas[1])],
            at=datetime.now(UTC),
        )
    assert not (tmp_path / "o.tdf").exists()
