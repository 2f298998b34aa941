"""Two real nodes: the USA node (under uvicorn on 127.0.0.1) vouches for its
engineer; the GBR node pins it by fingerprint, reads the attestation's status
from the USA node's own status list over HTTP (the node's real
``StatusListCache``) and lets the engineer open a GBR object through the GBR KAS.
When the USA node suspends the engineer's clearance, the GBR KAS refuses (and
records it); when the USA node cannot be reached, it refuses too (fail closed).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.config import Settings
from relto.federation.status_client import StatusListCache
from relto.node import Node
from relto.server import create_app
from relto.vetting import Person, ProjectMembership, Role, Status

from .test_foreign_open import CONTENT, World, fetch_container, first_key_access, open_as, rewrap
from .test_foreign_open import Person as Holder

SECRET = SecretStr("two-nodes-test-secret-0123456789")
ENGINEER = "usa-eng-twonode"


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

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Usa:
    node: Node
    base: str
    clearance: str
    server: Server


@pytest.fixture
def usa(tmp_path: Path) -> Iterator[Usa]:
    port = _free_port()
    app = create_app(
        Settings(
            nation="USA", data_dir=tmp_path / "usa", port=port, secret_key=SECRET,
            keystore_passphrase=SECRET,
        )  # type: ignore[call-arg]
    )  # fmt: skip
    node: Node = app.state.node
    at = datetime.now(UTC)
    node.vetting.register_person(
        Person(ENGINEER, "USA Engineer", frozenset({"USA"}), "DARPA", "USA",
               frozenset({Role.ENGINEER}), (ProjectMembership("hypersonic"),)),
        at=at, actor="test-setup",
    )  # fmt: skip
    c = node.vetting.sponsor_clearance(
        person_id=ENGINEER, nation="USA", level="TOP_SECRET", sponsor="DoD", at=at,
        actor="test-setup", reason="test",
    )  # fmt: skip
    for to in (Status.INVESTIGATING, Status.ADJUDICATING, Status.GRANTED):
        node.vetting.transition(c.id, to, at=at, actor="test-setup", reason="test")
    server = Server(app, port)
    with server:
        yield Usa(node, f"http://127.0.0.1:{port}", c.id, server)
    node.db.dispose()


@pytest.fixture
def gbr(tmp_path: Path, usa: Usa) -> Iterator[World]:
    app = create_app(Settings(demo=True, data_dir=tmp_path / "gbr"))  # type: ignore[call-arg]
    node: Node = app.state.node
    assert isinstance(node.attestations.status, StatusListCache)  # the real one
    officer = node.directory.principal("gbr-so-whitfield", via="node")
    harper = node.directory.principal("gbr-eng-harper", via="node")
    assert officer is not None and harper is not None and usa.node.federation is not None
    descriptor = httpx.get(f"{usa.base}/.well-known/relto-node", timeout=10).text
    now = datetime.now(UTC)
    node.trust.pin(
        descriptor, fingerprint=usa.node.federation.descriptors.fingerprint, actor=officer, now=now
    )
    doc = node.documents.upload(
        harper, title="Two nodes", project_id="hypersonic", classification="SECRET",
        rel_to=["USA"], filename="t.bin", media_type="application/octet-stream",
        data=CONTENT, at=now,
    ).id  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client, node, None, None, None, doc, doc)  # type: ignore[arg-type]
    node.db.dispose()


def _attested(usa: Usa) -> tuple[Holder, str]:
    """The USA engineer's attestation, issued by the USA node for their DPoP key."""
    assert usa.node.federation is not None
    who = usa.node.directory.principal(ENGINEER, via="node")
    assert who is not None
    holder = Holder(None, None)  # type: ignore[arg-type]
    issued = usa.node.federation.attest(
        who, dpop_jkt=holder.key.thumbprint(), now=datetime.now(UTC)
    )
    assert issued.status.uri.startswith(usa.base)
    return holder, issued.token


def test_usa_node_vouches_and_gbr_kas_releases_byte_for_byte(usa: Usa, gbr: World) -> None:
    holder, token = _attested(usa)
    container = fetch_container(gbr, holder, token, gbr.doc)
    assert open_as(gbr, holder, token, container) == CONTENT
    entry = gbr.rewrap_entries()[-1]
    assert entry["allowed"] is True and entry["subject"] == f"{ENGINEER}@USA"
    assert entry["attestation"]["issuer"] == usa.base


def test_suspension_at_home_refuses_the_key_abroad(usa: Usa, gbr: World) -> None:
    holder, token = _attested(usa)
    container = fetch_container(gbr, holder, token, gbr.doc)
    ka, policy = first_key_access(container)
    assert rewrap(gbr, holder, token, ka, policy).share is not None
    usa.node.vetting.transition(
        usa.clearance, Status.SUSPENDED, at=datetime.now(UTC), actor="usa-vo", reason="incident"
    )
    # The GBR node's cache would refetch within 30 s; a fresh one reads at once.
    gbr.node.attestations.status = StatusListCache(gbr.node.trust)
    got = rewrap(gbr, holder, token, ka, policy)
    assert got.share is None
    entry = gbr.rewrap_entries()[-1]
    assert entry["allowed"] is False
    assert [r["code"] for r in entry["reasons"]] == ["attestation_revoked"]


def test_home_node_unreachable_refuses_fail_closed(usa: Usa, gbr: World) -> None:
    holder, token = _attested(usa)
    container = fetch_container(gbr, holder, token, gbr.doc)
    ka, policy = first_key_access(container)
    usa.server.__exit__(None, None, None)
    gbr.node.attestations.status = StatusListCache(gbr.node.trust)
    got = rewrap(gbr, holder, token, ka, policy)
    assert got.share is None
    reasons = [r["code"] for r in gbr.rewrap_entries()[-1]["reasons"]]
    assert reasons == ["attestation_status_unavailable"]
