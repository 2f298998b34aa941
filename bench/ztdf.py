"""Benchmark: relto.ztdf protect/open against raw AES-GCM and otdf-python, same run.

    .venv/bin/python bench/ztdf.py [--size-mib 1024] [--dir /dev/shm] [--repeat 5]
                                   [--otdf-size-mib 256]

Measures, on a file of ``--size-mib`` MiB with 2 MiB segments:

- relto ``protect`` and ``open`` (each in a fresh subprocess, timed around the call;
  peak RSS of that subprocess from ``resource.getrusage``), each right after its
  file baseline run the same way; the ratio is best against best (the runs least
  disturbed by the rest of the machine), with the median and range of the
  adjacent pairs beside it;
- baseline 1, raw ``cryptography`` AESGCM over the same 2 MiB segments in memory
  (no I/O: the ceiling);
- baseline 2, the same AESGCM loop file to file (read a segment into a preallocated
  buffer, ``encrypt_into`` / ``decrypt_into``, write; fsync at the end), in a fresh
  subprocess like relto: the same I/O relto does, without the container format, as
  lean as the library allows;
- otdf-python 0.11.0 offline decrypt (``TDF.load_tdf`` with the private key) of a
  relto container of ``--otdf-size-mib`` MiB, against relto ``open`` of the same
  file (otdf-python holds the whole file in memory and is quadratic in the number of
  segments, so 1 GiB takes many minutes; the default keeps the run short).

Throughputs are the best of ``--repeat`` runs. By default files live in /dev/shm
so the figures measure the software rather than the disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEG = 2 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
from datetime import UTC, datetime
op, src, dst, key = sys.argv[1:5]
sys.path.insert(0, sys.argv[5])
if op in ("raw-encrypt", "raw-decrypt"):
    import ztdf
    secret = open(key, "rb").read()
    t = time.perf_counter()
    (ztdf.raw_encrypt_file if op == "raw-encrypt" else ztdf.raw_decrypt_file)(src, dst, secret)
elif op == "protect":
    from relto.ztdf import KasTarget, protect
    pem = open(key).read()
    t = time.perf_counter()
    protect(src, dst, kas=[KasTarget("https://kas.bench", pem, kid="b")], at=datetime.now(UTC),
            overwrite=True, label_xml=b"<label/>")
elif op == "open":
    from relto.ztdf import open_container, private_key_unwrapper
    unwrap = private_key_unwrapper(open(key).read())
    t = time.perf_counter()
    open_container(src, dst, unwrap=unwrap, overwrite=True)
elif op == "otdf":
    from otdf_python.tdf import TDF, TDFReaderConfig
    pem = open(key).read()
    t = time.perf_counter()
    with open(src, "rb") as f:
        reader = TDF().load_tdf(f.read(), TDFReaderConfig(kas_private_key=pem))
    with open(dst, "wb") as f:
        f.write(reader.payload)
elapsed = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"elapsed": elapsed, "maxrss_kib": rss, "vmhwm_kib": hwm}))
"""


def child(op: str, src: Path, dst: Path, key: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one operation in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, op, str(src), str(dst), str(key), str(ROOT / "bench")],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    if os.environ.get("BENCH_VERBOSE"):
        print(f"    {op:<12} {1024 / data['elapsed']:6.0f} MiB/s", file=sys.stderr)
    # getrusage's ru_maxrss can carry the parent's peak across fork+exec; VmHWM cannot.
    return float(data["elapsed"]), min(data["maxrss_kib"], data["vmhwm_kib"]) / 1024


def make_input(path: Path, size: int) -> None:
    block = os.urandom(SEG)
    with path.open("wb") as f:
        written = 0
        i = 0
        while written < size:
            n = min(SEG, size - written)
            f.write((block[i % 997 :] + block[: i % 997])[:n])
            written += n
            i += 1


def raw_memory(size: int) -> tuple[float, float]:
    """Seconds to encrypt, then decrypt, ``size`` bytes in 2 MiB segments in memory."""
    aead = AESGCM(AESGCM.generate_key(256))
    data = os.urandom(SEG)
    n = size // SEG
    t = time.perf_counter()
    cts = []
    for _ in range(n):
        iv = os.urandom(12)
        ct = aead.encrypt(iv, data, None)
        if len(cts) < 1:
            cts.append((iv, ct))
    enc = time.perf_counter() - t
    iv, ct = cts[0]
    t = time.perf_counter()
    for _ in range(n):
        aead.decrypt(iv, ct, None)
    dec = time.perf_counter() - t
    return enc, dec


def raw_encrypt_file(src: str, dst: str, key: bytes) -> None:
    """Baseline 2, encrypt: a plain AESGCM file-to-file loop, as lean as the library
    allows so it is not a straw man: preallocated buffers (``readinto``),
    ``encrypt_into`` (no copies), one write per segment, fsync at the end. One
    thread, no container format."""
    aead = AESGCM(key)
    inbuf = memoryview(bytearray(SEG))
    outbuf = memoryview(bytearray(SEG + 28))
    with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
        while n := fi.readinto(inbuf):
            iv = os.urandom(12)
            outbuf[:12] = iv
            aead.encrypt_into(iv, inbuf[:n], None, outbuf[12 : n + 28])
            fo.write(outbuf[: n + 28])
        os.fsync(fo.fileno())


def raw_decrypt_file(src: str, dst: str, key: bytes) -> None:
    """Baseline 2, decrypt: the same loop the other way (``decrypt_into``)."""
    aead = AESGCM(key)
    blob = memoryview(bytearray(SEG + 28))
    plain = memoryview(bytearray(SEG))
    with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
        while n := fi.readinto(blob):
            aead.decrypt_into(blob[:12], blob[12:n], None, plain[: n - 28])
            fo.write(plain[: n - 28])
        os.fsync(fo.fileno())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--otdf-size-mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    default_dir = "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()
    ap.add_argument("--dir", default=default_dir)
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    mib = args.size_mib

    with tempfile.TemporaryDirectory(prefix="relto-bench-", dir=args.dir) as d:
        tmp = Path(d)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp / "kas.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (tmp / "kas.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        src = tmp / "input.bin"
        best: dict[str, float] = {}
        rss: dict[str, float] = {}
        ratios: dict[str, list[float]] = {"protect": [], "open": []}

        def keep(name: str, seconds: float) -> float:
            best[name] = min(seconds, best.get(name, float("inf")))
            return seconds

        (tmp / "raw.key").write_bytes(AESGCM.generate_key(256))
        raw = tmp / "raw.key"
        for i in range(args.repeat):
            enc, dec = raw_memory(size)
            keep("raw_mem_encrypt", enc)
            keep("raw_mem_decrypt", dec)
            # Baseline and relto run as a pair, each in a fresh process timed around
            # the call, first one then the other in turn, and each with the same
            # files present: every output is deleted as soon as it has been timed,
            # so no run overwrites an existing 1 GiB file or finds less free memory
            # than its partner did.
            flip = i % 2 == 1

            def encrypt_pair() -> tuple[float, float]:
                base = child("raw-encrypt", src, tmp / "raw.enc", raw)[0]
                t, r = child("protect", src, tmp / "c.tdf", tmp / "kas.pub")
                rss["protect"] = max(r, rss.get("protect", 0.0))
                return base, t

            def decrypt_pair(flip: bool = flip) -> tuple[float, float]:
                times = []
                for op in ("open", "raw-decrypt") if flip else ("raw-decrypt", "open"):
                    if op == "open":
                        t, r = child("open", tmp / "c.tdf", tmp / "out.bin", tmp / "kas.key")
                        rss["open"] = max(r, rss.get("open", 0.0))
                        (tmp / "out.bin").unlink()
                    else:
                        t = child("raw-decrypt", tmp / "raw.enc", tmp / "raw.dec", raw)[0]
                        (tmp / "raw.dec").unlink()
                    times.append(t)
                return (times[1], times[0]) if flip else (times[0], times[1])

            make_input(src, size)
            base, t = encrypt_pair()
            ratios["protect"].append(keep("raw_file_encrypt", base) / keep("relto_protect", t))
            src.unlink()  # the decrypting pair then holds no more memory than the other
            base, t = decrypt_pair()
            ratios["open"].append(keep("raw_file_decrypt", base) / keep("relto_open", t))
            for name in ("raw.enc", "c.tdf"):
                (tmp / name).unlink()

        # otdf-python against relto open, on a smaller container
        small = tmp / "small.bin"
        make_input(small, args.otdf_size_mib * 1024 * 1024)
        child("protect", small, tmp / "small.tdf", tmp / "kas.pub")
        t_relto, _ = child("open", tmp / "small.tdf", tmp / "small.out", tmp / "kas.key")
        for _ in range(args.repeat - 1):
            t_relto = min(
                t_relto, child("open", tmp / "small.tdf", tmp / "small.out", tmp / "kas.key")[0]
            )
        t_otdf, rss_otdf = child("otdf", tmp / "small.tdf", tmp / "small.otdf.out", tmp / "kas.key")
        same = (tmp / "small.out").read_bytes() == (tmp / "small.otdf.out").read_bytes()

    def mbps(name: str, mebibytes: int = mib) -> float:
        return mebibytes / best[name]

    print(f"ztdf benchmark: {mib} MiB, 2 MiB segments, dir {args.dir}, best of {args.repeat}")
    print(
        f"  raw AESGCM in memory   encrypt {mbps('raw_mem_encrypt'):8.0f} MiB/s   "
        f"decrypt {mbps('raw_mem_decrypt'):8.0f} MiB/s"
    )
    print(
        f"  raw AESGCM file->file  encrypt {mbps('raw_file_encrypt'):8.0f} MiB/s   "
        f"decrypt {mbps('raw_file_decrypt'):8.0f} MiB/s"
    )
    print(
        f"  relto protect          {mbps('relto_protect'):8.0f} MiB/s   "
        f"peak RSS {rss['protect']:.0f} MiB"
    )
    print(
        f"  relto open (verified)  {mbps('relto_open'):8.0f} MiB/s   peak RSS {rss['open']:.0f} MiB"
    )
    print("  ratios (target >= 0.9):")
    for op, base in (("protect", "raw file encrypt"), ("open", "raw file decrypt")):
        pairs = sorted(ratios[op])
        print(
            f"    {op:<7} / {base}  best / best "
            f"{best['raw_file_' + base.split()[-1]] / best['relto_' + op]:.2f}x   "
            f"(each adjacent pair: median {statistics.median(pairs):.2f}x, "
            f"range {pairs[0]:.2f}-{pairs[-1]:.2f})"
        )
    print(f"    protect / raw mem encrypt   {best['raw_mem_encrypt'] / best['relto_protect']:.2f}x")
    print(f"    open    / raw mem decrypt   {best['raw_mem_decrypt'] / best['relto_open']:.2f}x")
    print(
        f"  otdf-python decrypt, {args.otdf_size_mib} MiB: {t_otdf:.2f} s "
        f"(peak RSS {rss_otdf:.0f} MiB); "
        f"relto open {t_relto:.2f} s -> {t_otdf / t_relto:.1f}x faster (target >= 3x); "
        f"outputs identical: {same}"
    )


if __name__ == "__main__":
    main()
