"""Federation benchmarks, each against a baseline measured in the same run.

Five modes (``--mode``). The first three measure a partner's attestation against
an OIDC token; ``changes`` and ``fork`` measure how fast four nodes agree:

``inprocess`` (default)
    One GBR demo node in this process (SQLite, its transparency log recording every
    rewrap, the product decider on a real GBR SECRET document). Interleaved call by
    call: **OIDC [baseline]**, a GBR engineer with a DPoP-bound access token of a
    trusted issuer (JWKS in memory), against **attestation**, a USA engineer with
    the USA node's attestation (pinned in the node's trust store, an in-memory
    status checker), a fresh DPoP proof per call either way.

``http``
    Two real nodes, each under uvicorn with 2 worker processes on 127.0.0.1, with
    their own data folders, ports, keys and OIDC issuer (a test issuer per nation,
    its JWKS served over HTTP): a USA node (not demo; an engineer with a granted USA
    TOP SECRET clearance on the hypersonic project) and a GBR demo node that pins
    the USA node's descriptor (fetched over HTTP) by its fingerprint, holding a
    1 MiB GBR SECRET REL TO USA object. The USA engineer takes one attestation from
    the USA node (``POST /api/v1/federation/attestation``, DPoP) and reuses it
    within its lifetime, as a client would; the GBR node reads the USA status list
    over HTTP with its own cache.

    1. *Open*: a whole open of the object, interleaved ABBA: fetch the container
       (``GET /api/v1/objects/{id}/container``), rewrap at the GBR KAS, decrypt
       client-side (``relto.ztdf.open_container``), a fresh DPoP proof per request.
       Cross-node (the USA engineer's attestation) against same-node **[baseline]**
       (the GBR engineer ``gbr-eng-harper`` with a DPoP-bound OIDC token at the GBR
       node). Paced to stay under the API's rate limit (``RELTO_RATE_LIMIT_API``,
       600/minute per client address, left as it is).
    2. *Rewraps/s*: ``wrk`` from another process against the GBR KAS, one fixed
       rewrap request with a fresh pre-generated DPoP proof per request (a Lua
       script, as ``bench/kas.py``), counting only ``permit`` answers: the USA
       engineer's attestation against the GBR engineer's OIDC token **[baseline]**.
       Nothing is relaxed: DPoP required, the product decider, the durable log, the
       KAS rate limit at its default (100,000/minute per address and credential).

``revocation``
    The same two nodes. The USA vetting officer suspends the USA engineer's
    clearance through the USA node's API (``POST
    /api/v1/clearances/{id}/transitions``, DPoP-bound OIDC token of the USA issuer);
    the GBR KAS is then asked every ``--poll`` seconds (0.5; a new connection each
    time, so either worker may answer) with the engineer's still unexpired
    attestation until the first denial. Then the officer grants the clearance
    again, and the bench keeps asking, as a partner's live traffic would keep the
    GBR workers' caches warm, until no worker can still hold the suspended list
    (31 s: a cache keeps a list at most 30 s), plus a random 0-30 s so that the
    next suspension falls anywhere in the caches' refresh cycle, and until the
    answer is permit again. Reports median, max and min seconds from suspension
    to first denial over ``--trials`` (50; about a minute each).

``changes``
    Four nodes under uvicorn in this process (threads), as the launcher's: AUS, GBR
    and USA (members) and JPN (a partner), each with its own data folder, port and
    keys and the launcher's share of the demo, each pinning the three others, each
    offering its partnership changes every ``--interval`` seconds (1; the server's
    own replication task, ``RELTO_FEDERATION_CHANGES_PUSH_SECONDS``, default 30).
    For each of ``--changes`` (50) changes, GBR's security officer proposes a new
    project and AUS's and USA's approve it as soon as it reaches their node; the
    clock runs from the last approval to the change being applied on all four
    nodes (and, reported too, on the three members). Baseline in the same run:
    one replication hop, from GBR's proposal to the change being held by AUS or
    USA. Replaces ``bench/partnership_changes.py`` (three members only).

``fork``
    The same four nodes, scheduled pushes off. GBR's log is rewritten by hand --
    a copy of its entries up to the last one cosigned, that entry replaced
    (``key.release`` of an object never released), optionally two more after it
    -- and signed with GBR's own checkpoint key, then pushed with GBR's own
    cosignature store to the witnesses of AUS, USA and JPN (HTTP, C2SP
    tlog-witness): *same size*, a second root at the size they cosigned (409
    from each, alarm at once), and *longer history*, whose consistency proof does
    not verify (422), each witness asking GBR's real log for the proof before it
    raises the alarm. Timed from the forged push until every witness has recorded
    ``audit.witness.alarm``; ``--fork-trials`` (20) of each, alternating order.
    Baseline in the same run: the honest push before each trial (the log grown
    by three entries, cosigned by all three). In production the push comes every
    ``RELTO_AUDIT_WITNESS_PUSH_SECONDS`` (60): detection is that interval at most
    plus what is measured here.

Run: ``.venv/bin/python bench/federation.py [--mode inprocess] [--calls 300]``,
``--mode http [--opens 200] [--duration 10] [--connections 32]``,
``--mode revocation [--trials 50]``, ``--mode changes [--changes 50] [--interval 1]``
(about 2 minutes), ``--mode fork [--fork-trials 20]`` (under a minute). ``http``
needs ``wrk`` (``apt-get install wrk``). Everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kas"))
sys.path.insert(0, str(ROOT))

URL = "http://bench.local/kas.AccessService/Rewrap"
SECRET = "federation-bench-secret-0123456789"
AUDIENCE = "relto-kas"
USA_ENGINEER = "usa-eng-bench"
USA_OFFICER = "usa-vo-bench"
GBR_ENGINEER = "gbr-eng-harper"
OBJECT_BYTES = 1 << 20


class ValidStatus:
    blocking = False

    def status(self, ref: Any, issuer_nation: str, now: datetime) -> Any:
        from relto.federation import TokenStatus

        return TokenStatus.VALID


def inprocess(args: argparse.Namespace) -> None:
    """Mode ``inprocess``: one GBR node in this process, KasRuntime.handle_rewrap."""

    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc import jwt
    from kas_testing import AUDIENCE, DpopKey, TestIssuer
    from tests.federation.conftest import FakeNode

    from relto.config import Settings
    from relto.federation import (
        AttestedClearance,
        AttestedPerson,
        StatusReference,
        make_attestation,
    )
    from relto.kas.auth import AuthConfig, Authenticator, MemoryReplayCache, StaticJwks
    from relto.kas.wire import rewrap_request_body
    from relto.server import create_app
    from relto.ztdf import hazmat
    from relto.ztdf.manifest import parse_key_access

    data = Path(tempfile.mkdtemp(prefix="relto-bench-fed-"))
    app = create_app(Settings(demo=True, data_dir=data))  # type: ignore[call-arg]
    node = app.state.node
    rt = node.kas
    issuer = TestIssuer()
    rt.authenticator = Authenticator(
        AuthConfig(issuer=issuer.issuer, audience=AUDIENCE, nation="GBR", require_dpop=True),
        StaticJwks(issuer.jwks()),
        MemoryReplayCache(),
    )
    node.attestations.status = ValidStatus()
    now = datetime.now(UTC)
    officer = node.directory.principal("gbr-so-whitfield", via="node")
    harper = node.directory.principal("gbr-eng-harper", via="node")
    usa = FakeNode("USA")
    node.trust.pin(
        usa.descriptor(at=now - timedelta(minutes=1)),
        fingerprint=usa.node_key.fingerprint,
        actor=officer,
        now=now,
    )
    doc = node.documents.upload(
        harper, title="Bench", project_id="hypersonic", classification="SECRET",
        rel_to=["USA"], filename="b.bin", media_type="application/octet-stream",
        data=secrets.token_bytes(4096), at=now,
    )  # fmt: skip
    _, f = node.documents.container(harper, doc.id)
    with f, zipfile.ZipFile(io.BytesIO(f.read())) as z:
        manifest = json.loads(z.read("0.manifest.json"))
    ka = parse_key_access(manifest["encryptionInformation"]["keyAccess"][0])
    policy = manifest["encryptionInformation"]["policy"]
    client = ec.generate_private_key(ec.SECP256R1())
    body = json.dumps(rewrap_request_body(ka, policy, hazmat.public_key_pem(client)))

    oidc_key = DpopKey()
    oidc_token = issuer.token("gbr-eng-harper", ttl=3600, cnf={"jkt": oidc_key.thumbprint()})
    att_key = DpopKey()
    person = AttestedPerson(
        "usa-eng-ramirez", "USA", frozenset({"USA"}), projects=frozenset({"hypersonic"}),
        clearances=(AttestedClearance("USA", "TOP_SECRET", "granted"),),
    )  # fmt: skip

    def attestation() -> str:
        return make_attestation(
            person,
            cnf_jkt=att_key.thumbprint(),
            signer=usa.signer,
            issuer=usa.base_url,
            now=datetime.now(UTC),
            status=StatusReference(7, f"{usa.base_url}/status/1"),
        )

    att_token = attestation()
    att_made = time.time()

    def call(key: Any, token: str) -> bool:
        t = int(time.time())
        srt = jwt.encode({"alg": key.alg}, {"requestBody": body, "iat": t, "exp": t + 60}, key.key)
        resp = rt.handle_rewrap(
            srt=srt,
            authorization=f"DPoP {token}",
            dpop=key.proof(URL, token),
            method="POST",
            url=URL,
            at=datetime.now(UTC),
        )
        return bool(resp.responses[0].results[0].status == "permit")

    def authenticate(key: Any, token: str) -> None:
        caller = rt._caller(f"DPoP {token}", key.proof(URL, token), "POST", URL, datetime.now(UTC))
        assert caller.status_refusal is None

    assert call(oidc_key, oidc_token) and call(att_key, att_token)  # warm, and both permitted
    times: dict[str, list[float]] = {}
    for i in range(args.calls):
        if time.time() - att_made > 200:  # attestations live 5 minutes
            att_token, att_made = attestation(), time.time()
        paths = [("oidc", oidc_key, oidc_token), ("attestation", att_key, att_token)]
        for name, key, token in paths if i % 2 else paths[::-1]:  # ABBA: no order bias
            start = time.perf_counter()
            ok = call(key, token)
            times.setdefault(name, []).append((time.perf_counter() - start) * 1000)
            assert ok, name
            start = time.perf_counter()
            authenticate(key, token)
            times.setdefault(f"{name} auth", []).append((time.perf_counter() - start) * 1000)
    print(f"{args.calls} calls each, interleaved; product decider, transparency log on SQLite")
    print("| path | median ms | p99 ms | × baseline (median) |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (
        ("oidc", "whole rewrap, OIDC access token + DPoP [baseline]"),
        ("attestation", "whole rewrap, partner attestation + DPoP"),
        ("oidc auth", "authentication only, OIDC [baseline]"),
        ("attestation auth", "authentication only, attestation (pins, signature, status)"),
    ):
        xs = sorted(times[name])
        med = statistics.median(xs)
        base = statistics.median(times["oidc auth" if "auth" in name else "oidc"])
        p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
        print(f"| {label} | {med:.3f} | {p99:.3f} | {med / base:.2f} |")
    node.db.dispose()


# ---------------------------------------------------------------- two nodes under uvicorn


def server_app() -> Any:
    """Uvicorn factory for the worker processes of either node (settings from RELTO_*)."""
    from relto.config import load_settings
    from relto.server.app import create_app
    from relto.server.logging import configure_logging
    from relto.server.run import freeze_startup_heap

    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    freeze_startup_heap()  # as relto serve's workers do
    return app


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class Caller:
    """A person with a DPoP key and the credential they present (attestation or token)."""

    name: str
    key: Any  # kas_testing.DpopKey
    credential: str

    def headers(self, url: str, method: str) -> dict[str, str]:
        return {
            "Authorization": f"DPoP {self.credential}",
            "DPoP": self.key.proof(url, self.credential, method=method),
        }


@dataclass
class Nodes:
    usa: str
    gbr: str
    gbr_pid: int
    doc: str
    clearance: str
    usa_issuer: Any
    gbr_issuer: Any
    work: Path

    @property
    def rewrap_url(self) -> str:
        return f"{self.gbr}/kas.AccessService/Rewrap"

    @property
    def container_url(self) -> str:
        return f"{self.gbr}/api/v1/objects/{self.doc}/container"

    def attest(self, key: Any) -> str:
        """The USA engineer's attestation from the USA node, bound to ``key``."""
        import httpx

        url = f"{self.usa}/api/v1/federation/attestation"
        token = self.usa_issuer.token(USA_ENGINEER, ttl=600, cnf={"jkt": key.thumbprint()})
        r = httpx.post(url, headers=Caller("", key, token).headers(url, "POST"), timeout=10)
        r.raise_for_status()
        attestation: str = r.json()["attestation"]
        return attestation

    def usa_engineer(self) -> Caller:
        from kas_testing import DpopKey

        key = DpopKey()
        return Caller("cross-node (USA attestation)", key, self.attest(key))

    def gbr_engineer(self) -> Caller:
        from kas_testing import DpopKey

        key = DpopKey()
        token = self.gbr_issuer.token(GBR_ENGINEER, ttl=3600, cnf={"jkt": key.thumbprint()})
        return Caller("same-node (GBR OIDC)", key, token)

    def transition(self, to: str) -> None:
        """The USA vetting officer moves the engineer's clearance, through the USA API."""
        import httpx
        from kas_testing import DpopKey

        key = DpopKey()
        token = self.usa_issuer.token(USA_OFFICER, ttl=300, cnf={"jkt": key.thumbprint()})
        url = f"{self.usa}/api/v1/clearances/{self.clearance}/transitions"
        r = httpx.post(
            url,
            json={"to": to, "reason": "federation benchmark"},
            headers=Caller("", key, token).headers(url, "POST"),
            timeout=10,
        )
        if r.status_code != 200:
            raise RuntimeError(f"transition to {to}: {r.status_code} {r.text}")


def _start(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "--factory", "federation:server_app",
            "--app-dir", str(ROOT / "bench"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ],
        env={**os.environ, **env},
        cwd=str(ROOT),
    )  # fmt: skip


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.time() + 90
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline or server.poll() is not None:
            raise RuntimeError(f"{base} did not start")
        time.sleep(0.2)


@contextlib.contextmanager
def two_nodes(workers: int) -> Iterator[Nodes]:
    """A USA node and a GBR node under uvicorn, GBR pinning USA; see the docstring."""
    import httpx
    from kas_testing import ServerThread, TestIssuer, free_port, issuer_app

    from relto.vetting import Person, ProjectMembership, Role, Status

    work = Path(tempfile.mkdtemp(prefix="relto-bench-fed-http-"))
    servers: list[subprocess.Popen[bytes]] = []
    ports = {n: free_port() for n in ("usa-idp", "gbr-idp", "usa", "gbr")}
    usa_issuer = TestIssuer(issuer=f"http://127.0.0.1:{ports['usa-idp']}", kid="usa-1")
    gbr_issuer = TestIssuer(issuer=f"http://127.0.0.1:{ports['gbr-idp']}", kid="gbr-1")

    def env(nation: str, issuer: Any) -> dict[str, str]:
        return {
            "RELTO_DATA_DIR": str(work / nation.lower()),
            "RELTO_NATION": nation,
            "RELTO_BIND": "127.0.0.1",
            "RELTO_PORT": str(ports[nation.lower()]),
            "RELTO_SECRET_KEY": SECRET,
            "RELTO_KEYSTORE_PASSPHRASE": SECRET,
            "RELTO_OIDC_ISSUERS": json.dumps(
                {
                    issuer.issuer: {
                        "nation": nation,
                        "jwks_url": f"{issuer.issuer}/jwks",
                        "audience": AUDIENCE,
                    }
                }
            ),
            "RELTO_LOG_LEVEL": "WARNING",
        }

    usa_env = {
        **env("USA", usa_issuer),
        "RELTO_ATTRIBUTE_NAMESPACE": "https://attributes.usa.bench.test",
    }
    gbr_env = {**env("GBR", gbr_issuer), "RELTO_DEMO": "true"}
    try:
        with (
            ServerThread(issuer_app(usa_issuer, {}), port=ports["usa-idp"]),
            ServerThread(issuer_app(gbr_issuer, {}), port=ports["gbr-idp"]),
        ):
            # Each node's app is built once here first, so that its databases are
            # migrated before two workers start (two processes migrating race).
            with _environ(usa_env):
                probe = server_app()
            node = probe.state.node
            at = datetime.now(UTC)
            node.vetting.register_person(
                Person(USA_ENGINEER, "USA Engineer", frozenset({"USA"}), "DARPA", "USA",
                       frozenset({Role.ENGINEER}), (ProjectMembership("hypersonic"),)),
                at=at, actor="bench-setup",
            )  # fmt: skip
            node.vetting.register_person(
                Person(USA_OFFICER, "USA Vetting Officer", frozenset({"USA"}), "DCSA", "USA",
                       frozenset({Role.VETTING_OFFICER}), ()),
                at=at, actor="bench-setup",
            )  # fmt: skip
            c = node.vetting.sponsor_clearance(
                person_id=USA_ENGINEER, nation="USA", level="TOP_SECRET", sponsor="DoD",
                at=at, actor="bench-setup", reason="bench",
            )  # fmt: skip
            for to in (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED):
                node.vetting.transition(c.id, to, at=at, actor="bench-setup", reason="bench")
            fingerprint = node.federation.descriptors.fingerprint  # given out of band
            node.db.dispose()
            servers.append(_start(usa_env, ports["usa"], workers))
            usa = f"http://127.0.0.1:{ports['usa']}"
            _wait_healthy(usa, servers[-1])

            descriptor = httpx.get(f"{usa}/.well-known/relto-node", timeout=10)
            descriptor.raise_for_status()
            with _environ(gbr_env):
                probe = server_app()
            node = probe.state.node
            now = datetime.now(UTC)
            officer = node.directory.principal("gbr-so-whitfield", via="node")
            harper = node.directory.principal(GBR_ENGINEER, via="node")
            node.trust.pin(descriptor.text, fingerprint=fingerprint, actor=officer, now=now)
            doc = node.documents.upload(
                harper, title="Federation bench, 1 MiB", project_id="hypersonic",
                classification="SECRET", rel_to=["USA"], filename="bench.bin",
                media_type="application/octet-stream", data=secrets.token_bytes(OBJECT_BYTES),
                at=now,
            ).id  # fmt: skip
            node.db.dispose()
            servers.append(_start(gbr_env, ports["gbr"], workers))
            gbr = f"http://127.0.0.1:{ports['gbr']}"
            _wait_healthy(gbr, servers[-1])
            yield Nodes(usa, gbr, servers[-1].pid, doc, c.id, usa_issuer, gbr_issuer, work)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


def _rewrap(client: Any, nodes: Nodes, who: Caller, ka: Any, policy: str) -> bytes | None:
    """One rewrap at the GBR KAS as an OpenTDF client does it; the key share, or None
    when denied (any other answer raises)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    from relto.kas.wire import rewrap_request_body
    from relto.ztdf import hazmat

    priv = ec.generate_private_key(ec.SECP256R1())
    body = rewrap_request_body(ka, policy, hazmat.public_key_pem(priv))
    now = int(time.time())
    srt = who.key.sign({"requestBody": json.dumps(body), "iat": now, "exp": now + 60})
    url = nodes.rewrap_url
    r = client.post(
        url,
        json={"signedRequestToken": srt},
        headers={**who.headers(url, "POST"), "Connect-Protocol-Version": "1"},
    )
    if r.status_code != 200:
        raise RuntimeError(f"rewrap: {r.status_code} {r.text[:300]}")
    data = r.json()
    result = data["responses"][0]["results"][0]
    if result["status"] != "permit":
        return None
    wrapped = base64.b64decode(result["kasWrappedKey"])
    share: bytes = hazmat.ec_unwrap(priv, data["sessionPublicKey"], wrapped)
    return share


def _open(client: Any, nodes: Nodes, who: Caller) -> int:
    """A whole open: container fetch, rewrap, client-side decryption; the plaintext size."""
    from relto.ztdf import open_container

    url = nodes.container_url
    r = client.get(url, headers=who.headers(url, "GET"))
    if r.status_code != 200:
        raise RuntimeError(f"container: {r.status_code} {r.text[:300]}")

    def unwrap(ka: Any, policy: str) -> bytes:
        share = _rewrap(client, nodes, who, ka, policy)
        if share is None:
            raise RuntimeError(f"{who.name}: rewrap denied")
        return share

    out = io.BytesIO()
    open_container(io.BytesIO(r.content), out, unwrap=unwrap)
    return len(out.getvalue())


def _key_access(client: Any, nodes: Nodes, who: Caller) -> tuple[Any, str]:
    from relto.ztdf.manifest import parse_key_access

    url = nodes.container_url
    r = client.get(url, headers=who.headers(url, "GET"))
    r.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        manifest = json.loads(z.read("0.manifest.json"))
    info = manifest["encryptionInformation"]
    return parse_key_access(info["keyAccess"][0]), info["policy"]


def bench_open(nodes: Nodes, opens: int, pace: float) -> dict[str, list[float]]:
    import httpx

    usa, gbr = nodes.usa_engineer(), nodes.gbr_engineer()
    attested = time.time()
    times: dict[str, list[float]] = {usa.name: [], gbr.name: []}
    with httpx.Client(timeout=30) as client:
        for who in (gbr, usa):  # warm: both allowed, byte for byte
            assert _open(client, nodes, who) == OBJECT_BYTES
        for i in range(opens):
            if time.time() - attested > 200:  # attestations live 5 minutes
                usa.credential, attested = nodes.attest(usa.key), time.time()
            pair = [gbr, usa] if i % 2 else [usa, gbr]  # ABBA: no order bias
            began = time.perf_counter()
            for who in pair:
                t0 = time.perf_counter()
                size = _open(client, nodes, who)
                times[who.name].append((time.perf_counter() - t0) * 1000)
                assert size == OBJECT_BYTES
            time.sleep(max(0.0, pace - (time.perf_counter() - began)))
    return times


_WRK_LUA = r"""
local proofs = {}
local idx = 0
denied = 0  -- global: done() reads it from each thread
for line in io.lines(os.getenv("BENCH_PROOFS")) do proofs[#proofs + 1] = line end
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connect-Protocol-Version"] = "1"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
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
  -- each thread takes every step-th proof: no proof is ever sent twice
  wrk.headers["DPoP"] = proofs[(idx % #proofs) + 1]
  idx = idx + step
  return wrk.format()
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"permit"', 1, true) then denied = denied + 1 end
end
function done(summary, latency, requests)
  local not_permitted = 0
  for _, t in ipairs(threads) do not_permitted = not_permitted + t:get("denied") end
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f n=%d errors=%d non2xx=%d "
    .. "notpermit=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status, not_permitted))
end
"""


def run_wrk(
    nodes: Nodes, who: Caller, body: str, *, duration: int, connections: int, threads: int,
    max_rps: int,
) -> dict[str, float]:  # fmt: skip
    """``wrk`` against the GBR KAS with a fresh proof per request (made just before)."""
    from bench.kas import _cpu_seconds

    url = nodes.rewrap_url
    proofs = nodes.work / "proofs.txt"
    with proofs.open("w") as f:
        for _ in range(max_rps * (duration + 1)):
            f.write(who.key.proof(url, who.credential) + "\n")
    script = nodes.work / "rewrap.lua"
    script.write_text(_WRK_LUA)
    env = {
        **os.environ,
        "BENCH_BODY": body,
        "BENCH_AUTH": f"DPoP {who.credential}",
        "BENCH_THREADS": str(threads),
        "BENCH_PROOFS": str(proofs),
    }
    cpu0 = _cpu_seconds(nodes.gbr_pid)
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
         "-s", str(script), url],
        capture_output=True, text=True, env=env, timeout=duration + 60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    cpu = _cpu_seconds(nodes.gbr_pid) - cpu0
    m = re.search(
        r"RESULT rps=([\d.]+) p50=([\d.]+) p99=([\d.]+) n=(\d+) errors=(\d+) non2xx=(\d+) "
        r"notpermit=(\d+)",
        out,
    )
    if not m:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    rps, p50, p99, n, errors, non2xx, notpermit = m.groups()
    return {
        "rps": float(rps),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "requests": int(n),
        "errors": int(errors),
        "non2xx": int(non2xx),
        "not_permitted": int(notpermit),
        "cpu_ms": 1e3 * cpu / max(1, int(n)),
    }


def _fixed_body(client: Any, nodes: Nodes, who: Caller, ka: Any, policy: str) -> str:
    """One rewrap request, its request token signed with the caller's DPoP key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from relto.kas.wire import rewrap_request_body
    from relto.ztdf import hazmat

    priv = ec.generate_private_key(ec.SECP256R1())
    body = rewrap_request_body(ka, policy, hazmat.public_key_pem(priv))
    now = int(time.time())
    srt = who.key.sign({"requestBody": json.dumps(body), "iat": now, "exp": now + 3600})
    return json.dumps({"signedRequestToken": srt})


def http(args: argparse.Namespace) -> None:
    """Mode ``http``: cross-node open latency, then cross-node rewraps/s (docstring)."""
    import httpx

    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with two_nodes(args.workers) as nodes:
        print(f"USA node {nodes.usa}, GBR node {nodes.gbr}, {args.workers} workers each")
        times = bench_open(nodes, args.opens, args.pace)
        print(f"\nopen of a 1 MiB object, {args.opens} each, ABBA, paced {args.pace}s a pair")
        print("| open | p50 ms | p99 ms | mean ms | × same-node p50 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        names = ["same-node (GBR OIDC)", "cross-node (USA attestation)"]
        base = statistics.median(times[names[0]])
        for name in names:
            xs = times[name]
            p50, p99 = statistics.median(xs), _percentile(xs, 0.99)
            label = name + (" [baseline]" if name == names[0] else "")
            print(
                f"| {label} | {p50:.1f} | {p99:.1f} | {statistics.fmean(xs):.1f} "
                f"| {p50 / base:.2f} |"
            )
        cross = times[names[1]]
        ok = statistics.median(cross) <= 2 * base and _percentile(cross, 0.99) < 150
        print(f"target cross-node p50 <= 2x same-node, p99 < 150 ms: {'met' if ok else 'NOT met'}")
        print(f"load average: {os.getloadavg()}", flush=True)

        usa, gbr = nodes.usa_engineer(), nodes.gbr_engineer()
        with httpx.Client(timeout=30) as client:
            ka, policy = _key_access(client, nodes, gbr)
            bodies = {who.name: _fixed_body(client, nodes, who, ka, policy) for who in (usa, gbr)}
        common = {
            "duration": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "max_rps": args.max_rps,
        }
        run_wrk(nodes, gbr, bodies[gbr.name], **{**common, "duration": 2})  # warm
        results: dict[str, list[dict[str, float]]] = {usa.name: [], gbr.name: []}
        for i in range(args.rounds):
            for who in (gbr, usa) if i % 2 == 0 else (usa, gbr):  # ABBA over rounds
                if who is usa:
                    usa.credential = nodes.attest(usa.key)  # fresh: 5 minutes of life
                results[who.name].append(run_wrk(nodes, who, bodies[who.name], **common))
        print(
            f"\nrewrap at the GBR KAS, {args.workers} uvicorn workers, product decider, "
            f"wrk -c{args.connections} -t{args.threads}, {args.duration}s, {args.rounds} rounds"
        )
        print("| caller | rewraps/s | p50 ms | p99 ms | server CPU ms/rewrap | × baseline /s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        base_rps = statistics.fmean(r["rps"] for r in results[gbr.name])
        for name in (gbr.name, usa.name):
            for r in results[name]:
                label = name + (" [baseline]" if name == gbr.name else "")
                print(
                    f"| {label} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
                    f"| {r['cpu_ms']:.2f} | {r['rps'] / base_rps:.2f} |"
                )
                bad = r["errors"] + r["non2xx"] + r["not_permitted"]
                if bad:
                    print(
                        f"|  ... {r['errors']} socket errors, {r['non2xx']} non-2xx, "
                        f"{r['not_permitted']} not permitted of {r['requests']} | | | | | |"
                    )
        ok = all(r["rps"] >= 500 and r["p99_ms"] < 100 for r in results[usa.name])
        print(f"target >= 500 rewraps/s, p99 < 100 ms (attestation): {'met' if ok else 'NOT met'}")
        print(f"load average at end: {os.getloadavg()}")


def revocation(args: argparse.Namespace) -> None:
    """Mode ``revocation``: suspension at home to first denial at the GBR KAS."""
    import httpx

    print(f"load average at start: {os.getloadavg()}", flush=True)
    with two_nodes(args.workers) as nodes:
        usa = nodes.usa_engineer()
        attested = time.time()
        with httpx.Client(timeout=30) as client:
            ka, policy = _key_access(client, nodes, usa)

        def permitted() -> bool:
            with httpx.Client(timeout=10) as fresh:  # a new connection: any worker answers
                return _rewrap(fresh, nodes, usa, ka, policy) is not None

        def settle(since: float) -> None:
            """Ask on, as a partner's live traffic would, until no worker's cache can
            still hold a suspended list (31 s after the grant) and a random while more
            (up to 30 s: the next suspension falls at any point of the caches' cycle),
            and until the last answer permits."""
            until = since + 31 + random.uniform(0, 30)
            while not permitted() or time.perf_counter() < until:
                if time.perf_counter() - since > 180:
                    raise RuntimeError("not permitted again within 180 s")
                time.sleep(args.poll)

        settle(time.perf_counter() - 31)  # warm every worker's cache first
        delays: list[float] = []
        for trial in range(args.trials):
            if time.time() - attested > 200:  # attestations live 5 minutes
                usa.credential, attested = nodes.attest(usa.key), time.time()
            nodes.transition("suspended")
            suspended = time.perf_counter()
            polls = 1
            while permitted():
                if time.perf_counter() - suspended > 120:
                    raise RuntimeError("no denial within 120 s")
                time.sleep(args.poll)
                polls += 1
            delays.append(time.perf_counter() - suspended)
            print(
                f"trial {trial + 1}: first denial after {delays[-1]:.2f} s ({polls} asks); "
                f"load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            nodes.transition("granted")
            settle(time.perf_counter())
    print(
        f"\n{len(delays)} trials, asked every {args.poll} s, {args.workers} workers per node: "
        f"suspension at home -> first denial at the GBR KAS: median {statistics.median(delays):.1f}"
        f" s, max {max(delays):.1f} s, min {min(delays):.1f} s"
    )
    print(f"target max <= 60 s: {'met' if max(delays) <= 60 else 'NOT met'}")
    print(f"load average at end: {os.getloadavg()}")


# ------------------------------------------------------------ four nodes in this process

#: A security officer of each nation's node (the launcher adds ``<nation>-so-federation``
#: where the demo file names none).
OFFICERS = {"AUS": "aus-so-campbell", "GBR": "gbr-so-whitfield", "USA": "usa-so-bennett"}


class LiveNode:
    """One nation's node under uvicorn in a thread of this process (its own data
    folder, port and keys; the demo share the launcher gives that nation)."""

    def __init__(self, nation: str, root: Path) -> None:
        import threading

        import uvicorn
        from kas_testing import free_port
        from pydantic import SecretStr

        from relto.config import Settings
        from relto.demo import load_demo, read_demo
        from relto.launcher.federation import nation_share
        from relto.server import create_app

        port = free_port()
        settings = Settings(
            nation=nation, data_dir=root / nation.lower(), bind="127.0.0.1", port=port,
            public_url=f"http://127.0.0.1:{port}", secret_key=SecretStr(secrets.token_urlsafe(32)),
            keystore_passphrase=SecretStr(secrets.token_urlsafe(32)), log_level="WARNING",
        )  # type: ignore[call-arg]  # fmt: skip
        self.nation = nation
        self.url = f"http://127.0.0.1:{port}"
        self.app: Any = create_app(settings)
        self.node: Any = self.app.state.node
        load_demo(self.node.db, self.node.sink, nation_share(read_demo(), nation),
                  at=datetime.now(UTC))  # fmt: skip
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        officer = OFFICERS.get(nation, f"{nation.lower()}-so-federation")
        self.officer = self.node.directory.principal(officer, via="node")
        assert self.officer is not None, officer

    def pin(self, other: LiveNode) -> None:
        """This node's officer pins ``other`` by the fingerprint given out of band."""
        now = datetime.now(UTC)
        home = other.node.federation
        assert home is not None
        self.node.trust.pin(home.descriptor(now), fingerprint=home.descriptors.fingerprint,
                            actor=self.officer, now=now)  # fmt: skip

    @property
    def ledger(self) -> Any:
        from relto.server.routes.changes import node_ledger

        found = node_ledger(self.node, self.app.state.changes)
        assert found is not None
        return found

    def status(self, change_id: str) -> str | None:
        try:
            return str(self.ledger.standing(change_id).status)
        except Exception:
            return None

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.node.db.dispose()


@contextlib.contextmanager
def four_nodes(env: dict[str, str]) -> Iterator[dict[str, LiveNode]]:
    """AUS, GBR and USA (members) and JPN (a partner), each pinning the three others."""
    from relto.server.logging import configure_logging

    configure_logging("ERROR")  # the alarms the fork bench raises are expected
    with tempfile.TemporaryDirectory(prefix="relto-bench-four-") as tmp, _environ(env):
        nodes: dict[str, LiveNode] = {}
        try:
            for nation in ("AUS", "GBR", "USA", "JPN"):
                nodes[nation] = LiveNode(nation, Path(tmp))
            for a in nodes.values():
                for b in nodes.values():
                    if a is not b:
                        a.pin(b)
            yield nodes
        finally:
            for n in nodes.values():
                n.stop()


def _summary(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), max(xs), min(xs)


def changes(args: argparse.Namespace) -> None:
    """Mode ``changes``: from the last approval to in force on all four nodes."""
    interval = max(1, int(args.interval))
    print(f"load average at start: {os.getloadavg()}", flush=True)
    env = {"RELTO_FEDERATION_CHANGES_PUSH_SECONDS": str(interval)}
    took: list[float] = []  # last approval -> applied on all four
    members_only: list[float] = []  # last approval -> applied on AUS, GBR and USA
    hop: list[float] = []  # proposal at GBR -> held by AUS / USA: one replication hop
    with four_nodes(env) as nodes:
        gbr, approvers = nodes["GBR"], [nodes["AUS"], nodes["USA"]]
        members = [nodes["AUS"], gbr, nodes["USA"]]
        for i in range(args.changes):
            proposed = time.monotonic()
            change = gbr.ledger.propose(
                gbr.officer, "project.create",
                {"id": f"bench-{i}-{secrets.token_hex(3)}", "name": f"Bench project {i}"},
                "a project for the change benchmark",
            ).change.id  # fmt: skip
            last_signed = 0.0
            waiting = list(approvers)
            while waiting:  # each approves as soon as the change reaches it
                for m in [m for m in waiting if m.status(change) is not None]:
                    hop.append(time.monotonic() - proposed)
                    m.ledger.decide(m.officer, change, "approve", "benchmark approval")
                    last_signed = time.monotonic()
                    waiting.remove(m)
                if time.monotonic() - proposed > 120:
                    sys.exit(f"change {i} did not reach {[m.nation for m in waiting]} in 120 s")
                time.sleep(0.005)
            done_members: float | None = None
            while True:
                states = {n: node.status(change) for n, node in nodes.items()}
                if done_members is None and all(states[m.nation] == "applied" for m in members):
                    done_members = time.monotonic() - last_signed
                if all(s == "applied" for s in states.values()):
                    break
                if time.monotonic() - last_signed > 120:
                    sys.exit(f"change {i} not applied everywhere within 120 s: {states}")
                time.sleep(0.005)
            took.append(time.monotonic() - last_signed)
            members_only.append(done_members if done_members is not None else took[-1])
            if (i + 1) % 10 == 0:
                print(f"{i + 1} changes, median so far {statistics.median(took):.2f} s", flush=True)
    base = statistics.median(hop)
    print(f"\n{args.changes} changes, 4 nodes (AUS, GBR, USA members; JPN partner), "
          f"push interval {interval} s")  # fmt: skip
    print("| from the last approval to applied | median s | max s | min s | median × hop |")
    print("| --- | ---: | ---: | ---: | ---: |")
    med, worst, least = _summary(hop)
    print(f"| one replication hop, GBR's proposal held by AUS/USA [baseline] | {med:.2f} "
          f"| {worst:.2f} | {least:.2f} | 1.00 |")  # fmt: skip
    for label, xs in (("on the three member nodes", members_only), ("on all four nodes", took)):
        med, worst, least = _summary(xs)
        print(f"| {label} | {med:.2f} | {worst:.2f} | {least:.2f} | {med / base:.2f} |")
    ratio = statistics.median(took) / interval, max(took) / interval
    print(f"push interval {interval} s: on all four nodes median {ratio[0]:.2f}x, "
          f"max {ratio[1]:.2f}x the interval")  # fmt: skip
    print(f"load average at end: {os.getloadavg()}")


def _forged(tmp: Path, log: Any, keep: int, rewrite: int, more: int) -> Any:
    """A copy of ``log``'s first ``keep`` entries, then ``rewrite`` entries that say
    something else, then ``more`` new ones: what an operator who rewrites the log by
    hand and signs it with the node's key produces."""
    from relto.audit import TransparencyLog
    from relto.store import create_database

    path = tmp / f"forged-{secrets.token_hex(4)}.db"
    forged = TransparencyLog(create_database(f"sqlite:///{path}"))
    events = []
    for e in log.entries(0, keep):
        body = json.loads(e.body)
        events.append((body["kind"], body["payload"], datetime.fromisoformat(body["time"])))
    for i in range(rewrite):
        events.append(("key.release", {"object": f"never-released-{i}", "person": "nobody"},
                       datetime.now(UTC)))  # fmt: skip
    for i in range(more):
        events.append(("bench.after", {"i": i}, datetime.now(UTC)))
    forged.append_many(events)
    return forged


def fork(args: argparse.Namespace) -> None:
    """Mode ``fork``: a node's log rewritten by hand and re-signed with its key, pushed
    to its partners' witnesses: time until every witness has raised the alarm."""
    from relto.audit.config import node_signer
    from relto.audit.witnessing import ALARM_KIND, CheckpointPusher
    from relto.server.witnessing import push_once

    print(f"load average at start: {os.getloadavg()}", flush=True)
    # scheduled pushes off: every push here is the bench's own
    env = {"RELTO_AUDIT_WITNESS_PUSH_SECONDS": "0", "RELTO_FEDERATION_CHANGES_PUSH_SECONDS": "0"}
    times: dict[str, list[float]] = {"honest": [], "same size": [], "longer history": []}
    work = Path(tempfile.mkdtemp(prefix="relto-bench-fork-"))
    try:
        with four_nodes(env) as nodes:
            gbr = nodes["GBR"]
            witnesses = [n for n in nodes.values() if n is not gbr]
            pusher = gbr.node.witnessing
            assert pusher is not None
            signer = node_signer(gbr.node.settings)

            def alarms_for(size: int, root: bytes) -> int:
                count = 0
                for w in witnesses:
                    assert w.node.witness is not None
                    if any(a.kind == ALARM_KIND and a.nation == "GBR" and a.size == size
                           and a.root == root for a in w.node.witness.alarms.alarms()):  # fmt: skip
                        count += 1
                return count

            push_once(gbr.node)  # first cosignatures: the witnesses know GBR's log
            for trial in range(args.fork_trials):
                for variant in ("same size", "longer history") if trial % 2 == 0 else (
                    "longer history", "same size"
                ):  # fmt: skip
                    for i in range(3):  # the honest log grows, as it always does
                        gbr.node.log.record("bench.growth", {"trial": trial, "i": i})
                    started = time.perf_counter()
                    honest = push_once(gbr.node)
                    times["honest"].append(time.perf_counter() - started)
                    if {p.outcome for p in honest} != {"cosigned"}:
                        sys.exit(f"honest push not cosigned by all: {honest}")
                    size = honest[0].size
                    more = 0 if variant == "same size" else 2
                    forged = _forged(work, gbr.node.log, size - 1, 1, more)
                    forger = CheckpointPusher(
                        forged, signer, pusher.partners, pusher.store, nation="GBR",
                        sink=gbr.node.sink, alarms=pusher.alarms,
                    )  # fmt: skip
                    root = forged.head()[1]
                    started = time.perf_counter()
                    pushed = forger.push(datetime.now(UTC))
                    while alarms_for(size + more, root) < len(witnesses):
                        if time.perf_counter() - started > 60:
                            sys.exit(f"fork not alarmed by every witness within 60 s: {pushed}")
                        time.sleep(0.001)
                    times[variant].append(time.perf_counter() - started)
                    if any(p.outcome != "refused" for p in pushed):
                        sys.exit(f"forged checkpoint not refused by all: {pushed}")
                    forged.db.dispose()
                print(f"trial {trial + 1}: honest {times['honest'][-1] * 1e3:.0f} ms, same size "
                      f"{times['same size'][-1] * 1e3:.0f} ms, longer history "
                      f"{times['longer history'][-1] * 1e3:.0f} ms", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times["honest"])
    print(f"\n{args.fork_trials} trials of each, GBR's log pushed to the witnesses of AUS, USA "
          "and JPN (HTTP, in this process)")  # fmt: skip
    print("| push to 3 witnesses | median ms | max ms | min ms | median × honest |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, label in (
        ("honest", "honest checkpoint, cosigned by all three [baseline]"),
        ("same size", "forked at a cosigned size: refused, alarm at all three"),
        ("longer history", "rewritten behind a longer history: refused, each witness asks "
         "GBR's log, alarm at all three"),
    ):  # fmt: skip
        med, worst, least = _summary(times[name])
        print(f"| {label} | {med * 1e3:.1f} | {worst * 1e3:.1f} | {least * 1e3:.1f} "
              f"| {med / base:.2f} |")  # fmt: skip
    print(f"load average at end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=("inprocess", "http", "revocation", "changes", "fork"),
        default="inprocess",
    )
    parser.add_argument("--calls", type=int, default=300, help="inprocess: calls per path")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per node")
    parser.add_argument("--opens", type=int, default=200, help="http: opens per path")
    parser.add_argument(
        "--pace",
        type=float,
        default=0.25,
        help="http: least seconds per pair of opens (2 API requests): under 600/minute",
    )
    parser.add_argument("--duration", type=int, default=10, help="http: wrk seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="http: wrk runs per caller")
    parser.add_argument(
        "--max-rps", type=int, default=2000, help="http: DPoP proofs made per second of load"
    )
    parser.add_argument("--trials", type=int, default=50, help="revocation: trials")
    parser.add_argument("--poll", type=float, default=0.5, help="revocation: seconds between asks")
    parser.add_argument("--changes", type=int, default=50, help="changes: partnership changes")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="changes: replication push interval, s"
    )
    parser.add_argument("--fork-trials", type=int, default=20, help="fork: trials per variant")
    args = parser.parse_args()
    # A plain kill stops the nodes too (the servers are stopped in a finally block).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    modes = {"inprocess": inprocess, "http": http, "revocation": revocation, "changes": changes,
             "fork": fork}  # fmt: skip
    modes[args.mode](args)


if __name__ == "__main__":
    main()
