"""The home side from outside: a real GBR node under uvicorn on 127.0.0.1; a USA
node pins its descriptor by fingerprint, takes an engineer's attestation, and reads
its status over HTTP with the default fetcher, before and after a suspension."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from relto.authz import Authorizer, Principal
from relto.config import Settings
from relto.events import MemorySink
from relto.federation import MemoryPinRepository, TokenStatus, TrustStore, verify_attestation
from relto.federation.status_client import StatusListCache
from relto.server import create_app
from relto.vetting import Status

from .home_support import ENGINEER, SECRET, DpopKey, add_people, token, trust_issuers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> None:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def gbr_node(tmp_path: Path) -> Iterator[tuple[str, Any, str]]:
    port = _free_port()
    app = create_app(
        Settings(data_dir=tmp_path, port=port, secret_key=SECRET, keystore_passphrase=SECRET)
    )
    trust_issuers(app)
    clearance = add_people(app.state.node)
    with Server(app, port):
        yield f"http://127.0.0.1:{port}", app.state.node, clearance
    app.state.node.db.dispose()


def test_partner_reads_a_suspension_from_the_real_status_endpoint(
    gbr_node: tuple[str, Any, str],
) -> None:
    base, node, clearance = gbr_node
    descriptor = httpx.get(f"{base}/.well-known/relto-node", timeout=10)
    assert descriptor.headers["content-type"] == "application/jwt"
    sink = MemorySink()
    usa = TrustStore(MemoryPinRepository(), Authorizer(sink), sink, "USA")
    officer = Principal("usa-so", "USA officer", "USA", frozenset({"USA"}),
                        frozenset({("security_officer", "USA")}), "test")  # fmt: skip
    fingerprint = node.federation.descriptors.fingerprint  # given out of band
    usa.pin(descriptor.text, fingerprint=fingerprint, actor=officer, now=datetime.now(UTC))

    dpop, url = DpopKey(), f"{base}/api/v1/federation/attestation"
    access = token("GBR", ENGINEER)
    r = httpx.post(url, headers=dpop.headers(url, access), timeout=10)
    assert r.status_code == 200, r.text
    att = verify_attestation(
        r.json()["attestation"], usa.trusted(), dpop_jkt=dpop.thumbprint, now=datetime.now(UTC)
    )
    assert att.status is not None and att.status.uri.startswith(base)

    cache = StatusListCache(usa)  # the default fetcher: httpx, loopback http allowed
    now = datetime.now(UTC)
    assert cache.status(att.status, "GBR", now) is TokenStatus.VALID
    node.vetting.transition(
        clearance, Status.SUSPENDED, at=datetime.now(UTC), actor="gbr-vo", reason="incident"
    )
    assert cache.status(att.status, "GBR", now + timedelta(seconds=31)) is TokenStatus.INVALID
