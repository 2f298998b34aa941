"""Rewrap with a partner's attestation vs with an OIDC token, in-process, same run.

One GBR demo node (SQLite, its transparency log recording every rewrap, the
product decider on a real GBR SECRET document). Interleaved call by call:

- **OIDC [baseline]**: a GBR engineer with an access token of a trusted issuer
  (JWKS in memory), DPoP-bound, a fresh proof per call: signature check (cached
  after the first call, as the KAS does), proof, request token, decision from the
  directory (cached facts), audit record, release.
- **attestation**: a USA engineer with the USA node's attestation (pinned in the
  node's trust store on its database), a fresh proof per call: proof, pins read,
  attestation signature and claims, status (an in-memory checker: the home side's
  cache answers from memory between fetches), decision on the attested facts,
  audit record, release.

Run: ``.venv/bin/python bench/federation.py [--calls 300]``.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kas"))
sys.path.insert(0, str(ROOT))

URL = "http://bench.local/kas.AccessService/Rewrap"


class ValidStatus:
    blocking = False

    def status(self, ref: Any, issuer_nation: str, now: datetime) -> Any:
        from relto.federation import TokenStatus

        return TokenStatus.VALID


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
