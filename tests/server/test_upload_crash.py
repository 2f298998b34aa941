"""A real relto killed with SIGKILL in the middle of an upload leaves nothing
readable behind, and its next start sweeps what it left: no plaintext in the data
folder or the temporary folder at any moment, no staged file after the restart,
no orphan blob, no ``document.protected`` entry for a document that does not exist."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

MARKER = b"RELTO-CRASH-PLAINTEXT-MARKER-91c2"
BOUNDARY = "relto-crash-boundary"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RELTO_DATA_DIR": str(data),
        "RELTO_LOG_LEVEL": "INFO",
        "TMPDIR": str(tmp),
    }
    env.pop("RELTO_DATABASE_URL", None)
    log = (data.parent / f"server-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "relto.cli.main", "serve", "--demo", "--bind", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(data.parent),
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, (data.parent / f"server-{port}.log").read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "relto serve did not become healthy"
        time.sleep(0.2)


def _holding_marker(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and MARKER in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def _staged(blobs: Path) -> list[Path]:
    return [p for p in blobs.iterdir() if p.name.startswith((".tmp-", ".claim-"))]


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    data.mkdir()
    tmp.mkdir()
    yield data, tmp


def test_killed_upload_leaves_nothing_readable_and_is_swept(
    folders: tuple[Path, Path],
) -> None:
    data, tmp = folders
    port = _free_port()
    proc = _start(data, tmp, port)
    base = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        login = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        r = client.post(
            "/login", data={"person_id": "gbr-eng-harper", "next": "/console", "csrf": login}
        )
        assert r.status_code == 303, r.text
        page = client.get("/console/documents/new")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        head = "".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in (("title", "Cut off"), ("project_id", "hypersonic"),
                         ("classification", "SECRET"), ("rel_to", "USA"))
        ).encode() + (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="cut.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()  # fmt: skip
        chunk = MARKER * (64 * 1024 // len(MARKER))
        total = len(head) + 8 * 1024 * 1024  # announced; never all sent
        sent = threading.Event()
        stop = threading.Event()

        def body() -> Iterator[bytes]:
            yield head
            for i in range(120):  # ~7.5 MiB, slowly: the server is killed meanwhile
                if stop.is_set():
                    return
                yield chunk
                if i == 60:
                    sent.set()
                time.sleep(0.01)
            stop.wait(30)

        def upload() -> None:
            # The server is killed mid-upload: whatever the client then raises
            # (a transport error, or h11's "too little data" once the body stops)
            # is the expected end of this request.
            with contextlib.suppress(Exception):
                client.post(
                    "/api/v1/objects",
                    content=body(),
                    headers={
                        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                        "content-length": str(total),
                        "x-csrf-token": csrf,
                    },
                )

        t = threading.Thread(target=upload, daemon=True)
        t.start()
        assert sent.wait(60)
        # In flight: the staged container exists, is private, and holds no plaintext.
        deadline = time.monotonic() + 10
        while not _staged(data / "blobs"):
            assert time.monotonic() < deadline, "no staged upload file appeared"
            time.sleep(0.05)
        staged = _staged(data / "blobs")
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in staged)
        assert staged[0].stat().st_size > 1024 * 1024
        assert _holding_marker(data, tmp) == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        t.join(30)
        client.close()

        # After the crash: ciphertext leftovers only, nothing readable anywhere.
        assert _staged(data / "blobs"), "the kill should have left the staged file"
        assert _holding_marker(data, tmp) == []
        assert not list(tmp.glob("relto-*"))  # the server's TMPDIR: no plaintext folders

        proc = _start(data, tmp, port)  # the restart sweeps
        assert _staged(data / "blobs") == []
        log = (data.parent / f"server-{port}.log").read_text()
        assert "upload_temp_swept" in log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # No orphan blob, and every document.protected entry names a document that exists.
    from relto.config import Settings
    from relto.events import MemorySink
    from relto.server import create_app
    from relto.store.documents import DocumentRow

    app = create_app(Settings(demo=True, data_dir=data), sink=MemorySink())
    node = app.state.node
    with node.db.session() as s:
        rows = {r.id: r.blob_key for r in s.query(DocumentRow)}
    assert set(node.blobs.keys()) == set(rows.values())
    protected = []
    for entry in node.log.iter_entries():
        doc = json.loads(entry.body)
        if doc.get("kind") == "document.protected":
            protected.append(doc["payload"]["document"])
    assert protected and set(protected) <= set(rows)
    node.db.dispose()
