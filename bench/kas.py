"""KAS rewrap benchmark: HTTP throughput and latency next to the in-process cost.

Measures, in one run:

1. the crypto-only cost of one rewrap in-process (EC key access object unwrapped
   with the KAS's secp256r1 key, policy binding, decision, audit call, rewrap to an
   EC client key with a fresh session key) -- the baseline;
2. the same plus authentication (bearer JWT signature and claims, request token);
3. rewrap over HTTP: relto served by uvicorn with 2 worker processes, EC keys,
   load from ``wrk`` in another process (many concurrent connections), reporting
   requests/s and p50/p99 latency; once with bearer tokens, once with a fresh
   DPoP proof per request. The server runs with ``RELTO_KAS_REQUIRE_DPOP=false``
   so that the bearer mode is accepted at all (as for otdf-python 0.11.0); the
   DPoP mode's tokens are DPoP-bound (``cnf.jkt``), so its proofs are required
   and checked exactly as with the default setting.

Run: ``.venv/bin/python bench/kas.py [--duration 10] [--connections 64]``.
Needs ``wrk`` (``apt-get install wrk``). Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kas"))

PASSPHRASE = "bench kas keystore passphrase"
AUDIENCE = "relto-kas"


class BenchAllowDecider:
    """Allows everything, silently. Only ever built by this benchmark's server factory."""

    blocking = False  # computes only: the KAS may call it on the event loop

    def decide(self, facts: Any) -> Any:
        from relto.kas import KasDecision

        return KasDecision(True)


def server_app() -> Any:
    """Uvicorn factory for the benchmark's worker processes."""
    from relto.config import load_settings
    from relto.server.app import create_app
    from relto.server.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    runtime = app.state.node.kas
    if os.environ.get("BENCH_KAS_DECIDER", "allow") == "allow":
        runtime.decider = BenchAllowDecider()
    # else: the product's own decider (the decision engine over the demo partnership)
    if os.environ.get("BENCH_KAS_NULL_AUDIT") == "1":
        from relto.events import NullSink

        runtime.service.sink = NullSink()  # to measure what the durable audit costs
    from relto.server.run import freeze_startup_heap

    freeze_startup_heap()  # as relto serve's workers do
    return app


PRODUCT_DOCUMENT = "hyp-thermal-protection"
PRODUCT_SUBJECT = "usa-eng-ramirez"
PRODUCT_NATION = "USA"  # the subject's home nation, which the issuer must vouch for


def _document_policy(app: Any) -> str:
    """The policy (base64) of the demo document the product mode asks keys for: the
    benchmark wraps its own EC key share to the KAS, bound to that policy, so the
    KAS's decider decides on the real document."""
    import io
    import zipfile

    from relto.store.documents import DocumentRow

    node = app.state.node
    with node.db.session() as s:
        key = s.get(DocumentRow, PRODUCT_DOCUMENT).blob_key
    with node.blobs.open(key) as f:
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(f.read())).read("0.manifest.json"))
    policy: str = manifest["encryptionInformation"]["policy"]
    return policy


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _request(
    issuer: Any, kas_pem: str, kid: str, policy: str | None = None
) -> tuple[str, dict[str, Any]]:
    from kas_testing import DpopKey, client_keys, make_kao, policy_b64, request_body

    policy = policy or policy_b64(attrs=["https://relto.example/attr/rel/value/gbr"])
    kao, _ = make_kao(kas_pem, kid, policy, ec_key=True)
    _, client_pem = client_keys("ec")
    body = request_body(client_pem, policy, [kao])
    signer = DpopKey()
    now = int(time.time())
    srt = signer.sign({"requestBody": body, "iat": now, "exp": now + 3600})
    return srt, {"signer": signer, "body": body}


def in_process(store: Any, issuer: Any, n: int) -> dict[str, float]:
    from kas_testing import DpopKey, client_keys, make_kao, policy_b64, request_body

    from relto.events import NullSink
    from relto.kas.auth import AuthConfig, Authenticator, StaticJwks, verify_request_token
    from relto.kas.service import KasService
    from relto.kas.wire import parse_request_body

    info = store.active("ec:secp256r1")
    service = KasService(store=store, sink=NullSink(), decider=BenchAllowDecider())
    # Bearer tokens in-process: DPoP relaxed explicitly (the KAS requires it by default).
    auth = Authenticator(
        AuthConfig(issuer.issuer, AUDIENCE, require_dpop=False), StaticJwks(issuer.jwks())
    )
    token = issuer.token(ttl=3600)
    policy = policy_b64(attrs=["https://relto.example/attr/rel/value/gbr"])
    bodies = []
    for _ in range(n):
        kao, _ = make_kao(info.public_key_pem, info.kid, policy, ec_key=True)
        bodies.append(request_body(client_keys("ec")[1], policy, [kao]))
    signer = DpopKey()
    now = int(time.time())
    srts = [signer.sign({"requestBody": b, "iat": now, "exp": now + 3600}) for b in bodies]
    at = datetime.now(UTC)
    caller = auth.authenticate(
        authorization=f"Bearer {token}", dpop=None, method="POST", urls=["http://x/"], at=at
    )
    parsed = [parse_request_body(b) for b in bodies]
    crypto: list[float] = []
    for body in parsed:
        t0 = time.perf_counter()
        resp = service.rewrap(body, caller, at=at, request_verified=False)
        crypto.append(time.perf_counter() - t0)
        assert resp.responses[0].results[0].status == "permit"
    full: list[float] = []
    for srt in srts:
        t0 = time.perf_counter()
        c = auth.authenticate(
            authorization=f"Bearer {token}", dpop=None, method="POST", urls=["http://x/"], at=at
        )
        claims, _ = verify_request_token(srt, c, at=at)
        service.rewrap(parse_request_body(claims["requestBody"]), c, at=at, request_verified=False)
        full.append(time.perf_counter() - t0)
    return {
        "crypto_mean_ms": statistics.fmean(crypto) * 1e3,
        "crypto_p50_ms": _percentile(crypto, 0.5) * 1e3,
        "crypto_p99_ms": _percentile(crypto, 0.99) * 1e3,
        "full_mean_ms": statistics.fmean(full) * 1e3,
    }


_WRK_LUA = r"""
local proofs = {}
local idx = 0
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
local proof_file = os.getenv("BENCH_PROOFS")
if proof_file ~= nil and proof_file ~= "" then
  for line in io.lines(proof_file) do proofs[#proofs + 1] = line end
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = auth
local threads = {}
local step = tonumber(os.getenv("BENCH_THREADS"))
function setup(thread)
  thread:set("offset", #threads)
  threads[#threads + 1] = thread
end
function init(args)
  idx = tonumber(offset)
end
function request()
  if #proofs > 0 then
    -- each thread takes every step-th proof: no proof is ever sent twice
    wrk.headers["DPoP"] = proofs[(idx % #proofs) + 1]
    idx = idx + step
  end
  return wrk.format()
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f n=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status))
end
"""


def _cpu_seconds(root_pid: int) -> float:
    """User+system CPU time of a process and its children (the uvicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [root_pid]
    while pids:
        pid = pids.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids.extend(int(k) for k in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def run_wrk(
    url: str,
    body: str,
    auth: str,
    proofs: Path | None,
    *,
    duration: int,
    connections: int,
    threads: int,
    workdir: Path,
    server_pid: int,
) -> dict[str, float]:
    script = workdir / "rewrap.lua"
    script.write_text(_WRK_LUA)
    env = {
        **os.environ,
        "BENCH_BODY": body,
        "BENCH_AUTH": auth,
        "BENCH_THREADS": str(threads),
        "BENCH_PROOFS": str(proofs) if proofs else "",
    }
    cpu0 = _cpu_seconds(server_pid)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=duration + 60,
    ).stdout
    m = re.search(
        r"RESULT rps=([\d.]+) p50=([\d.]+) p99=([\d.]+) n=(\d+) errors=(\d+) "
        r"non2xx=(\d+)",
        out,
    )
    if not m:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    cpu = _cpu_seconds(server_pid) - cpu0
    rps, p50, p99, n, errors, non2xx = m.groups()
    return {
        "rps": float(rps),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "requests": int(n),
        "errors": int(errors),
        "non2xx": int(non2xx),
        "cpu_ms_per_request": 1e3 * cpu / max(1, int(n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inprocess", type=int, default=2000)
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto, h11, httptools)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto, asyncio, uvloop)")
    parser.add_argument(
        "--decider",
        choices=("allow", "product"),
        default="allow",
        help="allow: a decider that allows everything (measures the KAS); product: the "
        "product's decision engine over the demo partnership, for a demo document "
        f"({PRODUCT_DOCUMENT}) and a person it allows ({PRODUCT_SUBJECT})",
    )
    parser.add_argument(
        "--null-audit",
        action="store_true",
        help="comparison only: drop audit records (never run a KAS like this)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    from kas_testing import ServerThread, TestIssuer, free_port, issuer_app

    from relto.kas.filestore import FileKeyStore

    work = Path(tempfile.mkdtemp(prefix="relto-bench-kas-"))
    try:
        store = FileKeyStore(work / "data" / "kas-keys", PASSPHRASE)
        now = datetime.now(UTC)
        store.rotate("ec:secp256r1", at=now)
        store.rotate("rsa:2048", at=now)
        issuer_port = free_port()
        issuer = TestIssuer(issuer=f"http://127.0.0.1:{issuer_port}")

        print(f"in-process: {args.inprocess} rewraps, EC KAO -> EC client", flush=True)
        ip = in_process(store, issuer, args.inprocess)
        print(
            f"  crypto only  mean {ip['crypto_mean_ms']:.3f} ms  p50 {ip['crypto_p50_ms']:.3f}"
            f"  p99 {ip['crypto_p99_ms']:.3f}  -> {1e3 / ip['crypto_mean_ms']:.0f}/s per core"
        )
        print(
            f"  + auth/SRT   mean {ip['full_mean_ms']:.3f} ms"
            f"  -> {1e3 / ip['full_mean_ms']:.0f}/s per core",
            flush=True,
        )

        with ServerThread(issuer_app(issuer, {}), port=issuer_port):
            port = free_port()
            relto_env = {
                "RELTO_DATA_DIR": str(work / "data"),
                "RELTO_SECRET_KEY": "bench-secret-key-0123456789",
                "RELTO_KEYSTORE_PASSPHRASE": PASSPHRASE,
                # The test issuer vouches for the subject's nation only (ADR 0079):
                # the product decider denies a person whose home nation differs.
                "RELTO_OIDC_ISSUERS": json.dumps(
                    {
                        issuer.issuer: {
                            "nation": PRODUCT_NATION if args.decider == "product" else "GBR",
                            "jwks_url": f"{issuer.issuer}/jwks",
                            "audience": AUDIENCE,
                        }
                    }
                ),
                # The bearer mode sends no DPoP proof (see the module docstring).
                "RELTO_KAS_REQUIRE_DPOP": "false",
                "RELTO_LOG_LEVEL": "WARNING",
                "RELTO_DEMO": "true" if args.decider == "product" else "false",
                "RELTO_ATTRIBUTE_NAMESPACE": "https://attributes.bench.test",
                "BENCH_KAS_DECIDER": args.decider,
                "BENCH_KAS_NULL_AUDIT": "1" if args.null_audit else "0",
            }
            env = {**os.environ, **relto_env}
            # Build the app once here so every database is migrated before the two
            # workers start: two processes migrating fresh SQLite files at once race.
            saved = dict(os.environ)
            os.environ.update(relto_env)
            try:
                probe = server_app()
                sink_name = type(probe.state.node.kas.service.sink).__name__
                decider_name = type(probe.state.node.kas.decider).__name__
                print(f"audit sink in the server: {sink_name}; decider: {decider_name}")
                doc_policy = _document_policy(probe) if args.decider == "product" else None
            finally:
                os.environ.clear()
                os.environ.update(saved)
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "kas:server_app",
                    "--app-dir",
                    str(ROOT / "bench"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--http",
                    args.http,
                    "--loop",
                    args.loop,
                ],
                env=env,
                cwd=str(ROOT),
            )
            try:
                base = f"http://127.0.0.1:{port}"
                import httpx

                deadline = time.time() + 60
                while True:
                    try:
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError("relto did not start")
                    time.sleep(0.2)
                info = store.active("ec:secp256r1")
                subject = PRODUCT_SUBJECT if args.decider == "product" else "alice"
                token = issuer.token(subject, ttl=3600)
                srt, extra = _request(issuer, info.public_key_pem, info.kid, doc_policy)
                body = json.dumps({"signedRequestToken": srt})
                url = f"{base}/kas.AccessService/Rewrap"
                check = httpx.post(
                    url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                )
                result = check.json()["responses"][0]["results"][0]
                assert result["status"] == "permit", check.text
                base64.b64decode(result["kasWrappedKey"])

                common = {
                    "duration": args.duration,
                    "connections": args.connections,
                    "threads": args.threads,
                    "workdir": work,
                    "server_pid": server.pid,
                }
                run_wrk(url, body, f"Bearer {token}", None, **{**common, "duration": 2})
                bearer = run_wrk(url, body, f"Bearer {token}", None, **common)

                # DPoP: one fresh proof per request, bound to the access token.
                signer = extra["signer"]
                dpop_token = issuer.token(subject, ttl=3600, cnf={"jkt": signer.thumbprint()})
                n_proofs = int(max(2000, bearer["rps"] * 1.5) * (args.duration + 2))
                proofs = work / "proofs.txt"
                with proofs.open("w") as f:
                    for _ in range(n_proofs):
                        f.write(signer.proof(url, dpop_token) + "\n")
                dpop_srt = signer.sign(
                    {
                        "requestBody": extra["body"],
                        "iat": int(time.time()),
                        "exp": int(time.time()) + 3600,
                    }
                )
                dpop_body = json.dumps({"signedRequestToken": dpop_srt})
                dpop = run_wrk(url, dpop_body, f"DPoP {dpop_token}", proofs, **common)
            finally:
                server.terminate()
                server.wait(timeout=20)

        per_core = 1e3 / ip["crypto_mean_ms"]
        print(
            f"\nHTTP rewrap, {args.workers} uvicorn workers, EC keys, {args.decider} decider, "
            f"wrk -c{args.connections} -t{args.threads}, {args.duration}s, 2 shared cores:"
        )
        for name, r in (("bearer", bearer), ("bearer+DPoP", dpop)):
            print(
                f"  {name:<12} {r['rps']:8.0f} rewraps/s  p50 {r['p50_ms']:6.2f} ms"
                f"  p99 {r['p99_ms']:6.2f} ms  ({r['requests']} requests, "
                f"{r['errors']} socket errors, {r['non2xx']} non-2xx)"
                f"  = {r['rps'] / per_core:.2f}x one core of crypto-only"
            )
            cpu_ms = r["cpu_ms_per_request"]
            print(
                f"  {'':<12} server CPU {cpu_ms:.2f} ms per rewrap -> "
                f"{2000 / cpu_ms:.0f} rewraps/s if 2 cores were the server's alone"
            )
        ok = bearer["rps"] >= 1000 and bearer["p99_ms"] < 50
        print(f"\ntarget >= 1000 rewraps/s with p99 < 50 ms: {'met' if ok else 'NOT met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
