"""Request bounds (relto.server.limits): bodies refused before they are read,
sign-in checked before parsing, and rate limits per address and per credential."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from relto.config import Settings
from relto.server import create_app
from relto.server.limits import client_address

SECRET = SecretStr("limits-test-secret-Vq7#xP2m!Lr9")
MIB = 1024 * 1024


def _settings(tmp: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp, secret_key=SECRET, keystore_passphrase=SECRET, **extra)


@dataclass
class Sent:
    """What an ASGI call answered, and how much of the body the app pulled."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    pulled: int = 0


async def _call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    total: int,
    chunk: int = 64 * 1024,
    client: str = "192.0.2.7",
) -> Sent:
    """Call ``app`` directly: the body is ``total`` bytes of ``{``, handed out in
    chunks only when the app asks (a counting ``receive``)."""
    out = Sent()
    left = total
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal left, done
        if done:
            await asyncio.sleep(3600)  # the client has nothing more to send
        n = min(chunk, left)
        done = n == left
        left -= n
        out.pulled += n
        return {"type": "http.request", "body": b"{" * n, "more_body": left > 0}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = {k.decode(): v.decode() for k, v in message.get("headers", ())}
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (client, 40000),
        "server": ("127.0.0.1", 8080),
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    return out


def call(app: FastAPI, method: str, path: str, headers: dict[str, str], **kw: Any) -> Sent:
    return asyncio.run(_call(app, method, path, headers, **kw))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(_settings(tmp_path_factory.mktemp("limits")))


# -- bodies are refused before they are read -------------------------------------------


def test_unauthenticated_huge_body_is_refused_unread(app: FastAPI) -> None:
    """The 300 MiB what-if: no credential, so 401 before a byte of the body is read."""
    for headers in ({"content-type": "application/json"}, {"content-length": str(300 * MIB)}):
        sent = call(app, "POST", "/api/v1/what-if", headers, total=300 * MIB)
        assert sent.status in (401, 413)
        assert sent.pulled == 0
    sent = call(app, "POST", "/api/v1/what-if", {"content-type": "application/json"}, total=MIB)
    assert sent.status == 401
    assert sent.headers["www-authenticate"].startswith("Bearer")
    assert sent.pulled == 0


def test_declared_oversized_body_is_refused_unread(app: FastAPI) -> None:
    headers = {"authorization": "Bearer x", "content-length": str(MIB + 1)}
    sent = call(app, "POST", "/api/v1/what-if", headers, total=MIB + 1)
    assert sent.status == 413
    assert sent.pulled == 0
    assert b'"too_large"' in sent.body


def test_chunked_body_is_cut_at_the_limit(app: FastAPI) -> None:
    """No Content-Length: the guard counts, and stops pulling past the limit."""
    headers = {"authorization": "Bearer x", "content-type": "application/json"}
    sent = call(app, "POST", "/api/v1/what-if", headers, total=50 * MIB)
    assert sent.status == 413
    assert sent.pulled <= MIB + 64 * 1024


def test_kas_front_door_is_bounded_too(app: FastAPI) -> None:
    path = "/kas.AccessService/Rewrap"
    sent = call(app, "POST", path, {"content-type": "application/json"}, total=50 * MIB)
    assert (sent.status, sent.pulled) == (401, 0)
    assert b'"unauthenticated"' in sent.body  # the Connect error shape
    headers = {"content-type": "application/json", "authorization": "Bearer x"}
    sent = call(app, "POST", path, headers, total=50 * MIB)
    assert sent.status == 413 and sent.pulled <= MIB + 64 * 1024
    assert b'"resource_exhausted"' in sent.body
    sent = call(app, "POST", path, {**headers, "content-length": str(2 * MIB)}, total=2 * MIB)
    assert (sent.status, sent.pulled) == (413, 0)
    # The public key is public: no credential needed, still bounded.
    sent = call(
        app,
        "POST",
        "/kas.AccessService/PublicKey",
        {"content-type": "application/json", "content-length": str(2 * MIB)},
        total=2 * MIB,
    )
    assert (sent.status, sent.pulled) == (413, 0)


def test_uploads_get_the_upload_limit_not_the_json_one(app: FastAPI) -> None:
    upload = app.state.node.documents.max_upload_bytes
    headers = {"authorization": "Bearer x", "content-type": "multipart/form-data; boundary=b"}
    big = call(
        app, "POST", "/api/v1/objects", {**headers, "content-length": str(upload * 2)}, total=0
    )
    assert (big.status, big.pulled) == (413, 0)
    # 2 MiB is over the JSON limit but a fine upload: the guard lets it reach the
    # route, which authenticates before it reads a byte (the token is made up).
    ok = call(
        app, "POST", "/api/v1/objects", {**headers, "content-length": str(2 * MIB)}, total=2 * MIB
    )
    assert (ok.status, ok.pulled) == (401, 0)


def test_bad_content_length_is_refused(app: FastAPI) -> None:
    sent = call(app, "POST", "/api/v1/what-if", {"content-length": "12abc"}, total=0)
    assert sent.status == 400


def test_public_json_route_still_reads_small_bodies(app: FastAPI) -> None:
    sent = call(
        app,
        "POST",
        "/kas.AccessService/PublicKey",
        {"content-type": "application/json", "content-length": "1"},
        total=1,
    )
    assert sent.status == 400  # read, and found not to be JSON


# -- a real server: memory does not grow with an unauthenticated body -------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent(
        f"""
        import uvicorn
        from pydantic import SecretStr
        from relto.config import Settings
        from relto.server import create_app
        s = SecretStr({SECRET.get_secret_value()!r})
        app = create_app(Settings(data_dir={str(tmp_path)!r}, secret_key=s, keystore_passphrase=s))
        uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "RELTO_LOG_LEVEL": "WARNING"}
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("server did not start") from None
                time.sleep(0.2)
        yield proc.pid, port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _send_chunked(port: int, path: str, headers: str, total: int) -> tuple[bytes, int]:
    """Stream ``total`` bytes chunked; stop as soon as the server answers.
    Returns the answer's first bytes and how much was sent."""
    chunk = b"[" * (256 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{headers}Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(frame)
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
    return answer, sent


def test_unauthenticated_chunked_upload_does_not_grow_server_memory(
    server: tuple[int, int],
) -> None:
    pid, port = server
    before = _rss_kib(pid)
    answer, sent = _send_chunked(port, "/api/v1/what-if", "", 50 * MIB)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
    assert sent < 50 * MIB
    # Signed in (as far as the guard can tell): read up to the limit, then 413.
    answer, sent = _send_chunked(port, "/api/v1/what-if", "Authorization: Bearer x\r\n", 50 * MIB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert sent < 50 * MIB
    grown = _rss_kib(pid) - before
    assert grown < 16 * 1024, f"server grew by {grown} KiB"


# -- rate limits -----------------------------------------------------------------------


def test_sign_in_flood_from_one_address_is_rate_limited(tmp_path: Path) -> None:
    app = create_app(Settings(demo=True, data_dir=tmp_path, rate_limit_login="3/minute"))
    client = TestClient(app)
    codes = [client.post("/login", data={"person_id": "nobody"}).status_code for _ in range(4)]
    assert 429 not in codes[:3]
    assert codes[3] == 429
    r = client.post("/login", data={"person_id": "nobody"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"]["code"] == "rate_limited"


def test_api_flood_is_limited_per_address_and_per_credential(tmp_path: Path) -> None:
    app = create_app(
        _settings(tmp_path, rate_limit_api="3/minute", trusted_proxies=["192.0.2.0/24"])
    )

    def get(address: str, token: str | None = None) -> int:
        headers = {"x-forwarded-for": address}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return call(app, "GET", "/api/v1/audit/checkpoint", headers, total=0).status

    assert [get("198.51.100.1") for _ in range(4)] == [200, 200, 200, 429]
    assert get("198.51.100.2") == 200  # another address has its own budget
    # One credential from many addresses: its own budget runs out too.
    codes = [get(f"203.0.113.{i}", "stolen-token") for i in range(4)]
    assert codes[3] == 429
    sent = call(
        app, "GET", "/api/v1/audit/checkpoint", {"x-forwarded-for": "198.51.100.1"}, total=0
    )
    assert sent.status == 429 and int(sent.headers["retry-after"]) >= 1


def test_kas_flood_is_rate_limited_in_the_connect_shape(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, rate_limit_kas="2/minute"))
    headers = {"content-type": "application/json", "content-length": "2"}
    codes = [
        call(app, "POST", "/kas.AccessService/PublicKey", headers, total=0).status for _ in range(3)
    ]
    assert codes[2] == 429
    sent = call(app, "POST", "/kas.AccessService/Rewrap", headers, total=0)
    assert sent.status == 429 and b'"resource_exhausted"' in sent.body
    assert "retry-after" in sent.headers


def test_rate_limits_can_be_turned_off(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, rate_limit_api="off"))
    codes = {call(app, "GET", "/api/v1/audit/checkpoint", {}, total=0).status for _ in range(20)}
    assert codes == {200}


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    """A client cannot pick its own rate-limit bucket by sending X-Forwarded-For."""
    import ipaddress

    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("198.51.100.9", "1.2.3.4", proxies) == "198.51.100.9"
    assert client_address("10.0.0.2", "1.2.3.4, 10.0.0.3", proxies) == "1.2.3.4"
    assert client_address("10.0.0.2", "evil, 5.6.7.8", proxies) == "5.6.7.8"
    assert client_address("10.0.0.2", "1.2.3.4", []) == "10.0.0.2"
